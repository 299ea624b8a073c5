"""Automation conditions: every field automation adds, the event operators, and nested groups.

Each test saves rules the way the builder does and makes real changes through `services.tickets`
(or the SLA tick); what it checks is what an admin sees: whether the rule fired (its action's
effect and the execution log) and the message a refused condition gets.
"""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import AutomationRule, Reply, RuleExecution
from mets.services import rules, tickets
from mets.services.sla import tick as sla_tick
from mets.services.automation.conditions import AUTOMATION
from mets.services.errors import DomainError
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # a Tuesday


def add_rule(session, entity, trigger, conditions, actions=None, order=10, name=None):
    """An active rule, validated as the builder saves it; by default it adds a note "fired"."""
    conditions = rules.parse(conditions, AUTOMATION)  # refused conditions never reach the table
    rule = AutomationRule(name=name or f"rule {order}", entity_id=entity.id if entity else None, trigger_event=trigger,
                          conditions=conditions, actions=actions or [{"type": "add_note", "body": "fired"}],
                          is_active=True, stop_processing=False, execution_order=order,
                          created_at=clock.now(), updated_at=clock.now())
    session.add(rule)
    session.flush()
    return rule


def fired(session, rule) -> list[bool]:
    """The rule's evaluations so far, oldest first: True where it matched."""
    return [e.matched for e in session.scalars(select(RuleExecution).where(RuleExecution.rule_id == rule.id)
                                               .order_by(RuleExecution.id))]


def notes(ticket) -> list[str]:
    return [r.body for r in ticket.replies if r.internal]


def refusal(conditions) -> str:
    with pytest.raises(DomainError) as caught:
        rules.parse(conditions, AUTOMATION)
    return caught.value.errors["conditions"]


@pytest.fixture
def desk(session):
    acme = make_entity("Acme", "acme")
    dana = make_staff(acme, name="Dana", email="dana@acme.example", tier=2)
    lee = make_staff(acme, name="Lee", email="lee@acme.example", tier=1)
    return acme, dana, lee


# --- the event operators ------------------------------------------------------------------------

def test_priority_changed_from_and_to(session, desk):
    acme, dana, _ = desk
    rule = add_rule(session, acme, "priority_changed", {"all": [
        {"field": "priority", "op": "changed"},
        {"field": "priority", "op": "changed_from", "value": "normal"},
        {"field": "priority", "op": "changed_to", "value": "URGENT"}]})
    ticket = make_ticket(acme)
    tickets.update_fields(session, ticket, {"priority": "urgent"}, actor=dana)
    assert notes(ticket) == ["fired"]
    tickets.update_fields(session, ticket, {"priority": "high"}, actor=dana)  # from urgent: not from normal
    tickets.update_fields(session, ticket, {"priority": "normal"}, actor=dana)
    tickets.update_fields(session, ticket, {"priority": "urgent"}, actor=dana)
    assert fired(session, rule) == [True, False, False, True]
    assert len(notes(ticket)) == 2


def test_changed_is_false_when_the_event_did_not_change_the_field(session, desk):
    acme, dana, _ = desk
    rule = add_rule(session, acme, "ticket_updated", {"any": [
        {"field": "priority", "op": "changed"},
        {"field": "priority", "op": "changed_from", "value": "normal"},
        {"field": "priority", "op": "changed_to", "value": "normal"}]})
    ticket = make_ticket(acme)
    tickets.update_fields(session, ticket, {"subject": "New subject"}, actor=dana)  # priority untouched
    assert fired(session, rule) == [False]
    tickets.update_fields(session, ticket, {"subject": "Again", "priority": "low"}, actor=dana)
    assert fired(session, rule) == [False, True]


def test_status_changed_from_open_to_pending(session, desk):
    acme, dana, _ = desk
    rule = add_rule(session, acme, "status_changed", {"all": [
        {"field": "status", "op": "changed_from", "value": "open"},
        {"field": "status", "op": "changed_to", "value": "pending"}]})
    ticket = make_ticket(acme)
    tickets.change_status(session, ticket, "open", actor=dana)      # new -> open
    tickets.change_status(session, ticket, "pending", actor=dana)   # open -> pending: this one
    tickets.change_status(session, ticket, "on_hold", actor=dana)   # pending -> on hold
    assert fired(session, rule) == [False, True, False]


def test_assignee_email_changes_are_read_as_emails_not_ids(session, desk):
    acme, dana, lee = desk
    handed_over = add_rule(session, acme, "assigned_to_changed", {"all": [
        {"field": "assignee.email", "op": "changed_from", "value": "Dana@Acme.example"},
        {"field": "assignee.email", "op": "changed_to", "value": "lee@acme.example"}]}, order=1)
    any_change = add_rule(session, acme, "assigned_to_changed", {"all": [
        {"field": "assignee.email", "op": "changed"}]}, order=2)
    ticket = make_ticket(acme)
    tickets.assign(session, ticket, dana, actor=dana)  # nobody -> Dana
    tickets.assign(session, ticket, lee, actor=dana)   # Dana -> Lee
    tickets.assign(session, ticket, dana, actor=dana)  # Lee -> Dana
    assert fired(session, handed_over) == [False, True, False]
    assert fired(session, any_change) == [True, True, True]


def test_escalation_level_changed_to(session, desk):
    acme, dana, _ = desk
    rule = add_rule(session, acme, "escalation_due", {"all": [
        {"field": "escalation_level", "op": "changed_to", "value": 2}]})
    ticket = make_ticket(acme)
    tickets.escalate(session, ticket, actor=dana)
    tickets.escalate(session, ticket, actor=dana)
    tickets.escalate(session, ticket, actor=dana)
    assert ticket.escalation_level == 3
    assert fired(session, rule) == [False, True, False]


def test_changed_is_refused_on_a_field_no_event_changes(session):
    message = refusal({"all": [{"field": "customer.domain", "op": "changed"}]})
    assert message.startswith("Condition 1: 'changed' applies only to what an event changes (")
    assert "Priority" in message and "Assignee email" in message and "Escalation level" in message
    assert message.endswith("not Customer email domain.")
    message = refusal({"all": [{"field": "priority", "op": "is", "value": "high"},
                               {"any": [{"field": "hours_since_created", "op": "changed_to", "value": 3}]}]})
    assert "'changed to' applies only to what an event changes" in message
    assert message.endswith("not Hours since created.")
    assert "takes no value" in refusal({"all": [{"field": "priority", "op": "changed", "value": "high"}]})
    assert "is not a priority" in refusal({"all": [{"field": "priority", "op": "changed_to", "value": "soon"}]})


# --- who acted ----------------------------------------------------------------------------------

def test_actor_kind_agent_customer_and_automation(session, desk):
    acme, dana, _ = desk
    by_customer = add_rule(session, acme, "ticket_created",
                           {"all": [{"field": "actor.kind", "op": "is", "value": "customer"}]}, order=1)
    by_agent = add_rule(session, acme, "ticket_created",
                        {"all": [{"field": "actor.kind", "op": "is", "value": "agent"}]}, order=2)
    raise_vip = add_rule(session, acme, "ticket_created",
                         {"all": [{"field": "subject", "op": "contains", "value": "vip"}]},
                         actions=[{"type": "set_priority", "priority": "high"}], order=3)
    by_rule = add_rule(session, acme, "priority_changed",
                       {"all": [{"field": "actor.kind", "op": "is", "value": "automation"}]}, order=4)

    portal = make_ticket(acme, subject="Hello")  # opened by the customer in the portal
    phone = make_ticket(acme, actor=dana, subject="VIP caller")  # opened by an agent; the rule raises it
    # A rule whose "is" condition cannot hold is ruled out by the index: it is neither evaluated nor logged.
    assert fired(session, by_customer) == [True]
    assert fired(session, by_agent) == [True]
    assert phone.priority == "high"
    assert fired(session, by_rule) == [True]  # the rule's own change is the automation's
    assert len(notes(phone)) == 2 and len(notes(portal)) == 1
    tickets.update_fields(session, portal, {"priority": "low"}, actor=dana)
    assert fired(session, by_rule) == [True]  # an agent's change is not the automation's: not even offered
    assert len(notes(portal)) == 1
    assert raise_vip is not None


def test_actor_kind_system_for_the_sla_tick(session, desk):
    acme, dana, _ = desk
    make_rule(acme, "24/7", response_minutes=60, business_hours_only=False)
    system = add_rule(session, acme, "sla_breach_warning",
                      {"all": [{"field": "actor.kind", "op": "is", "value": "system"}]}, order=1)
    agent = add_rule(session, acme, "sla_breach_warning",
                     {"all": [{"field": "actor.kind", "op": "is_not", "value": "system"}]}, order=2)
    with clock.freeze(T0):
        ticket = make_ticket(acme)
    sla_tick.tick(session, now=T0 + timedelta(minutes=50))  # the 80% warning is at 48 minutes
    assert fired(session, system) == [True] and fired(session, agent) == [False]
    assert notes(ticket) == ["fired"]


# --- the reply ----------------------------------------------------------------------------------

def test_reply_visibility_and_body(session, desk):
    acme, dana, _ = desk
    internal_refund = add_rule(session, acme, "reply_added", {"all": [
        {"field": "reply.visibility", "op": "is", "value": "internal"},
        {"field": "reply.body", "op": "contains", "value": "refund"}]},
        actions=[{"type": "set_priority", "priority": "high"}], order=1)
    public = add_rule(session, acme, "reply_added",
                      {"all": [{"field": "reply.visibility", "op": "is", "value": "public"}]},
                      actions=[{"type": "set_priority", "priority": "low"}], order=2)
    ticket = make_ticket(acme)
    tickets.add_reply(session, ticket, actor=dana, body="<p>Customer wants a <b>REFUND</b></p>", internal=True)
    assert ticket.priority == "high"
    tickets.add_reply(session, ticket, actor=dana, body="We will refund you", internal=False)
    assert ticket.priority == "low"
    tickets.add_reply(session, ticket, actor=dana, body="Called them back", internal=True)
    assert fired(session, internal_refund) == [True, False]  # the public reply never reached it (the index)
    assert fired(session, public) == [True]


# --- the SLA state ------------------------------------------------------------------------------

def test_sla_percent_used_and_minutes_left(session, desk):
    acme, dana, _ = desk
    make_rule(acme, "24/7", response_minutes=60, business_hours_only=False)
    halfway = add_rule(session, acme, "reply_added", {"all": [
        {"field": "sla.percent_used", "op": "gte", "value": 50},
        {"field": "sla.minutes_left", "op": "lte", "value": 30}]})
    customer = make_customer()
    with clock.freeze(T0):
        ticket = make_ticket(acme, customer=customer)
    tickets.add_reply(session, ticket, actor=customer, body="Any news?", now=T0 + timedelta(minutes=10))
    tickets.add_reply(session, ticket, actor=customer, body="Hello?", now=T0 + timedelta(minutes=30))
    assert fired(session, halfway) == [False, True]
    tickets.add_reply(session, ticket, actor=dana, body="Here", now=T0 + timedelta(minutes=40))  # response met
    tickets.add_reply(session, ticket, actor=customer, body="Thanks", now=T0 + timedelta(minutes=45))
    assert fired(session, halfway)[-2:] == [False, False]  # no clock runs any more: nothing used, nothing left


def test_sla_minutes_left_goes_negative_and_breached_turns_true(session, desk):
    acme, _, _ = desk
    make_rule(acme, "24/7", response_minutes=60, business_hours_only=False)
    late = add_rule(session, acme, "reply_added", {"all": [
        {"field": "sla.breached", "op": "is", "value": True},
        {"field": "sla.minutes_left", "op": "lt", "value": -10},
        {"field": "sla.percent_used", "op": "gt", "value": 100}]})
    on_breach = add_rule(session, acme, "sla_breach_occurred",
                         {"all": [{"field": "sla.breached", "op": "is", "value": True}]})
    customer = make_customer()
    with clock.freeze(T0):
        ticket = make_ticket(acme, customer=customer)
    tickets.add_reply(session, ticket, actor=customer, body="Still waiting", now=T0 + timedelta(minutes=59))
    sla_tick.tick(session, now=T0 + timedelta(minutes=61))
    assert ticket.sla_response_breached
    assert fired(session, on_breach) == [True]
    tickets.add_reply(session, ticket, actor=customer, body="Hello??", now=T0 + timedelta(minutes=75))
    # 59 min: not breached; 61 min: the breach rule's note is a reply too, but only 1 minute late; 75 min: yes.
    assert fired(session, late) == [False, False, True]


# --- time since ---------------------------------------------------------------------------------

def test_hours_since_created_customer_reply_and_agent_reply(session, desk):
    acme, dana, _ = desk
    rule = add_rule(session, acme, "status_changed", {"all": [
        {"field": "hours_since_created", "op": "gte", "value": 5},
        {"field": "hours_since_agent_reply", "op": "gt", "value": 3.9},
        {"field": "hours_since_agent_reply", "op": "lt", "value": 4.1},
        {"field": "hours_since_customer_reply", "op": "gt", "value": 1.9},
        {"field": "hours_since_customer_reply", "op": "lt", "value": 2.1}]})
    never = add_rule(session, acme, "status_changed", {"any": [
        {"field": "hours_since_customer_reply", "op": "is_empty"}]}, order=20)
    customer = make_customer()
    with clock.freeze(T0):
        ticket = make_ticket(acme, customer=customer)
    tickets.change_status(session, ticket, "open", actor=dana, now=T0 + timedelta(minutes=30))
    assert fired(session, never) == [True]  # no customer reply yet (the ticket's first message is not one)
    tickets.add_reply(session, ticket, actor=dana, body="On it", now=T0 + timedelta(hours=1))
    tickets.add_reply(session, ticket, actor=customer, body="Thanks", now=T0 + timedelta(hours=3))
    tickets.change_status(session, ticket, "on_hold", actor=dana, now=T0 + timedelta(hours=4))  # too early
    tickets.change_status(session, ticket, "open", actor=dana, now=T0 + timedelta(hours=5))
    assert fired(session, rule) == [False, False, True]
    assert fired(session, never) == [True, False, False]


def test_hours_since_updated_on_an_sla_event(session, desk):
    acme, dana, _ = desk
    make_rule(acme, "24/7", response_minutes=120, business_hours_only=False)
    quiet = add_rule(session, acme, "sla_breach_warning", {"all": [
        {"field": "hours_since_updated", "op": "gte", "value": 1.5},
        {"field": "hours_since_updated", "op": "lt", "value": 1.7}]})
    with clock.freeze(T0):
        ticket = make_ticket(acme)
    tickets.add_reply(session, ticket, actor=dana, body="Looking", internal=True, now=T0 + timedelta(minutes=10))
    sla_tick.tick(session, now=T0 + timedelta(minutes=106))  # warning at 96 min; last update at 10 min
    assert fired(session, quiet) == [True]


# --- customer and assignee ----------------------------------------------------------------------

def test_customer_domain(session, desk):
    acme, _, _ = desk
    rule = add_rule(session, acme, "ticket_created", {"any": [
        {"field": "customer.domain", "op": "is", "value": "BigCustomer.example"},
        {"field": "customer.domain", "op": "ends_with", "value": ".vip.example"}]})
    make_ticket(acme, customer=make_customer(email="ops@bigcustomer.example"))
    make_ticket(acme, customer=make_customer(email="ceo@eu.vip.example"))
    make_ticket(acme, customer=make_customer(email="someone@notbigcustomer.example"))
    make_ticket(acme, customer=make_customer(email="x@vip.example"))  # no "." before vip: not a subdomain
    assert fired(session, rule) == [True, True, False, False]


def test_assignee_tier_in_the_entity_or_the_nearest_above(session, desk):
    acme, dana, lee = desk
    billing = make_entity("Acme Billing", "acme-billing", parent=acme)
    rule = add_rule(session, acme, "assigned_to_changed",
                    {"all": [{"field": "assignee.tier", "op": "gte", "value": 2}]})
    unassigned = add_rule(session, acme, "assigned_to_changed",
                          {"all": [{"field": "assignee.tier", "op": "is_empty"}]}, order=20)
    ticket = make_ticket(billing)  # a department ticket: Dana and Lee are members of the company above
    tickets.assign(session, ticket, lee, actor=lee)
    tickets.assign(session, ticket, dana, actor=lee)
    tickets.assign(session, ticket, None, actor=lee)
    assert fired(session, rule) == [False, True, False]
    assert fired(session, unassigned) == [False, False, True]


# --- nesting ------------------------------------------------------------------------------------

NESTED = {"any": [
    {"all": [
        {"field": "priority", "op": "in", "value": ["high", "urgent"]},
        {"any": [
            {"field": "subject", "op": "contains", "value": "refund"},
            {"all": [
                {"field": "category", "op": "is", "value": "billing"},
                {"any": [{"field": "customer.domain", "op": "is", "value": "vip.example"},
                         {"field": "body", "op": "contains", "value": "lawyer"}]}]}]}]},
    {"field": "subject", "op": "starts_with", "value": "[P1]"}]}


@pytest.mark.parametrize(("ticket", "expected"), [
    ({"priority": "urgent", "subject": "Refund please"}, True),
    ({"priority": "normal", "subject": "Refund please"}, False),  # the priority gate of the first branch
    ({"priority": "high", "category": "Billing", "subject": "Invoice"}, False),  # billing, but neither leaf
    ({"priority": "high", "category": "Billing", "subject": "Invoice", "email": "a@vip.example"}, True),
    ({"priority": "high", "category": "Billing", "subject": "Invoice", "body": "My LAWYER says"}, True),
    ({"priority": "high", "category": "Shipping", "subject": "Invoice", "email": "a@vip.example"}, False),
    ({"priority": "low", "subject": "[p1] site down"}, True),  # the second branch alone
])
def test_groups_nest_several_levels_deep(session, desk, ticket, expected):
    acme, _, _ = desk
    rule = add_rule(session, acme, "ticket_created", NESTED)
    ticket = dict(ticket)  # the parameters are shared by both backends' runs
    customer = make_customer(email=ticket.pop("email", None))
    made = make_ticket(acme, customer=customer, **ticket)
    assert fired(session, rule) == [expected]
    assert notes(made) == (["fired"] if expected else [])


def test_nesting_has_a_limit_with_a_clear_message(session):
    leaf = {"field": "priority", "op": "is", "value": "high"}
    tree = leaf
    for depth in range(rules.MAX_DEPTH):
        tree = {"all" if depth % 2 else "any": [tree]}
    rules.parse(tree, AUTOMATION)  # eight groups deep is fine
    message = refusal({"all": [tree]})
    assert f"groups nest at most {rules.MAX_DEPTH} deep" in message
    assert "Condition 2: this group is empty" in refusal({"all": [leaf, {"any": []}]})


def test_automation_fields_are_not_offered_to_sla_rules(session):
    with pytest.raises(DomainError) as caught:
        rules.parse({"all": [{"field": "actor.kind", "op": "is", "value": "agent"}]})
    assert "Condition 1: unknown field 'actor.kind'" in caught.value.errors["conditions"]
    assert session.scalar(select(Reply.id)) is None
