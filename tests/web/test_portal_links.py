"""A sign-in link from the portal works once; the ticket links in notification mail work for their lifetime.

The attacker is whoever reads the link after the customer used it: from a shared mailbox, a
browser history, a proxy log, or by racing the customer to it.
"""
import base64
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from mets import clock
from mets.extensions import db
from mets.models import RedeemedLink
from mets.services.directory import portal_auth
from mets.services.directory import portal_mail
from tests.conftest import CSRFClient, count_rows, text_of
from tests.factories import make_customer, make_entity, make_ticket
from tests.web.test_portal import inbox, link_in


@pytest.fixture
def carl(session):
    customer = make_customer("Carl Customer", "carl@example.com")
    session.commit()
    return customer


def new_browser(app) -> CSRFClient:
    app.test_client_class = CSRFClient
    return app.test_client()


def mailed_link(app, client, email="carl@example.com") -> str:
    client.post("/portal/login", data={"email": email})
    (mail,) = inbox(app)
    return urlsplit(link_in(mail)).path


def signed_in(client) -> bool:
    return client.get("/portal/").status_code == 200


def test_a_sign_in_link_signs_in_once(app, client, carl):
    link = mailed_link(app, client)
    assert client.get(link).status_code == 302
    assert signed_in(client)

    thief = new_browser(app)
    response = thief.get(link)

    assert response.status_code == 400
    assert "This sign-in link was already used" in text_of(response)
    assert "Email me a new link" in text_of(response)
    assert not signed_in(thief)


def test_the_customer_cannot_use_it_twice_either(app, client, carl):
    link = mailed_link(app, client)
    client.get(link)
    client.post("/logout")
    assert client.get(link).status_code == 400
    assert not signed_in(client)


def respelled(token: str) -> str:
    """The same token with its signature's last character spelled differently (same bytes, still verifies)."""
    head, _, signature = token.rpartition(".")

    def decode(text):
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    for char in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
        other = signature[:-1] + char
        if other != signature and decode(other) == decode(signature):
            return f"{head}.{other}"
    raise AssertionError("no other spelling")


def test_a_respelled_link_is_the_same_used_link(app, client, carl):
    link = mailed_link(app, client)
    client.get(link)
    token = link.rsplit("/", 1)[1]
    twin = respelled(token)
    assert twin != token

    thief = new_browser(app)
    response = thief.get(f"/portal/auth/{twin}")

    assert response.status_code == 400
    assert not signed_in(thief)


def test_two_links_asked_for_in_the_same_second_are_each_good_once(app, client, carl):
    first = portal_auth.make_token(app.secret_key, carl.email)
    second = portal_auth.make_token(app.secret_key, carl.email)
    assert first != second
    assert client.get(f"/portal/auth/{first}").status_code == 302
    assert new_browser(app).get(f"/portal/auth/{second}").status_code == 302
    assert new_browser(app).get(f"/portal/auth/{first}").status_code == 400


@pytest.mark.committing  # two threads, two connections: the unique key decides between them
def test_two_redemptions_at_the_same_moment_sign_in_once(app, carl):
    """The customer and the attacker click together: the unique key lets exactly one through."""
    token = portal_auth.make_token(app.secret_key, carl.email)
    config = app.config
    outcomes: list[str] = []
    first_holds_the_row = threading.Event()

    def redeem(hold: bool):
        with app.app_context():
            try:
                result = portal_auth.redeem(db.session, config["SECRET_KEY"], token, config["PORTAL_LINK_MAX_AGE"],
                                            False, config["PORTAL_TICKET_LINK_MAX_AGE"])
                outcomes.append(result.error or "signed in")
                if hold:
                    first_holds_the_row.set()
                    time.sleep(0.5)  # the second request arrives while this one has not committed yet
                db.session.commit()
            finally:
                first_holds_the_row.set()
                db.session.remove()

    first = threading.Thread(target=redeem, args=(True,))
    first.start()
    assert first_holds_the_row.wait(10)
    second = threading.Thread(target=redeem, args=(False,))
    second.start()
    first.join(20)
    second.join(20)

    assert outcomes == ["signed in", "used"]
    assert count_rows(db.session, RedeemedLink) == 1


def test_used_links_are_forgotten_once_they_would_have_expired(app, client, session, carl):
    clock.set_now(clock.now() - timedelta(hours=2))
    client.get(f"/portal/auth/{portal_auth.make_token(app.secret_key, carl.email)}")
    clock.set_now(None)
    assert count_rows(session, RedeemedLink) == 1

    new_browser(app).get(f"/portal/auth/{portal_auth.make_token(app.secret_key, carl.email)}")

    assert count_rows(session, RedeemedLink) == 1  # the two-hour-old row went, the new one stays


def test_a_ticket_link_in_a_notification_opens_the_ticket_every_time(app, session, carl):
    ticket = make_ticket(make_entity("Acme", "acme"), customer=carl, subject="Charged twice")
    session.commit()
    with app.test_request_context():
        link = urlsplit(portal_mail.ticket_link(carl.email, ticket.number)).path

    for _ in range(3):  # this week, next week, from the phone
        browser = new_browser(app)
        response = browser.get(link)
        assert response.status_code == 302
        assert response.location == f"/portal/tickets/{ticket.number}"
        assert "Charged twice" in text_of(browser.get(response.location))
    assert count_rows(session, RedeemedLink) == 0


def test_a_line_break_in_the_landing_page_never_reaches_a_header(app, client, carl):
    client.post("/portal/login", data={"email": carl.email, "next": "/portal/tickets/new\r\nX-Evil: 1"})
    (mail,) = inbox(app)
    response = client.get(urlsplit(link_in(mail)).path)
    assert response.status_code == 302 and response.location == "/portal/"
    assert "X-Evil" not in response.headers


def test_a_forged_host_header_never_reaches_a_mailed_link(app, session, carl):
    """Links are built on METS_BASE_URL (what `make run` sets from HOST/PORT), never on the request's Host:
    otherwise anyone could ask a link for Carl's address with `Host: evil.example` and have Carl mail it to them."""
    with app.test_request_context("/portal/login", method="POST", base_url="http://evil.example:5200",
                                  headers={"X-Forwarded-Host": "evil.example"}):
        portal_mail.send_sign_in_link("carl@example.com")
    session.commit()
    (mail,) = inbox(app)
    assert link_in(mail).startswith(app.config["METS_BASE_URL"] + "/portal/auth/")
    assert "evil.example" not in mail.as_string()
