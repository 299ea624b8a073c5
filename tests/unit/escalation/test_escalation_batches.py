"""The escalation tick fires a batch in bulk: a few statements per batch however many tickets it holds, the same
outcomes as firing ticket by ticket, and an action that fails as it applies still recorded on its level alone."""
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
from sqlalchemy import event, select

from mets import clock
from mets.models import EscalationEvent, QueuedEmail, Ticket, TicketEvent
from mets.services import escalation, tickets
from tests.conftest import count_rows
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket

UTC = timezone.utc
OPENED = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
AT_75 = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)  # 75% of a 4h resolution target


@pytest.fixture
def desk(session):
    acme = make_entity("Acme Batch", "acmebatch")
    make_rule(acme, "Standard", response_minutes=60, resolution_minutes=4 * 60, business_hours_only=False)
    make_staff(acme, role="manager", name="Lee Lead", email="lee@batch.example")
    return {"acme": acme, "customer": make_customer()}


def policy(session, desk, *actions):
    """Level 1 at 75% of the resolution target: tell the managers, then `actions`; level 2 at the breach."""
    escalation.create_policy(session, desk["acme"], name="Urgent", clock="resolution", business_time=False, levels=[
        {"trigger": "percent", "value": 75, "actions": [{"type": "notify", "to": ["managers"]}, *actions]},
        {"trigger": "percent", "value": 100, "actions": [{"type": "notify", "to": ["managers"]}]}])


def open_tickets(desk, n: int) -> list[Ticket]:
    with clock.freeze(OPENED):
        return [make_ticket(desk["acme"], customer=desk["customer"], subject=f"Batch {i}") for i in range(n)]


@contextmanager
def statements(session):
    seen = []
    bind = session.connection()
    def listener(conn, cursor, statement, *args):
        seen.append(statement)
    event.listen(bind, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", listener)


# Round trips are what a statement costs on a server: SQLite runs in the process (and sends some rows one by one).
@pytest.mark.postgresql
@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_batch_costs_the_same_statements_for_3_tickets_as_for_12(session, desk, backend):
    """What the bench does: a level that notifies the managers (an action that changes the ticket, such as
    raising its priority, is a change of its own through services.tickets, ticket by ticket)."""
    policy(session, desk)
    few = open_tickets(desk, 3)
    session.flush()
    with statements(session) as small:
        assert len(escalation.tick(session, AT_75)) == 3
    for ticket in few:  # out of the way: resolved tickets have nothing due
        ticket.escalation_due_at = None
    many = open_tickets(desk, 12)
    session.flush()
    expected = sorted((t.id, 1) for t in many)
    with statements(session) as large:
        assert sorted(escalation.tick(session, AT_75)) == expected
    assert len(large) == len(small), "the bulk tick's statements must not grow with the batch"
    for ticket in many:
        ticket = session.get(Ticket, ticket.id)
        assert ticket.escalation_level == 1
        assert ticket.escalation_due_at == datetime(2026, 11, 10, 16, 0, tzinfo=UTC)  # level 2, at the breach
        assert session.scalars(select(QueuedEmail.recipient_email).where(
            QueuedEmail.ticket_id == ticket.id, QueuedEmail.event == "escalation")).all() == ["lee@batch.example"]
        event_row = session.scalars(select(EscalationEvent).where(EscalationEvent.ticket_id == ticket.id)).one()
        assert event_row.ticket_event_id is not None and [o["ok"] for o in event_row.outcomes] == [True]


def test_an_action_failing_as_it_applies_is_recorded_on_its_level_and_the_batch_still_fires(session, desk,
                                                                                             monkeypatch):
    policy(session, desk, {"type": "raise_priority"})
    batch = open_tickets(desk, 3)
    broken = batch[1]
    original = tickets.update_fields

    def update_fields(session_, ticket, *args, **kwargs):
        if ticket.id == broken.id:
            raise RuntimeError("the priority could not be written")
        return original(session_, ticket, *args, **kwargs)

    monkeypatch.setattr(tickets, "update_fields", update_fields)
    assert sorted(escalation.tick(session, AT_75)) == sorted((t.id, 1) for t in batch)
    assert escalation.tick(session, AT_75) == []  # once
    for ticket in batch:
        ticket = session.get(Ticket, ticket.id)
        outcomes = session.scalars(select(EscalationEvent.outcomes)
                                   .where(EscalationEvent.ticket_id == ticket.id)).one()
        assert outcomes[0]["ok"] and "lee@batch.example" in outcomes[0]["result"]
        assert count_rows(session, QueuedEmail, QueuedEmail.ticket_id == ticket.id,
                          QueuedEmail.event == "escalation") == 1
        assert count_rows(session, TicketEvent, TicketEvent.ticket_id == ticket.id,
                          TicketEvent.event == "escalation_due") == 1
        if ticket.id == broken.id:
            assert not outcomes[1]["ok"] and "could not be written" in outcomes[1]["result"]
            assert ticket.priority == "normal"
        else:
            assert outcomes[1]["ok"] and ticket.priority == "high"
        assert ticket.escalation_level == 1 and ticket.escalation_due_at is not None
