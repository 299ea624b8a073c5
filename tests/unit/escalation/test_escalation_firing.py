"""Firing escalation levels: once per level and round, re-checked at fire time, inherited by departments,
notifying the hierarchy (never someone of another entity), by hand with a reason, reset by resolving."""
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, update

from mets import clock
from mets.models import EscalationEvent, QueuedEmail, Ticket, TicketEvent
from mets.services import escalation, tickets
from mets.services.directory import users
from mets.services.errors import DomainError
from mets.services.sla import tick as sla_tick
from tests.conftest import count_rows
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket

UTC = timezone.utc


def utc(day, hour, minute=0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def desk(session):
    """Acme (round-the-clock SLA: resolution in 4h) with its Billing department, managers at both levels."""
    acme = make_entity("Acme", "acme")
    billing = make_entity("Billing", "billing", parent=acme)
    make_rule(acme, "Standard", response_minutes=60, resolution_minutes=4 * 60, business_hours_only=False)
    return {"acme": acme, "billing": billing, "customer": make_customer(),
            "agent": make_staff(billing, name="Ann Agent", email="ann@acme.example"),
            "lead": make_staff(billing, role="manager", name="Lee Lead", email="lee@acme.example"),
            "boss": make_staff(acme, role="manager", name="Bo Boss", email="bo@acme.example"),
            "senior": make_staff(billing, name="Sam Senior", email="sam@acme.example", tier=2),
            "outsider": make_staff(make_entity("Other", "other"), name="Oz Other", email="oz@other.example")}


def two_levels(session, entity, **kw):
    """Level 1 at 75% of resolution: tell the department's managers; level 2 at the breach: the parent's."""
    return escalation.create_policy(session, entity, name=kw.pop("name", "Urgent"), clock="resolution",
                                    business_time=False, levels=[
                                        {"trigger": "percent", "value": 75,
                                         "actions": [{"type": "notify", "to": ["managers"]}]},
                                        {"trigger": "percent", "value": 100,
                                         "actions": [{"type": "notify", "to": ["parent_managers"]},
                                                     {"type": "raise_priority"}]}], **kw)


def open_ticket(desk, entity="billing", when=utc(10, 12)) -> Ticket:
    with clock.freeze(when):
        return make_ticket(desk[entity], customer=desk["customer"])


def mail_to(session, ticket) -> list[str]:
    session.flush()
    return sorted(session.scalars(select(QueuedEmail.recipient_email).where(
        QueuedEmail.ticket_id == ticket.id, QueuedEmail.event == "escalation")))


def test_levels_fire_at_their_time_once_each_and_tell_the_hierarchy(session, desk):
    two_levels(session, desk["billing"])
    ticket = open_ticket(desk)
    assert escalation.tick(session, utc(10, 14, 59)) == []  # 75% of 4h is 15:00
    assert escalation.tick(session, utc(10, 15)) == [(ticket.id, 1)]
    assert escalation.tick(session, utc(10, 15, 1)) == []  # the tick again: nothing twice
    ticket = session.get(Ticket, ticket.id)
    assert ticket.escalation_level == 1
    assert "lee@acme.example" in mail_to(session, ticket) and "bo@acme.example" not in mail_to(session, ticket)
    sla_tick.tick(session, now=utc(10, 16))  # the minute tick drives it: the SLA points, then escalation
    ticket = session.get(Ticket, ticket.id)
    assert ticket.escalation_level == 2 and ticket.priority == "high"
    assert "bo@acme.example" in mail_to(session, ticket)
    assert count_rows(session, EscalationEvent, EscalationEvent.ticket_id == ticket.id) == 2
    assert count_rows(session, TicketEvent, TicketEvent.ticket_id == ticket.id,
                      TicketEvent.event == "escalation_due") == 2
    assert ticket.escalation_due_at is None


def test_the_escalation_email_says_why_and_which_policy(session, desk):
    two_levels(session, desk["billing"])
    ticket = open_ticket(desk)
    escalation.tick(session, utc(10, 15))
    mail = session.scalars(select(QueuedEmail).where(QueuedEmail.recipient_email == "lee@acme.example",
                                                     QueuedEmail.event == "escalation")).one()
    assert "escalated to level 1" in mail.body
    assert "75% of the resolution target used (policy: Urgent)" in mail.body
    event = session.scalars(select(EscalationEvent).where(EscalationEvent.ticket_id == ticket.id)).one()
    assert event.reason == "75% of the resolution target used"
    assert event.outcomes[0]["ok"] and "lee@acme.example" in event.outcomes[0]["result"]


def test_a_late_tick_fires_every_passed_level_in_order(session, desk):
    two_levels(session, desk["billing"])
    ticket = open_ticket(desk)
    assert escalation.tick(session, utc(10, 20)) == [(ticket.id, 1), (ticket.id, 2)]
    assert session.get(Ticket, ticket.id).escalation_level == 2


def test_a_ticket_answered_or_resolved_since_does_not_escalate(session, desk):
    escalation.create_policy(session, desk["billing"], name="First reply", clock="response", business_time=False,
                             levels=[{"trigger": "percent", "value": 50, "actions": []}])
    answered, stale = open_ticket(desk), open_ticket(desk)
    tickets.add_reply(session, answered, actor=desk["agent"], body="Looking", now=utc(10, 12, 10))
    assert answered.escalation_due_at is None
    # A change that bypassed the re-timing (say, made by a script): the tick checks again when it fires.
    session.execute(update(Ticket).where(Ticket.id == stale.id).values(first_response_at=utc(10, 12, 20)))
    session.expire_all()
    assert session.get(Ticket, stale.id).escalation_due_at == utc(10, 12, 30)
    assert escalation.tick(session, utc(10, 13)) == []
    assert session.get(Ticket, stale.id).escalation_due_at is None  # nothing left: the index forgets it
    assert count_rows(session, EscalationEvent) == 0


def test_a_department_uses_its_parents_policies_until_it_has_its_own(session, desk):
    two_levels(session, desk["acme"], name="Company")
    inherited = open_ticket(desk)
    assert escalation.policy_for(session, inherited, utc(10, 12)).name == "Company"
    escalation.create_policy(session, desk["billing"], name="Billing's own", clock="since_created",
                             business_time=False, levels=[{"trigger": "after_duration", "value": 10, "actions": []}])
    own = open_ticket(desk)
    assert escalation.policy_for(session, own, utc(10, 12)).name == "Billing's own"
    assert own.escalation_due_at == utc(10, 12, 10)
    top = open_ticket(desk, "acme")
    assert escalation.policy_for(session, top, utc(10, 12)).name == "Company"  # a parent never takes a child's


def test_policy_conditions_choose_the_policy(session, desk):
    escalation.create_policy(session, desk["billing"], name="Urgent only", clock="since_created",
                             business_time=False, conditions={"all": [{"field": "priority", "op": "is",
                                                                       "value": "urgent"}]},
                             levels=[{"trigger": "after_duration", "value": 10, "actions": []}])
    normal = open_ticket(desk)
    with clock.freeze(utc(10, 12)):
        urgent = make_ticket(desk["billing"], customer=desk["customer"], priority="urgent")
    assert normal.escalation_due_at is None and urgent.escalation_due_at == utc(10, 12, 10)


def test_a_named_user_of_another_entity_is_refused(session, desk):
    with pytest.raises(DomainError) as caught:
        escalation.create_policy(session, desk["billing"], name="P", clock="since_created", levels=[
            {"trigger": "after_duration", "value": 10,
             "actions": [{"type": "notify", "user_id": str(desk["outsider"].id)}]}])
    assert caught.value.errors == {"levels[0].actions[0].user_id": "Oz Other does not work in Billing."}
    # Saved while they worked here, refused when it fires after they left: nobody else's staff is told.
    escalation.create_policy(session, desk["billing"], name="P", clock="since_created", business_time=False,
                             levels=[{"trigger": "after_duration", "value": 10,
                                      "actions": [{"type": "notify", "user_id": str(desk["senior"].id)}]}])
    ticket = open_ticket(desk)
    for membership in list(desk["senior"].memberships):
        users.remove_membership(session, membership)
    session.flush()
    session.expire_all()
    escalation.tick(session, utc(10, 12, 10))
    event = session.scalars(select(EscalationEvent)).one()
    assert not event.outcomes[0]["ok"] and "does not work in Billing" in event.outcomes[0]["result"]
    assert "sam@acme.example" not in mail_to(session, ticket)


def test_reassign_to_the_least_loaded_agent_of_a_higher_tier(session, desk):
    escalation.create_policy(session, desk["billing"], name="P", clock="since_created", business_time=False,
                             levels=[{"trigger": "after_duration", "value": 10,
                                      "actions": [{"type": "reassign_tier", "tier": "next"}]}])
    ticket = open_ticket(desk)
    tickets.assign(session, ticket, desk["agent"], actor=desk["agent"], now=utc(10, 12, 1))
    escalation.tick(session, utc(10, 12, 10))
    assert session.get(Ticket, ticket.id).assignee_id == desk["senior"].id


def test_manual_escalation_needs_a_reason_and_the_right_to_work_the_ticket(session, desk):
    two_levels(session, desk["billing"])
    ticket = open_ticket(desk)
    with pytest.raises(DomainError) as caught:
        escalation.escalate(session, ticket, desk["agent"], "  ", now=utc(10, 13))
    assert caught.value.errors == {"reason": "Say why you escalate it."}
    with pytest.raises(DomainError):
        escalation.escalate(session, ticket, desk["outsider"], "Customer called", now=utc(10, 13))
    with pytest.raises(DomainError):
        escalation.escalate(session, ticket, desk["customer"], "Please", now=utc(10, 13))
    assert count_rows(session, EscalationEvent) == 0


def test_manual_escalation_moves_to_the_next_level_and_runs_its_actions(session, desk):
    two_levels(session, desk["billing"])
    ticket = open_ticket(desk)
    event = escalation.escalate(session, ticket, desk["agent"], "Customer called twice", now=utc(10, 13))
    assert (event.level_number, event.reason, event.actor_id) == (1, "Customer called twice", desk["agent"].id)
    assert ticket.escalation_level == 1 and "lee@acme.example" in mail_to(session, ticket)
    assert escalation.tick(session, utc(10, 15)) == []  # level 1 of this round was done by hand
    escalation.escalate(session, ticket, desk["agent"], "Still down", now=utc(10, 15, 30))
    assert ticket.escalation_level == 2 and ticket.priority == "high"
    assert escalation.tick(session, utc(10, 17)) == []
    with pytest.raises(DomainError, match="last level"):
        escalation.escalate(session, ticket, desk["agent"], "More", now=utc(10, 17))


def test_resolving_resets_the_level_and_keeps_the_history(session, desk):
    two_levels(session, desk["billing"])
    ticket = open_ticket(desk)
    escalation.tick(session, utc(10, 16))
    ticket = session.get(Ticket, ticket.id)
    assert ticket.escalation_level == 2
    tickets.change_status(session, ticket, "resolved", actor=desk["agent"], now=utc(10, 17))
    assert ticket.escalation_level == 0 and ticket.escalation_due_at is None
    assert [e.level_number for e in escalation.timeline(session, ticket)] == [1, 2]
    tickets.change_status(session, ticket, "open", actor=desk["agent"], now=utc(10, 18))
    event = escalation.escalate(session, ticket, desk["agent"], "Reopened and still broken", now=utc(10, 18, 5))
    assert event.level_number == 1 and ticket.escalation_level == 1  # by hand, again from the first level


def test_without_a_policy_manual_escalation_raises_the_level_and_tells_managers(session, desk):
    ticket = open_ticket(desk)
    event = escalation.escalate(session, ticket, desk["agent"], "VIP customer", now=utc(10, 13))
    assert event.level_number == 1 and event.policy_id is None and ticket.escalation_level == 1
    session.flush()
    told = session.scalars(select(QueuedEmail.recipient_email).where(QueuedEmail.ticket_id == ticket.id,
                                                                      QueuedEmail.template_name
                                                                      == "escalation-notification")).all()
    assert "lee@acme.example" in told


def test_automation_rules_hear_escalation_due_with_policy_and_level(session, desk):
    from mets.models import AutomationRule

    two_levels(session, desk["billing"])
    session.add(AutomationRule(name="Level 2 to urgent", trigger_event="escalation_due", is_active=True,
                               conditions={"all": [{"field": "escalation_level", "op": "gte", "value": 2}]},
                               actions=[{"type": "set_priority", "priority": "urgent"}]))
    session.flush()
    ticket = open_ticket(desk)
    escalation.tick(session, utc(10, 15))
    assert session.get(Ticket, ticket.id).priority == "normal"
    escalation.tick(session, utc(10, 16))
    assert session.get(Ticket, ticket.id).priority == "urgent"
    row = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                    TicketEvent.event == "escalation_due")
                          .order_by(TicketEvent.id)).all()[-1]
    assert (row.changes["policy"], row.changes["level"], row.changes["reason"]) == (
        "Urgent", 2, "100% of the resolution target used")


def test_a_policy_added_later_times_the_open_tickets_it_applies_to(session, desk):
    waiting, done = open_ticket(desk), open_ticket(desk, "acme")
    tickets.change_status(session, done, "resolved", actor=desk["boss"], now=utc(10, 12, 5))
    assert waiting.escalation_due_at is None
    two_levels(session, desk["acme"], now=utc(10, 12, 30))  # the company's: Billing inherits it
    assert waiting.escalation_due_at == utc(10, 15) and done.escalation_due_at is None


def test_levels_reuse_automations_note_and_webhook(session, desk):
    from mets.models import Reply, WebhookDelivery

    escalation.create_policy(session, desk["billing"], name="Loud", clock="since_created", business_time=False,
                             levels=[{"trigger": "after_duration", "value": 10, "actions": [
                                 {"type": "add_note", "body": "Escalated: {{ escalation_reason }}"},
                                 {"type": "webhook", "url": "https://hooks.example.com/escalations"}]}])
    ticket = open_ticket(desk)
    escalation.tick(session, utc(10, 12, 10))
    note = session.scalars(select(Reply).where(Reply.ticket_id == ticket.id, Reply.internal.is_(True))).one()
    assert note.body == "Escalated: 10m since created"
    hook = session.scalars(select(WebhookDelivery).where(WebhookDelivery.ticket_id == ticket.id)).one()
    payload = json.loads(hook.body)
    assert payload["event"] == "escalation_due" and payload["changes"]["policy"] == "Loud"


def test_whoever_escalates_by_hand_is_not_mailed_about_it(session, desk):
    escalation.create_policy(session, desk["billing"], name="P", clock="since_created", business_time=False,
                             levels=[{"trigger": "after_duration", "value": 600,
                                      "actions": [{"type": "notify", "to": ["managers", "assignee"]}]}])
    ticket = open_ticket(desk)
    tickets.assign(session, ticket, desk["agent"], actor=desk["lead"], now=utc(10, 12, 1))
    escalation.escalate(session, ticket, desk["lead"], "Needs a second pair of eyes", now=utc(10, 12, 5))
    assert mail_to(session, ticket) == ["ann@acme.example"]


def test_the_unique_key_refuses_a_second_firing_of_a_level_in_its_round(session, desk):
    """What a second tick that read the ticket before the first one committed meets: the insert is refused."""
    two_levels(session, desk["billing"])
    ticket = open_ticket(desk)
    due = escalation.pending(session, ticket, utc(10, 15))[0]
    assert escalation.fire(session, ticket, due, utc(10, 15)) is not None
    assert escalation.fire(session, ticket, due, utc(10, 15, 1)) is None
    assert ticket.escalation_level == 1
    assert count_rows(session, TicketEvent, TicketEvent.ticket_id == ticket.id,
                      TicketEvent.event == "escalation_due") == 1


def test_a_policy_added_after_its_levels_passed_records_them_passed_and_mails_nobody(session):
    """No storm of escalations: a new policy whose levels open tickets are already past does not fire them all at
    the next tick; they are recorded as passed (suppressed), and the next level still fires when it falls due."""
    acme = make_entity("Acme Storm", "acmestorm", timezone="UTC")
    with clock.freeze(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)):
        tickets_ = [make_ticket(acme, subject=f"Old {n}") for n in range(3)]
    with clock.freeze(datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)):
        escalation.create_policy(session, acme, name="Late", clock="since_created", business_time=False,
                                 levels=[{"trigger": "after_duration", "value": 60, "actions": []},
                                         {"trigger": "after_duration", "value": 240, "actions": []}])
    assert escalation.tick(session, datetime(2026, 11, 23, 12, 1, tzinfo=timezone.utc)) == []
    rows = session.query(EscalationEvent).all()
    assert len(rows) == 3 and all(r.suppressed and "a policy was edited" in r.reason for r in rows)
    assert {t.escalation_level for t in tickets_} == {0}
    fired = escalation.tick(session, datetime(2026, 11, 23, 13, 1, tzinfo=timezone.utc))  # level 2 at 4 h
    assert sorted(fired) == sorted((t.id, 2) for t in tickets_)
