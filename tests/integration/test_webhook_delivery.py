"""Webhooks with the real parts: PostgreSQL, a private redis-server, `python worker.py` processes
(RQ worker + rq cron) and an HTTP receiver on 127.0.0.1 that can go down and come back."""
import pytest
from rq import Queue
from sqlalchemy import select

from mets import queueing
from mets.models import QueuedEmail
from mets.models.automation import WebhookDelivery
from mets.models.webhooks import WebhookEndpoint
from mets.services.outbox import http as webhooks
from mets.services.webhooks import endpoints
from tests.factories import make_entity, make_staff, make_ticket
from tests.integration.mail_helpers import app_overrides, mail_settings, start_worker  # noqa: F401 (fixtures)
from tests.servers import Receiver, verify, verify_now, wait_until

pytestmark = [pytest.mark.postgresql, pytest.mark.parametrize("backend", ["postgresql"]), pytest.mark.committing]

HOOK_SETTINGS = {"WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_RETRY_BASE_SECONDS": 1, "WEBHOOK_TIMEOUT": 3}


@pytest.fixture
def mail_config(redis_server, smtp_server) -> dict:
    """The mail tests' settings (shared by this app and its workers) plus fast webhook retries."""
    return {**mail_settings(redis_server.url, smtp_server.port), **HOOK_SETTINGS, "WEBHOOK_ALLOW_PRIVATE": True}


def deliveries(session) -> list[WebhookDelivery]:
    session.expire_all()
    rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    session.rollback()
    return rows


def endpoint_active(session, endpoint_id: int) -> bool:
    session.expire_all()
    active = session.get(WebhookEndpoint, endpoint_id).active
    session.rollback()
    return active


def default_queue(app, redis_server) -> Queue:
    return queueing.queues(queueing.redis_connection(redis_server.url), app.config["RQ_QUEUE_PREFIX"])[1]


def test_commit_enqueues_one_job_and_a_rollback_none(app, session, redis_server, receiver):
    queue = default_queue(app, redis_server)
    webhooks.queue_webhook(session, url=receiver.url(), payload={"n": 1}, secret=None)
    session.rollback()
    assert queue.job_ids == [] and deliveries(session) == []

    row = webhooks.queue_webhook(session, url=receiver.url(), payload={"n": 2}, secret=None)
    assert queue.job_ids == []  # not before the commit: a worker would not see the row
    session.commit()
    assert queue.job_ids == [f"mets-hook-{row.id}-0"]
    queueing.enqueue_webhooks([(row.id, 0)])  # the sweep's duplicate is dropped by RQ
    assert queue.job_ids == [f"mets-hook-{row.id}-0"]


def test_a_worker_delivers_a_queued_webhook(app, session, receiver, start_worker):
    start_worker(**HOOK_SETTINGS)
    row = webhooks.queue_webhook(session, url=receiver.url(), payload={"event": "ticket_created"},
                                 secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", event="ticket_created")
    session.commit()

    wait_until(lambda: receiver.received(), timeout=30, what="the webhook at the receiver")
    [got] = receiver.received()
    assert got.json == {"event": "ticket_created"} and verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", got.headers, got.body)
    [stored] = wait_until(lambda: [r for r in deliveries(session) if r.status == "sent"] or None,
                          what="the delivery marked sent", state=lambda: deliveries(session))
    assert stored.id == row.id and stored.response_code == 200 and stored.attempts == 1


def test_a_receiver_down_then_up_gets_the_webhook_by_retry(app, session, receiver, start_worker):
    port = receiver.port
    receiver.stop()
    start_worker(**HOOK_SETTINGS)
    webhooks.queue_webhook(session, url=receiver.url(), payload={"n": 1}, secret=None)
    session.commit()

    wait_until(lambda: any(r.attempts >= 1 and r.status == "pending" for r in deliveries(session)),
               what="a failed first try", state=lambda: [(r.status, r.attempts) for r in deliveries(session)])
    [row] = deliveries(session)
    assert "ConnectionRefusedError" in row.error_message

    back = Receiver(port).start()
    try:
        # Nobody enqueues the retry but the periodic sweep (rq cron, every MAIL_SWEEP_SECONDS).
        [sent] = wait_until(lambda: [r for r in deliveries(session) if r.status == "sent"] or None, timeout=40,
                            what="the delivery sent after the receiver came back",
                            state=lambda: [(r.status, r.attempts, r.error_message) for r in deliveries(session)])
        assert len(back.received()) == 1 and back.received()[0].json == {"n": 1}
        assert sent.attempts >= 2 and "ConnectionRefusedError" in sent.attempt_log[0]["error"]
    finally:
        back.stop()


def test_the_embedded_worker_sends_webhooks_without_redis(app, session, receiver, start_worker):
    start_worker(cron=False, REDIS_URL=None, **HOOK_SETTINGS)
    webhooks.queue_webhook(session, url=receiver.url(), payload={"n": 7}, secret=None)
    session.commit()
    wait_until(lambda: receiver.received(), timeout=30, what="the embedded loop's sweep to send it")
    assert [r.json for r in receiver.received()] == [{"n": 7}]


def test_a_worker_process_delivers_an_endpoints_event_signed_and_disables_it_on_410(app, session, receiver,
                                                                                 start_worker):
    """The whole path: a ticket change commits its delivery, `python worker.py` POSTs it, the receiver verifies it
    with the standardwebhooks package; a 410 later makes the worker disable the endpoint and mail its manager."""
    acme = make_entity("Acme", "acme")
    maria = make_staff(acme, role="manager", email="maria@acme.example")
    hook = endpoints.create_endpoint(session, acme, {"url": receiver.url(), "event_types": ["ticket.created"]})
    session.commit()
    start_worker(**HOOK_SETTINGS)

    ticket = make_ticket(acme, subject="From the worker")
    session.commit()
    wait_until(lambda: receiver.received(), timeout=30, what="the endpoint's event at the receiver")
    [got] = receiver.received()
    payload = verify_now(hook.secret, got.headers, got.body)
    assert payload["type"] == "ticket.created" and payload["data"]["ticket"]["number"] == ticket.number

    receiver.answer(410, "gone")
    make_ticket(acme, subject="Too late")
    session.commit()
    wait_until(lambda: not endpoint_active(session, hook.id), timeout=30, what="the endpoint disabled by the worker")
    session.expire_all()
    disabled = session.get(WebhookEndpoint, hook.id)
    assert "410 Gone" in disabled.disabled_reason
    assert session.scalar(select(QueuedEmail.recipient_email).where(
        QueuedEmail.template_name == "webhook-endpoint-disabled")) == maria.email
    session.rollback()
