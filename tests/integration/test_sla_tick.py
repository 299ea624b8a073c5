"""The SLA tick: every warning, breach and escalation point acted on exactly once."""
import threading
from datetime import datetime

import pytest
from sqlalchemy import func, select

from mets import clock
from mets.extensions import db
from mets.models import SlaFiring, Ticket, TicketEvent
from mets.services import sla, tickets
from mets.services.sla import tick as sla_tick
from tests.conftest import PG_URL, _empty_all_tables, make_app
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket


def at(hour, minute=0, day=24):
    from zoneinfo import ZoneInfo

    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture
def world(session):
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    make_rule(acme, "Standard", response_minutes=60, resolution_minutes=8 * 60,
              warnings=[{"percent": 50}, {"minutes_before": 10}])
    return {"acme": acme, "agent": make_staff(acme), "customer": make_customer()}


def new_ticket(world, when):
    with clock.freeze(when):
        ticket = make_ticket(world["acme"], customer=world["customer"], subject="Printer")
    db.session.commit()
    return ticket


def events(ticket_id) -> list[tuple[str, str, str]]:
    rows = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id,
                                                        TicketEvent.event.like("%sla%") | (TicketEvent.event == "escalation_due"))
                              .order_by(TicketEvent.id))
    return [(e.event, e.changes["clock"], e.changes["point"]) for e in rows]


def test_points_fire_in_order_and_once(session, world):
    ticket = new_ticket(world, at(9))
    assert sla_tick.tick(session, now=at(9, 20)).fired == []  # nothing due yet
    sla_tick.tick(session, now=at(9, 31))
    assert events(ticket.id) == [("sla_breach_warning", "response", "warning:50%")]
    sla_tick.tick(session, now=at(9, 55))
    sla_tick.tick(session, now=at(9, 55))  # the same instant again: nothing new
    assert events(ticket.id)[1:] == [("sla_breach_warning", "response", "warning:10m")]
    assert not session.get(Ticket, ticket.id).sla_response_breached
    sla_tick.tick(session, now=at(10, 0))
    ticket = session.get(Ticket, ticket.id)
    assert events(ticket.id)[-1] == ("sla_breach_occurred", "response", "breach")
    assert ticket.sla_response_breached
    result = sla_tick.tick(session, now=at(13, 0))
    assert ("sla_breach_warning", "resolution", "warning:50%") in events(ticket.id)
    assert not [e for e in events(ticket.id) if e[0] == "escalation_due"]  # escalation is the policies' business
    assert len(events(ticket.id)) == len(set(events(ticket.id)))
    assert result.tickets == 1


def test_a_late_tick_fires_every_passed_point_once(session, world):
    ticket = new_ticket(world, at(9))
    sla_tick.tick(session, now=at(16, 30))  # the worker was down all day
    fired = events(ticket.id)
    assert ("sla_breach_occurred", "response", "breach") in fired
    assert ("sla_breach_warning", "resolution", "warning:50%") in fired
    assert ("sla_breach_warning", "resolution", "warning:10m") not in fired  # at 16:50
    assert len(fired) == len(set(fired)) == 4


def test_paused_and_resolved_tickets_never_fire(session, world):
    paused = new_ticket(world, at(9))
    resolved = new_ticket(world, at(9))
    tickets.change_status(session, paused, "pending", actor=world["agent"], now=at(9, 10))
    tickets.change_status(session, resolved, "resolved", actor=world["agent"], now=at(9, 10))
    session.commit()
    assert sla_tick.tick(session, now=at(9, 0, day=27)).fired == []
    assert events(paused.id) == [] and events(resolved.id) == []


def test_editing_a_rule_does_not_replay_points_that_passed_before_the_edit(session, world):
    ticket = new_ticket(world, at(9))
    sla_tick.tick(session, now=at(9, 31))  # the 50% warning of the 60-minute target
    rule = session.get(Ticket, ticket.id).sla_rule
    rule.response_minutes = 20  # tightened at 9:45: its warning and breach points are now in the past
    session.flush()
    sla.retime(session, [session.get(Ticket, ticket.id)], now=at(9, 45))
    session.commit()
    assert sla_tick.tick(session, now=at(9, 46)).fired == []
    assert [e for e in events(ticket.id) if e[1] == "response"] == [
        ("sla_breach_warning", "response", "warning:50%")]
    suppressed = session.scalars(select(SlaFiring).where(SlaFiring.suppressed.is_(True))).all()
    assert {f.point for f in suppressed} == {"warning:10m", "breach"}
    assert session.get(Ticket, ticket.id).sla_response_breached  # the state is still told truthfully


def test_an_edit_does_not_hide_points_that_were_already_due(session, world):
    ticket = new_ticket(world, at(9))
    rule = session.get(Ticket, ticket.id).sla_rule
    rule.resolution_minutes = 9 * 60  # an unrelated change at 9:40, before the tick saw the 9:30 warning
    session.flush()
    sla.retime(session, [session.get(Ticket, ticket.id)], now=at(9, 40))
    session.commit()
    sla_tick.tick(session, now=at(9, 41))
    assert ("sla_breach_warning", "response", "warning:50%") in events(ticket.id)


def test_tick_command(app, session, world):
    new_ticket(world, at(9))
    with clock.freeze(at(10, 30)):
        result = app.test_cli_runner().invoke(args=["mets", "tick"])
    assert result.exit_code == 0
    assert "fired 3 points" in result.output  # response: two warnings and the breach


@pytest.mark.postgresql
def test_two_ticks_at_once_fire_each_point_once_on_postgresql(tmp_path, database_urls):
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    app = make_app(database_urls("postgresql"), tmp_path)
    with app.app_context():
        _empty_all_tables()
        acme = make_entity("Acme", "acme", timezone="America/New_York")
        make_rule(acme, "Standard", response_minutes=60, warnings=[{"percent": 50}])
        customer = make_customer()
        with clock.freeze(at(9)):
            ids = [make_ticket(acme, customer=customer).id for _ in range(60)]
        db.session.commit()

    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            with app.app_context():
                barrier.wait()
                sla_tick.tick(db.session, now=at(12), batch_size=7)
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
        firings = db.session.scalar(select(func.count()).select_from(SlaFiring))
        emitted = db.session.scalar(select(func.count()).select_from(TicketEvent)
                                    .where(TicketEvent.event.in_(["sla_breach_warning", "sla_breach_occurred"])))
        assert firings == emitted == 2 * len(ids)  # one warning and one breach per ticket, once each
        _empty_all_tables()
        db.engine.dispose()
