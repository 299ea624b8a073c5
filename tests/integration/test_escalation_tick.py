"""Escalation levels fire once each, even with two minute ticks at once on PostgreSQL (real commits, threads)."""
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from mets import clock
from mets.extensions import db
from mets.models import EscalationEvent, EscalationNotice, QueuedEmail, TicketEvent
from mets.services import escalation
from mets.services.sla import tick as sla_tick
from tests.conftest import PG_URL, _empty_all_tables, make_app
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket


def utc(hour, minute=0) -> datetime:
    return datetime(2026, 11, 10, hour, minute, tzinfo=timezone.utc)


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.mark.postgresql
def test_two_ticks_at_once_fire_each_level_once_on_postgresql(tmp_path, database_urls):
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    app = make_app(database_urls("postgresql"), tmp_path)
    with app.app_context():
        _empty_all_tables()
        acme = make_entity("Acme", "acme")
        make_staff(acme, role="manager", email="lee@acme.example")
        make_rule(acme, "Standard", resolution_minutes=4 * 60, business_hours_only=False)
        escalation.create_policy(db.session, acme, name="Urgent", clock="resolution", business_time=False, levels=[
            {"trigger": "percent", "value": 50, "actions": [{"type": "notify", "to": ["managers"]}]},
            {"trigger": "percent", "value": 100, "actions": [{"type": "notify", "to": ["managers"]}]}])
        customer = make_customer()
        with clock.freeze(utc(9)):
            ids = [make_ticket(acme, customer=customer).id for _ in range(40)]
        db.session.commit()

    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            with app.app_context():
                barrier.wait()
                # Without SKIP LOCKED splitting the work, both ticks would meet on every ticket; the
                # unique key is what refuses the second firing (ON CONFLICT DO NOTHING).
                escalation.tick(db.session, now=utc(14), batch_size=7)
                db.session.remove()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with app.app_context():
        try:
            assert count(EscalationEvent) == 2 * len(ids)
            assert count(TicketEvent, TicketEvent.event == "escalation_due") == 2 * len(ids)
            assert count(QueuedEmail, QueuedEmail.event == "escalation") == 2 * len(ids)  # one per level and ticket
        finally:
            _empty_all_tables()
            db.engine.dispose()


@pytest.mark.committing
def test_the_minute_tick_fires_levels_and_commits(app):
    acme = make_entity("Acme", "acme")
    make_rule(acme, "Standard", resolution_minutes=60, business_hours_only=False)
    escalation.create_policy(db.session, acme, name="P", clock="resolution", business_time=False,
                             levels=[{"trigger": "percent", "value": 100, "actions": []}])
    with clock.freeze(utc(9)):
        ticket_id = make_ticket(acme, customer=make_customer()).id
    db.session.commit()
    sla_tick.tick(db.session, now=utc(10))
    sla_tick.tick(db.session, now=utc(10, 1))
    db.session.remove()
    assert count(EscalationEvent, EscalationEvent.ticket_id == ticket_id) == 1


@pytest.mark.postgresql
def test_two_senders_at_once_send_each_held_notice_once_on_postgresql(tmp_path, database_urls):
    """Levels fired at night are held; at 09:00 two minute ticks' senders run at once: one mail per person."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    app = make_app(database_urls("postgresql"), tmp_path)
    with app.app_context():
        _empty_all_tables()
        acme = make_entity("Acme", "acme", timezone="America/New_York")  # the default hours: Mon-Fri 09:00-17:00
        managers = [make_staff(acme, role="manager", email=f"lead{i}@acme.example").email for i in range(3)]
        make_rule(acme, "Standard", resolution_minutes=4 * 60, business_hours_only=False)
        escalation.create_policy(db.session, acme, name="Urgent", clock="resolution", business_time=True, levels=[
            {"trigger": "percent", "value": 50, "actions": [{"type": "notify", "to": ["managers"]}]},
            {"trigger": "percent", "value": 100, "actions": [{"type": "notify", "to": ["managers"]}]}])
        customer = make_customer()
        with clock.freeze(utc(5)):  # 00:00 in New York: both levels fall before the desk opens at 14:00 UTC
            ids = [make_ticket(acme, customer=customer).id for _ in range(10)]
        db.session.commit()
        escalation.tick(db.session, now=utc(10))
        assert count(EscalationNotice) == 2 * len(ids) * len(managers)
        assert count(QueuedEmail, QueuedEmail.event == "escalation") == 0
        db.session.remove()

    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            with app.app_context():
                barrier.wait()
                escalation.send_due(db.session, utc(14))
                db.session.remove()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with app.app_context():
        try:
            mails = db.session.scalars(select(QueuedEmail).where(QueuedEmail.event == "escalation")).all()
            assert sorted(m.recipient_email for m in mails) == sorted(managers)  # one digest each
            assert all(len(m.template_data["notices"]) == 2 * len(ids) for m in mails)
            assert count(EscalationNotice, EscalationNotice.outcome == "sent",
                         EscalationNotice.email_id.is_not(None)) == 2 * len(ids) * len(managers)
        finally:
            _empty_all_tables()
            db.engine.dispose()
