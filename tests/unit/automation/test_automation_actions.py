"""Automation actions: every action type's effect, its validation messages, and the four ways to assign.

Rules are saved with validated actions (as the builder saves them) and run on real changes;
assertions are on what people see: the ticket's fields, the conversation, queued mail, webhook
and SMS rows, the SLA due times, and the execution log's words.
"""
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from mets import clock
from mets.models import AutomationRule, QueuedEmail, RuleExecution, TicketEvent, WebhookDelivery
from mets.services import automation, tickets
from mets.services.automation import actions as automation_actions
from mets.services.directory import categories
from mets.services.errors import DomainError
from tests.conftest import login_customer, text_of
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket, ny

S3 = "whsec_czMtc2lnbmluZy1rZXktb2YtdHdlbnR5LWZvdXI="  # a Standard Webhooks secret

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # a Tuesday


def add_rule(session, entity, actions, trigger="ticket_created", conditions=None, order=10, name=None):
    """An active rule whose actions were validated as the builder saves them."""
    clean = automation_actions.validate(session, entity, actions)
    rule = AutomationRule(name=name or f"rule {order}", entity_id=entity.id if entity else None, trigger_event=trigger,
                          conditions=conditions, actions=clean, is_active=True, stop_processing=False,
                          execution_order=order, created_at=clock.now(), updated_at=clock.now())
    session.add(rule)
    # Saved in its own transaction, as the rules page does: the engine reads its rule index once per
    # transaction, so a rule added after an event ran in the same transaction would not be seen yet.
    session.commit()
    return rule


def last_log(session, rule) -> RuleExecution:
    return session.scalars(select(RuleExecution).where(RuleExecution.rule_id == rule.id)
                           .order_by(RuleExecution.id.desc())).first()


def refused(session, entity, actions) -> dict:
    with pytest.raises(DomainError) as caught:
        automation_actions.validate(session, entity, actions)
    return caught.value.errors


def mails(session, **where):
    query = select(QueuedEmail).order_by(QueuedEmail.id)
    for key, value in where.items():
        query = query.where(getattr(QueuedEmail, key) == value)
    return session.scalars(query).all()


@pytest.fixture
def desk(session):
    acme = make_entity("Acme", "acme", timezone="America/New_York")  # default hours: Mon-Fri 09-17
    dana = make_staff(acme, name="Dana", email="dana@acme.example", skills=["billing"])
    lee = make_staff(acme, name="Lee", email="lee@acme.example", skills=["hardware"])
    mara = make_staff(acme, role="manager", name="Mara", email="mara@acme.example")
    return acme, dana, lee, mara


# --- ticket fields ------------------------------------------------------------------------------

def test_assign_to_a_named_agent(session, desk):
    acme, dana, lee, _ = desk
    rule = add_rule(session, acme, [{"type": "assign", "strategy": "agent", "agent_id": str(lee.id)}])
    ticket = make_ticket(acme)
    assert ticket.assignee == lee
    audit = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                      TicketEvent.event == "assigned_to_changed")).one()
    assert audit.rule_id == rule.id and audit.changes == {"assignee_id": [None, lee.id]}
    assert last_log(session, rule).outcomes[0]["result"] == "Assign to Lee (0 open)."


def test_set_status_close_and_set_priority(session, desk):
    acme, dana, *_ = desk
    add_rule(session, acme, [{"type": "set_status", "status": "pending"}, {"type": "set_priority", "priority": "low"}],
             conditions={"all": [{"field": "subject", "op": "contains", "value": "later"}]}, order=1)
    spam = add_rule(session, acme, [{"type": "close"}],
                    conditions={"all": [{"field": "subject", "op": "contains", "value": "casino"}]}, order=2)
    waiting = make_ticket(acme, subject="Call me later")
    assert (waiting.status, waiting.priority) == ("pending", "low")
    junk = make_ticket(acme, subject="Win at the CASINO")
    assert junk.status == "closed"
    assert last_log(session, spam).outcomes[0]["result"] == "Set status to Closed."
    with pytest.raises(DomainError) as caught:
        tickets.add_reply(session, junk, actor=dana, body="hello")
    assert "closed" in caught.value.errors["body"]


def test_escalate_raises_the_level_emits_escalation_due_and_its_rules_and_email(session, desk):
    acme, dana, lee, mara = desk
    add_rule(session, acme, [{"type": "escalate", "reason": "VIP customer"}],
             conditions={"all": [{"field": "customer.domain", "op": "is", "value": "vip.example"}]})
    on_escalation = add_rule(session, acme, [{"type": "assign", "strategy": "agent", "agent_id": str(lee.id)},
                                             {"type": "add_note", "body": "Escalated to level {{ escalation_level }}"}],
                             trigger="escalation_due")
    ticket = make_ticket(acme, customer=make_customer(email="boss@vip.example"))
    assert ticket.escalation_level == 1
    event = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                      TicketEvent.event == "escalation_due")).one()
    assert event.changes["escalation_level"] == [0, 1] and event.changes["reason"] == "VIP customer"
    assert last_log(session, on_escalation).matched
    assert ticket.assignee == lee
    assert [r.body for r in ticket.replies if r.internal] == ["Escalated to level 1"]
    escalation_mail = mails(session, template_name="escalation-notification")
    assert [m.recipient_email for m in escalation_mail] == ["mara@acme.example"]


# --- communication ------------------------------------------------------------------------------

def test_send_email_to_the_chosen_recipients_never_twice_for_one_event(session, desk):
    acme, dana, lee, mara = desk
    rule = add_rule(session, acme, [
        {"type": "assign", "strategy": "agent", "agent_id": str(dana.id)},
        {"type": "send_email", "template": "ticket-assigned", "to": ["assignee", "customer"],
         "extra": "audit@partner.example"}])
    customer = make_customer(email="jo@example.com")
    ticket = make_ticket(acme, customer=customer)
    sent = mails(session, event="automation")
    assert sorted(m.recipient_email for m in sent) == ["audit@partner.example", "dana@acme.example", "jo@example.com"]
    assert all(m.template_name == "ticket-assigned" for m in sent)
    assert "mara@acme.example" not in {m.recipient_email for m in sent}
    to_customer = next(m for m in sent if m.recipient_email == "jo@example.com")
    assert ticket.number in to_customer.subject
    # The same event run again (a retried job, a replay): nobody is mailed a second time.
    created = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                        TicketEvent.event == "ticket_created")).one()
    tickets.assign(session, ticket, None, actor=dana)
    automation.run_event(session, ticket, "ticket_created", event_id=created.id, changes=created.changes,
                         actor=customer, rule_id=None, reply=None, now=clock.now())
    assert len(mails(session, event="automation")) == 3
    assert last_log(session, rule).matched


def test_add_note_is_templated_and_customers_never_see_it(session, client, desk):
    acme, *_ = desk
    add_rule(session, acme, [{"type": "add_note",
                              "body": "Big customer {{ customer_name }}\nTicket {{ ticket_number }}"}])
    customer = make_customer(name="Jo Big", email="jo@big.example")
    ticket = make_ticket(acme, customer=customer, body="My printer is on fire")
    (note,) = [r for r in ticket.replies if r.internal]
    assert note.body == f"Big customer Jo Big\nTicket {ticket.number}"
    assert note.author is None
    session.commit()
    login_customer(client, customer)
    page = text_of(client.get(f"/portal/tickets/{ticket.number}"))
    assert "My printer is on fire" in page
    assert "Big customer" not in page


def test_add_note_template_is_sandboxed_and_refused_with_a_line_number(session, desk):
    acme, *_ = desk
    errors = refused(session, acme, [{"type": "add_note", "body": "Hello\n{{ ''.__class__ }}"}])
    assert errors["actions[0].body"].startswith("Note: Line 2:")
    assert "unsafe" in errors["actions[0].body"]
    errors = refused(session, acme, [{"type": "add_note", "body": "{{ ticket_number "}])
    assert errors["actions[0].body"].startswith("Note: Line 1:")


def test_send_sms_is_refused_while_no_gateway_is_set(session, app, desk):
    acme, *_ = desk
    app.config["SMS_GATEWAY_URL"] = ""
    errors = refused(session, acme, [{"type": "send_sms", "to": "+33 6 12 34 56 78", "text": "Hi"}])
    assert errors == {"actions[0]": "SMS is off: set SMS_GATEWAY_URL to a gateway first."}


def test_send_sms_is_queued_as_a_delivery_row_through_the_gateway(session, app, desk):
    acme, *_ = desk
    app.config["SMS_GATEWAY_URL"] = "https://sms.example/send"
    errors = refused(session, acme, [{"type": "send_sms", "to": "0612", "text": "Hi"}])
    assert "international form" in errors["actions[0].to"]
    rule = add_rule(session, acme, [{"type": "send_sms", "to": "+33 6 12 34 56 78, +1 (212) 555-0100",
                                     "text": "Urgent ticket {{ ticket_number }}"}],
                    conditions={"all": [{"field": "priority", "op": "is", "value": "urgent"}]})
    ticket = make_ticket(acme, priority="urgent")
    rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(r.kind, r.recipient, r.url, r.status) for r in rows] == [
        ("sms", "+33612345678", "https://sms.example/send", "pending"),
        ("sms", "+12125550100", "https://sms.example/send", "pending")]
    assert json.loads(rows[0].body)["text"] == f"Urgent ticket {ticket.number}"
    assert rows[0].rule_id == rule.id and rows[0].ticket_id == ticket.id


def test_webhook_body_is_rendered_json_and_a_quoted_subject_cannot_inject(session, desk):
    acme, *_ = desk
    body = '{"text": "New: {{ ticket_subject }}", "number": "{{ ticket_number }}", "fixed": 1, "tags": ["a"]}'
    add_rule(session, acme, [{"type": "webhook", "url": "https://hooks.example/mets", "body": body, "secret": S3}])
    subject = 'He said "hi", "admin": true} \\ </script>'
    ticket = make_ticket(acme, subject=subject)
    row = session.scalars(select(WebhookDelivery)).one()
    assert row.kind == "webhook" and row.url == "https://hooks.example/mets" and row.secret == S3
    payload = json.loads(row.body)
    assert payload == {"text": f"New: {subject}", "number": ticket.number, "fixed": 1, "tags": ["a"]}
    assert "admin" not in payload


def test_webhook_without_a_body_sends_the_standard_payload(session, desk):
    acme, dana, *_ = desk
    add_rule(session, acme, [{"type": "webhook", "url": "https://hooks.example/mets"}])
    ticket = make_ticket(acme, category="billing")
    payload = json.loads(session.scalars(select(WebhookDelivery)).one().body)
    assert payload["event"] == "ticket_created"
    assert payload["ticket"]["number"] == ticket.number and payload["ticket"]["category"] == "billing"


# --- SLA ----------------------------------------------------------------------------------------

def test_extend_sla_moves_due_times_by_business_time(session, desk):
    acme, *_ = desk
    make_rule(acme, "Standard", response_minutes=240, resolution_minutes=480)
    add_rule(session, acme, [{"type": "extend_sla", "duration": "4h"}],
             conditions={"all": [{"field": "subject", "op": "contains", "value": "audit"}]})
    with clock.freeze(ny(2026, 11, 24, 10, 0)):  # Tuesday 10:00 New York
        plain = make_ticket(acme, subject="Hello")
        extended = make_ticket(acme, subject="Yearly audit")
    assert plain.sla_response_due == ny(2026, 11, 24, 14, 0)
    assert plain.sla_resolution_due == ny(2026, 11, 25, 10, 0)
    # 4 business hours later: past 17:00 on Tuesday, so into Wednesday morning, and Thursday's.
    assert extended.sla_response_due == ny(2026, 11, 25, 10, 0)
    assert extended.sla_resolution_due == ny(2026, 11, 25, 14, 0)


def test_switch_sla_keeps_the_ticket_on_the_rule_after_a_priority_change(session, desk):
    acme, dana, *_ = desk
    urgent = make_rule(acme, "Urgent", priority="urgent", response_minutes=30, position=0)
    make_rule(acme, "Standard", response_minutes=240, position=1)
    vip = make_rule(acme, "VIP", response_minutes=60, position=2,
                    conditions={"all": [{"field": "subject", "op": "contains", "value": "never-matches"}]})
    add_rule(session, acme, [{"type": "switch_sla", "rule_id": str(vip.id)}],
             conditions={"all": [{"field": "customer.domain", "op": "is", "value": "vip.example"}]})
    with clock.freeze(T0):
        theirs = make_ticket(acme, customer=make_customer(email="a@vip.example"))
        other = make_ticket(acme)
    assert theirs.sla_rule == vip and other.sla_rule.name == "Standard"
    tickets.update_fields(session, theirs, {"priority": "urgent"}, actor=dana)
    tickets.update_fields(session, other, {"priority": "urgent"}, actor=dana)
    assert theirs.sla_rule == vip  # switched by the rule: kept
    assert other.sla_rule == urgent  # not switched: the priority picks the rule again


# --- validation ---------------------------------------------------------------------------------

def test_wrong_parameters_get_clear_messages(session, desk):
    acme, dana, lee, _ = desk
    globex = make_entity("Globex", "globex")
    outsider = make_staff(globex, name="Otto")
    other_sla = make_rule(globex, "Globex SLA", response_minutes=60)
    errors = refused(session, acme, [
        {"type": "explode"},
        {"type": "assign", "strategy": "agent"},
        {"type": "assign", "strategy": "agent", "agent_id": str(outsider.id)},
        {"type": "extend_sla", "duration": "soon"},
        {"type": "webhook", "url": "ftp://hooks.example/x"},
        {"type": "webhook", "url": "https://hooks.example/x", "body": "{not json"},
        {"type": "webhook", "url": "https://hooks.example/x", "body": "[1, 2]"},
        {"type": "send_email", "template": "ticket-assigned"},
        {"type": "switch_sla", "rule_id": str(other_sla.id)},
        {"type": "set_priority", "priority": "critical"},
    ])
    assert errors["actions[0]"] == "Unknown action 'explode'."
    assert errors["actions[1].agent_id"] == "Agent: this is required."
    assert errors["actions[2].agent_id"] == "Otto is not a member of Acme."
    assert errors["actions[3].duration"].startswith('Cannot read "soon" as a duration.')
    assert errors["actions[4].url"] == "The URL must start with http:// or https://."
    assert errors["actions[5].body"].startswith("The body is not valid JSON (")
    assert errors["actions[6].body"] == 'The body must be a JSON object: {"key": "value"}.'
    assert errors["actions[7].to"] == "Choose who gets the email."
    assert errors["actions[8].rule_id"] == "Choose an active SLA rule this rule's entity uses."
    assert errors["actions[9].priority"] == "Priority: 'critical' is not a choice."
    inactive = make_staff(acme, name="Gone", active=False)
    assert refused(session, acme, [{"type": "assign", "strategy": "agent", "agent_id": str(inactive.id)}]) == {
        "actions[0].agent_id": "Choose an active agent."}
    assert refused(session, acme, []) == {"actions": "Add at least one action."}


# --- the assignment strategies ------------------------------------------------------------------

def test_round_robin_picks_who_waited_longest_and_rotates(session, desk):
    acme, dana, lee, mara = desk
    dana.last_assigned_at = T0 - timedelta(hours=1)
    lee.last_assigned_at = T0 - timedelta(hours=3)
    mara.last_assigned_at = T0 - timedelta(hours=2)
    make_staff(acme, name="Zed", active=False)  # never assigned, but inactive
    add_rule(session, acme, [{"type": "assign", "strategy": "round_robin"}])
    got = []
    for minute in range(5):
        with clock.freeze(T0 + timedelta(minutes=minute)):
            got.append(make_ticket(acme).assignee.name)
    assert got == ["Lee", "Mara", "Dana", "Lee", "Mara"]


def test_round_robin_gives_a_newcomer_the_next_ticket(session, desk):
    acme, dana, lee, mara = desk
    for n, agent in enumerate((dana, lee, mara)):
        agent.last_assigned_at = T0 - timedelta(minutes=n)
    newcomer = make_staff(acme, name="Nia")  # never assigned: has waited longest
    add_rule(session, acme, [{"type": "assign", "strategy": "round_robin"}])
    with clock.freeze(T0):
        assert make_ticket(acme).assignee == newcomer


@pytest.fixture
def sla_desk(session):
    acme = make_entity("Acme", "acme")
    make_rule(acme, "24/7", response_minutes=240, resolution_minutes=2880, business_hours_only=False)
    return acme


def give(session, entity, agent, count, status=None):
    """`count` tickets of `entity` assigned to `agent`, then moved to `status`."""
    for _ in range(count):
        ticket = make_ticket(entity, actor=agent, assignee=agent)
        if status:
            tickets.change_status(session, ticket, status, actor=agent)


def test_least_loaded_counts_only_tickets_whose_sla_clock_runs(session, sla_desk):
    acme = sla_desk
    busy = make_staff(acme, name="Busy")
    paused = make_staff(acme, name="Paused")
    give(session, acme, busy, 2)                       # two open, clocks running
    give(session, acme, paused, 1)                     # one running...
    give(session, acme, paused, 3, status="pending")   # ...three waiting on the customer (paused)
    give(session, acme, paused, 2, status="resolved")  # ...two done
    idle_but_gone = make_staff(acme, name="Idle", active=False)
    rule = add_rule(session, acme, [{"type": "assign", "strategy": "least_loaded"}])
    ticket = make_ticket(acme)
    assert ticket.assignee == paused
    assert last_log(session, rule).outcomes[0]["result"] == "Assign to Paused (1 open)."
    assert idle_but_gone.id != ticket.assignee_id


def test_by_skill_matches_the_category_in_any_case_then_least_loaded(session, sla_desk):
    acme = sla_desk
    senior = make_staff(acme, name="Senior", skills=["Billing", "refunds"])
    junior = make_staff(acme, name="Junior", skills=["billing"])
    make_staff(acme, name="Free", skills=["hardware"])  # no load, wrong skill
    give(session, acme, senior, 2)
    give(session, acme, junior, 1)
    rule = add_rule(session, acme, [{"type": "assign", "strategy": "skill"}])
    assert make_ticket(acme, category="BILLING").assignee == junior
    assert make_ticket(acme, category="Refunds").assignee == senior
    nobody = make_ticket(acme, category="plumbing")
    assert nobody.assignee is None
    log = last_log(session, rule)
    assert log.outcomes[0]["ok"] is False
    assert log.outcomes[0]["result"] == "Nobody to assign: no active agent of Acme has the skill 'plumbing'."


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded", "skill"])
def test_only_active_staff_members_of_the_tickets_entity_are_chosen(session, sla_desk, strategy):
    acme = sla_desk
    globex = make_entity("Globex", "globex")
    member = make_staff(acme, name="Member", skills=["billing"])
    give(session, acme, member, 3)
    member.last_assigned_at = clock.now()
    make_staff(acme, name="Inactive", skills=["billing"], active=False)
    make_staff(globex, name="Elsewhere", skills=["billing"])
    customer = make_customer(name="A Customer")
    add_rule(session, acme, [{"type": "assign", "strategy": strategy}])
    ticket = make_ticket(acme, customer=customer, category="billing")
    assert ticket.assignee == member


def test_a_department_ticket_may_go_to_a_member_of_its_parent(session, sla_desk):
    acme = sla_desk
    billing = make_entity("Acme Billing", "acme-billing", parent=acme)
    parent_agent = make_staff(acme, name="Parent agent")
    rule = add_rule(session, billing, [{"type": "assign", "strategy": "agent", "agent_id": str(parent_agent.id)}],
                    order=1)
    assert make_ticket(billing).assignee == parent_agent
    rule.is_active = False
    rule.updated_at = clock.now() + timedelta(seconds=1)
    session.commit()
    add_rule(session, acme, [{"type": "assign", "strategy": "least_loaded"}], order=2)
    assert make_ticket(billing).assignee == parent_agent


def test_a_named_agent_who_left_is_recorded_as_a_failure_and_the_ticket_stays(session, desk):
    acme, dana, lee, _ = desk
    rule = add_rule(session, acme, [{"type": "assign", "strategy": "agent", "agent_id": str(lee.id)},
                                    {"type": "set_priority", "priority": "high"}])
    lee.active = False
    session.flush()
    ticket = make_ticket(acme, subject="Still created")
    assert ticket.assignee is None and ticket.priority == "high"
    log = last_log(session, rule)
    assert log.error == "Assign: Nobody to assign: the chosen agent is not an active member of Acme."
    assert session.scalar(select(func.count()).select_from(QueuedEmail).where(
        QueuedEmail.template_name == "ticket-assigned", QueuedEmail.event == "automation")) == 0


# --- set category ---------------------------------------------------------------------------

def test_a_rule_sets_the_category_and_a_later_rule_assigns_by_skill(session, sla_desk):
    acme = sla_desk
    categories.add_category(session, acme, "Billing")
    billing_agent = make_staff(acme, name="Bill", skills=["billing"])
    make_staff(acme, name="Hal", skills=["hardware"])
    add_rule(session, acme, [{"type": "set_category", "category": "Billing"}], order=1,
             conditions={"all": [{"field": "subject", "op": "contains", "value": "invoice"}]})
    skill = add_rule(session, acme, [{"type": "assign", "strategy": "skill"}], order=2)
    ticket = make_ticket(acme, subject="Wrong VAT on my invoice")  # from the portal: no category asked
    assert (ticket.category, ticket.assignee) == ("Billing", billing_agent)
    assert last_log(session, skill).outcomes[0]["ok"] is True
    event = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                      TicketEvent.event == "ticket_updated")).first()
    assert event.changes["category"] == [None, "Billing"] and event.rule_id is not None  # audited as the rule's


def test_set_category_offers_and_accepts_only_the_entitys_categories(session, sla_desk):
    acme = sla_desk
    categories.add_category(session, acme, "Billing")
    kind = automation_actions.ACTIONS["set_category"]
    assert kind.params[0].options(session, acme) == [("Billing", "Billing")]
    errors = refused(session, acme, [{"type": "set_category", "category": "Plumbing"}])
    assert errors == {"actions[0].category": "Category: choose one of Acme's categories "
                                             "(Admin › Entities › Categories)."}
