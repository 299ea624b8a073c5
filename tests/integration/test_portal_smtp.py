"""Portal sign-in links over real SMTP: an aiosmtpd server on 127.0.0.1 receives what the app sends."""
import email
import email.policy
import re
import socket
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from mets.extensions import db
from mets.models import User
from mets.services.mailer import send_email
from tests.conftest import text_of
from tests.factories import make_customer, make_entity, make_staff, make_ticket

SENDER = "METS Support <support@mets.example>"


class Inbox:
    """aiosmtpd handler that keeps every message it is handed."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.original_content or e.content, policy=email.policy.default)
                for e in self.envelopes]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free local port; stopped even when the test fails."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def inbox(smtp_server) -> Inbox:
    return smtp_server.handler


@pytest.fixture
def app_overrides(smtp_server) -> dict:
    """Mail through the SMTP server. Flask-Mail suppresses sending when TESTING is on: turn that off."""
    return {"MAIL_SERVER": smtp_server.hostname, "MAIL_PORT": smtp_server.port, "MAIL_SUPPRESS_SEND": False,
            "MAIL_DEFAULT_SENDER": SENDER, "PORTAL_OPEN_SIGNUP": True}


def parts(message) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.walk()
            if part.get_content_maintype() == "text"}


def link_in(message) -> str:
    text = parts(message)["text/plain"]
    links = re.findall(r"https?://\S+", text)
    assert len(links) == 1, text
    return links[0]


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def test_portal_link_arrives_by_smtp_and_signs_the_customer_in(client, inbox):
    entity = make_entity(name="Acme", slug="acme")
    alice = make_customer(name="Alice", email="alice@example.com")
    make_ticket(entity, customer=alice, subject="Invoice shows the wrong VAT")
    db.session.commit()

    assert client.get("/portal/").status_code == 302  # not signed in yet
    response = client.post("/portal/login", data={"email": "alice@example.com"})
    assert response.status_code == 200
    assert "Check your email" in text_of(response)

    assert len(inbox.envelopes) == 1
    envelope = inbox.envelopes[0]
    assert envelope.rcpt_tos == ["alice@example.com"]
    assert envelope.mail_from == "support@mets.example"
    [message] = inbox.messages
    assert message["To"] == "alice@example.com"
    assert message["From"] == SENDER
    assert message["Subject"] == "Your sign-in link"
    assert message["Auto-Submitted"] == "auto-generated"
    message_ids = message.get_all("Message-ID")
    assert len(message_ids) == 1, f"expected one Message-ID header, got {message_ids}"
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", message_ids[0])
    assert message.get_content_type() in ("multipart/alternative", "multipart/mixed")
    bodies = parts(message)
    assert set(bodies) == {"text/plain", "text/html"}

    link = link_in(message)
    assert link.startswith("http://mets.test/portal/auth/")
    assert f'href="{link}"' in bodies["text/html"]
    assert "60 minutes" in bodies["text/plain"]

    landed = client.get(urlsplit(link).path)
    assert landed.status_code == 302
    assert urlsplit(landed.headers["Location"]).path == "/portal/"
    page = client.get("/portal/")
    assert page.status_code == 200
    assert "Invoice shows the wrong VAT" in text_of(page)
    assert "ACME-1001" in text_of(page)


def test_the_same_page_but_no_mail_for_an_unknown_address_when_signup_is_closed(app, client, inbox):
    app.config["PORTAL_OPEN_SIGNUP"] = False
    make_customer(email="alice@example.com")
    db.session.commit()
    known = client.post("/portal/login", data={"email": "alice@example.com"})
    assert len(inbox.envelopes) == 1
    unknown = client.post("/portal/login", data={"email": "stranger@example.com"})
    assert unknown.status_code == 200
    assert text_of(unknown).replace("stranger@example.com", "X") == text_of(known).replace("alice@example.com", "X")
    assert len(inbox.envelopes) == 1  # still only Alice's
    assert count_users() == 1


@pytest.mark.parametrize("who", ["staff", "deactivated customer"])
def test_no_portal_link_for_staff_or_deactivated_customers(client, inbox, who):
    if who == "staff":
        make_staff(email="agent@example.com")
    else:
        make_customer(email="agent@example.com").active = False
    db.session.commit()
    response = client.post("/portal/login", data={"email": "agent@example.com"})
    assert response.status_code == 200
    assert "Check your email" in text_of(response)
    assert inbox.envelopes == []


def test_open_signup_mails_a_new_address_and_creates_the_customer_on_first_use(client, inbox):
    response = client.post("/portal/login", data={"email": "newbie@example.com"})
    assert response.status_code == 200
    [message] = inbox.messages
    assert message["To"] == "newbie@example.com"
    assert count_users() == 0  # nobody is created just by asking for a link
    assert client.get(urlsplit(link_in(message)).path).status_code == 302
    assert client.get("/portal/").status_code == 200
    newbie = db.session.scalar(select(User).where(User.email == "newbie@example.com"))
    assert newbie is not None and newbie.is_customer


def test_an_address_with_a_line_break_is_refused_by_the_form(client, inbox):
    make_customer(email="alice@example.com")
    db.session.commit()
    response = client.post("/portal/login", data={"email": "alice@example.com\r\nBcc: victim@example.com"})
    assert response.status_code == 422
    assert inbox.envelopes == []


def test_send_email_returns_the_message_id_it_sent(app, inbox):
    message_id = send_email("bob@example.com", "Hello", "Plain body", "<p>HTML body</p>")
    [message] = inbox.messages
    assert message.get_all("Message-ID") == [message_id]
    assert message_id.endswith("@mets.example>")


@pytest.mark.parametrize("field, value", [
    ("to", "bob@example.com\r\nBcc: victim@example.com"),
    ("to", "bob@example.com\nBcc: victim@example.com"),
    ("subject", "Hello\r\nBcc: victim@example.com"),
    ("subject", "Hello\rX-Injected: yes"),
    ("sender", "METS <support@mets.example>\nBcc: victim@example.com"),
])
def test_mailer_refuses_header_injection_and_sends_nothing(app, inbox, field, value):
    args = {"to": "bob@example.com", "subject": "Hello", "text": "Body", "html": "<p>Body</p>", "sender": None}
    args[field] = value
    with pytest.raises(ValueError, match="CR or LF"):
        send_email(**args)
    assert inbox.envelopes == []
    # The server is up: a clean message right after goes through.
    send_email("bob@example.com", "Hello", "Body")
    assert [e.rcpt_tos for e in inbox.envelopes] == [["bob@example.com"]]


def test_without_a_mail_server_the_message_lands_in_the_maildir(app, inbox):
    """The embedded run (no MAIL_SERVER) writes the same message into instance/maildir instead."""
    import mailbox

    app.config["MAIL_SERVER"] = None  # this module's app mails through SMTP; switch to the embedded run
    message_id = send_email("bob@example.com", "Hello", "Plain body", "<p>HTML body</p>")
    stored = list(mailbox.Maildir(app.config["MAILDIR"], create=False))
    assert len(stored) == 1
    message = email.message_from_bytes(stored[0].as_bytes(), policy=email.policy.default)
    assert message.get_all("Message-ID") == [message_id]
    assert message["Auto-Submitted"] == "auto-generated"
    assert set(parts(message)) == {"text/plain", "text/html"}
    assert inbox.envelopes == []  # nothing went over SMTP
