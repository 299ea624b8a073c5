"""The webhook endpoint pages (/admin/endpoints/): create (the secret shown once), edit, the event picker, disable
and enable, rotate, delete, "Send a test event" and "Replay", each endpoint's deliveries and their attempts; who
may see and do what (a manager of one entity gets 404 for another's endpoints and deliveries); CSRF on every POST."""
import re
from datetime import datetime, timezone

import pytest

from mets import clock
from mets.extensions import db
from mets.models import PENDING, SENT
from mets.models.automation import WebhookDelivery
from mets.models.webhooks import WebhookEndpoint
from mets.services import webhooks
from tests.conftest import count_rows, login, text_of
from tests.factories import make_entity, make_staff

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def app_overrides():
    return {"REDIS_URL": None}


@pytest.fixture
def world(session, client):
    clock.set_now(NOW)
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    admin = make_staff(name="Ada Admin", is_admin=True)
    maria = make_staff(acme, role="manager", name="Maria Manager")
    gina = make_staff(globex, role="manager", name="Gina Globex")
    agent = make_staff(acme, name="Al Agent")
    acme_hook = webhooks.create_endpoint(session, acme, {"url": "https://hooks.acme.example/in",
                                                        "event_types": ["ticket.created"]})
    globex_hook = webhooks.create_endpoint(session, globex, {"url": "https://hooks.globex.example/in",
                                                            "event_types": ["ticket.created"]})
    session.commit()
    return {"acme": acme, "billing": billing, "globex": globex, "admin": admin, "maria": maria, "gina": gina,
            "agent": agent, "acme_hook": acme_hook, "globex_hook": globex_hook}


def _endpoint(url):
    return db.session.scalar(db.select(WebhookEndpoint).where(WebhookEndpoint.url == url))


def test_a_manager_creates_an_endpoint_and_sees_its_secret_once(client, world):
    login(client, world["maria"])
    page = client.get(f"/admin/endpoints/entity/{world['billing'].id}/new")
    assert page.status_code == 200 and "ticket.reply_added" in text_of(page) and "csat.answered" in text_of(page)
    response = client.post(f"/admin/endpoints/entity/{world['billing'].id}/new", data={
        "url": "https://crm.example.com/hook", "description": "CRM", "event_types": ["ticket.created", "csat.answered"]})
    assert response.status_code == 201
    endpoint = _endpoint("https://crm.example.com/hook")
    assert endpoint.entity_id == world["billing"].id and endpoint.active
    assert endpoint.event_types == ["ticket.created", "csat.answered"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", endpoint.secret)
    assert endpoint.secret in response.get_data(as_text=True)
    # Never again: not on the endpoint's page, not in the list.
    for url in (f"/admin/endpoints/{endpoint.id}", "/admin/endpoints/"):
        shown = client.get(url)
        assert shown.status_code == 200 and endpoint.secret not in shown.get_data(as_text=True)


def test_the_form_says_what_is_wrong(client, world):
    login(client, world["maria"])
    response = client.post(f"/admin/endpoints/entity/{world['acme'].id}/new",
                           data={"url": "ftp://x.example/", "event_types": []})
    assert response.status_code == 422
    page = text_of(response)
    assert "must start with http:// or https://" in page and "Choose at least one event type" in page
    response = client.post(f"/admin/endpoints/entity/{world['acme'].id}/new",
                           data={"url": "https://x.example/", "event_types": ["ticket.deleted"]})
    assert response.status_code == 422 and "Unknown event type: ticket.deleted" in text_of(response)
    assert _endpoint("https://x.example/") is None


def test_edit_disable_enable_rotate_and_delete(client, session, world):
    endpoint = world["acme_hook"]
    old_secret = endpoint.secret
    login(client, world["maria"])
    response = client.post(f"/admin/endpoints/{endpoint.id}", data={
        "url": "https://hooks.acme.example/v2", "description": "v2", "event_types": ["sla.breach_occurred"]})
    assert response.status_code == 303
    session.expire_all()
    assert (endpoint.url, endpoint.event_types) == ("https://hooks.acme.example/v2", ["sla.breach_occurred"])

    assert client.post(f"/admin/endpoints/{endpoint.id}/disable").status_code == 303
    session.expire_all()
    assert not endpoint.active and endpoint.disabled_reason == "Disabled by Maria Manager."
    assert "Disabled by Maria Manager." in text_of(client.get(f"/admin/endpoints/{endpoint.id}"))
    assert client.post(f"/admin/endpoints/{endpoint.id}/enable").status_code == 303
    session.expire_all()
    assert endpoint.active and endpoint.disabled_at is None

    rotated = client.post(f"/admin/endpoints/{endpoint.id}/rotate")
    session.expire_all()
    assert rotated.status_code == 200 and endpoint.secret != old_secret
    assert endpoint.secret in rotated.get_data(as_text=True) and old_secret not in rotated.get_data(as_text=True)
    assert endpoint.previous_secret == old_secret and endpoint.previous_secret_until > NOW

    webhooks.send_test(session, endpoint, world["maria"])
    session.commit()
    assert client.post(f"/admin/endpoints/{endpoint.id}/delete").status_code == 303
    assert count_rows(session, WebhookEndpoint, WebhookEndpoint.id == endpoint.id) == 0
    assert count_rows(session, WebhookDelivery, WebhookDelivery.endpoint_id == endpoint.id) == 0


def test_send_a_test_event_queues_one_delivery_and_replay_sends_it_again(client, session, world):
    endpoint = world["acme_hook"]
    login(client, world["maria"])
    response = client.post(f"/admin/endpoints/{endpoint.id}/test")
    assert response.status_code == 303
    [test] = session.scalars(db.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)).all()
    assert (test.event_type, test.status, test.url) == ("webhook.test", PENDING, endpoint.url)
    assert '"type":"webhook.test"' in test.body and test.secret is None  # signed with the endpoint's secret
    page = client.get(f"/admin/endpoints/{endpoint.id}")
    assert "webhook.test" in text_of(page) and test.message_id in text_of(page)

    test.status, test.attempts = SENT, 1
    test.attempt_log = [{"at": NOW.isoformat(), "status": 200, "ms": 12, "response": "thanks"}]
    session.commit()
    shown = client.get(f"/admin/endpoints/{endpoint.id}/deliveries/{test.id}")
    assert shown.status_code == 200
    assert "HTTP 200" in text_of(shown) and "12 ms" in text_of(shown) and "thanks" in text_of(shown)
    assert endpoint.secret not in shown.get_data(as_text=True)

    replayed = client.post(f"/admin/endpoints/{endpoint.id}/deliveries/{test.id}/replay")
    assert replayed.status_code == 303
    again = session.scalars(db.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id,
                                                             WebhookDelivery.id != test.id)).one()
    assert (again.message_id, again.body, again.status, again.attempts) == (test.message_id, test.body, PENDING, 0)
    assert replayed.headers["Location"].endswith(f"/deliveries/{again.id}")


def test_a_disabled_endpoint_takes_no_test_or_replay(client, session, world):
    endpoint = world["acme_hook"]
    row = webhooks.send_test(session, endpoint, world["maria"])
    webhooks.disable(session, endpoint, reason="off")
    session.commit()
    login(client, world["maria"])
    for url in (f"/admin/endpoints/{endpoint.id}/test", f"/admin/endpoints/{endpoint.id}/deliveries/{row.id}/replay"):
        response = client.post(url)
        assert response.status_code == 422 and "enable it first" in text_of(response)
    assert count_rows(session, WebhookDelivery, WebhookDelivery.endpoint_id == endpoint.id) == 1


@pytest.mark.parametrize("who", ["gina", "agent"])
def test_others_get_404_for_an_entitys_endpoints_and_deliveries(client, session, world, who):
    endpoint = world["acme_hook"]
    row = webhooks.send_test(session, endpoint, world["maria"])
    session.commit()
    login(client, world[who])
    base = f"/admin/endpoints/{endpoint.id}"
    for url in (base, f"{base}/deliveries/{row.id}", f"/admin/endpoints/entity/{world['acme'].id}/new",
                f"/admin/endpoints/entity/{world['billing'].id}/new"):
        assert client.get(url).status_code == 404, url
    for verb in ("", "/disable", "/enable", "/test", "/rotate", "/delete", f"/deliveries/{row.id}/replay"):
        assert client.post(base + verb, data={"url": "https://evil.example/", "event_types": ["ticket.created"]}
                           ).status_code == 404, verb
    session.expire_all()
    assert endpoint.url == "https://hooks.acme.example/in" and endpoint.active
    assert count_rows(session, WebhookDelivery, WebhookDelivery.endpoint_id == endpoint.id) == 1
    listing = client.get("/admin/endpoints/")
    if who == "gina":  # her own entity's only
        assert "hooks.globex.example" in text_of(listing) and "hooks.acme.example" not in text_of(listing)
    else:  # an agent manages nothing
        assert listing.status_code == 404


def test_another_endpoints_delivery_is_a_404_even_for_a_manager_of_both(client, session, world):
    globex_row = webhooks.send_test(session, world["globex_hook"], world["gina"])
    session.commit()
    login(client, world["admin"])
    assert client.get(f"/admin/endpoints/{world['acme_hook'].id}/deliveries/{globex_row.id}").status_code == 404
    assert client.post(f"/admin/endpoints/{world['acme_hook'].id}/deliveries/{globex_row.id}/replay"
                       ).status_code == 404
    assert client.get(f"/admin/endpoints/{world['globex_hook'].id}/deliveries/{globex_row.id}").status_code == 200


def test_the_admin_sees_every_entity_and_the_nav_links_managers(client, world):
    login(client, world["admin"])
    listing = text_of(client.get("/admin/endpoints/"))
    assert "hooks.acme.example" in listing and "hooks.globex.example" in listing
    client.post("/logout")
    login(client, world["maria"])
    assert 'href="/admin/endpoints/"' in client.get("/tickets/").get_data(as_text=True)


@pytest.mark.parametrize("verb", ["", "/disable", "/enable", "/test", "/rotate", "/delete", "new", "replay"])
def test_every_post_without_a_csrf_token_is_refused(client, session, world, verb):
    endpoint = world["acme_hook"]
    row = webhooks.send_test(session, endpoint, world["maria"])
    session.commit()
    before = (endpoint.url, endpoint.secret, endpoint.active)
    login(client, world["maria"])
    url = {"new": f"/admin/endpoints/entity/{world['acme'].id}/new",
           "replay": f"/admin/endpoints/{endpoint.id}/deliveries/{row.id}/replay"}.get(verb, f"/admin/endpoints/{endpoint.id}{verb}")
    response = client.post(url, data={"url": "https://evil.example/", "event_types": ["ticket.created"]}, csrf=False)
    assert response.status_code == 400
    session.expire_all()
    assert (endpoint.url, endpoint.secret, endpoint.active) == before
    assert count_rows(session, WebhookEndpoint) == 2
    assert count_rows(session, WebhookDelivery) == 1
