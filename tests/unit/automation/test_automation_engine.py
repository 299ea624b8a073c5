"""The automation engine: rules run in the change's transaction, in order, once, with their effects audited."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mets import clock
from mets.models import AutomationRule, QueuedEmail, Reply, RuleExecution, TicketEvent
from mets.services import tickets
from tests.factories import make_customer, make_entity, make_staff, make_ticket


def add_rule(session, entity, trigger="ticket_created", conditions=None, actions=(), order=10, stop=False,
             name=None, active=True):
    rule = AutomationRule(name=name or f"rule {order}", entity_id=entity.id if entity else None,
                          trigger_event=trigger, conditions=conditions, actions=list(actions), is_active=active,
                          stop_processing=stop, execution_order=order, created_at=clock.now(), updated_at=clock.now())
    session.add(rule)
    session.flush()
    return rule


def executions(session, rule):
    return session.scalars(select(RuleExecution).where(RuleExecution.rule_id == rule.id)
                           .order_by(RuleExecution.id)).all()


@pytest.fixture
def desk(session):
    acme = make_entity("Acme", "acme")
    dana = make_staff(acme, name="Dana", skills=["billing"])
    lee = make_staff(acme, name="Lee", skills=["hardware"])
    boss = make_staff(acme, role="manager", name="Mara Manager", email="mara@acme.example")
    return acme, dana, lee, boss


def test_the_done_when_rule_assigns_by_skill_raises_priority_and_emails_the_manager(session, desk):
    acme, dana, lee, boss = desk
    rule = add_rule(session, acme, conditions={"all": [
        {"field": "priority", "op": "is", "value": "urgent"},
        {"field": "category", "op": "is", "value": "billing"},
        {"field": "customer.domain", "op": "ends_with", "value": "bigcustomer.example"}]},
        actions=[{"type": "assign", "strategy": "skill"}, {"type": "set_priority", "priority": "high"},
                 {"type": "send_email", "template": "ticket-assigned", "to": ["managers"]}])
    big = make_customer(email="ops@bigcustomer.example")
    ticket = make_ticket(acme, customer=big, priority="urgent", category="Billing")
    assert ticket.assignee == dana
    assert ticket.priority == "high"
    mails = session.scalars(select(QueuedEmail).where(QueuedEmail.template_name == "ticket-assigned",
                                                      QueuedEmail.event == "automation")).all()
    assert [m.recipient_email for m in mails] == ["mara@acme.example"]
    (log,) = executions(session, rule)
    assert log.matched and log.actions_run == 3 and log.error is None
    assert [o["ok"] for o in log.outcomes] == [True, True, True]
    audit = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                      TicketEvent.rule_id == rule.id)).all()
    assert {e.event for e in audit} == {"assigned_to_changed", "priority_changed"}

    other = make_ticket(acme, customer=make_customer(email="x@small.example"), priority="urgent", category="billing")
    assert other.assignee is None and other.priority == "urgent"
    assert [e.matched for e in executions(session, rule)] == [True, False]


def test_a_failing_action_is_recorded_and_the_change_and_other_actions_stand(session, desk):
    acme, *_ = desk
    rule = add_rule(session, acme, actions=[{"type": "assign", "strategy": "skill"},
                                            {"type": "set_priority", "priority": "high"}])
    ticket = make_ticket(acme, category="plumbing", subject="Leak")
    assert ticket.id is not None and ticket.subject == "Leak"
    assert ticket.priority == "high"
    (log,) = executions(session, rule)
    assert log.outcomes[0]["ok"] is False and "plumbing" in log.outcomes[0]["result"]
    assert "Assign" in log.error and log.actions_run == 1


def test_rules_run_in_order_and_stop_processing_stops_the_rest(session, desk):
    acme, *_ = desk
    first = add_rule(session, acme, order=10, actions=[{"type": "set_priority", "priority": "low"}], stop=True)
    second = add_rule(session, acme, order=20, actions=[{"type": "set_priority", "priority": "urgent"}])
    ticket = make_ticket(acme)
    assert ticket.priority == "low"
    assert len(executions(session, first)) == 1 and executions(session, second) == []
    first.stop_processing = False
    first.updated_at = clock.now() + timedelta(seconds=1)
    session.flush()
    later = make_ticket(acme)
    assert later.priority == "urgent"  # both ran, the later one last


def test_a_rule_of_one_entity_never_touches_another_entitys_tickets(session, desk):
    acme, *_ = desk
    globex = make_entity("Globex", "globex")
    make_staff(globex)
    rule = add_rule(session, acme, actions=[{"type": "set_priority", "priority": "urgent"}])
    theirs = make_ticket(globex)
    assert theirs.priority == "normal" and executions(session, rule) == []
    dept = make_entity("Acme Billing", "acme-billing", parent=acme)
    ours = make_ticket(dept)
    assert ours.priority == "urgent"  # a rule of a company covers its departments


def test_a_rule_does_not_refire_on_its_own_change_and_chains_stop_at_the_depth_limit(session, desk, app):
    acme, *_ = desk
    selfish = add_rule(session, acme, "priority_changed", actions=[{"type": "escalate"}], order=1,
                       conditions={"all": [{"field": "priority", "op": "changed"}]})
    # escalate -> escalation_due -> raise priority -> priority_changed -> (selfish is running: skipped)
    raiser = add_rule(session, acme, "escalation_due", actions=[{"type": "set_priority", "priority": "urgent"}])
    ticket = make_ticket(acme)
    agent = make_staff(acme)
    tickets.update_fields(session, ticket, {"priority": "high"}, actor=agent)
    assert ticket.escalation_level == 1 and ticket.priority == "urgent"
    assert len(executions(session, selfish)) == 1 and len(executions(session, raiser)) == 1

    # A chain of distinct rules longer than the limit stops, and says so.
    app.config["AUTOMATION_MAX_DEPTH"] = 3
    [add_rule(session, acme, "reply_added", name=f"chain {i}", order=100 + i,
                      actions=[{"type": "add_note", "body": f"note {i}"}]) for i in range(5)]
    tickets.add_reply(session, ticket, actor=agent, body="hello")
    ran = session.scalars(select(RuleExecution).where(RuleExecution.event == "reply_added",
                                                      RuleExecution.matched.is_(True))).all()
    assert {r.depth for r in ran} == {1, 2, 3}  # each note is a reply the other rules react to, 3 levels deep
    notes = session.scalar(select(func.count()).select_from(Reply).where(Reply.ticket_id == ticket.id,
                                                                         Reply.internal.is_(True)))
    assert notes == len(ran)
    stopped = session.scalars(select(RuleExecution).where(RuleExecution.error.like("Not run:%"))).all()
    assert stopped and all("levels deep" in s.error for s in stopped)


def test_an_agents_change_is_never_undone_by_a_rule(session, desk):
    acme, dana, *_ = desk
    add_rule(session, acme, "ticket_updated", actions=[{"type": "set_priority", "priority": "high"}])
    add_rule(session, acme, "priority_changed", actions=[{"type": "set_priority", "priority": "high"}], order=20)
    ticket = make_ticket(acme, priority="high")
    tickets.update_fields(session, ticket, {"priority": "low"}, actor=dana)
    assert ticket.priority == "low"
    log = session.scalars(select(RuleExecution).where(RuleExecution.event == "priority_changed")).one()
    assert log.outcomes[0]["skipped"] and "Dana" in log.outcomes[0]["result"]


def test_rules_that_are_off_or_on_another_trigger_do_nothing(session, desk):
    acme, *_ = desk
    add_rule(session, acme, active=False, actions=[{"type": "set_priority", "priority": "urgent"}])
    add_rule(session, acme, "reply_added", actions=[{"type": "set_priority", "priority": "urgent"}])
    ticket = make_ticket(acme)
    assert ticket.priority == "normal"
    assert session.scalar(select(func.count()).select_from(RuleExecution)) == 0


def test_the_execution_log_is_pruned_after_the_configured_days(session, desk, app):
    from mets import jobs

    acme, *_ = desk
    rule = add_rule(session, acme, actions=[{"type": "set_priority", "priority": "high"}])
    make_ticket(acme)
    old = RuleExecution(rule_id=rule.id, event="ticket_created", matched=True, outcomes=[], actions_run=1,
                        at=clock.now() - timedelta(days=91))
    session.add(old)
    session.commit()
    assert "1 old executions removed" in jobs.automation_log_prune()
    left = session.scalars(select(RuleExecution)).all()
    assert len(left) == 1 and left[0].at > clock.now() - timedelta(days=1)


def test_a_new_order_saved_in_the_pages_is_what_the_engine_runs_next(session, desk):
    from mets.services.automation import admin as automation_rules

    acme, *_ = desk
    low = add_rule(session, acme, order=10, actions=[{"type": "set_priority", "priority": "low"}], name="low")
    high = add_rule(session, acme, order=20, actions=[{"type": "set_priority", "priority": "high"}], name="high")
    session.commit()
    assert make_ticket(acme).priority == "high"  # the later rule has the last word
    session.commit()
    automation_rules.reorder(session, [high.id, low.id])
    session.commit()
    assert make_ticket(acme).priority == "low"
