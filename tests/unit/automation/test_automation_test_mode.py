"""Test mode explains a rule on real tickets and writes, queues and sends nothing."""
from sqlalchemy import func, select

from mets.models import AutomationRule, QueuedEmail, Reply, RuleExecution, Ticket, TicketEvent, WebhookDelivery
from mets.services.automation import test_mode
from tests.factories import make_customer, make_entity, make_staff, make_ticket

TABLES = (Ticket, TicketEvent, Reply, QueuedEmail, WebhookDelivery, RuleExecution, AutomationRule)


def counts(session):
    return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in TABLES}


def test_test_mode_explains_each_condition_and_plans_each_action_without_writing(session, app):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    acme = make_entity("Acme", "acme")
    dana = make_staff(acme, name="Dana", skills=["billing"])
    make_staff(acme, role="manager", name="Mara", email="mara@acme.example")
    make_ticket(acme, actor=dana, customer=make_customer(), assignee=dana)  # Dana has 0 running-SLA tickets
    ticket = make_ticket(acme, customer=make_customer(email="ops@bigcustomer.example"), priority="urgent",
                         category="billing")
    draft = {"entity_id": acme.id, "trigger_event": "ticket_created",
             "conditions": {"all": [{"field": "priority", "op": "is", "value": "urgent"},
                                    {"any": [{"field": "customer.domain", "op": "is", "value": "bigcustomer.example"},
                                             {"field": "category", "op": "is", "value": "refunds"}]}]},
             "actions": [{"type": "assign", "strategy": "skill"}, {"type": "set_priority", "priority": "high"},
                         {"type": "send_email", "template": "ticket-assigned", "to": ["managers"]},
                         {"type": "webhook", "url": "https://hooks.example/mets", "secret": "whsec_czMtc2lnbmluZy1rZXktb2YtdHdlbnR5LWZvdXI="},
                         {"type": "add_note", "body": "Big customer {{ ticket_number }}"}]}
    before = counts(session)
    result = test_mode.test_rule(session, draft, ticket)
    assert counts(session) == before
    assert result.matched and result.in_scope
    leaves = result.explain["children"]
    assert leaves[0]["actual"] == "urgent" and leaves[0]["result"] is True
    inner = leaves[1]
    assert inner["group"] == "any" and inner["result"] is True
    assert [c["result"] for c in inner["children"]] == [True, False]
    assert inner["children"][0]["actual"] == "bigcustomer.example"
    texts = [a.text for a in result.actions]
    assert texts[0] == "assign to Dana (0 open)"
    assert texts[1] == "lower priority to High"
    assert texts[2] == "email ticket-assigned to mara@acme.example"
    assert texts[3].startswith("POST ") and texts[3].endswith("https://hooks.example/mets (signed)")
    assert texts[4] == f"add an internal note: \u201cBig customer {ticket.number}\u201d"

    many = test_mode.test_recent(session, draft)
    assert counts(session) == before
    assert [t.matched for t in many] == [True, False]


def test_test_mode_shows_why_a_draft_cannot_run(session):
    acme = make_entity("Acme", "acme")
    ticket = make_ticket(acme)
    draft = {"entity_id": None, "trigger_event": "status_changed",
             "conditions": {"all": [{"field": "nope", "op": "is", "value": "x"}]},
             "actions": [{"type": "set_status", "status": "bogus"}, {"type": "assign", "strategy": "agent"}]}
    result = test_mode.test_rule(session, draft, ticket)
    assert not result.matched
    assert "Condition 1: unknown field 'nope'" in result.errors["conditions"]
    assert "not a choice" in result.errors["actions[0].status"]
    assert "required" in result.errors["actions[1].agent_id"]
    assert ticket.number in result.event_note and "no status_changed event" in result.event_note
