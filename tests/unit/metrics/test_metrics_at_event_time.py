"""Response metrics written when the event happens, on hand-built tickets whose answers are counted by hand.

Acme runs the default hours (Monday to Friday, 09:00-17:00, America/New_York). 2026-11-24 is a Tuesday,
2026-11-27 a Friday; 2026-11-01 (a Sunday) is when New York leaves daylight saving time (02:00 EDT -> 01:00 EST).
"""
import pytest
from sqlalchemy import select

from mets.models import ResponseMetric, Ticket
from mets.models.metrics import (FIRST_RESOLUTION, FIRST_RESPONSE, FULL_RESOLUTION, ON_HOLD, RESPONSE,
                                 WAITING_ON_CUSTOMER)
from mets.services import metrics, tickets
from mets.services.hours import admin as hours_edit
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket, ny


@pytest.fixture
def world(session):
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    return {"acme": acme, "agent": make_staff(acme, name="Dana"), "other_agent": make_staff(acme, name="Eli"),
            "customer": make_customer()}


def rows(session, ticket, kind=None) -> list[ResponseMetric]:
    session.flush()
    session.expire_all()
    query = select(ResponseMetric).where(ResponseMetric.ticket_id == ticket.id)
    if kind:
        query = query.where(ResponseMetric.metric_type == kind)
    return list(session.scalars(query.order_by(ResponseMetric.metric_type, ResponseMetric.seq)))


def one(session, ticket, kind) -> ResponseMetric:
    found = rows(session, ticket, kind)
    assert len(found) == 1, found
    return found[0]


def reply(session, ticket, who, at, internal=False):
    return tickets.add_reply(session, ticket, actor=who, body="...", internal=internal, now=at)


def status(session, ticket, new, who, at):
    return tickets.change_status(session, ticket, new, actor=who, now=at)


def test_first_response_across_a_weekend_in_business_and_calendar_minutes(session, world):
    make_rule(world["acme"], "Standard", response_minutes=240)
    ticket = make_ticket(world["acme"], customer=world["customer"], now=ny(2026, 11, 27, 16, 0), priority="high")
    opened = one(session, ticket, FIRST_RESPONSE)
    assert opened.end_at is None and opened.business_minutes is None  # written when the span starts

    reply(session, ticket, world["agent"], ny(2026, 11, 28, 10, 0), internal=True)  # a note answers nobody
    assert one(session, ticket, FIRST_RESPONSE).end_at is None
    reply(session, ticket, world["agent"], ny(2026, 11, 30, 10, 30))  # Monday

    row = one(session, ticket, FIRST_RESPONSE)
    assert row.start_at == ny(2026, 11, 27, 16, 0) and row.end_at == ny(2026, 11, 30, 10, 30)
    assert row.business_minutes == 60 + 90  # Friday 16:00-17:00, Monday 09:00-10:30
    assert row.duration_minutes == (2 * 24 + 18.5) * 60  # Friday 16:00 -> Monday 10:30: 66.5 hours
    assert (row.sla_target_minutes, row.within_sla) == (240, True)
    assert (row.agent_id, row.entity_id, row.priority) == (world["agent"].id, world["acme"].id, "high")
    assert session.get(Ticket, ticket.id).public_reply_count == 1  # the note is not a public reply


def test_first_response_across_the_dst_change_counts_real_minutes(session, world):
    make_rule(world["acme"], "Standard", response_minutes=30)  # business hours
    nights = make_entity("Nights", "nights", timezone="America/New_York")
    make_rule(nights, "24/7", response_minutes=48 * 60, business_hours_only=False)
    agent = make_staff(nights)
    # Saturday 12:00 EDT (16:00 UTC) -> Monday 10:00 EST (15:00 UTC): 47 real hours, 46 on the wall clock.
    office = make_ticket(world["acme"], customer=world["customer"], now=ny(2026, 10, 31, 12, 0))
    allday = make_ticket(nights, customer=world["customer"], now=ny(2026, 10, 31, 12, 0))
    reply(session, office, world["agent"], ny(2026, 11, 2, 10, 0))
    reply(session, allday, agent, ny(2026, 11, 2, 10, 0))

    office_row, allday_row = one(session, office, FIRST_RESPONSE), one(session, allday, FIRST_RESPONSE)
    assert office_row.duration_minutes == allday_row.duration_minutes == 47 * 60
    assert office_row.business_minutes == 60  # only Monday 09:00-10:00 is open
    assert office_row.within_sla is False  # 60 > 30
    assert allday_row.business_minutes == 47 * 60  # a 24/7 rule counts every real minute
    assert allday_row.within_sla is True  # 47 h < 48 h


def test_within_sla_is_the_slas_verdict_even_when_a_late_reply_used_no_more_than_the_target(session, world):
    make_rule(world["acme"], "Standard", response_minutes=60)
    ticket = make_ticket(world["acme"], customer=world["customer"], now=ny(2026, 11, 27, 16, 0))  # due 17:00
    reply(session, ticket, world["agent"], ny(2026, 11, 27, 18, 0))  # after closing: 60 business minutes, but late
    row = one(session, ticket, FIRST_RESPONSE)
    assert (row.business_minutes, row.duration_minutes) == (60, 120)
    assert row.within_sla is False and session.get(Ticket, ticket.id).sla_response_breached


def test_every_response_from_a_customer_message_to_the_next_public_agent_reply(session, world):
    make_rule(world["acme"], "Standard", response_minutes=60, next_reply_minutes=120)
    agent, other, customer = world["agent"], world["other_agent"], world["customer"]
    ticket = make_ticket(world["acme"], customer=customer, now=ny(2026, 11, 24, 10, 0))
    reply(session, ticket, customer, ny(2026, 11, 24, 10, 10))  # before the first response: no response row
    reply(session, ticket, agent, ny(2026, 11, 24, 10, 30))
    reply(session, ticket, customer, ny(2026, 11, 24, 16, 0))  # starts response 1
    reply(session, ticket, customer, ny(2026, 11, 24, 16, 30))  # still unanswered: the same response
    reply(session, ticket, other, ny(2026, 11, 25, 9, 30), internal=True)
    reply(session, ticket, other, ny(2026, 11, 25, 10, 0))  # answers it, exactly at its due time
    reply(session, ticket, other, ny(2026, 11, 25, 11, 0))  # answers nothing new
    reply(session, ticket, customer, ny(2026, 11, 27, 16, 0))  # Friday: response 2
    reply(session, ticket, agent, ny(2026, 11, 30, 10, 1))  # Monday

    first = one(session, ticket, FIRST_RESPONSE)
    assert (first.business_minutes, first.duration_minutes, first.within_sla) == (30, 30, True)
    one_, two = rows(session, ticket, RESPONSE)
    assert (one_.seq, one_.start_at, one_.end_at) == (1, ny(2026, 11, 24, 16, 0), ny(2026, 11, 25, 10, 0))
    assert one_.business_minutes == 60 + 60  # Tuesday 16:00-17:00, Wednesday 09:00-10:00
    assert one_.duration_minutes == 18 * 60
    assert (one_.agent_id, one_.sla_target_minutes, one_.within_sla) == (other.id, 120, True)
    assert (two.seq, two.agent_id) == (2, agent.id)
    assert two.business_minutes == 60 + 61 and two.within_sla is False  # one minute over 120
    assert two.duration_minutes == (2 * 24 + 18) * 60 + 1
    assert session.get(Ticket, ticket.id).public_reply_count == 4


def test_a_reopen_extends_the_full_resolution_and_a_pending_span_is_left_out(session, world):
    make_rule(world["acme"], "Standard", response_minutes=60, resolution_minutes=480)  # pauses in pending
    agent, customer = world["agent"], world["customer"]
    ticket = make_ticket(world["acme"], customer=customer, now=ny(2026, 11, 24, 9, 0))
    reply(session, ticket, agent, ny(2026, 11, 24, 9, 30))
    status(session, ticket, "pending", agent, ny(2026, 11, 24, 10, 0))
    reply(session, ticket, customer, ny(2026, 11, 24, 12, 0))  # back to open: the span ends
    tickets.assign(session, ticket, agent, actor=agent, now=ny(2026, 11, 24, 13, 0))
    status(session, ticket, "resolved", agent, ny(2026, 11, 24, 15, 0))

    waiting = one(session, ticket, WAITING_ON_CUSTOMER)
    assert (waiting.start_at, waiting.end_at) == (ny(2026, 11, 24, 10, 0), ny(2026, 11, 24, 12, 0))
    assert (waiting.business_minutes, waiting.duration_minutes, waiting.sla_target_minutes) == (120, 120, None)
    first = one(session, ticket, FIRST_RESOLUTION)
    assert first.business_minutes == 6 * 60 - 120  # 09:00-15:00 without the two paused hours
    assert (first.duration_minutes, first.within_sla, first.agent_id) == (360, True, agent.id)
    full = one(session, ticket, FULL_RESOLUTION)
    assert (full.end_at, full.business_minutes, full.reopens) == (ny(2026, 11, 24, 15, 0), 240, 0)

    reply(session, ticket, customer, ny(2026, 11, 25, 10, 0))  # reopens the resolved ticket
    full = one(session, ticket, FULL_RESOLUTION)
    assert (full.end_at, full.reopens, full.reopened_at) == (None, 1, ny(2026, 11, 25, 10, 0))
    assert full.business_minutes == 240  # kept: the next resolution adds the time since the reopen
    assert full.within_sla is None

    status(session, ticket, "on_hold", agent, ny(2026, 11, 25, 11, 0))  # not a pause status of this rule
    status(session, ticket, "open", agent, ny(2026, 11, 25, 11, 30))
    status(session, ticket, "resolved", agent, ny(2026, 11, 25, 14, 30))
    status(session, ticket, "closed", agent, ny(2026, 11, 25, 15, 0))  # still finished: no new resolution

    full = one(session, ticket, FULL_RESOLUTION)
    assert (full.start_at, full.end_at) == (ny(2026, 11, 24, 9, 0), ny(2026, 11, 25, 14, 30))
    assert full.business_minutes == 240 + 270  # and not the resolved night in between
    assert full.duration_minutes == 29.5 * 60
    assert (full.sla_target_minutes, full.within_sla, full.reopens) == (480, False, 1)
    assert one(session, ticket, FIRST_RESOLUTION).business_minutes == 240  # frozen at the first resolution
    hold = one(session, ticket, ON_HOLD)
    assert (hold.business_minutes, hold.agent_id) == (30, agent.id)
    saved = session.get(Ticket, ticket.id)
    assert (saved.reopen_count, saved.public_reply_count) == (1, 1)


def test_rows_are_frozen_after_an_hours_or_rule_edit_and_a_rebuild_follows_the_edit(session, world):
    rule = make_rule(world["acme"], "Standard", response_minutes=240)
    ticket = make_ticket(world["acme"], customer=world["customer"], now=ny(2026, 11, 27, 16, 0))
    reply(session, ticket, world["agent"], ny(2026, 11, 30, 10, 30))
    assert one(session, ticket, FIRST_RESPONSE).business_minutes == 150

    hours_edit.set_custom_hours(session, world["acme"], True)  # Fridays now close at 16:30, Mondays open at 10:00
    for day in range(5):
        hours_edit.set_weekday(session, world["acme"], day, [("10:00" if day == 0 else "09:00",
                                                              "16:30" if day == 4 else "17:00")])
    rule.response_minutes = 30
    session.flush()
    row = one(session, ticket, FIRST_RESPONSE)
    assert (row.business_minutes, row.sla_target_minutes, row.within_sla) == (150, 240, True)

    metrics.rebuild(session, ny(2026, 11, 27, 0, 0))  # a rebuild takes today's hours and rule
    row = one(session, ticket, FIRST_RESPONSE)
    assert (row.business_minutes, row.sla_target_minutes, row.within_sla) == (30 + 30, 30, False)


def test_a_priority_change_and_an_extension_are_the_ones_of_the_moment_the_row_ends(session, world):
    make_rule(world["acme"], "Standard", response_minutes=60)
    ticket = make_ticket(world["acme"], customer=world["customer"], now=ny(2026, 11, 24, 9, 0), priority="low")
    tickets.update_fields(session, ticket, {"priority": "urgent"}, actor=world["agent"], now=ny(2026, 11, 24, 9, 5))
    tickets.extend_sla(session, ticket, 30, actor=world["agent"], now=ny(2026, 11, 24, 9, 10))
    reply(session, ticket, world["agent"], ny(2026, 11, 24, 10, 20))
    row = one(session, ticket, FIRST_RESPONSE)
    assert (row.priority, row.sla_target_minutes, row.business_minutes, row.within_sla) == ("urgent", 90, 80, True)


def test_without_a_rule_business_minutes_are_in_the_entitys_hours_and_there_is_no_target(session, world):
    ticket = make_ticket(world["acme"], customer=world["customer"], now=ny(2026, 11, 27, 16, 0))
    reply(session, ticket, world["agent"], ny(2026, 11, 30, 10, 30))
    row = one(session, ticket, FIRST_RESPONSE)
    assert (row.business_minutes, row.sla_target_minutes, row.within_sla) == (150, None, None)


def test_muted_history_writes_no_rows_until_the_rebuild_or_the_tickets_next_event(session, world):
    from mets import transaction

    make_rule(world["acme"], "Standard", response_minutes=60)
    with transaction.muted(session, metrics.MUTED):
        ticket = make_ticket(world["acme"], customer=world["customer"], now=ny(2026, 11, 24, 9, 0))
        reply(session, ticket, world["agent"], ny(2026, 11, 24, 9, 30))
        later = make_ticket(world["acme"], customer=world["customer"], now=ny(2026, 11, 24, 9, 0))
        reply(session, later, world["agent"], ny(2026, 11, 24, 9, 40))
    assert rows(session, ticket) == [] and rows(session, later) == []
    metrics.rebuild(session, ny(2026, 11, 24, 0, 0), ny(2026, 11, 25, 0, 0), batch_size=1)
    assert one(session, ticket, FIRST_RESPONSE).business_minutes == 30

    session.execute(ResponseMetric.__table__.delete().where(ResponseMetric.ticket_id == later.id))
    reply(session, later, world["customer"], ny(2026, 11, 24, 11, 0))  # a ticket without rows: its history first
    assert one(session, later, FIRST_RESPONSE).business_minutes == 40
    assert one(session, later, RESPONSE).start_at == ny(2026, 11, 24, 11, 0)
    assert session.get(Ticket, later.id).public_reply_count == 1


def test_metrics_rebuild_command_reproduces_exactly_what_event_time_wrote(app, session, world):
    make_rule(world["acme"], "Standard", response_minutes=60, next_reply_minutes=120, resolution_minutes=480)
    agent, other, customer = world["agent"], world["other_agent"], world["customer"]
    billing = make_entity("Billing", "billing", parent=world["acme"], timezone="America/New_York")  # inherits both
    bo = make_staff(billing, name="Bo")

    a = make_ticket(world["acme"], customer=customer, now=ny(2026, 11, 24, 9, 0), priority="high")
    tickets.assign(session, a, agent, actor=agent, now=ny(2026, 11, 24, 9, 5))
    reply(session, a, agent, ny(2026, 11, 24, 9, 30))
    status(session, a, "pending", agent, ny(2026, 11, 24, 10, 0))
    reply(session, a, customer, ny(2026, 11, 24, 12, 0))
    reply(session, a, other, ny(2026, 11, 24, 14, 0))
    status(session, a, "resolved", agent, ny(2026, 11, 24, 15, 0))
    reply(session, a, customer, ny(2026, 11, 25, 10, 0))
    tickets.update_fields(session, a, {"priority": "normal"}, actor=agent, now=ny(2026, 11, 25, 10, 30))
    tickets.extend_sla(session, a, 15, actor=agent, now=ny(2026, 11, 25, 10, 40))
    status(session, a, "on_hold", agent, ny(2026, 11, 25, 11, 0))
    status(session, a, "resolved", agent, ny(2026, 11, 25, 14, 30))
    b = make_ticket(world["acme"], customer=customer, now=ny(2026, 10, 31, 12, 0))
    reply(session, b, agent, ny(2026, 11, 2, 10, 0))
    tickets.update_fields(session, b, {"entity_id": billing.id}, actor=agent, now=ny(2026, 11, 2, 11, 0))
    reply(session, b, customer, ny(2026, 11, 2, 16, 0))
    reply(session, b, bo, ny(2026, 11, 3, 9, 15))
    status(session, b, "closed", bo, ny(2026, 11, 3, 9, 30))
    c = make_ticket(world["acme"], customer=customer, now=ny(2026, 11, 26, 9, 0))  # still waiting for an answer
    columns = [col.key for col in ResponseMetric.__table__.columns if col.key not in {"id", "recorded_at"}]

    def snapshot():
        session.flush()
        session.expire_all()
        found = [tuple(getattr(r, key) for key in columns) for r in session.scalars(
            select(ResponseMetric).where(ResponseMetric.ticket_id.in_([a.id, b.id, c.id]))
            .order_by(ResponseMetric.ticket_id, ResponseMetric.metric_type, ResponseMetric.seq))]
        counters = [tuple(session.execute(select(Ticket.reopen_count, Ticket.public_reply_count)
                                          .where(Ticket.id == t.id)).one()) for t in (a, b, c)]
        return found, counters

    at_event_time = snapshot()
    # a: first response, both resolutions, a pending span, two responses (the second unanswered), an on-hold span;
    # b: first response, both resolutions, one response; c: its three open rows.
    assert len(at_event_time[0]) == 7 + 4 + 3
    assert at_event_time[1] == [(1, 2), (0, 2), (0, 0)]
    of_b = {r[columns.index("metric_type")]: r for r in at_event_time[0] if r[columns.index("ticket_id")] == b.id}
    assert of_b[FIRST_RESPONSE][columns.index("entity_id")] == world["acme"].id  # ended before the move
    assert of_b[RESPONSE][columns.index("entity_id")] == billing.id  # ended after it
    assert of_b[RESPONSE][columns.index("agent_id")] == bo.id
    full_a = next(r for r in at_event_time[0] if r[columns.index("ticket_id")] == a.id
                  and r[columns.index("metric_type")] == FULL_RESOLUTION)
    assert (full_a[columns.index("priority")], full_a[columns.index("sla_target_minutes")]) == ("normal", 495)

    session.execute(ResponseMetric.__table__.update().values(business_minutes=-1))  # wreck them
    session.execute(Ticket.__table__.update().values(reopen_count=9, public_reply_count=9))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mets", "metrics-rebuild", "--since", "2026-10-31", "--until", "2026-11-26",
                                 "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "Rebuilt the response metrics of 3 tickets." in result.output
    assert snapshot() == at_event_time
    again = runner.invoke(args=["mets", "metrics-rebuild", "--since", "2026-10-31"])
    assert again.exit_code == 0 and snapshot() == at_event_time  # idempotent

    outside = runner.invoke(args=["mets", "metrics-rebuild", "--since", "2026-11-25", "--until", "2026-11-25"])
    assert outside.exit_code == 0 and "of 0 tickets" in outside.output
    backwards = runner.invoke(args=["mets", "metrics-rebuild", "--since", "2026-11-25", "--until", "2026-11-01"])
    assert backwards.exit_code != 0 and "--until is before --since" in backwards.output


def add_rule(session, entity, trigger, actions):
    from mets import clock
    from mets.models import AutomationRule
    from mets.services.automation import actions as automation_actions

    session.add(AutomationRule(name=f"On {trigger}", entity_id=entity.id, trigger_event=trigger,
                               actions=automation_actions.validate(session, entity, actions), is_active=True,
                               stop_processing=False, execution_order=1, created_at=clock.now(),
                               updated_at=clock.now()))
    session.commit()  # the engine reads its rule index once per transaction


def test_a_rules_change_is_measured_after_the_change_that_caused_it(session, world):
    add_rule(session, world["acme"], "ticket_created", [{"type": "set_status", "status": "pending"}])
    ticket = make_ticket(world["acme"], customer=world["customer"], now=ny(2026, 11, 24, 9, 0))
    assert ticket.status == "pending"  # the rule ran inside the creation's event
    reply(session, ticket, world["customer"], ny(2026, 11, 24, 9, 45))
    add_rule(session, world["acme"], "reply_added", [{"type": "set_priority", "priority": "urgent"}])
    reply(session, ticket, world["agent"], ny(2026, 11, 24, 10, 0))
    assert ticket.priority == "urgent"
    assert [(r.metric_type, r.seq) for r in rows(session, ticket)] == [
        (FIRST_RESOLUTION, 1), (FIRST_RESPONSE, 1), (FULL_RESOLUTION, 1), (WAITING_ON_CUSTOMER, 1)]
    waiting = one(session, ticket, WAITING_ON_CUSTOMER)
    assert (waiting.start_at, waiting.end_at, waiting.business_minutes) == (ny(2026, 11, 24, 9, 0),
                                                                           ny(2026, 11, 24, 9, 45), 45)
    # The reply was answered at normal priority: the rule raised it afterwards, in a change of its own.
    assert one(session, ticket, FIRST_RESPONSE).priority == "normal"
