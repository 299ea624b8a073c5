"""services.tickets.live and the ticket version: every change moves it, and what others did since a version."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from mets import clock
from mets.models import Ticket, TicketEvent
from mets.services import tickets
from mets.services.sla import tick as sla_tick
from mets.services.tickets import live
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)


def test_every_change_moves_the_version_and_its_events_say_which_version_they_made(session):
    acme = make_entity()
    dana, bea = make_staff(acme, name="Dana"), make_staff(acme, name="Bea")
    ticket = make_ticket(acme)
    assert ticket.version == 1
    tickets.add_reply(session, ticket, actor=dana, body="On it.")  # a reply, and New -> Open: two events
    assert ticket.version == 3
    tickets.assign(session, ticket, bea, actor=dana)
    tickets.update_fields(session, ticket, {"priority": "high"}, actor=dana)
    tickets.change_status(session, ticket, "open", actor=dana)  # no change: no version
    session.commit()
    session.expire_all()
    assert session.get(Ticket, ticket.id).version == 5
    versions = session.scalars(select(TicketEvent.version).where(TicketEvent.ticket_id == ticket.id)
                               .order_by(TicketEvent.id)).all()
    assert versions == [1, 2, 3, 4, 5]


def test_an_sla_point_that_fires_moves_the_version(session):
    acme = make_entity()
    make_rule(acme, resolution_minutes=60, business_hours_only=False)
    with clock.freeze(T0):
        ticket = make_ticket(acme)
    session.commit()
    before = ticket.version
    assert sla_tick.tick(session, now=T0 + timedelta(hours=2)).fired
    session.expire_all()
    assert session.get(Ticket, ticket.id).version > before


def test_unseen_changes_are_others_replies_notes_status_and_assignee_since_the_version(session):
    acme = make_entity()
    dana, bea = make_staff(acme, name="Dana Agent"), make_staff(acme, name="Bea Billing")
    carol = make_customer(name="Carol Customer")
    ticket = make_ticket(acme, carol)
    tickets.add_reply(session, ticket, actor=dana, body="Looking.")
    seen = ticket.version
    assert live.unseen_changes(session, ticket, dana, seen) == []
    tickets.update_fields(session, ticket, {"priority": "urgent"}, actor=bea)  # does not hold a reply
    tickets.change_status(session, ticket, "pending", actor=dana)  # Dana's own: never unseen
    tickets.add_reply(session, ticket, actor=bea, body="Note.", internal=True)
    tickets.add_reply(session, ticket, actor=carol, body="Any news?")  # reopens: one line, not two
    tickets.assign(session, ticket, bea, actor=bea)
    lines = [(u.who, u.what, u.public_reply) for u in live.unseen_changes(session, ticket, dana, seen)]
    assert lines == [("Bea Billing", "added an internal note", False), ("Carol Customer", "replied", True),
                     ("Bea Billing", "assigned the ticket to Bea Billing", False)]
    assert live.unseen_changes(session, ticket, dana, None) == []  # a form that does not say: nothing held
    assert live.unseen_changes(session, ticket, dana, ticket.version) == []
