"""When escalation levels are due: by percent, by offset and by duration, in business and calendar time,
across a weekend and the end of daylight saving time (America/New_York, Sunday 2026-11-01)."""
from datetime import datetime, timezone

import pytest

from mets import clock
from mets.models import Ticket
from mets.services import escalation, tickets
from mets.services.escalation import timing
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket, ny

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def desk(session):
    """A New York desk open Mon-Fri 09:00-17:00 (the default hours), an agent and a customer."""
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    return {"acme": acme, "agent": make_staff(acme), "customer": make_customer()}


def open_ticket(desk, when, **kw) -> Ticket:
    with clock.freeze(when):
        return make_ticket(desk["acme"], customer=desk["customer"], **kw)


def instants(session, ticket, now) -> list[tuple[int, datetime]]:
    return [(d.number, d.at) for d in timing.levels_due(session, ticket, now)]


def policy(session, entity, clock_name, *levels, business_time=True, **kw):
    return escalation.create_policy(session, entity, name=kw.pop("name", "Policy"), clock=clock_name,
                                    business_time=business_time,
                                    levels=[{"trigger": t, "value": v, "actions": []} for t, v in levels], **kw)


def test_percent_levels_in_business_time_wait_for_monday(session, desk):
    make_rule(desk["acme"], "Standard", resolution_minutes=8 * 60)  # business hours
    policy(session, desk["acme"], "resolution", ("percent", 50), ("percent", 100))
    ticket = open_ticket(desk, ny(2026, 10, 30, 13, 0))  # Friday 13:00 EDT
    # 4 business hours: Friday 17:00 (closing); 8: Monday 13:00, now EST (UTC-5) after the weekend's change.
    assert instants(session, ticket, ny(2026, 10, 30, 13, 0)) == [
        (1, utc(2026, 10, 30, 21, 0)), (2, utc(2026, 11, 2, 18, 0))]
    assert ticket.escalation_due_at == utc(2026, 10, 30, 21, 0)  # kept on the ticket, for the tick's index
    assert ticket.sla_resolution_due == utc(2026, 11, 2, 18, 0)  # 100% is the breach


def test_percent_levels_in_calendar_time_count_the_repeated_hour(session, desk):
    make_rule(desk["acme"], "Round the clock", resolution_minutes=24 * 60, business_hours_only=False)
    policy(session, desk["acme"], "resolution", ("percent", 75), ("percent", 100), business_time=False)
    ticket = open_ticket(desk, ny(2026, 10, 31, 12, 0))  # Saturday noon EDT = 16:00 UTC
    # 24 real hours later is Sunday 11:00 EST on the wall: the clocks went back an hour in between.
    assert instants(session, ticket, ny(2026, 10, 31, 12, 0)) == [
        (1, utc(2026, 11, 1, 10, 0)), (2, utc(2026, 11, 1, 16, 0))]
    assert utc(2026, 11, 1, 16, 0).astimezone(ny(2026, 11, 1).tzinfo).hour == 11


def test_offsets_before_and_after_the_breach(session, desk):
    make_rule(desk["acme"], "Standard", response_minutes=2 * 60)
    business = policy(session, desk["acme"], "response", ("before_breach", 30), ("after_breach", 0),
                      ("after_breach", 8 * 60), name="Business", position=0)
    ticket = open_ticket(desk, ny(2026, 10, 30, 16, 0))  # Friday 16:00 EDT: 1h left on Friday
    # The breach: Friday 16-17 and Monday 09-10 EST. 30 minutes before it in the rule's time: Monday 09:30.
    # 8 business hours after it: Tuesday 10:00 EST.
    assert instants(session, ticket, ny(2026, 10, 30, 16, 0)) == [
        (1, utc(2026, 11, 2, 14, 30)), (2, utc(2026, 11, 2, 15, 0)), (3, utc(2026, 11, 3, 15, 0))]
    business.business_time = False  # after the breach in calendar time: Monday 18:00 EST
    session.flush()
    assert instants(session, ticket, ny(2026, 10, 30, 16, 0))[2] == (3, utc(2026, 11, 2, 23, 0))


def test_durations_since_created_in_business_and_calendar_time(session, desk):
    ticket = open_ticket(desk, ny(2026, 10, 30, 16, 0))  # Friday 16:00 EDT = 20:00 UTC
    business = policy(session, desk["acme"], "since_created", ("after_duration", 120))
    assert instants(session, ticket, ny(2026, 10, 30, 16, 0)) == [(1, utc(2026, 11, 2, 15, 0))]  # Mon 10:00 EST
    business.business_time = False
    business.levels[0].value = 48 * 60
    session.flush()
    # 48 real hours: Sunday 20:00 UTC, which New York's wall clock shows as 15:00 (not 16:00).
    assert instants(session, ticket, ny(2026, 10, 30, 16, 0)) == [(1, utc(2026, 11, 1, 20, 0))]


def test_pending_time_does_not_count_and_a_paused_ticket_has_nothing_due(session, desk):
    make_rule(desk["acme"], "Standard", resolution_minutes=8 * 60, business_hours_only=False)
    policy(session, desk["acme"], "since_created", ("after_duration", 60), business_time=False)
    ticket = open_ticket(desk, utc(2026, 11, 10, 12, 0))
    tickets.change_status(session, ticket, "pending", actor=desk["agent"], now=utc(2026, 11, 10, 12, 30))
    assert ticket.escalation_due_at is None
    tickets.change_status(session, ticket, "open", actor=desk["agent"], now=utc(2026, 11, 10, 14, 30))
    assert ticket.escalation_due_at == utc(2026, 11, 10, 15, 0)  # 30 minutes before the pause, 30 after


def test_the_next_reply_clock_gets_a_new_round_per_customer_message(session, desk):
    make_rule(desk["acme"], "Standard", response_minutes=60, next_reply_minutes=60, business_hours_only=False)
    policy(session, desk["acme"], "next_reply", ("percent", 100), business_time=False)
    ticket = open_ticket(desk, utc(2026, 11, 10, 12, 0))
    tickets.add_reply(session, ticket, actor=desk["agent"], body="Hi", now=utc(2026, 11, 10, 12, 10))
    assert ticket.escalation_due_at is None  # nobody is waiting for a reply
    tickets.add_reply(session, ticket, actor=desk["customer"], body="Still broken", now=utc(2026, 11, 10, 13, 0))
    first = timing.levels_due(session, ticket, utc(2026, 11, 10, 13, 0))
    assert [(d.at, d.cycle) for d in first] == [(utc(2026, 11, 10, 14, 0), "1")]
    tickets.add_reply(session, ticket, actor=desk["agent"], body="Try this", now=utc(2026, 11, 10, 13, 30))
    tickets.add_reply(session, ticket, actor=desk["customer"], body="No luck", now=utc(2026, 11, 10, 16, 0))
    assert [d.cycle for d in timing.levels_due(session, ticket, utc(2026, 11, 10, 16, 0))] == ["2"]


def test_since_the_customer_message_stops_when_an_agent_answers(session, desk):
    policy(session, desk["acme"], "since_customer_message", ("after_duration", 30), business_time=False)
    ticket = open_ticket(desk, utc(2026, 11, 10, 12, 0))
    assert ticket.escalation_due_at == utc(2026, 11, 10, 12, 30)
    tickets.add_reply(session, ticket, actor=desk["agent"], body="On it", now=utc(2026, 11, 10, 12, 10))
    assert ticket.escalation_due_at is None
    tickets.add_reply(session, ticket, actor=desk["customer"], body="?", now=utc(2026, 11, 10, 13, 0))
    assert ticket.escalation_due_at == utc(2026, 11, 10, 13, 30)


def test_percent_levels_need_an_sla_clock(session, desk):
    from mets.services.errors import DomainError

    with pytest.raises(DomainError) as caught:
        policy(session, desk["acme"], "since_created", ("percent", 50))
    assert "levels[0].trigger" in caught.value.errors


def test_an_sla_rule_edit_moves_the_levels_with_the_clocks(session, desk):
    from mets.services import sla

    rule = make_rule(desk["acme"], "Round the clock", resolution_minutes=4 * 60, business_hours_only=False)
    policy(session, desk["acme"], "resolution", ("percent", 50), business_time=False)
    ticket = open_ticket(desk, utc(2026, 11, 10, 12, 0))
    assert ticket.escalation_due_at == utc(2026, 11, 10, 14, 0)
    rule.resolution_minutes = 8 * 60
    sla.retime_entities(session, [desk["acme"].id], now=utc(2026, 11, 10, 12, 30))
    assert ticket.escalation_due_at == utc(2026, 11, 10, 16, 0)


def test_levels_an_edit_moves_into_the_past_are_recorded_not_fired(session, desk):
    from mets.models import EscalationEvent
    from mets.services import sla

    rule = make_rule(desk["acme"], "Round the clock", resolution_minutes=8 * 60, business_hours_only=False)
    policy(session, desk["acme"], "resolution", ("percent", 50), ("percent", 100), business_time=False)
    ticket = open_ticket(desk, utc(2026, 11, 10, 12, 0))
    rule.resolution_minutes = 4 * 60  # level 1 (50%) is now 14:00: already past at 15:00
    sla.retime_entities(session, [desk["acme"].id], now=utc(2026, 11, 10, 15, 0))
    assert ticket.escalation_due_at == utc(2026, 11, 10, 16, 0)  # level 2 still to come
    assert escalation.tick(session, utc(2026, 11, 10, 15, 1)) == []
    passed = session.query(EscalationEvent).one()
    assert passed.suppressed and passed.level_number == 1 and "not escalated" in passed.reason
    assert escalation.tick(session, utc(2026, 11, 10, 16, 0)) == [(ticket.id, 2)]
