"""Issue 13's "done when", on the demo data itself: an urgent Acme IT ticket (London) opened on a Friday afternoon
escalates to level 1 at 75% of its resolution target and to level 2 at the breach, both on Monday; its assignee in
London hears at once, Acme's manager in New York only when her desk opens, as one digest; nobody hears over the
weekend. Only the minute tick and the outbox are looked at, as an operator would."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from mets import clock
from mets.models import Entity, QueuedEmail, Ticket, User
from mets.services import demo, escalation, tickets
from mets.services.sla import tick as sla_tick

UTC = timezone.utc
FRIDAY_3PM_LONDON = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # London is on UTC in December; New York UTC-5


def escalation_mails(session):
    session.flush()
    return list(session.scalars(select(QueuedEmail).where(QueuedEmail.event == "escalation")
                                .order_by(QueuedEmail.scheduled_at, QueuedEmail.id)))


def test_the_demo_urgent_ticket_escalates_at_75_percent_and_at_the_breach_at_local_office_hours(session):
    with clock.freeze(FRIDAY_3PM_LONDON - timedelta(hours=1)):
        demo.seed(session, tickets_count=0)
        session.commit()
    it = session.scalar(select(Entity).where(Entity.slug == "it"))
    ian = session.scalar(select(User).where(User.email == "ian@acme.example"))
    customer = session.scalar(select(User).where(User.kind == "customer").order_by(User.id))
    with clock.freeze(FRIDAY_3PM_LONDON):
        ticket = tickets.create_ticket(session, actor=customer, entity=it, customer=customer,
                                       subject="Server room flooded", body="Water everywhere.", priority="urgent",
                                       now=FRIDAY_3PM_LONDON).ticket
        tickets.assign(session, ticket, ian, actor=ian, now=FRIDAY_3PM_LONDON)
        session.commit()
    # Urgent: resolution in 8 business hours of Acme IT (Mon-Fri 08:00-18:00 London): 3 h on Friday, then 5 h on
    # Monday, so the breach is Monday 13:00 and 75% (6 h) is Monday 11:00.
    assert ticket.sla_resolution_due == datetime(2026, 12, 7, 13, 0, tzinfo=UTC)

    sent_at = {}  # each escalation mail: when the tick that queued it ran
    at = FRIDAY_3PM_LONDON
    while at <= datetime(2026, 12, 7, 15, 0, tzinfo=UTC):  # to Monday 15:00 London, 10:00 New York
        clock.set_now(at)
        try:
            sla_tick.tick(session, now=at)
            session.commit()
        finally:
            clock.set_now(None)
        for mail in escalation_mails(session):
            sent_at.setdefault(mail.id, (at, mail))
        if at == datetime(2026, 12, 7, 10, 55, tzinfo=UTC):
            assert session.get(Ticket, ticket.id).escalation_level == 0  # nothing over the weekend, nor at 08:00
            assert sent_at == {}
        # Hourly over the weekend (a tick acts on whatever fell due since the last one), every 5 minutes on Monday.
        at += timedelta(minutes=5 if at >= datetime(2026, 12, 7, 10, 0, tzinfo=UTC) else 60)

    ticket = session.get(Ticket, ticket.id)
    assert ticket.escalation_level == 2
    assert [(e.level_number, e.fired_at) for e in escalation.timeline(session, ticket)] == [
        (1, datetime(2026, 12, 7, 11, 0, tzinfo=UTC)), (2, datetime(2026, 12, 7, 13, 0, tzinfo=UTC))]
    # Level 2 hands the ticket to a senior (tier 2) agent of Acme IT.
    assert ticket.assignee.email == "nora@acme.example"

    queued = sorted((at, mail.recipient_email, mail.template_name) for at, mail in sent_at.values())
    # Ian (Acme IT, London, open) hears of level 1 at 11:00. Maria manages Acme Corp, in New York, closed until
    # 09:00 there (14:00 UTC): both levels wait for her and reach her as one digest when her desk opens.
    assert queued == [
        (datetime(2026, 12, 7, 11, 0, tzinfo=UTC), "ian@acme.example", "escalation-notification"),
        (datetime(2026, 12, 7, 14, 0, tzinfo=UTC), "maria@acme.example", "escalation-digest"),
    ]
    digest = next(mail for _, mail in sent_at.values() if mail.recipient_email == "maria@acme.example")
    assert ticket.number in digest.body and "level 1" in digest.body and "level 2" in digest.body
