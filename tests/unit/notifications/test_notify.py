"""services.notify: which change mails whom, with which template, written to the outbox in the change's transaction."""
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mets import clock
from mets.models import CRITICAL, QueuedEmail, Ticket, TicketEvent
from mets.services import tickets
from mets.services.notifications import settings as notification_settings
from mets.services.notifications import notify
from mets.services.sla import tick as sla_tick
from mets.services.errors import DomainError
from tests.conftest import count_rows
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)  # a Tuesday


@pytest.fixture
def world(session):
    """Acme with a Support department; a manager and an agent in Acme, agents in Support, Beta elsewhere."""
    acme = make_entity(name="Acme", slug="acme")
    support = make_entity(name="Acme Support", slug="support", parent=acme)
    beta = make_entity(name="Beta", slug="beta")
    gone = make_staff(support, name="Gus Gone", email="gus@staff.example")
    gone.active = False
    w = {
        "acme": acme, "support": support, "beta": beta,
        "mia": make_staff(acme, role="manager", name="Mia Manager", email="mia@staff.example"),
        "ann": make_staff(acme, name="Ann Agent", email="ann@staff.example"),
        "sue": make_staff(support, name="Sue Support", email="sue@staff.example"),
        "ben": make_staff(beta, role="manager", name="Ben Beta", email="ben@staff.example"),
        "admin": make_staff(is_admin=True, name="Ada Admin", email="ada@staff.example"),
        "gone": gone,
        "carl": make_customer(name="Carl Customer", email="carl@example.com"),
    }
    session.commit()
    return w


def mails(session, *where) -> list[QueuedEmail]:
    """Queued messages as the database holds them, in a stable order."""
    session.expire_all()
    return list(session.scalars(select(QueuedEmail).where(*where)
                                .order_by(QueuedEmail.recipient_email, QueuedEmail.template_name)))


def who(session, *where) -> set[tuple[str, str]]:
    """{(recipient, template)} of the queued messages."""
    return {(m.recipient_email, m.template_name) for m in mails(session, *where)}


def since(row_id: int):
    return QueuedEmail.id > row_id


def last_id(session) -> int:
    return max([m.id for m in mails(session)], default=0)


def open_ticket(w, actor=None, entity=None, **kw) -> Ticket:
    with clock.freeze(T0):
        return make_ticket(entity or w["support"], customer=w["carl"], actor=actor or w["carl"],
                           subject=kw.pop("subject", "Printer on fire"), **kw)


def staff_created(*users) -> set[tuple[str, str]]:
    return {(u.email, "ticket-created-agent") for u in users}


# --- ticket created -----------------------------------------------------------------------------

def test_a_customers_new_ticket_mails_the_customer_and_every_active_staff_member_above_it(app, session, world):
    w = world
    ticket = open_ticket(w, body="The printer is <b>smoking</b>.")
    session.commit()

    assert who(session) == {("carl@example.com", "ticket-created-customer")} | staff_created(w["mia"], w["ann"], w["sue"])
    # Not Gus (deactivated), not Ben (another entity), not the admin (no membership in Acme).
    [to_carl] = mails(session, QueuedEmail.recipient_email == "carl@example.com")
    assert to_carl.audience == "customer" and to_carl.ticket_id == ticket.id
    assert to_carl.subject == f"[{ticket.number}] We have received your request: Printer on fire"
    assert "Hello Carl Customer" in to_carl.body and "The printer is <b>smoking</b>." in to_carl.body  # as typed
    assert "The printer is &lt;b&gt;smoking&lt;/b&gt;." in to_carl.body_html  # shown, not interpreted
    link = next(word for word in to_carl.body.split() if word.startswith("http://mets.test/portal/auth/"))
    assert f'href="{link}"' in to_carl.body_html
    [to_sue] = mails(session, QueuedEmail.recipient_email == "sue@staff.example")
    assert to_sue.audience == "staff" and "/portal/auth/" not in to_sue.body
    assert f"http://mets.test/tickets/{ticket.number}" in to_sue.body

    # The link in the customer's email signs Carl in and opens his ticket.
    client = app.test_client()
    landed = client.get(urlsplit(link).path)
    assert landed.status_code == 302
    assert urlsplit(landed.headers["Location"]).path == f"/portal/tickets/{ticket.number}"
    page = client.get(f"/portal/tickets/{ticket.number}")
    assert page.status_code == 200 and "Printer on fire" in page.get_data(as_text=True)


def test_staff_opening_a_ticket_for_a_customer_is_not_told_about_it(session, world):
    w = world
    open_ticket(w, actor=w["ann"], via="email")
    session.commit()
    assert who(session) == {("carl@example.com", "ticket-created-customer")} | staff_created(w["mia"], w["sue"])


# --- replies ------------------------------------------------------------------------------------

@pytest.fixture
def assigned(session, world):
    """Carl's ticket in Support, assigned to Ann and already open; no mail queued so far counts."""
    ticket = open_ticket(world, actor=world["ann"], assignee=world["ann"])
    tickets.change_status(session, ticket, "open", actor=world["ann"])
    session.commit()
    return ticket


def test_a_public_agent_reply_mails_the_customer_not_its_author(session, world, assigned):
    start = last_id(session)
    tickets.add_reply(session, assigned, actor=world["ann"], body="Unplug it, please.")
    session.commit()
    [mail] = mails(session, since(start))
    assert (mail.recipient_email, mail.template_name, mail.audience) == \
        ("carl@example.com", "ticket-reply-customer", "customer")
    assert "Unplug it, please." in mail.body and "http://mets.test/portal/auth/" in mail.body


def test_an_internal_note_mails_the_assignee_and_never_the_customer(session, world, assigned):
    start = last_id(session)
    tickets.add_reply(session, assigned, actor=world["mia"], body="Check the warranty.", internal=True)
    session.commit()
    [mail] = mails(session, since(start))
    assert (mail.recipient_email, mail.template_name) == ("ann@staff.example", "ticket-reply-agent")
    assert "Check the warranty." in mail.body

    start = last_id(session)
    tickets.add_reply(session, assigned, actor=world["ann"], body="Warranty checked.", internal=True)
    session.commit()
    assert mails(session, since(start)) == []  # the assignee wrote it: nobody else to tell


def test_a_customer_reply_mails_the_assignee_not_the_customer(session, world, assigned):
    start = last_id(session)
    tickets.add_reply(session, assigned, actor=world["carl"], body="It is unplugged now.")
    session.commit()
    assert who(session, since(start)) == {("ann@staff.example", "ticket-reply-agent")}


def test_a_reply_that_opens_the_ticket_sends_no_separate_status_email(session, world):
    ticket = open_ticket(world)
    session.commit()
    start = last_id(session)
    tickets.add_reply(session, ticket, actor=world["ann"], body="On it.")
    session.commit()
    assert session.get(Ticket, ticket.id).status == "open"
    assert "status_changed" in {e.event for e in session.scalars(select(TicketEvent)
                                                                  .where(TicketEvent.ticket_id == ticket.id))}
    assert who(session, since(start)) == {("carl@example.com", "ticket-reply-customer")}


# --- assignment and status ----------------------------------------------------------------------

def test_the_new_assignee_is_told_unless_they_took_the_ticket_themselves(session, world):
    ticket = open_ticket(world)
    session.commit()
    start = last_id(session)
    tickets.assign(session, ticket, world["ann"], actor=world["mia"])
    session.commit()
    [mail] = mails(session, since(start))
    assert (mail.recipient_email, mail.template_name) == ("ann@staff.example", "ticket-assigned")
    assert mail.subject == f"[{ticket.number}] Assigned to you: Printer on fire"

    start = last_id(session)
    tickets.assign(session, ticket, world["sue"], actor=world["sue"])
    session.commit()
    assert mails(session, since(start)) == []


def test_resolving_tells_the_customer_but_later_notes_on_the_resolved_ticket_mail_nobody(session, world, assigned):
    start = last_id(session)
    tickets.change_status(session, assigned, "resolved", actor=world["ann"])
    session.commit()
    [mail] = mails(session, since(start))
    assert (mail.recipient_email, mail.template_name) == ("carl@example.com", "ticket-status-changed")
    assert "resolved" in mail.subject.lower()

    start = last_id(session)
    tickets.add_reply(session, assigned, actor=world["mia"], body="Filed for the report.", internal=True)
    session.commit()
    assert mails(session, since(start)) == []  # Ann would hear of it on an open ticket (see above)


# --- settings -----------------------------------------------------------------------------------

def save(session, entity, event, enabled=True, recipients=(), extra=()):
    notification_settings.save(session, entity, event, enabled=enabled, recipients=list(recipients),
                               extra_addresses=list(extra))
    session.commit()


def test_a_disabled_event_mails_nobody(session, world):
    save(session, world["support"], "ticket_created", enabled=False, recipients=["customer", "agents"])
    open_ticket(world)
    session.commit()
    assert mails(session) == []


def test_a_parents_setting_is_inherited_and_managers_means_only_managers(session, world):
    save(session, world["acme"], "ticket_created", recipients=["managers"])
    open_ticket(world)  # in Support, which has no setting of its own
    session.commit()
    assert who(session) == {("mia@staff.example", "ticket-created-agent")}


def test_a_childs_own_setting_wins_over_its_parents(session, world):
    save(session, world["acme"], "ticket_created", enabled=False)
    save(session, world["support"], "ticket_created", recipients=["customer"])
    open_ticket(world)
    open_ticket(world, entity=world["acme"])  # Acme itself keeps its own (disabled) setting
    session.commit()
    assert who(session) == {("carl@example.com", "ticket-created-customer")}
    assert len(mails(session)) == 1


def test_extra_addresses_receive_the_staff_email(session, world):
    save(session, world["support"], "ticket_created", recipients=["customer"], extra=["boss@partner.example"])
    open_ticket(world)
    session.commit()
    assert who(session) == {("carl@example.com", "ticket-created-customer"),
                            ("boss@partner.example", "ticket-created-agent")}
    [boss] = mails(session, QueuedEmail.recipient_email == "boss@partner.example")
    assert boss.audience == "staff" and "/portal/auth/" not in boss.body


def test_the_installs_own_addresses_are_never_mailed(app, session, world):
    app.config["MAIL_DEFAULT_SENDER"] = "Acme Support <support@acme.example>"
    with pytest.raises(DomainError, match="own address"):  # refused when saved...
        save(session, world["support"], "ticket_created", extra=["Support@acme.example"])
    session.rollback()
    save(session, world["support"], "ticket_created", recipients=["customer"],
         extra=["helpdesk@acme.example", "boss@partner.example"])
    app.config["METS_OWN_ADDRESSES"] = ["HelpDesk@acme.example"]  # ...and when it became ours later
    open_ticket(world)
    session.commit()
    assert {m.recipient_email for m in mails(session)} == {"carl@example.com", "boss@partner.example"}


# --- at most once -------------------------------------------------------------------------------

def test_one_person_gets_one_email_per_event_however_they_qualify(session, world):
    # Ann is the assignee, an agent and listed as an extra address: still one email.
    save(session, world["support"], "assigned", recipients=["assignee", "agents"], extra=["ann@staff.example"])
    ticket = open_ticket(world)
    session.commit()
    start = last_id(session)
    tickets.assign(session, ticket, world["ann"], actor=world["admin"])
    session.commit()
    rows = mails(session, since(start), QueuedEmail.recipient_email == "ann@staff.example")
    assert len(rows) == 1


def test_the_same_event_cannot_queue_a_second_email_for_a_recipient(session, world):
    ticket = open_ticket(world)
    session.commit()
    [event] = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)).all()
    before = count_rows(session, QueuedEmail)
    ticket = session.get(Ticket, ticket.id)
    with pytest.raises(IntegrityError):  # the unique dedupe key refuses the replay
        notify.notify_event(session, ticket, ticket_event=event.event, event_id=event.id, actor=world["carl"],
                            changes=event.changes, now=T0)
        session.flush()
    session.rollback()
    assert count_rows(session, QueuedEmail) == before


# --- SLA tick ---------------------------------------------------------------------------------

def test_an_sla_breach_queues_critical_mail_for_the_assignee_and_managers_once(session, world):
    make_rule(world["acme"], "24/7", response_minutes=60, business_hours_only=False, warnings=[])
    ticket = open_ticket(world, actor=world["sue"], assignee=world["sue"])
    session.commit()
    breach = QueuedEmail.template_name == "sla-breach-notification"

    assert sla_tick.tick(session, now=T0 + timedelta(minutes=59)).fired == []
    assert mails(session, breach) == []
    sla_tick.tick(session, now=T0 + timedelta(minutes=61))
    sla_tick.tick(session, now=T0 + timedelta(minutes=62))  # a second tick: nothing new
    rows = mails(session, breach)
    assert {(m.recipient_email, m.priority) for m in rows} == {("sue@staff.example", CRITICAL),
                                                              ("mia@staff.example", CRITICAL)}
    assert all(m.ticket_id == ticket.id and m.subject.startswith(f"[{ticket.number}] SLA breached")
               for m in rows)


def test_sla_points_on_a_resolved_ticket_mail_nobody(session, world):
    make_rule(world["acme"], "24/7", response_minutes=60, business_hours_only=False, warnings=[])
    ticket = open_ticket(world, actor=world["sue"], assignee=world["sue"])
    tickets.change_status(session, ticket, "resolved", actor=world["sue"])
    session.commit()
    sla_tick.tick(session, now=T0 + timedelta(days=3))
    assert mails(session, QueuedEmail.template_name.like("sla-%")) == []


# --- one transaction ----------------------------------------------------------------------------

def test_a_rolled_back_change_leaves_no_email_behind(session, world):
    open_ticket(world)
    session.rollback()
    assert count_rows(session, QueuedEmail) == 0

    ticket = open_ticket(world)
    session.commit()
    before = count_rows(session, QueuedEmail)
    tickets.add_reply(session, session.get(Ticket, ticket.id), actor=world["ann"], body="Hello")
    session.flush()
    assert count_rows(session, QueuedEmail) > before  # written, in the change's own transaction...
    session.rollback()
    assert count_rows(session, QueuedEmail) == before  # ...and gone with it
