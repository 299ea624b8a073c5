"""services.tickets: create, reply, status, assign and field updates, on SQLite and PostgreSQL."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mets import clock
from mets.models import Entity, Reply, Ticket, TicketEvent
from mets.services import tickets
from mets.services.errors import DomainError
from tests.factories import make_customer, make_entity, make_staff, make_ticket

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)


def row_counts(session) -> dict[str, int]:
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Ticket, Reply, TicketEvent)}


def events_of(session, ticket) -> list[TicketEvent]:
    return list(session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                .order_by(TicketEvent.id)))


@pytest.fixture
def world(session):
    """Acme (with a Support department), Beta, an inactive entity, staff and customers."""
    acme = make_entity(name="Acme", slug="acme")
    support = make_entity(name="Acme Support", slug="acme-support", parent=acme)
    beta = make_entity(name="Beta", slug="beta")
    old = make_entity(name="Old Co", slug="old", active=False)
    w = {
        "acme": acme, "support": support, "beta": beta, "old": old,
        "agent": make_staff(acme, name="Ann Agent"),             # works Acme and its departments
        "support_agent": make_staff(support, name="Sue Support"),  # works only Acme Support
        "beta_agent": make_staff(beta, name="Ben Beta"),
        "admin": make_staff(is_admin=True, name="Ada Admin"),
        "customer": make_customer(name="Carl Customer"),
        "other_customer": make_customer(name="Olga Other"),
    }
    session.commit()
    return w


# --- create ---------------------------------------------------------------------------------------

def test_numbers_count_up_per_entity_independently(session, world):
    agent, beta_agent = world["agent"], world["beta_agent"]
    numbers = [make_ticket(world["acme"], actor=agent).number,
               make_ticket(world["acme"], actor=agent).number,
               make_ticket(world["beta"], actor=beta_agent).number,
               make_ticket(world["acme"], actor=agent).number,
               make_ticket(world["support"], actor=agent).number]
    session.commit()
    assert numbers == ["ACME-1001", "ACME-1002", "BETA-1001", "ACME-1003", "ACME-SUPPORT-1001"]
    assert tickets.find_by_number(session, "acme-1002").number == "ACME-1002"


def test_create_stores_the_ticket_as_typed_and_its_created_event(session, world):
    agent, customer = world["agent"], world["customer"]
    with clock.freeze(T0):
        change = tickets.create_ticket(
            session, actor=agent, entity=world["acme"], customer=customer, subject="  Printer on fire  ",
            body="Use <Ctrl> + <Alt> + <Del>\r\n<b>won't</b> <script>alert(1)</script>\r\n", priority="high",
            category=" hardware ",
            via="agent", assignee=agent)
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, change.ticket.id)
    assert (ticket.number, ticket.subject, ticket.status, ticket.priority, ticket.category) == \
        ("ACME-1001", "Printer on fire", "new", "high", "hardware")
    assert ticket.body == "Use <Ctrl> + <Alt> + <Del>\n<b>won't</b> <script>alert(1)</script>"  # as typed
    assert ticket.body_format == "text"
    assert ticket.customer_id == customer.id and ticket.assignee_id == agent.id
    [event] = events_of(session, ticket)
    assert event.event == "ticket_created"
    assert event.actor_id == agent.id
    assert event.at == T0
    assert event.changes == {"number": "ACME-1001", "priority": "high", "via": "agent",
                             "assignee_id": [None, agent.id]}


def test_customer_opens_a_ticket_for_themselves_in_the_portal(session, world):
    customer = world["customer"]
    change = tickets.create_ticket(session, actor=customer, entity=world["beta"], customer=customer,
                                   subject="Where is my parcel?", body="Ordered last week.", via="portal")
    session.commit()
    assert change.ticket.number == "BETA-1001"
    [event] = events_of(session, change.ticket)
    assert event.actor_id == customer.id
    assert event.changes == {"number": "BETA-1001", "priority": "normal", "via": "portal"}


def _bad_create(name: str, w: dict) -> dict:
    """Keyword arguments for create_ticket that are valid except for one thing."""
    kw = {"actor": w["agent"], "entity": w["acme"], "customer": w["customer"], "subject": "Help",
          "body": "Please help.", "priority": "normal", "via": "agent"}
    changes = {
        "empty subject": {"subject": "   "},
        "multi-line subject": {"subject": "Help\r\nBcc: victim@example.com"},
        "subject too long": {"subject": "x" * 251},
        "blank body": {"body": "  \n "},
        "whitespace-only body": {"body": "\r\n\t \r\n"},
        "body too long": {"body": "x" * 50_001},
        "unknown priority": {"priority": "asap"},
        "unknown channel": {"via": "pigeon"},
        "no entity": {"entity": None},
        "inactive entity": {"entity": w["old"], "actor": w["admin"]},
        "staff outside the entity": {"actor": w["beta_agent"]},
        "department agent in the parent entity": {"actor": w["support_agent"]},
        "customer for another customer": {"actor": w["other_customer"], "via": "portal"},
        "staff user as customer": {"customer": w["beta_agent"]},
        "assignee not a member": {"assignee": w["beta_agent"]},
        "customer as assignee": {"assignee": w["other_customer"]},
    }
    kw.update(changes[name])
    return kw


@pytest.mark.parametrize("case, field", [
    ("empty subject", "subject"),
    ("multi-line subject", "subject"),
    ("subject too long", "subject"),
    ("blank body", "body"),
    ("whitespace-only body", "body"),
    ("body too long", "body"),
    ("unknown priority", "priority"),
    ("unknown channel", "via"),
    ("no entity", "entity_id"),
    ("inactive entity", "entity_id"),
    ("staff outside the entity", "entity_id"),
    ("department agent in the parent entity", "entity_id"),
    ("customer for another customer", "entity_id"),
    ("staff user as customer", "customer_email"),
    ("assignee not a member", "assignee_id"),
    ("customer as assignee", "assignee_id"),
])
def test_create_refuses_bad_input_and_writes_nothing(session, world, case, field):
    before = row_counts(session)
    with pytest.raises(DomainError) as exc:
        tickets.create_ticket(session, **_bad_create(case, world))
    assert set(exc.value.errors) == {field}
    assert exc.value.for_field(field)
    assert row_counts(session) == before
    session.commit()
    session.expire_all()
    assert row_counts(session) == before
    # No number was used up: the next ticket in that entity is still the first one.
    assert make_ticket(world["acme"], actor=world["agent"]).number == "ACME-1001"


def test_create_reports_every_bad_field_at_once(session, world):
    with pytest.raises(DomainError) as exc:
        tickets.create_ticket(session, actor=world["agent"], entity=world["acme"], customer=world["customer"],
                              subject="", body="", priority="asap")
    assert set(exc.value.errors) == {"subject", "body", "priority"}


# --- replies --------------------------------------------------------------------------------------

def test_agent_public_reply_opens_a_new_ticket(session, world):
    agent = world["agent"]
    ticket = make_ticket(world["acme"], customer=world["customer"])
    with clock.freeze(T0 + timedelta(hours=1)):
        change = tickets.add_reply(session, ticket, actor=agent, body="On it <img src=x onerror=alert(1)>")
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket.status == "open"
    assert [r.body for r in ticket.public_replies] == ["On it <img src=x onerror=alert(1)>"]  # escaped when shown
    assert ticket.updated_at == T0 + timedelta(hours=1)
    created, reply_added, status_changed = events_of(session, ticket)
    assert reply_added.event == "reply_added" and reply_added.actor_id == agent.id
    assert reply_added.changes == {"reply_id": change.reply.id, "internal": False, "via": "agent", "public": True}
    assert status_changed.event == "status_changed" and status_changed.actor_id == agent.id
    assert status_changed.changes == {"status": ["new", "open"]}


def test_internal_note_is_hidden_from_public_replies_and_keeps_status(session, world):
    ticket = make_ticket(world["acme"], customer=world["customer"])
    tickets.add_reply(session, ticket, actor=world["agent"], body="Customer is a VIP", internal=True)
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket.status == "new"
    assert [r.body for r in ticket.replies] == ["Customer is a VIP"]
    assert ticket.replies[0].internal is True
    assert ticket.public_replies == []
    assert [e.event for e in events_of(session, ticket)] == ["ticket_created", "reply_added"]
    assert events_of(session, ticket)[-1].changes["internal"] is True


def test_customer_cannot_write_an_internal_note(session, world):
    customer = world["customer"]
    ticket = make_ticket(world["acme"], customer=customer)
    session.commit()
    before = row_counts(session)
    with pytest.raises(DomainError) as exc:
        tickets.add_reply(session, ticket, actor=customer, body="psst", internal=True)
    assert set(exc.value.errors) == {"internal"}
    assert row_counts(session) == before


def test_customer_cannot_reply_to_someone_elses_ticket(session, world):
    ticket = make_ticket(world["acme"], customer=world["customer"])
    session.commit()
    before = row_counts(session)
    with pytest.raises(DomainError) as exc:
        tickets.add_reply(session, ticket, actor=world["other_customer"], body="Me too")
    assert exc.value.errors == {"": "You cannot change this ticket."}
    assert row_counts(session) == before


@pytest.mark.parametrize("status", ["pending", "resolved"])
def test_customer_reply_reopens_pending_or_resolved(session, world, status):
    customer, agent = world["customer"], world["agent"]
    ticket = make_ticket(world["acme"], customer=customer)
    tickets.change_status(session, ticket, status, actor=agent)
    session.commit()
    tickets.add_reply(session, ticket, actor=customer, body="Still broken")
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket.status == "open"
    last = events_of(session, ticket)[-1]
    assert (last.event, last.actor_id, last.changes) == ("status_changed", customer.id, {"status": [status, "open"]})
    assert ticket.replies[-1].via == "portal"


@pytest.mark.parametrize("status", ["new", "open", "on_hold"])
def test_customer_reply_leaves_other_statuses_alone(session, world, status):
    customer = world["customer"]
    ticket = make_ticket(world["acme"], customer=customer)
    if status != "new":
        tickets.change_status(session, ticket, status, actor=world["agent"])
    change = tickets.add_reply(session, ticket, actor=customer, body="Any news?")
    assert ticket.status == status
    assert [e.event for e in change.events] == ["reply_added"]


def test_closed_ticket_refuses_replies(session, world):
    ticket = make_ticket(world["acme"], customer=world["customer"])
    tickets.change_status(session, ticket, "closed", actor=world["agent"])
    session.commit()
    before = row_counts(session)
    for actor in (world["customer"], world["agent"]):
        with pytest.raises(DomainError) as exc:
            tickets.add_reply(session, ticket, actor=actor, body="Hello?")
        assert "closed" in exc.value.for_field("body")
    assert row_counts(session) == before


def test_blank_reply_is_refused(session, world):
    ticket = make_ticket(world["acme"], customer=world["customer"])
    session.commit()
    before = row_counts(session)
    with pytest.raises(DomainError) as exc:
        tickets.add_reply(session, ticket, actor=world["agent"], body=" \r\n\t ")
    assert set(exc.value.errors) == {"body"}
    assert row_counts(session) == before


# --- status ---------------------------------------------------------------------------------------

def test_status_change_writes_old_and_new(session, world):
    agent = world["agent"]
    ticket = make_ticket(world["acme"])
    with clock.freeze(T0):
        change = tickets.change_status(session, ticket, "pending", actor=agent)
    session.commit()
    assert change.changes == {"status": ["new", "pending"]}
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket.status == "pending" and ticket.updated_at == T0
    last = events_of(session, ticket)[-1]
    assert (last.event, last.actor_id, last.changes) == ("status_changed", agent.id, {"status": ["new", "pending"]})


@pytest.mark.parametrize("start, target, message", [
    ("open", "reopened", "Unknown status"),
    ("open", "new", "back to New"),
    ("closed", "open", "closed"),
    ("closed", "resolved", "closed"),
])
def test_status_change_refusals(session, world, start, target, message):
    agent = world["agent"]
    ticket = make_ticket(world["acme"])
    tickets.change_status(session, ticket, start, actor=agent)
    session.commit()
    before = row_counts(session)
    with pytest.raises(DomainError) as exc:
        tickets.change_status(session, ticket, target, actor=agent)
    assert message in exc.value.for_field("status")
    session.commit()
    session.expire_all()
    assert session.get(Ticket, ticket.id).status == start
    assert row_counts(session) == before


def test_status_no_op_writes_no_event(session, world):
    ticket = make_ticket(world["acme"])
    tickets.change_status(session, ticket, "open", actor=world["agent"])
    session.commit()
    updated_at = ticket.updated_at
    before = row_counts(session)
    with clock.freeze(T0 + timedelta(days=30)):
        change = tickets.change_status(session, ticket, "open", actor=world["agent"])
    session.commit()
    assert not change.changed
    assert row_counts(session) == before
    assert session.get(Ticket, ticket.id).updated_at == updated_at


# --- assign ---------------------------------------------------------------------------------------

def test_member_of_the_parent_entity_can_take_a_departments_ticket(session, world):
    agent, admin = world["agent"], world["admin"]
    ticket = make_ticket(world["support"])
    change = tickets.assign(session, ticket, agent, actor=admin)
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket.assignee.name == "Ann Agent"
    last = events_of(session, ticket)[-1]
    assert (last.event, last.actor_id, last.changes) == ("assigned_to_changed", admin.id,
                                                         {"assignee_id": [None, agent.id]})
    assert change.changed


NOT_ASSIGNABLE = "Choose an active agent of this ticket's entity."


def test_department_member_cannot_take_the_parents_ticket(session, world):
    ticket = make_ticket(world["acme"])
    session.commit()
    with pytest.raises(DomainError) as exc:
        tickets.assign(session, ticket, world["support_agent"], actor=world["admin"])
    assert exc.value.for_field("assignee_id") == NOT_ASSIGNABLE  # names nobody


def test_assigning_a_non_member_is_refused_and_changes_nothing(session, world):
    ticket = make_ticket(world["acme"], assignee=world["agent"], actor=world["agent"])
    session.commit()
    before = row_counts(session)
    with pytest.raises(DomainError) as exc:
        tickets.assign(session, ticket, world["beta_agent"], actor=world["admin"])
    assert exc.value.for_field("assignee_id") == NOT_ASSIGNABLE  # the other entity's agent stays unnamed
    session.commit()
    session.expire_all()
    assert session.get(Ticket, ticket.id).assignee_id == world["agent"].id
    assert row_counts(session) == before


def test_inactive_staff_cannot_be_assigned(session, world):
    gone = make_staff(world["acme"], name="Gone Gary", active=False)
    ticket = make_ticket(world["acme"])
    session.commit()
    with pytest.raises(DomainError) as exc:
        tickets.assign(session, ticket, gone, actor=world["admin"])
    assert exc.value.for_field("assignee_id") == NOT_ASSIGNABLE
    assert ticket.assignee_id is None


def test_customer_cannot_be_assigned(session, world):
    ticket = make_ticket(world["acme"])
    with pytest.raises(DomainError) as exc:
        tickets.assign(session, ticket, world["customer"], actor=world["admin"])
    assert set(exc.value.errors) == {"assignee_id"}


def test_unassign_and_reassigning_the_same_person(session, world):
    agent = world["agent"]
    ticket = make_ticket(world["acme"], actor=agent, assignee=agent)
    session.commit()
    assert not tickets.assign(session, ticket, agent, actor=agent).changed
    change = tickets.assign(session, ticket, None, actor=agent)
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket.assignee is None
    assert change.changes == {"assignee_id": [agent.id, None]}
    assert [e.event for e in events_of(session, ticket)] == ["ticket_created", "assigned_to_changed"]


# --- update_fields --------------------------------------------------------------------------------

def test_priority_only_is_a_priority_changed_event(session, world):
    agent = world["agent"]
    ticket = make_ticket(world["acme"])
    tickets.update_fields(session, ticket, {"priority": "urgent"}, actor=agent)
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket.priority == "urgent"
    last = events_of(session, ticket)[-1]
    assert (last.event, last.actor_id, last.changes) == ("priority_changed", agent.id,
                                                         {"priority": ["normal", "urgent"]})


def test_other_fields_are_a_ticket_updated_event_with_old_and_new(session, world):
    agent = world["agent"]
    ticket = make_ticket(world["acme"], subject="Printer")
    tickets.update_fields(session, ticket, {"subject": " Printer on fire ", "category": "hardware",
                                            "priority": "high"}, actor=agent)
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert (ticket.subject, ticket.category, ticket.priority) == ("Printer on fire", "hardware", "high")
    last = events_of(session, ticket)[-1]
    assert last.event == "ticket_updated"
    assert last.changes == {"subject": ["Printer", "Printer on fire"], "category": [None, "hardware"],
                            "priority": ["normal", "high"]}


def test_update_with_the_same_values_writes_nothing(session, world):
    ticket = make_ticket(world["acme"], subject="Printer", category="hardware")
    session.commit()
    before = row_counts(session)
    change = tickets.update_fields(session, ticket, {"subject": "Printer", "category": "hardware",
                                                     "priority": "normal", "entity_id": world["acme"].id},
                                   actor=world["agent"])
    assert not change.changed
    assert row_counts(session) == before


def test_moving_entity_unassigns_an_assignee_who_cannot_work_there(session, world):
    agent, admin = world["agent"], world["admin"]
    ticket = make_ticket(world["acme"], actor=agent, assignee=agent)
    tickets.update_fields(session, ticket, {"entity_id": world["beta"].id}, actor=admin)
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket.entity.slug == "beta"
    assert ticket.assignee_id is None
    assert ticket.number == "BETA-1001"  # the new entity's next number...
    assert [a.number for a in ticket.aliases] == ["ACME-1001"]  # ...and the one the customer knows still finds it
    last = events_of(session, ticket)[-1]
    assert last.event == "ticket_updated"
    assert last.changes == {"entity_id": [world["acme"].id, world["beta"].id], "assignee_id": [agent.id, None],
                            "number": ["ACME-1001", "BETA-1001"]}


def test_moving_to_a_department_keeps_an_assignee_of_the_parent(session, world):
    agent = world["agent"]
    ticket = make_ticket(world["acme"], actor=agent, assignee=agent)
    change = tickets.update_fields(session, ticket, {"entity_id": world["support"].id}, actor=agent)
    session.commit()
    assert ticket.assignee_id == agent.id
    assert change.changes == {"entity_id": [world["acme"].id, world["support"].id],
                              "number": ["ACME-1001", f"{world['support'].ticket_prefix}-1001"]}


@pytest.mark.parametrize("target", ["beta", "old", "missing"])
def test_agent_cannot_move_a_ticket_to_an_entity_they_do_not_work_in(session, world, target):
    agent = world["agent"]
    ticket = make_ticket(world["acme"])
    session.commit()
    before = row_counts(session)
    entity_id = world[target].id if target != "missing" else 999999
    with pytest.raises(DomainError) as exc:
        tickets.update_fields(session, ticket, {"entity_id": entity_id, "priority": "high"}, actor=agent)
    assert set(exc.value.errors) == {"entity_id"}
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert (ticket.entity.slug, ticket.priority) == ("acme", "normal")
    assert row_counts(session) == before


@pytest.mark.parametrize("values, field", [
    ({"status": "closed"}, ""),
    ({"number": "ACME-9999"}, ""),
    ({"subject": ""}, "subject"),
    ({"priority": "asap"}, "priority"),
    ({"category": "x" * 81}, "category"),
])
def test_update_refuses_unknown_fields_and_bad_values(session, world, values, field):
    ticket = make_ticket(world["acme"], subject="Printer")
    session.commit()
    before = row_counts(session)
    with pytest.raises(DomainError) as exc:
        tickets.update_fields(session, ticket, values, actor=world["agent"])
    assert set(exc.value.errors) == {field}
    if field == "":
        assert next(iter(values)) in exc.value.errors[""]
    session.commit()
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert (ticket.subject, ticket.status, ticket.priority, ticket.number) == ("Printer", "new", "normal", "ACME-1001")
    assert row_counts(session) == before


# --- time -----------------------------------------------------------------------------------------

def test_times_are_aware_utc_after_a_round_trip(session, world):
    paris = datetime(2026, 3, 29, 3, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Paris"))  # just after the DST jump
    with clock.freeze(paris):
        ticket = make_ticket(world["acme"], customer=world["customer"])
        tickets.add_reply(session, ticket, actor=world["agent"], body="Looking")
    session.commit()
    ticket_id = ticket.id
    session.expire_all()
    ticket = session.get(Ticket, ticket_id)
    for value in (ticket.created_at, ticket.updated_at, ticket.replies[0].created_at,
                  *(e.at for e in ticket.events)):
        assert value == paris
        assert value.utcoffset() == timedelta(0)
        assert value.tzinfo == timezone.utc
    assert ticket.created_at.isoformat() == "2026-03-29T01:30:15.123456+00:00"
    # Comparisons with aware instants work in queries on both databases.
    assert session.scalar(select(func.count()).select_from(Ticket)
                          .where(Ticket.created_at >= paris, Ticket.created_at < paris + timedelta(seconds=1))) == 1
    assert session.scalar(select(func.count()).select_from(Ticket).where(Ticket.created_at > paris)) == 0


def test_the_frozen_clock_sets_created_at_and_moves(session, world):
    with clock.freeze(T0):
        entity = make_entity(name="Frozen", slug="frozen")  # a model default, not a service argument
        first = make_ticket(world["acme"])
        with clock.freeze(T0 + timedelta(minutes=5)):
            second = make_ticket(world["acme"])
        third = make_ticket(world["acme"])
    session.commit()
    session.expire_all()
    got = [session.get(Ticket, t.id).created_at for t in (first, second, third)]
    assert got == [T0, T0 + timedelta(minutes=5), T0]
    assert session.get(Entity, entity.id).created_at == T0
    before = datetime.now(timezone.utc)
    later = make_ticket(world["acme"])
    assert before <= later.created_at <= datetime.now(timezone.utc)  # unfrozen again: the real now
