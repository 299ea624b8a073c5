"""Held notices: a business-time level that fires while the desk is closed mails nobody until it opens, then one
digest per recipient; the parent's managers follow the parent's hours; DST; once only; a ticket resolved
meanwhile is not announced; calendar-time policies and manual escalations mail at once."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import EscalationNotice, QueuedEmail, Ticket
from mets.services import escalation, tickets
from mets.services.hours import admin as hours_admin
from mets.services.sla import tick as sla_tick
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket

UTC = timezone.utc
NY = ZoneInfo("America/New_York")


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


@pytest.fixture
def desk(session):
    """Billing, a New York desk open Mon-Fri 09:00-17:00 (hours of its own) under Acme, a Paris company (the
    default hours, in Paris); a round-the-clock SLA rule (urgent: resolution in 4h) and a business-hours escalation policy:
    level 1 at 75% tells Billing's managers, level 2 at the breach its managers and the parent's."""
    acme = make_entity("Acme", "acme", timezone="Europe/Paris")
    billing = make_entity("Billing", "billing", parent=acme, timezone="America/New_York")
    hours_admin.set_custom_hours(session, billing, True)  # its own: Mon-Fri 09:00-17:00 New York time
    make_rule(billing, "Urgent", resolution_minutes=4 * 60, business_hours_only=False)
    desk = {"acme": acme, "billing": billing, "customer": make_customer(),
            "agent": make_staff(billing, name="Ann Agent", email="ann@acme.example"),
            "lead": make_staff(billing, role="manager", name="Lee Lead", email="lee@acme.example"),
            "boss": make_staff(acme, role="manager", name="Bo Boss", email="bo@acme.example")}
    escalation.create_policy(session, billing, name="Urgent", clock="resolution", business_time=True, levels=[
        {"trigger": "percent", "value": 75, "actions": [{"type": "notify", "to": ["managers"]}]},
        {"trigger": "percent", "value": 100, "actions": [{"type": "notify", "to": ["managers", "parent_managers"]}]}])
    return desk


def open_ticket(desk, when: datetime) -> Ticket:
    with clock.freeze(when):
        return make_ticket(desk["billing"], customer=desk["customer"], priority="urgent")


def mails(session, email=None) -> list[QueuedEmail]:
    session.flush()
    query = select(QueuedEmail).where(QueuedEmail.event == "escalation").order_by(QueuedEmail.id)
    if email:
        query = query.where(QueuedEmail.recipient_email == email)
    return list(session.scalars(query))


def tick_at(session, when: datetime) -> None:
    """The minute tick at `when`, with the clock there too (as the worker runs it)."""
    clock.set_now(when)
    try:
        sla_tick.tick(session, now=clock.now())
    finally:
        clock.set_now(None)


def test_levels_at_night_mail_nobody_until_the_desk_opens_then_one_digest(session, desk):
    # Tuesday 00:00 in New York: level 1 (75% of 4h) is due at 03:00, level 2 (the breach) at 04:00.
    ticket = open_ticket(desk, ny(2026, 11, 10, 0, 0))
    tick_at(session, ny(2026, 11, 10, 3, 0))
    assert session.get(Ticket, ticket.id).escalation_level == 1  # the level fires at its time...
    assert [(m.recipient_email, m.template_name, m.dedupe_key) for m in mails(session)] == []  # nobody at 3 a.m.
    tick_at(session, ny(2026, 11, 10, 4, 0))
    assert session.get(Ticket, ticket.id).escalation_level == 2
    # Lee (Billing, New York) waits; Bo manages Acme, in Paris, where it is 10:00 and the desk is open.
    assert [m.recipient_email for m in mails(session)] == ["bo@acme.example"]
    held = session.scalars(select(EscalationNotice).order_by(EscalationNotice.id)).all()
    assert [(n.recipient_email, n.level_number) for n in held] == [("lee@acme.example", 1), ("lee@acme.example", 2)]
    assert {n.held_until for n in held} == {ny(2026, 11, 10, 9, 0)}
    tick_at(session, ny(2026, 11, 10, 8, 59))
    assert mails(session, "lee@acme.example") == []
    tick_at(session, ny(2026, 11, 10, 9, 0))
    [digest] = mails(session, "lee@acme.example")
    assert digest.template_name == "escalation-digest"
    assert digest.scheduled_at == ny(2026, 11, 10, 9, 0)
    assert "level 1" in digest.body and "level 2" in digest.body and ticket.number in digest.body
    assert "75% of the resolution target used" in digest.body and "03:00" in digest.body
    assert ticket.number in digest.subject
    tick_at(session, ny(2026, 11, 10, 9, 1))
    assert len(mails(session, "lee@acme.example")) == 1  # sent once
    assert {n.outcome for n in session.scalars(select(EscalationNotice))} == {"sent"}


def test_one_held_notice_goes_as_the_escalation_notification(session, desk):
    ticket = open_ticket(desk, ny(2026, 11, 10, 0, 0))
    tick_at(session, ny(2026, 11, 10, 3, 0))  # level 1 only, held
    escalation.send_due(session, ny(2026, 11, 10, 9, 0))  # the sender alone (the tick would fire level 2 too)
    [mail] = mails(session, "lee@acme.example")
    assert mail.template_name == "escalation-notification"
    assert "escalated to level 1" in mail.body
    event = escalation.timeline(session, ticket)[0]
    assert mail.dedupe_key == f"event:{event.ticket_event_id}:lee@acme.example"  # the key it would have had


def test_the_timeline_says_until_when_a_notice_is_held(session, desk):
    ticket = open_ticket(desk, ny(2026, 11, 13, 14, 0))  # Friday 14:00: 75% at 17:00, the closing instant
    tick_at(session, ny(2026, 11, 13, 17, 0))
    [event] = escalation.timeline(session, ticket)
    [notice] = escalation.held_notices(session, ticket)[event.id]
    assert notice["words"] == "held until Mon 09:00 (America/New_York)"
    assert event.outcomes[0]["result"] == ("Hold lee@acme.example until Mon 09:00 (America/New_York), "
                                           "when the desk opens.")
    tick_at(session, ny(2026, 11, 16, 9, 0))
    [notice] = escalation.held_notices(session, ticket)[event.id]
    assert notice["words"] == "held, sent Mon 09:00 (America/New_York)"


def test_across_the_dst_weekend_the_notice_waits_for_monday_nine_in_winter_time(session, desk):
    # Saturday 2026-10-31 20:00 EDT: the levels fall at 23:00 EDT and midnight; the clocks go back on Sunday.
    ticket = open_ticket(desk, ny(2026, 10, 31, 20, 0))
    tick_at(session, ny(2026, 11, 1, 6, 0))
    assert session.get(Ticket, ticket.id).escalation_level == 2
    notices = session.scalars(select(EscalationNotice).where(EscalationNotice.recipient_email == "lee@acme.example"))
    assert {n.held_until for n in notices} == {datetime(2026, 11, 2, 14, 0, tzinfo=UTC)}  # 09:00 EST, UTC-5
    tick_at(session, datetime(2026, 11, 2, 13, 30, tzinfo=UTC))  # 08:30 EST (09:30 had the clocks not changed)
    assert mails(session, "lee@acme.example") == []
    tick_at(session, datetime(2026, 11, 2, 14, 0, tzinfo=UTC))
    [digest] = mails(session, "lee@acme.example")
    assert digest.template_name == "escalation-digest"


def test_one_digest_per_recipient_across_tickets_and_a_second_run_sends_nothing(session, desk):
    first = open_ticket(desk, ny(2026, 11, 10, 0, 0))
    second = open_ticket(desk, ny(2026, 11, 10, 1, 0))
    tick_at(session, ny(2026, 11, 10, 6, 0))
    assert session.get(Ticket, second.id).escalation_level == 2
    clock.set_now(ny(2026, 11, 10, 9, 0))
    try:
        done = escalation.send_due(session, clock.now())
        again = escalation.send_due(session, clock.now())
    finally:
        clock.set_now(None)
    assert (done.mails, done.sent) == (1, 4) and (again.mails, again.sent, again.dropped) == (0, 0, 0)
    [digest] = mails(session, "lee@acme.example")
    assert first.number in digest.body and second.number in digest.body
    assert digest.ticket_id is None  # about two tickets


def test_a_ticket_resolved_while_the_notice_waited_is_not_announced(session, desk):
    ticket = open_ticket(desk, ny(2026, 11, 10, 0, 0))
    still_open = open_ticket(desk, ny(2026, 11, 10, 0, 0))
    tick_at(session, ny(2026, 11, 10, 4, 0))
    # Reopened and resolved again before nine: nobody needs to hear at 09:00 that it was at risk at 03:00.
    tickets.change_status(session, ticket, "resolved", actor=desk["agent"], now=ny(2026, 11, 10, 5, 0))
    tickets.change_status(session, ticket, "open", actor=desk["agent"], now=ny(2026, 11, 10, 6, 0))
    tickets.change_status(session, ticket, "resolved", actor=desk["agent"], now=ny(2026, 11, 10, 7, 0))
    tick_at(session, ny(2026, 11, 10, 9, 0))
    [digest] = mails(session, "lee@acme.example")
    assert still_open.number in digest.body and ticket.number not in digest.body
    outcomes = {(n.ticket_id, n.outcome) for n in session.scalars(select(EscalationNotice))}
    assert outcomes == {(ticket.id, "dropped"), (still_open.id, "sent")}


def test_a_ticket_resolved_and_reopened_meanwhile_is_not_announced_either(session, desk):
    ticket = open_ticket(desk, ny(2026, 11, 10, 0, 0))
    tick_at(session, ny(2026, 11, 10, 3, 0))
    tickets.change_status(session, ticket, "resolved", actor=desk["agent"], now=ny(2026, 11, 10, 3, 30))
    tickets.change_status(session, ticket, "open", actor=desk["agent"], now=ny(2026, 11, 10, 3, 40))  # level reset
    tick_at(session, ny(2026, 11, 10, 9, 0))
    # The held notice of the old round is dropped; the reopened round's levels fire at 09:00, the desk open: at once.
    [notice] = session.scalars(select(EscalationNotice)).all()
    assert notice.outcome == "dropped" and notice.email_id is None
    sent = mails(session, "lee@acme.example")
    assert notice.dedupe_key not in {m.dedupe_key for m in sent}
    assert all(m.scheduled_at == ny(2026, 11, 10, 9, 0) and m.template_name == "escalation-notification" for m in sent)


def test_calendar_time_policies_and_manual_escalations_mail_at_once(session, desk):
    ticket = open_ticket(desk, ny(2026, 11, 10, 0, 0))
    escalation.escalate(session, ticket, desk["agent"], "Customer is down", now=ny(2026, 11, 10, 2, 0))
    assert [m.recipient_email for m in mails(session)] == ["lee@acme.example"]  # by hand: now, whatever the hour
    other = make_entity("Night shift", "night", timezone="America/New_York")
    make_rule(other, "24/7", resolution_minutes=60, business_hours_only=False)
    make_staff(other, role="manager", email="nina@night.example")
    escalation.create_policy(session, other, name="Calendar", clock="resolution", business_time=False, levels=[
        {"trigger": "percent", "value": 100, "actions": [{"type": "notify", "to": ["managers"]}]}])
    with clock.freeze(ny(2026, 11, 10, 2, 0)):
        make_ticket(other, customer=desk["customer"])
    tick_at(session, ny(2026, 11, 10, 3, 0))
    assert [m.recipient_email for m in mails(session, "nina@night.example")] == ["nina@night.example"]


def test_a_notice_to_someone_deactivated_while_it_waited_is_dropped(session, desk):
    ticket = open_ticket(desk, ny(2026, 11, 10, 0, 0))
    tick_at(session, ny(2026, 11, 10, 4, 0))  # 03:00-ish levels for Lee and Bo, held until their desks open
    desk["lead"].active = False  # Lee left the company before nine
    session.flush()
    tick_at(session, ny(2026, 11, 10, 9, 0))
    assert mails(session, "lee@acme.example") == []
    outcomes = {(n.recipient_email, n.outcome) for n in session.scalars(
        select(EscalationNotice).where(EscalationNotice.ticket_id == ticket.id))}
    assert ("lee@acme.example", "dropped") in outcomes
    assert all(outcome == "sent" for email, outcome in outcomes if email != "lee@acme.example")


def test_an_admins_edit_of_the_digest_template_changes_the_digest(session, desk):
    """The digest is an email template like the others: Acme's override (Billing inherits it) is what Lee gets,
    checked against the digest's own variables (a ticket mail's variable is refused there)."""
    from mets.services.errors import DomainError
    from mets.services.notifications import templates as mail_templates

    with pytest.raises(DomainError) as refused:
        mail_templates.save_override(session, desk["acme"], "escalation-digest", subject="{{ ticket_subject }}",
                                     body_text="x", body_html="x", actor=None)
    assert refused.value.errors == {"subject": "Line 1: unknown variable 'ticket_subject'"}
    mail_templates.save_override(
        session, desk["acme"], "escalation-digest", actor=None,
        subject="Morning list for {{ recipient_name }}: {{ count }} ({{ ticket_numbers }})",
        body_text="{% for n in notices %}* {{ n.ticket_number }} L{{ n.escalation_level }}: {{ n.escalation_reason }}\n"
                  "{% endfor %}",
        body_html="<ol>{% for n in notices %}<li>{{ n.ticket_number }}</li>{% endfor %}</ol>")
    ticket = open_ticket(desk, ny(2026, 11, 10, 0, 0))
    tick_at(session, ny(2026, 11, 10, 4, 0))
    tick_at(session, ny(2026, 11, 10, 9, 0))
    [digest] = mails(session, "lee@acme.example")
    assert digest.subject == f"Morning list for Lee Lead: 2 ({ticket.number})"
    assert digest.body == (f"* {ticket.number} L1: 75% of the resolution target used\n"
                           f"* {ticket.number} L2: 100% of the resolution target used\n")
    assert digest.body_html == f"<ol><li>{ticket.number}</li><li>{ticket.number}</li></ol>"
