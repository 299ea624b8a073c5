"""Webhook endpoints against a real HTTP receiver (http.server in a thread on 127.0.0.1), fed by the worker's own
job function (`jobs.send_webhook`): events written in their change's transaction, signatures the receiver verifies
with the `standardwebhooks` package, the spec's retry schedule, disabling on a 410 and after days of failure, the
managers' mail. Runs on SQLite and PostgreSQL. (A real worker process is in test_webhook_delivery.py.)"""
from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks
from sqlalchemy import select

from mets import clock, jobs
from mets.models import FAILED, PENDING, SENT, QueuedEmail
from mets.models.automation import WebhookDelivery
from mets.models.csat import CsatResponse
from mets.models.webhooks import WebhookEndpoint
from mets.services import tickets, webhooks
from mets.services.metrics import csat
from mets.services.sla import tick as sla_tick
from tests.factories import make_entity, make_rule, make_staff, make_ticket
from tests.servers import verify, verify_now

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]  # the spec's, after the first try at once


@pytest.fixture
def app_overrides():
    return {"REDIS_URL": None, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT": 5,
            "WEBHOOK_RETRY_SCHEDULE": "5s,5m,30m,2h,5h,10h,10h", "WEBHOOK_DISABLE_AFTER_DAYS": 5}


@pytest.fixture
def world(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    maria = make_staff(acme, role="manager", name="Maria Manager", email="maria@acme.example")
    bea = make_staff(billing, role="manager", name="Bea Billing", email="bea@acme.example")
    gina = make_staff(globex, role="manager", name="Gina Globex", email="gina@globex.example")
    agent = make_staff(billing, name="Al Agent", email="al@acme.example")
    session.commit()
    return {"acme": acme, "billing": billing, "globex": globex, "maria": maria, "bea": bea, "gina": gina,
            "agent": agent}


def endpoint(session, entity, url, types=("ticket.created",)):
    row = webhooks.create_endpoint(session, entity, {"url": url, "event_types": list(types)})
    session.commit()
    return row


def rows(session, *where) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).where(*where).order_by(WebhookDelivery.id)))


def send_due(session) -> None:
    """What a worker does with each due delivery's job."""
    for row in rows(session, WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= clock.now()):
        jobs.send_webhook(row.id)


def at(seconds: float) -> None:
    clock.set_now(T0 + timedelta(seconds=seconds))


def test_a_ticket_event_reaches_the_endpoint_signed_and_the_receiver_verifies_it(session, world, receiver):
    clock.set_now(None)  # real time: the package's verify refuses timestamps five minutes off
    hook = endpoint(session, world["acme"], receiver.url("/mets?x=1"), ["ticket.created", "ticket.reply_added"])
    ticket = make_ticket(world["billing"], subject="Invoice ✓")  # a department's ticket reaches its company's endpoint
    session.commit()
    [row] = rows(session)
    assert (row.endpoint_id, row.event_type, row.ticket_id, row.secret) == (hook.id, "ticket.created", ticket.id, None)

    send_due(session)

    [got] = receiver.received()
    assert got.path == "/mets?x=1"
    payload = verify_now(hook.secret, got.headers, got.body)  # standardwebhooks.Webhook(secret).verify
    assert payload["type"] == "ticket.created" and payload["timestamp"].endswith("Z")
    assert payload["data"]["ticket"]["number"] == ticket.number and payload["data"]["ticket"]["subject"] == "Invoice ✓"
    assert payload["data"]["ticket"]["entity"] == "billing" and payload["data"]["ticket"]["sla"]["rule"] is None
    assert got.headers["webhook-id"] == row.message_id and row.message_id.startswith("msg_")
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verify_now(webhooks.endpoints.hooks.new_secret(), got.headers, got.body)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verify_now(hook.secret, got.headers, got.body.replace(b"Invoice", b"Invoices"))
    [sent] = rows(session)
    assert (sent.status, sent.attempts, sent.response_code) == (SENT, 1, 200)
    assert sent.attempt_log[0]["status"] == 200 and sent.attempt_log[0]["ms"] >= 0

    tickets.add_reply(session, ticket, actor=world["agent"], body="Paid, thanks.")
    session.commit()
    send_due(session)
    reply = verify_now(hook.secret, receiver.received()[1].headers, receiver.received()[1].body)
    assert reply["type"] == "ticket.reply_added" and reply["data"]["reply"]["body"] == "Paid, thanks."
    assert reply["data"]["actor"] == {"email": "al@acme.example", "name": "Al Agent"}


def test_only_subscribed_active_endpoints_of_the_entity_and_above_get_an_event(session, world, receiver):
    clock.set_now(T0)
    company = endpoint(session, world["acme"], receiver.url("/acme"))
    department = endpoint(session, world["billing"], receiver.url("/billing"), ["ticket.created", "ticket.assigned"])
    other = endpoint(session, world["globex"], receiver.url("/globex"))
    replies_only = endpoint(session, world["billing"], receiver.url("/replies"), ["ticket.reply_added"])
    off = endpoint(session, world["billing"], receiver.url("/off"))
    webhooks.disable(session, off, reason="test")
    session.commit()

    ticket = make_ticket(world["billing"])
    tickets.assign(session, ticket, world["agent"], actor=world["bea"])
    session.commit()
    got = {(r.endpoint_id, r.event_type) for r in rows(session)}
    assert got == {(company.id, "ticket.created"), (department.id, "ticket.created"),
                   (department.id, "ticket.assigned")}
    assign = rows(session, WebhookDelivery.event_type == "ticket.assigned")[0]
    assert '"changes":{"assignee":[null,"al@acme.example"]}' in assign.body  # people by email, never an id
    assert not {other.id, replies_only.id, off.id} & {r.endpoint_id for r in rows(session)}

    make_ticket(world["acme"])  # the company's own ticket: not its department's endpoints
    session.commit()
    assert [r.endpoint_id for r in rows(session, WebhookDelivery.ticket_id != ticket.id)] == [company.id]


def test_a_rolled_back_change_queues_and_sends_nothing(session, world, receiver):
    clock.set_now(T0)
    endpoint(session, world["acme"], receiver.url(), ["ticket.created", "ticket.status_changed"])
    ticket = make_ticket(world["acme"])
    session.commit()
    before = len(rows(session))

    tickets.change_status(session, ticket, "pending", actor=world["maria"])
    assert len(rows(session)) == before + 1  # written in the change's own transaction...
    session.rollback()
    assert len(rows(session)) == before  # ...and gone with it
    send_due(session)
    assert [r.json["type"] for r in receiver.received()] == ["ticket.created"]


def test_failures_follow_the_spec_schedule_then_fail(session, world, receiver):
    clock.set_now(T0)
    hook = endpoint(session, world["acme"], receiver.url())
    for _ in range(8):
        receiver.answer(503, "down")
    make_ticket(world["acme"])
    session.commit()
    [row] = rows(session)
    assert row.max_attempts == 8

    elapsed = 0
    send_due(session)  # the first try, at once
    for n, delay in enumerate(SCHEDULE, start=1):
        [row] = rows(session)
        assert (row.status, row.attempts) == (PENDING, n)
        assert row.next_attempt_at == T0 + timedelta(seconds=elapsed + delay)
        at(elapsed + delay - 1)
        send_due(session)
        assert len(receiver.received()) == n  # not before its time
        elapsed += delay
        at(elapsed)
        send_due(session)
    [row] = rows(session)
    assert (row.status, row.attempts, row.response_code) == (FAILED, 8, 503)
    assert [a["status"] for a in row.attempt_log] == [503] * 8 and all(a["response"] == "down" for a in row.attempt_log)
    assert len({r.headers["webhook-id"] for r in receiver.received()}) == 1  # one id over every try
    assert all(verify(hook.secret, r.headers, r.body) for r in receiver.received())  # each signed at its own time
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.received()]
    assert [b - a for a, b in zip(stamps, stamps[1:])] == SCHEDULE
    session.expire_all()
    assert hook.active and hook.failing_since == T0  # 28 hours of failure: not yet 5 days


def test_a_success_after_failures_clears_failing_since(session, world, receiver):
    clock.set_now(T0)
    hook = endpoint(session, world["acme"], receiver.url())
    receiver.answer(500)
    make_ticket(world["acme"])
    session.commit()
    send_due(session)
    session.expire_all()
    assert hook.failing_since == T0
    at(5)
    send_due(session)
    session.expire_all()
    assert hook.failing_since is None and rows(session)[0].status == SENT


def managers_mail(session, hook_id):
    session.expire_all()
    return list(session.scalars(select(QueuedEmail).where(QueuedEmail.template_name == "webhook-endpoint-disabled")
                                .order_by(QueuedEmail.recipient_email)))


def test_a_410_disables_the_endpoint_at_once_and_mails_its_managers(session, world, receiver):
    clock.set_now(T0)
    hook = endpoint(session, world["billing"], receiver.url(), ["ticket.created", "ticket.status_changed"])
    receiver.answer(410, "gone for good")
    ticket = make_ticket(world["billing"])
    tickets.change_status(session, ticket, "pending", actor=world["bea"])
    session.commit()
    first, second = rows(session)

    jobs.send_webhook(first.id)
    session.expire_all()
    assert not hook.active and hook.disabled_at == T0 and "410 Gone" in hook.disabled_reason
    assert rows(session, WebhookDelivery.id == first.id)[0].status == FAILED
    # The managers of the endpoint's entity and of the company above; not Globex's, not the agent.
    mails = managers_mail(session, hook.id)
    assert [m.recipient_email for m in mails] == ["bea@acme.example", "maria@acme.example"]
    assert "Acme Billing" in mails[0].subject and receiver.url() in mails[0].body and "410 Gone" in mails[0].body
    assert f"/admin/endpoints/{hook.id}" in mails[0].body

    # The other queued delivery is never sent; new events are not queued for it.
    jobs.send_webhook(second.id)
    assert len(receiver.received()) == 1
    failed = rows(session, WebhookDelivery.id == second.id)[0]
    assert (failed.status, failed.error_message) == (FAILED, "not sent: the endpoint is disabled")
    tickets.change_status(session, ticket, "open", actor=world["bea"])
    session.commit()
    assert len(rows(session)) == 2 and len(managers_mail(session, hook.id)) == 2  # mailed once


def test_five_days_of_failure_disable_the_endpoint(session, world, receiver):
    clock.set_now(T0)
    hook = endpoint(session, world["globex"], receiver.url())
    receiver.stop()  # nothing listens: every try fails to connect
    day = 0
    while day <= 5:
        at(day * 86400)
        make_ticket(world["globex"])
        session.commit()
        send_due(session)
        session.expire_all()
        if day < 5:
            assert hook.active and hook.failing_since == T0, day
        day += 1
    session.expire_all()
    assert not hook.active and hook.disabled_at == T0 + timedelta(days=5)
    assert hook.disabled_reason == "Every delivery failed for 5 days (since 2026-03-10T09:00:00Z)."
    assert [m.recipient_email for m in managers_mail(session, hook.id)] == ["gina@globex.example"]


def test_sla_points_and_csat_answers_are_events_too(session, world, receiver):
    clock.set_now(T0)
    hook = endpoint(session, world["acme"], receiver.url(), ["sla.breach_occurred", "csat.answered"])
    make_rule(world["acme"], "Fast", response_minutes=30, business_hours_only=False, warnings=[])
    ticket = make_ticket(world["acme"])
    session.commit()
    at(31 * 60)
    sla_tick.tick(session)
    session.commit()
    [breach] = rows(session)
    assert breach.event_type == "sla.breach_occurred" and breach.endpoint_id == hook.id
    assert '"changes":{"clock":"response","point":"breach"' in breach.body

    response = CsatResponse(ticket_id=ticket.id, resolved_at=T0, entity_id=ticket.entity_id,
                            customer_id=ticket.customer_id, priority=ticket.priority, sent_at=T0,
                            expires_at=T0 + timedelta(days=14), comment="")
    session.add(response)
    session.flush()
    csat.answer(session, response, 5, "Great", clock.now())
    session.commit()
    answer = rows(session, WebhookDelivery.event_type == "csat.answered")[0]
    send_due(session)
    payload = next(r.json for r in receiver.received() if r.json["type"] == "csat.answered")
    assert payload["data"]["survey"]["score"] == 5 and payload["data"]["survey"]["comment"] == "Great"
    assert payload["data"]["ticket"]["number"] == ticket.number and answer.ticket_id == ticket.id


def test_after_a_rotation_both_secrets_sign_for_the_grace_period(session, world, receiver):
    clock.set_now(T0)
    hook = endpoint(session, world["acme"], receiver.url())
    old = hook.secret
    new = webhooks.rotate_secret(session, hook)
    session.commit()
    make_ticket(world["acme"])
    session.commit()
    send_due(session)
    got = receiver.received()[0]
    assert verify(new, got.headers, got.body) and verify(old, got.headers, got.body)
    assert len(got.headers["webhook-signature"].split(" ")) == 2

    at(25 * 3600)  # the grace (24 h) is over: the old secret no longer signs
    make_ticket(world["acme"])
    session.commit()
    send_due(session)
    later = receiver.received()[1]
    assert verify(new, later.headers, later.body) and not verify(old, later.headers, later.body)


def test_the_test_event_and_a_replay_go_out_with_the_same_webhook_id(session, world, receiver):
    clock.set_now(None)
    hook = endpoint(session, world["acme"], receiver.url())
    test = webhooks.send_test(session, hook, world["maria"])
    session.commit()
    send_due(session)
    replayed = webhooks.replay(session, hook, rows(session, WebhookDelivery.id == test.id)[0])
    session.commit()
    send_due(session)
    first, second = receiver.received()
    assert verify_now(hook.secret, first.headers, first.body)["type"] == "webhook.test"
    assert verify_now(hook.secret, second.headers, second.body) == verify_now(hook.secret, first.headers, first.body)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == test.message_id
    assert [r.status for r in rows(session)] == [SENT, SENT] and replayed.id != test.id
    assert session.get(WebhookEndpoint, hook.id).active
