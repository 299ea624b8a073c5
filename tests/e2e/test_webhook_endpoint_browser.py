"""A manager adds a webhook endpoint in Chromium, copies its secret from the one page that shows it, sends a test
event, and the worker (worker.py's embedded loop) delivers it to a local receiver that verifies it with the
`standardwebhooks` package; the delivery's page shows the try. axe checks every page."""
import re

import pytest

from mets.extensions import db
from mets.models.webhooks import WebhookEndpoint
from tests.e2e.helpers import expect
from tests.factories import PASSWORD, make_entity, make_staff
from tests.servers import verify_now, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def private_hooks(monkeypatch):
    """The worker (started with the live server, from this environment) may call the receiver on 127.0.0.1."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "1")


def test_a_manager_adds_an_endpoint_and_its_test_event_arrives_verified(private_hooks, receiver, page, live_server):
    with live_server.app_context():
        acme = make_entity("Acme", "acme")
        make_entity("Acme Billing", "billing", parent=acme)
        maria = make_staff(acme, role="manager", name="Maria Manager")
        db.session.commit()
        email = maria.email

    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Acme Billing")).to_be_visible()
    page.get_by_role("link", name="New endpoint for Acme", exact=True).click()

    page.get_by_label("URL").fill(receiver.url("/mets"))
    page.get_by_label("Description").fill("CRM")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_text("Choose at least one event type.")).to_be_visible()  # the picker's error, in place
    page.get_by_label("ticket.created: A ticket was created").check()
    page.get_by_label("sla.breach_occurred: An SLA target was breached").check()
    page.get_by_role("button", name="Create endpoint").click()

    expect(page.get_by_role("heading", name="Endpoint created")).to_be_visible()
    secret = page.get_by_label("Signing secret").input_value()
    assert secret.startswith("whsec_")
    page.get_by_role("link", name="Go to the endpoint").click()
    assert secret not in page.content()

    page.get_by_role("button", name="Send a test event").click()
    expect(page.get_by_text("A test event (webhook.test) is on its way")).to_be_visible()
    wait_until(lambda: receiver.received(), timeout=30, what="the test event at the receiver")
    [got] = receiver.received()
    payload = verify_now(secret, got.headers, got.body)
    assert payload["type"] == "webhook.test" and payload["data"]["endpoint"]["entity"] == "acme"

    page.reload()
    page.get_by_role("link", name=re.compile(r"^\d+$")).first.click()
    expect(page.get_by_role("heading", name=re.compile("Delivery #"))).to_be_visible()
    expect(page.get_by_text("HTTP 200").first).to_be_visible()
    with live_server.app_context():
        endpoint = db.session.scalars(db.select(WebhookEndpoint)).one()
        assert endpoint.event_types == ["ticket.created", "sla.breach_occurred"] and endpoint.failing_since is None
