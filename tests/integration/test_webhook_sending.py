"""Webhooks and SMS through the webhook_deliveries outbox, against a real HTTP receiver on 127.0.0.1:
signing, retries and backoff, permanent failures, redirects, the private-address guard, dedupe,
the SMS gateway, the admin verbs and the sweep. Runs on SQLite and PostgreSQL. (The checks that
need no receiver are in tests/unit/outbox/test_webhooks.py.)"""
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import CANCELLED, FAILED, PENDING, SENDING, SENT
from mets.models.automation import WebhookDelivery
from mets.services.outbox import http as webhooks
from mets.services.errors import DomainError
from tests.conftest import count_rows
from tests.factories import make_entity, make_ticket
from tests.servers import Receiver, verify

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # Standard Webhooks' own example secret
BASE = 60  # WEBHOOK_RETRY_BASE_SECONDS


@pytest.fixture
def app_overrides():
    return {"REDIS_URL": None, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_BASE_SECONDS": BASE,
            "WEBHOOK_RETRY_MAX_SECONDS": 3600, "WEBHOOK_MAX_ATTEMPTS": 6, "WEBHOOK_TIMEOUT": 5,
            "SMS_GATEWAY_URL": "", "SMS_GATEWAY_TOKEN": "", "SMS_FROM": "METS"}


@pytest.fixture(autouse=True)
def frozen(app):
    clock.set_now(T0)


def at(seconds: float) -> None:
    clock.set_now(T0 + timedelta(seconds=seconds))


def row_of(session, row_id: int) -> WebhookDelivery:
    session.expire_all()
    return session.get(WebhookDelivery, row_id)


def queue(session, url, payload=None, secret=SECRET, **kw) -> int:
    row = webhooks.queue_webhook(session, url=url, payload=payload or {"ticket": "T-1"}, secret=secret,
                                 event="ticket_created", **kw)
    session.commit()
    return row.id


# --- sending ------------------------------------------------------------------------------------

def test_a_signed_webhook_arrives_and_the_receiver_can_verify_it(session, receiver):
    acme = make_entity("Acme", "acme")
    ticket = make_ticket(acme, subject="Café order")
    payload = {"event": "ticket_created", "ticket": {"number": ticket.number, "subject": "Café order"}}
    row_id = queue(session, receiver.url("/in?src=mets"), payload, ticket=ticket)

    assert webhooks.deliver(session) == 1

    [got] = receiver.received()
    assert got.path == "/in?src=mets"
    assert got.json == payload
    assert "Café".encode() in got.body  # UTF-8, not \\u escapes
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == "METS-Webhooks/1"
    assert got.headers["X-METS-Delivery"] == str(row_id)
    assert got.headers["X-METS-Event"] == "ticket_created"
    assert got.headers["webhook-timestamp"] == str(int(T0.timestamp()))
    assert got.headers["webhook-id"] == row_of(session, row_id).message_id and got.headers["webhook-id"][:4] == "msg_"
    assert got.headers["webhook-signature"].startswith("v1,")
    assert verify(SECRET, got.headers, got.body)
    assert not verify("whsec_" + "A" * 32, got.headers, got.body)
    assert not verify(SECRET, got.headers, got.body.replace(b"Caf", b"Kaf"))
    row = row_of(session, row_id)
    assert (row.status, row.response_code, row.sent_at, row.attempts) == (SENT, 200, T0, 1)
    assert row.entity_id == acme.id
    [entry] = row.attempt_log
    assert entry["status"] == 200 and entry["ms"] >= 0 and entry["at"] == T0.isoformat()


def test_a_webhook_without_secret_is_sent_unsigned(session, receiver):
    queue(session, receiver.url(), secret=None)
    webhooks.deliver(session)
    [got] = receiver.received()
    assert "webhook-signature" not in got.headers and got.headers["webhook-id"].startswith("msg_")


def test_a_503_is_retried_after_the_backoff_then_succeeds(session, receiver):
    receiver.answer(503, "busy, try later")
    row_id = queue(session, receiver.url())

    assert webhooks.deliver(session) == 0
    row = row_of(session, row_id)
    assert (row.status, row.attempts, row.response_code) == (PENDING, 1, 503)
    assert row.next_attempt_at == T0 + timedelta(seconds=BASE)
    assert row.error_message == "HTTP 503: busy, try later"

    at(BASE - 1)
    assert webhooks.deliver(session) == 0 and len(receiver.received()) == 1  # not due yet
    at(BASE)
    assert webhooks.deliver(session) == 1
    row = row_of(session, row_id)
    assert (row.status, row.attempts, row.error_message) == (SENT, 2, None)
    assert [a.get("status") for a in row.attempt_log] == [503, 200]
    # Each try is signed afresh with its own timestamp: a receiver refusing old ones still accepts it.
    first, second = receiver.received()
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == BASE
    assert second.headers["webhook-id"] == first.headers["webhook-id"]  # receivers dedupe on it
    assert verify(SECRET, second.headers, second.body)


def test_a_410_fails_at_once_and_keeps_the_answer(session, receiver):
    receiver.answer(410, "This hook was deleted. " + "x" * 1000)
    row_id = queue(session, receiver.url())
    webhooks.deliver(session)
    at(10 * 3600)
    webhooks.sweep(session)
    row = row_of(session, row_id)
    assert (row.status, row.attempts, row.response_code) == (FAILED, 1, 410)
    assert row.error_message.startswith("HTTP 410: This hook was deleted. xxx")
    assert len(row.error_message) == len("HTTP 410: ") + 500
    assert len(receiver.received()) == 1


def test_429_is_retried_and_its_retry_after_is_respected(session, receiver):
    receiver.answer(429, "slow down", {"Retry-After": "600"})
    row_id = queue(session, receiver.url())
    webhooks.deliver(session)
    row = row_of(session, row_id)
    assert row.status == PENDING and row.next_attempt_at == T0 + timedelta(seconds=600)


def test_a_redirect_is_not_followed(session, receiver):
    inner = Receiver().start()
    try:
        receiver.answer(302, "", {"Location": inner.url("/internal")})
        row_id = queue(session, receiver.url())
        webhooks.deliver(session)
        assert inner.received() == []
    finally:
        inner.stop()
    row = row_of(session, row_id)
    assert row.status == FAILED and row.response_code == 302
    assert row.error_message == f"HTTP 302: redirect to {inner.url('/internal')} not followed"


def test_after_the_last_attempt_the_delivery_fails_with_the_reason(app, session, receiver):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 3
    for _ in range(3):
        receiver.answer(500, "boom")
    row_id = queue(session, receiver.url())
    delays = []
    for _ in range(3):
        webhooks.deliver(session)
        row = row_of(session, row_id)
        delays.append((row.next_attempt_at - clock.now()).total_seconds())
        clock.set_now(row.next_attempt_at)
    assert delays == [BASE, 2 * BASE, 0]  # exponential backoff; the last failure is final
    row = row_of(session, row_id)
    assert (row.status, row.attempts) == (FAILED, 3)
    assert row.error_message == "HTTP 500: boom (gave up after 3 attempts)"
    assert len(receiver.received()) == 3 and len(row.attempt_log) == 3


def test_the_backoff_is_capped(app, session):
    app.config["WEBHOOK_RETRY_MAX_SECONDS"] = 100
    down = Receiver().start()
    url = down.url()
    down.stop()  # nobody listens: connection refused
    row_id = queue(session, url)
    for _ in range(4):
        webhooks.deliver(session)
        clock.set_now(row_of(session, row_id).next_attempt_at)
    row = row_of(session, row_id)
    assert row.status == PENDING and row.attempts == 4
    assert "ConnectionRefusedError" in row.error_message
    assert [a.get("error", "").split(":")[0] for a in row.attempt_log] == ["ConnectionRefusedError"] * 4
    assert clock.now() - datetime.fromisoformat(row.attempt_log[-1]["at"]) == timedelta(seconds=100)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_by_default_a_private_address_is_refused_without_being_called(app, session, receiver, host):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    row_id = queue(session, f"http://{host}:{receiver.port}/hook")
    assert webhooks.deliver(session) == 0
    row = row_of(session, row_id)
    assert row.status == FAILED and row.attempts == 1
    assert row.error_message.startswith(f"refused: {host} resolves to a private address")
    assert receiver.received() == []


def test_a_duplicate_dedupe_key_queues_nothing(session, receiver):
    first = webhooks.queue_webhook(session, url=receiver.url(), payload={"n": 1}, secret=None, dedupe_key="r1:t9")
    again = webhooks.queue_webhook(session, url=receiver.url(), payload={"n": 2}, secret=None, dedupe_key="r1:t9")
    session.commit()
    later = webhooks.queue_webhook(session, url=receiver.url(), payload={"n": 3}, secret=None, dedupe_key="r1:t9")
    assert first is not None and again is None and later is None
    webhooks.deliver(session)
    assert [r.json for r in receiver.received()] == [{"n": 1}]


def test_a_rolled_back_transaction_sends_nothing(session, receiver):
    webhooks.queue_webhook(session, url=receiver.url(), payload={}, secret=None)
    session.rollback()
    assert count_rows(session, WebhookDelivery) == 0
    webhooks.sweep(session)
    assert receiver.received() == []


# --- SMS --------------------------------------------------------------------------------------

def test_an_sms_goes_to_the_gateway_with_the_bearer_token(app, session, receiver):
    app.config.update(SMS_GATEWAY_URL=receiver.url("/sms/send"), SMS_GATEWAY_TOKEN="gw-token", SMS_FROM="Acme")
    assert webhooks.sms_enabled(app.config)
    with pytest.raises(DomainError) as refused:
        webhooks.queue_sms(session, to="0612", text="x")
    assert "international form" in refused.value.errors["to"]
    row = webhooks.queue_sms(session, to="+33 6 12 34 56 78", text="é" * 2000, event="sla_breach_occurred")
    session.commit()

    assert webhooks.deliver(session) == 1
    [got] = receiver.received()
    assert got.path == "/sms/send"
    assert got.headers["Authorization"] == "Bearer gw-token"
    assert "webhook-signature" not in got.headers
    assert got.headers["X-METS-Event"] == "sla_breach_occurred"
    assert got.json == {"to": "+33612345678", "from": "Acme", "text": "é" * 1600}
    assert row_of(session, row.id).status == SENT and row_of(session, row.id).kind == "sms"


# --- the admin's verbs and the sweep ----------------------------------------------------------------

def test_retrying_a_failed_delivery_gives_it_fresh_attempts(app, session, receiver):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 1
    receiver.answer(500, "down")
    row_id = queue(session, receiver.url())
    webhooks.deliver(session)
    assert row_of(session, row_id).status == FAILED

    webhooks.retry(session, row_of(session, row_id))
    session.commit()
    assert webhooks.deliver(session) == 1
    row = row_of(session, row_id)
    assert row.status == SENT and [a.get("status") for a in row.attempt_log] == [500, 200]
    with pytest.raises(DomainError, match="A sent delivery cannot be retried"):
        webhooks.retry(session, row)


def test_a_cancelled_delivery_is_never_sent(session, receiver):
    row_id = queue(session, receiver.url())
    webhooks.cancel(session, row_of(session, row_id))
    session.commit()
    webhooks.sweep(session)
    assert webhooks.deliver(session) == 0
    assert receiver.received() == [] and row_of(session, row_id).status == CANCELLED
    with pytest.raises(DomainError, match="A cancelled delivery cannot be cancelled"):
        webhooks.cancel(session, row_of(session, row_id))


def test_the_sweep_sends_due_rows_without_redis(session, receiver):
    ids = [queue(session, receiver.url(f"/{i}")) for i in range(3)]
    assert webhooks.sweep(session) == (0, 3)
    assert sorted(r.path for r in receiver.received()) == ["/0", "/1", "/2"]
    assert all(row_of(session, i).status == SENT for i in ids)
    assert webhooks.sweep(session) == (0, 0)  # idempotent: nothing sent twice
    assert len(receiver.received()) == 3


def test_the_sweep_frees_a_dead_workers_claim_and_counts_that_attempt(app, session, receiver):
    app.config["MAIL_CLAIM_STALE_SECONDS"] = 300
    row_id = queue(session, receiver.url())
    row = row_of(session, row_id)
    row.status, row.claimed_at, row.claim_token, row.attempts = SENDING, T0, "dead-worker", 1
    session.commit()

    at(299)
    assert webhooks.sweep(session) == (0, 0)  # still within its claim
    at(301)
    assert webhooks.sweep(session) == (1, 1)
    row = row_of(session, row_id)
    assert (row.status, row.attempts) == (SENT, 2)
    assert "stopped while sending" in row.attempt_log[0]["error"]
    assert len(receiver.received()) == 1


def test_a_worker_only_takes_rows_it_claimed(session, receiver):
    """Two deliver() calls in turn never send one row twice (the claim is a conditional UPDATE)."""
    ids = [queue(session, receiver.url(f"/{i}")) for i in range(5)]
    assert webhooks.deliver(session, first_id=ids[3], limit=1) == 1
    assert [r.path for r in receiver.received()] == ["/3"]
    assert webhooks.deliver(session, limit=20) == 4
    assert sorted(r.path for r in receiver.received()) == ["/0", "/1", "/2", "/3", "/4"]
    assert session.scalars(select(WebhookDelivery.status).distinct()).all() == [SENT]


def test_the_body_is_exactly_what_was_signed_and_stored(session, receiver):
    payload = {"b": 1, "a": [1, 2], "when": T0}
    row_id = queue(session, receiver.url(), payload)
    webhooks.deliver(session)
    [got] = receiver.received()
    assert got.body.decode() == row_of(session, row_id).body == json.dumps(
        {"b": 1, "a": [1, 2], "when": T0.isoformat()}, separators=(",", ":"))


def test_a_secret_that_is_not_base64_fails_the_delivery_at_once(session, receiver):
    row_id = queue(session, receiver.url(), secret="s")  # not whsec_ base64: no HMAC key can be made of it
    webhooks.deliver(session)
    row = row_of(session, row_id)
    assert receiver.received() == [] and (row.status, row.attempts) == (FAILED, 1)
    assert "not a whsec_ secret" in row.error_message
