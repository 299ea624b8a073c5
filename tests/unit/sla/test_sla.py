"""SLA clocks through the ticket services: rule choice, due times in business hours, pauses."""
from datetime import datetime, timedelta

import pytest

from mets import clock
from mets.services import sla, tickets
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket, ny




@pytest.fixture
def world(session):
    acme = make_entity("Acme", "acme", timezone="America/New_York")  # default hours: Mon-Fri 09-17
    billing = make_entity("Acme Billing", "billing", parent=acme, timezone="America/New_York")
    agent = make_staff(acme, name="Dana")
    return {"acme": acme, "billing": billing, "agent": agent, "customer": make_customer()}


def open_ticket(world, at: datetime, entity=None, **kw):
    with clock.freeze(at):
        return make_ticket(entity or world["billing"], customer=world["customer"], **kw)


def test_friday_1655_with_a_4h_target_is_due_monday_1255_local(session, world):
    make_rule(world["acme"], "Standard", response_minutes=240)
    ticket = open_ticket(world, ny(2026, 11, 27, 16, 55))  # a Friday
    assert ticket.sla_rule.name == "Standard"  # inherited from the parent entity
    assert ticket.sla_response_due == ny(2026, 11, 30, 12, 55)  # Monday
    assert ticket.sla_response_due.tzinfo is not None


def test_rule_choice_own_entity_first_then_order_priority_and_conditions(session, world):
    make_rule(world["acme"], "Parent catch-all", response_minutes=600)
    make_rule(world["billing"], "Inactive", response_minutes=10, is_active=False, position=0)
    make_rule(world["billing"], "Urgent only", response_minutes=30, priority="urgent", position=1)
    make_rule(world["billing"], "Refunds", response_minutes=60, position=2,
              conditions={"all": [{"field": "subject", "op": "contains", "value": "refund"}]})
    make_rule(world["billing"], "Later", response_minutes=90, position=3,
              conditions={"all": [{"field": "subject", "op": "contains", "value": "refund"}]})
    at = ny(2026, 11, 24, 10, 0)
    assert open_ticket(world, at, subject="REFUND please").sla_rule.name == "Refunds"
    assert open_ticket(world, at, subject="Refund", priority="urgent").sla_rule.name == "Urgent only"
    assert open_ticket(world, at, subject="Other").sla_rule.name == "Parent catch-all"
    other = make_entity("Globex", "globex")
    assert open_ticket(world, at, entity=other).sla_rule is None


def test_24_7_rule_ignores_business_hours(session, world):
    make_rule(world["acme"], "24/7", response_minutes=240, business_hours_only=False)
    ticket = open_ticket(world, ny(2026, 11, 27, 16, 55))
    assert ticket.sla_response_due == ny(2026, 11, 27, 20, 55)


def test_first_public_agent_reply_meets_the_response_clock(session, world):
    make_rule(world["acme"], "Standard", response_minutes=60)
    ticket = open_ticket(world, ny(2026, 11, 24, 10, 0))
    tickets.add_reply(session, ticket, actor=world["agent"], body="Looking", internal=True, now=ny(2026, 11, 24, 10, 30))
    assert ticket.first_response_at is None  # an internal note is not a response
    tickets.add_reply(session, ticket, actor=world["agent"], body="Hello", now=ny(2026, 11, 24, 11, 30))
    assert ticket.first_response_at == ny(2026, 11, 24, 11, 30)
    assert ticket.sla_response_breached  # 30 minutes late
    response = next(c for c in sla.clocks(session, ticket, ny(2026, 11, 24, 12, 0)) if c.name == "response")
    assert response.stopped_at and response.breached and response.used == timedelta(minutes=90)


def test_pause_moves_the_due_time_by_exactly_the_paused_business_time(session, world):
    make_rule(world["acme"], "Standard", resolution_minutes=8 * 60)
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))  # Tuesday: due 17:00 the same day
    assert ticket.sla_resolution_due == ny(2026, 11, 24, 17, 0)
    agent = world["agent"]
    tickets.change_status(session, ticket, "pending", actor=agent, now=ny(2026, 11, 24, 10, 0))
    assert ticket.sla_resolution_due is None  # paused: no due while waiting on the customer
    assert ticket.sla_next_check_at is None
    # The customer answers at 12:17:30: 2h17m30s of business time were paused.
    tickets.add_reply(session, ticket, actor=world["customer"], body="Here you go", now=ny(2026, 11, 24, 12, 17, 30))
    assert ticket.status == "open"
    assert ticket.sla_resolution_due == ny(2026, 11, 25, 11, 17, 30)  # 17:00 + 2h17m30s: 09:00 + 2h17m30s next day


def test_paused_overnight_counts_only_business_time(session, world):
    make_rule(world["acme"], "Standard", resolution_minutes=8 * 60)
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    agent = world["agent"]
    tickets.change_status(session, ticket, "pending", actor=agent, now=ny(2026, 11, 24, 16, 0))
    tickets.change_status(session, ticket, "open", actor=agent, now=ny(2026, 11, 25, 10, 0))
    # Paused 16:00-17:00 and 09:00-10:00 next day: two business hours.
    assert ticket.sla_resolution_due == ny(2026, 11, 25, 11, 0)


def test_resolved_time_does_not_count_and_reopening_resumes(session, world):
    make_rule(world["acme"], "Standard", resolution_minutes=4 * 60)
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    agent, customer = world["agent"], world["customer"]
    tickets.change_status(session, ticket, "resolved", actor=agent, now=ny(2026, 11, 24, 10, 0))
    assert ticket.resolved_at == ny(2026, 11, 24, 10, 0) and not ticket.sla_resolution_breached
    assert ticket.sla_next_check_at is None
    tickets.add_reply(session, ticket, actor=customer, body="Still broken", now=ny(2026, 11, 26, 9, 0))
    assert ticket.status == "open" and ticket.resolved_at is None
    assert ticket.sla_resolution_due == ny(2026, 11, 26, 12, 0)  # 3h of the 4h were left


def test_next_reply_clock_runs_from_each_customer_message(session, world):
    make_rule(world["acme"], "Standard", response_minutes=60, next_reply_minutes=120)
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    agent, customer = world["agent"], world["customer"]
    assert ticket.sla_next_reply_due is None  # the first message is the response clock's
    tickets.add_reply(session, ticket, actor=agent, body="Hi", now=ny(2026, 11, 24, 9, 30))
    tickets.add_reply(session, ticket, actor=customer, body="More info", now=ny(2026, 11, 24, 10, 0))
    assert ticket.sla_next_reply_due == ny(2026, 11, 24, 12, 0)
    cycle = ticket.sla_next_reply_cycle
    tickets.add_reply(session, ticket, actor=customer, body="And more", now=ny(2026, 11, 24, 11, 0))
    assert ticket.sla_next_reply_due == ny(2026, 11, 24, 12, 0)  # still the first unanswered message
    assert ticket.sla_next_reply_cycle == cycle
    tickets.add_reply(session, ticket, actor=agent, body="Answer", now=ny(2026, 11, 24, 11, 30))
    assert ticket.sla_next_reply_due is None and not ticket.sla_next_reply_breached


def test_priority_change_rechooses_the_rule_from_the_original_start_keeping_pause_credit(session, world):
    make_rule(world["acme"], "Normal", resolution_minutes=8 * 60, position=1)
    make_rule(world["acme"], "Urgent", resolution_minutes=4 * 60, priority="urgent", position=0)
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    agent = world["agent"]
    tickets.change_status(session, ticket, "pending", actor=agent, now=ny(2026, 11, 24, 10, 0))
    tickets.change_status(session, ticket, "open", actor=agent, now=ny(2026, 11, 24, 11, 0))
    assert ticket.sla_resolution_due == ny(2026, 11, 25, 10, 0)  # 8h + the 1h pause: past Tuesday's close
    tickets.update_fields(session, ticket, {"priority": "urgent"}, actor=agent, now=ny(2026, 11, 24, 11, 30))
    assert ticket.sla_rule.name == "Urgent"
    assert ticket.sla_resolution_due == ny(2026, 11, 24, 14, 0)  # 09:00 + 4h + the 1h pause


def test_naive_datetimes_are_refused(session, world):
    make_rule(world["acme"], "Standard", response_minutes=60)
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    with pytest.raises(ValueError):
        sla.clocks(session, ticket, datetime(2026, 11, 24, 10, 0))


def test_a_system_message_neither_answers_nor_starts_a_clock(session, world):
    make_rule(world["acme"], "Standard", response_minutes=60, next_reply_minutes=60)
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    tickets.add_reply(session, ticket, actor=None, body="Auto-reply: we got your message", via="system",
                      now=ny(2026, 11, 24, 9, 1))
    assert ticket.first_response_at is None and ticket.sla_next_reply_since is None
    assert ticket.sla_response_due == ny(2026, 11, 24, 10, 0)
