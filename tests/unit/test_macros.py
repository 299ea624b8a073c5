"""Macros: rendered for a ticket with the email templates' variables in their sandbox, inherited by departments,
scoped to the ticket's entity, refused when saved if the template is broken or blows the budget, and their field
changes made through services.tickets with the reply."""
import pytest

from mets.models import TicketEvent
from mets.services import macros
from mets.services.directory import categories
from mets.services.errors import DomainError
from tests.factories import make_customer, make_entity, make_staff, make_ticket


@pytest.fixture
def desk(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    agent = make_staff(acme, name="Andy Agent")
    bea = make_staff(billing, name="Bea Billing")
    categories.add_category(session, acme, "Refunds")
    ticket = make_ticket(billing, customer=make_customer("Kemi Adeyemi"), subject="Charged twice")
    return {"acme": acme, "billing": billing, "globex": globex, "agent": agent, "bea": bea, "ticket": ticket}


def macro(session, entity, body="Hello {{ customer_name }}, about {{ ticket_number }}: done.", **kw):
    return macros.create_macro(session, entity, {"name": kw.pop("name", "Refund issued"), "body": body, **kw})


def test_renders_the_ticket_variables_as_plain_text(session, desk):
    m = macro(session, desk["acme"], body="Hi {{ customer_name }}, {{ ticket_subject }} ({{ ticket_number }}) "
                                          "is with {{ entity_name }}. <b>{{ agent_name or 'us' }}</b>")
    text = macros.render(session, m, desk["ticket"], desk["agent"])
    assert text == f"Hi Kemi Adeyemi, Charged twice ({desk['ticket'].number}) is with Acme Billing. <b>us</b>"


def test_departments_inherit_and_other_entities_cannot_use_it(session, desk):
    parent = macro(session, desk["acme"], name="Parent's")
    own = macro(session, desk["billing"], name="Billing's")
    other = macro(session, desk["globex"], name="Globex's")
    assert [m.name for m in macros.macros_for(session, desk["billing"])] == ["Billing's", "Parent's"]
    assert [m.name for m in macros.macros_for(session, desk["acme"])] == ["Parent's"]
    assert macros.available(session, desk["ticket"], parent.id) == parent
    assert macros.available(session, desk["ticket"], own.id) == own
    assert macros.available(session, desk["ticket"], other.id) is None  # another entity's, by id
    assert macros.available(session, desk["ticket"], "99999999999999999999") is None


@pytest.mark.parametrize("body, message", [
    ("{% for a in ticket_subject %}" * 8 + "x" + "{% endfor %}" * 8, "This template loops more than 10,000 times"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "Line 1:"),  # recursion: refused, not a hang
    ("Hello {{ customer_nam }}", "Line 1: unknown variable 'customer_nam'"),
    ("Hello {{ customer_name ", "Line 1:"),
    ("{{ ''.__class__ }}", ""),
])
def test_a_broken_or_runaway_template_is_refused_when_saved(session, desk, body, message):
    with pytest.raises(DomainError) as caught:
        macro(session, desk["acme"], body=body)
    assert message in caught.value.errors["body"]
    assert macros.own_macros(session, desk["acme"]) == []


def test_field_changes_are_checked_against_the_entity(session, desk):
    with pytest.raises(DomainError) as caught:
        macro(session, desk["acme"], status="new", priority="sky-high", assignee_id=desk["bea"].id,
              category="Lottery")
    assert set(caught.value.errors) == {"status", "priority", "assignee_id", "category"}  # Bea is Billing's only


def test_sending_makes_the_field_changes_as_audited_changes(session, desk):
    m = macro(session, desk["acme"], status="pending", priority="high", category="refunds",
              assignee_id=desk["agent"].id)
    ticket = desk["ticket"]
    assert [(p.label, p.value) for p in macros.pending(session, m, ticket)] == [
        ("Status", "Pending"), ("Priority", "High"), ("Assignee", "Andy Agent"), ("Category", "Refunds")]
    macros.reply_with(session, ticket, m, actor=desk["agent"], body="Refund sent.")
    assert (ticket.status, ticket.priority, ticket.category, ticket.assignee) == (
        "pending", "high", "Refunds", desk["agent"])
    events = [e.event for e in session.query(TicketEvent).filter_by(ticket_id=ticket.id).order_by(TicketEvent.id)]
    assert events[-5:] == ["reply_added", "status_changed", "status_changed", "ticket_updated",
                           "assigned_to_changed"]  # new -> open by the reply, then the macro's pending
    assert ticket.replies[-1].body == "Refund sent."
