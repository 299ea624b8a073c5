"""Portal sign-in links over real SMTP: an aiosmtpd server on 127.0.0.1 receives what the app sends.

The request only queues the link in the outbox (as critical mail); a worker sends it. Here the
worker is `mail_delivery.deliver_due`, called after the request, as the embedded loop does.
"""
import email
import email.policy
import re
from urllib.parse import urlsplit

import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, select, update

from mets import clock
from mets.extensions import db
from mets.models import CRITICAL, FAILED, PENDING, SENDING, SENT, QueuedEmail, User
from mets.services import outbox
from mets.services.outbox import smtp as mail_delivery
from tests.conftest import text_of
from tests.factories import make_customer, make_entity, make_staff, make_ticket

SENDER = "METS Support <support@mets.example>"


@pytest.fixture
def inbox(sink):
    """What the SMTP server (tests/servers.py) received."""
    return sink


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


def deliver():
    """What a worker does: send everything due."""
    return mail_delivery.deliver_due(db.session)


def queued(address: str) -> list[QueuedEmail]:
    db.session.expire_all()
    return list(db.session.scalars(select(QueuedEmail).where(QueuedEmail.recipient_email == address)
                                   .order_by(QueuedEmail.id)))


def test_portal_link_arrives_by_smtp_and_signs_the_customer_in(client, inbox):
    entity = make_entity(name="Acme", slug="acme")
    alice = make_customer(name="Alice", email="alice@example.com")
    make_ticket(entity, customer=alice, subject="Invoice shows the wrong VAT")
    db.session.commit()
    deliver()  # the ticket's own notifications
    inbox.envelopes.clear()

    assert client.get("/portal/").status_code == 302  # not signed in yet
    response = client.post("/portal/login", data={"email": "alice@example.com"})
    assert response.status_code == 200
    assert "Check your email" in text_of(response)
    assert inbox.envelopes == []  # queued, never sent inside the request
    [row] = [r for r in queued("alice@example.com") if r.event == "sign_in"]
    assert (row.status, row.priority) == (PENDING, CRITICAL)  # the customer is waiting: first in line

    assert deliver().sent == 1
    assert deliver().sent == 0  # it arrives once, however often the worker runs
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


def test_a_link_older_than_its_lifetime_has_expired(client, inbox, monkeypatch):
    make_customer(name="Alice", email="alice@example.com")
    db.session.commit()
    with monkeypatch.context() as m:  # the link was asked for (and signed) 61 minutes ago
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 61 * 60)
        client.post("/portal/login", data={"email": "alice@example.com"})
    deliver()
    [message] = inbox.messages
    response = client.get(urlsplit(link_in(message)).path)
    assert response.status_code == 400
    assert "This sign-in link has expired" in text_of(response)
    assert client.get("/portal/").status_code == 302  # still signed out


def test_the_same_page_but_no_mail_for_an_unknown_address_when_signup_is_closed(app, client, inbox):
    app.config["PORTAL_OPEN_SIGNUP"] = False
    make_customer(email="alice@example.com")
    db.session.commit()
    known = client.post("/portal/login", data={"email": "alice@example.com"})
    deliver()
    assert len(inbox.envelopes) == 1
    unknown = client.post("/portal/login", data={"email": "stranger@example.com"})
    deliver()
    assert unknown.status_code == 200
    assert text_of(unknown).replace("stranger@example.com", "X") == text_of(known).replace("alice@example.com", "X")
    assert len(inbox.envelopes) == 1  # still only Alice's
    assert queued("stranger@example.com") == []
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
    deliver()
    assert inbox.envelopes == []
    assert queued("agent@example.com") == []


def test_open_signup_mails_a_new_address_and_creates_the_customer_on_first_use(client, inbox):
    response = client.post("/portal/login", data={"email": "newbie@example.com"})
    assert response.status_code == 200
    deliver()
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
    deliver()
    assert inbox.envelopes == []
    assert db.session.scalar(select(func.count()).select_from(QueuedEmail)) == 0


def test_a_resent_message_keeps_its_message_id(app, client, inbox):
    """A worker that dies after the server accepted a message resends it: with the same Message-ID."""
    make_customer(email="alice@example.com")
    db.session.commit()
    client.post("/portal/login", data={"email": "alice@example.com"})
    deliver()
    [row] = queued("alice@example.com")
    assert row.message_id.endswith("@mets.example>")
    # As if the worker had died before recording the send: the row is still claimed, long ago.
    db.session.execute(update(QueuedEmail).where(QueuedEmail.id == row.id).values(
        status=SENDING, sent_at=None, claim_token="dead-host:1",
        claimed_at=clock.now() - timedelta(seconds=app.config["MAIL_CLAIM_STALE_SECONDS"] + 1)))
    db.session.commit()
    assert outbox.sweep(db.session)[0] == 1
    assert deliver().sent == 1
    first, second = inbox.messages
    assert first.get_all("Message-ID") == second.get_all("Message-ID") == [row.message_id]
    assert link_in(first) == link_in(second)


def test_queueing_refuses_a_line_break_in_the_address_and_folds_the_subject(app, inbox):
    assert outbox.queue_message(db.session, to="bob@example.com\r\nBcc: victim@example.com", subject="Hi",
                                text="Body") is None
    outbox.queue_message(db.session, to="bob@example.com", subject="Hello\r\nBcc: victim@example.com", text="Body")
    db.session.commit()
    deliver()
    assert [e.rcpt_tos for e in inbox.envelopes] == [["bob@example.com"]]
    [message] = inbox.messages
    assert message["Subject"] == "Hello Bcc: victim@example.com"
    assert message["Bcc"] is None


@pytest.mark.parametrize("field, value", [
    ("recipient_email", "bob@example.com\r\nBcc: victim@example.com"),
    ("recipient_email", "bob@example.com\nBcc: victim@example.com"),
    ("subject", "Hello\r\nBcc: victim@example.com"),
    ("subject", "Hello\rX-Injected: yes"),
    ("sender", "METS <support@mets.example>\nBcc: victim@example.com"),
])
def test_the_mailer_refuses_header_injection_in_a_stored_row_and_sends_nothing(app, inbox, field, value):
    """Defence in depth: a row whose headers were tampered with after queueing fails, unsent."""
    row = outbox.queue_message(db.session, to="bob@example.com", subject="Hello", text="Body", html="<p>Body</p>")
    db.session.commit()
    db.session.execute(update(QueuedEmail).where(QueuedEmail.id == row.id).values({field: value}))
    db.session.commit()
    result = deliver()
    assert (result.sent, result.failed) == (0, 1)
    db.session.expire_all()
    row = db.session.get(QueuedEmail, row.id)
    assert row.status == FAILED and "CR or LF" in row.error_message
    assert inbox.envelopes == []
    # The server is up: a clean message right after goes through.
    outbox.queue_message(db.session, to="bob@example.com", subject="Hello", text="Body")
    db.session.commit()
    assert deliver().sent == 1
    assert [e.rcpt_tos for e in inbox.envelopes] == [["bob@example.com"]]


def test_without_a_mail_server_the_message_lands_in_the_maildir(app, client, inbox):
    """The embedded run (no MAIL_SERVER) writes the same message into instance/maildir instead."""
    import mailbox

    app.config["MAIL_SERVER"] = None  # this module's app mails through SMTP; switch to the embedded run
    make_customer(email="alice@example.com")
    db.session.commit()
    client.post("/portal/login", data={"email": "alice@example.com"})
    deliver()
    [row] = queued("alice@example.com")
    assert row.status == SENT
    stored = list(mailbox.Maildir(app.config["MAILDIR"], create=False))
    assert len(stored) == 1
    message = email.message_from_bytes(stored[0].as_bytes(), policy=email.policy.default)
    assert message.get_all("Message-ID") == [row.message_id]
    assert message["Auto-Submitted"] == "auto-generated"
    assert set(parts(message)) == {"text/plain", "text/html"}
    assert link_in(message).startswith("http://mets.test/portal/auth/")
    assert inbox.envelopes == []  # nothing went over SMTP
