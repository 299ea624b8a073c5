"""The admin webhook pages: the deliveries list and its filters, one delivery (URL, body, signature
headers but never the secret, every attempt), retry and cancel, and who may see them."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from mets import clock
from mets.extensions import db
from mets.models import CANCELLED, FAILED, PENDING, SENT
from mets.models.automation import WebhookDelivery
from mets.services.outbox import http as webhooks
from tests.conftest import HTMX, login, login_customer, text_of
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.web.helpers import screen

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
SECRET = "whsec_ZG8tbm90LXNob3ctbWUtNDcxMS1kby1ub3Qtc2hvdw=="  # never shown on a page


@pytest.fixture
def app_overrides():
    return {"REDIS_URL": None, "SMS_GATEWAY_URL": "https://sms.example.com/send", "SMS_GATEWAY_TOKEN": "gw-secret"}


@pytest.fixture
def world(session, client):
    clock.set_now(NOW)
    acme = make_entity("Acme", "acme")
    globex = make_entity("Globex", "globex")
    admin = make_staff(name="Ada Admin", is_admin=True)
    agent = make_staff(globex, name="Gus Agent")
    session.commit()
    login(client, admin)
    return {"acme": acme, "globex": globex, "admin": admin, "agent": agent}


def hook(url="https://hooks.acme.example/in", *, status=PENDING, entity=None, secret=SECRET, **columns):
    """A delivery queued the way rules queue it, then put in `status` as a worker would leave it."""
    row = webhooks.queue_webhook(db.session, url=url, payload={"ticket": "T-1", "note": "<b>bold</b>"},
                                 secret=secret, entity=entity, event="ticket_created")
    row.status = status
    for name, value in columns.items():
        setattr(row, name, value)
    db.session.commit()
    return row


def reload(row) -> WebhookDelivery:
    db.session.expire_all()
    return db.session.get(WebhookDelivery, row.id)


def listed(response) -> list[str]:
    return re.findall(r'<td class="recipient"><a href="[^"]+">([^<]+)</a>', response.get_data(as_text=True))


def test_the_list_shows_deliveries_newest_first_with_their_state(client, world):
    hook("https://a.example/1", entity=world["acme"], status=SENT, attempts=1)
    hook("https://b.example/2", status=FAILED, attempts=6, error_message="HTTP 410: gone")
    webhooks.queue_sms(db.session, to="+33 6 12 34 56 78", text="Breach", entity=world["globex"])
    db.session.commit()

    response = client.get("/admin/webhooks/")
    assert response.status_code == 200
    assert listed(response) == ["+33612345678", "https://b.example/2", "https://a.example/1"]
    page = screen(response)
    assert "HTTP 410: gone" in page and "Acme" in page and "Globex" in page
    assert "All 3" in page and "Failed 1" in page and "Sent 1" in page and "Pending 1" in page
    assert "SMS gateway https://sms.example.com/send" in page and "SMS token set" in page
    assert "gw-secret" not in response.get_data(as_text=True)


def test_the_list_filters_by_status_kind_and_entity(client, world):
    hook("https://a.example/1", entity=world["acme"], status=SENT)
    hook("https://b.example/2", entity=world["globex"], status=FAILED)
    webhooks.queue_sms(db.session, to="+33612345678", text="Breach", entity=world["acme"])
    db.session.commit()

    assert listed(client.get("/admin/webhooks/?status=failed")) == ["https://b.example/2"]
    assert listed(client.get("/admin/webhooks/?kind=sms")) == ["+33612345678"]
    assert listed(client.get(f"/admin/webhooks/?entity={world['acme'].id}")) == ["+33612345678", "https://a.example/1"]
    assert listed(client.get("/admin/webhooks/?kind=webhook&status=pending")) == []
    # The htmx answer is the list alone, which the filters swap in place.
    partial = client.get("/admin/webhooks/?kind=sms", headers=HTMX).get_data(as_text=True)
    assert partial.lstrip().startswith("<div id=\"hook-list\"") and "<html" not in partial


def test_a_delivery_shows_url_body_signature_headers_and_attempts_but_not_the_secret(client, world):
    row = hook(status=PENDING, attempts=1, response_code=503, error_message="HTTP 503: busy",
               next_attempt_at=NOW + timedelta(minutes=1),
               attempt_log=[{"at": NOW.isoformat(), "status": 503, "ms": 42, "timestamp": "1772452800"}])
    response = client.get(f"/admin/webhooks/{row.id}")
    body = response.get_data(as_text=True)
    page = screen(response)
    assert "POST to https://hooks.acme.example/in" in page
    assert '{"ticket":"T-1","note":"<b>bold</b>"}' in page and "<b>bold</b>" not in body  # shown, escaped
    expected = webhooks.signature([SECRET], row.message_id, datetime.fromtimestamp(1772452800, timezone.utc), row.body)
    assert f"webhook-signature {expected}" in page and "webhook-timestamp 1772452800" in page
    assert f"webhook-id {row.message_id}" in page
    assert f"X-METS-Delivery {row.id}" in page
    assert SECRET not in body
    assert "HTTP 503" in page and "42 ms" in page and "HTTP 503: busy" in page
    assert "Retry now" in page and "Cancel" in page


def test_an_sms_page_masks_the_gateway_token(client, world):
    row = webhooks.queue_sms(db.session, to="+33612345678", text="Breach on T-9")
    db.session.commit()
    response = client.get(f"/admin/webhooks/{row.id}")
    page = screen(response)
    assert "SMS to +33612345678" in page and "Authorization Bearer ***" in page
    assert '"text":"Breach on T-9"' in page and "gw-secret" not in response.get_data(as_text=True)


def test_retry_puts_a_failed_delivery_back_with_fresh_attempts(client, world):
    row = hook(status=FAILED, attempts=6, error_message="HTTP 500: boom", next_attempt_at=NOW - timedelta(hours=1))
    response = client.post(f"/admin/webhooks/{row.id}/retry")
    assert response.status_code == 303 and response.location.endswith(f"/admin/webhooks/{row.id}")
    # One outbox core: a retried row keeps its attempt count and gets more attempts (as mail always did).
    assert (reload(row).status, reload(row).attempts, reload(row).next_attempt_at) == (PENDING, 6, NOW)
    assert reload(row).max_attempts > reload(row).attempts
    assert "The delivery will be tried again now." in screen(client.get(response.location))


def test_cancel_with_htmx_answers_with_the_status_box(client, world):
    row = hook(status=PENDING)
    response = client.post(f"/admin/webhooks/{row.id}/cancel", headers=HTMX)
    assert response.status_code == 200
    text = text_of(response)
    assert "Cancelled" in text and "will not be sent" in text and "Retry now" not in text
    assert reload(row).status == CANCELLED


def test_a_sent_delivery_cannot_be_retried_and_says_why(client, world):
    row = hook(status=SENT)
    response = client.post(f"/admin/webhooks/{row.id}/retry", headers=HTMX)
    assert response.status_code == 422
    assert "A sent delivery cannot be retried." in screen(response)
    assert reload(row).status == SENT


@pytest.mark.parametrize("verb", ["retry", "cancel"])
def test_retry_and_cancel_without_a_csrf_token_are_refused(client, world, verb):
    row = hook(status=FAILED)
    response = client.post(f"/admin/webhooks/{row.id}/{verb}", csrf=False)
    assert response.status_code == 400 and "Form expired" in text_of(response)
    assert reload(row).status == FAILED


def test_only_admins_see_the_pages(client, world):
    row = hook(entity=world["globex"])
    client.post("/logout")
    login(client, world["agent"])  # an agent of the delivery's own entity, not an admin
    assert client.get("/admin/webhooks/").status_code == 404
    assert client.get(f"/admin/webhooks/{row.id}").status_code == 404
    assert client.post(f"/admin/webhooks/{row.id}/cancel").status_code == 404
    assert reload(row).status == PENDING

    client.post("/logout")
    login_customer(client, make_customer("Carl Customer"))
    assert client.get(f"/admin/webhooks/{row.id}").status_code == 404
    client.post("/logout")
    response = client.get("/admin/webhooks/")
    assert response.status_code == 302 and "/login" in response.location


def test_the_mail_pages_link_to_webhooks(client, world):
    body = client.get("/admin/mail/").get_data(as_text=True)
    assert 'href="/admin/webhooks/">Webhooks</a>' in body
    page = client.get("/admin/webhooks/").get_data(as_text=True)
    assert re.search(r'href="/admin/webhooks/" class="current" aria-current="page">Webhooks', page)


def test_an_unknown_delivery_is_404(client, world):
    assert client.get("/admin/webhooks/999999").status_code == 404
    make_ticket(world["acme"])  # nothing else leaks in: the list is empty
    assert "No deliveries match these filters." in screen(client.get("/admin/webhooks/"))


def test_the_pause_switch_holds_webhooks_only_and_resume_sends(client, world):
    row = hook(status=PENDING)
    assert client.post("/admin/webhooks/pause", data={"paused": "1"}).status_code == 303
    page = screen(client.get("/admin/webhooks/"))
    assert re.search(r"Sending is paused since .* — 1 delivery waiting", page) and "Resume sending" in page
    assert "Sending is paused: resume it" in screen(client.get(f"/admin/webhooks/{row.id}"))
    assert "Sending is on" in screen(client.get("/admin/mail/"))  # per channel: mail goes on
    webhooks.sweep(db.session)
    assert reload(row).status == PENDING

    assert client.post("/admin/webhooks/pause", data={"paused": "0"}).status_code == 303
    assert "Sending is on" in screen(client.get("/admin/webhooks/"))
