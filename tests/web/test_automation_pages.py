"""The automation pages: the list (reorder, switch on/off, 7/30-day counts), the builder, test mode, a rule's page."""
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from mets import clock
from mets.extensions import db
from mets.models import AutomationRule, QueuedEmail, Reply, RuleExecution, Ticket, TicketEvent, WebhookDelivery
from mets.services.automation import admin as automation_rules
from tests.conftest import HTMX, count_rows, login
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.web.helpers import screen

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
CONDITIONS = {"all": [{"field": "priority", "op": "is", "value": "urgent"},
                      {"any": [{"field": "subject", "op": "contains", "value": "refund"},
                               {"field": "customer.email", "op": "ends_with", "value": "@vip.example"}]}]}
ACTIONS = [{"type": "set_priority", "priority": "high"}, {"type": "add_note", "body": "Watch {{ ticket_number }}"}]
SIGNING_KEY = "whsec_czNjcjN0LXNpZ25pbmcta2V5LW9mLXR3ZW50eS1mb3Vy"  # a Standard Webhooks secret
WRITES = (Ticket, TicketEvent, Reply, QueuedEmail, WebhookDelivery, RuleExecution, AutomationRule)


@pytest.fixture
def world(session, client):
    clock.set_now(NOW)
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    admin = make_staff(name="Ada Admin", is_admin=True)
    dana = make_staff(acme, name="Dana Agent")
    ticket = make_ticket(billing, customer=make_customer(email="kim@vip.example"), subject="Please refund me",
                         priority="urgent")
    other = make_ticket(globex, subject="Elsewhere")
    db.session.commit()
    login(client, admin)
    return {"acme": acme, "billing": billing, "globex": globex, "admin": admin, "dana": dana, "ticket": ticket,
            "other": other}


def rule_form(world, **kw) -> dict:
    data = {"name": "Urgent refunds", "entity_id": str(world["acme"].id), "trigger_event": "ticket_created",
            "conditions": json.dumps(CONDITIONS), "actions": json.dumps(ACTIONS)}
    data.update(kw)
    return data


def make_auto(world, name="Rule", trigger="ticket_created", **kw) -> AutomationRule:
    data = {"name": name, "entity_id": "", "trigger_event": trigger, "conditions": "", "actions": json.dumps(ACTIONS)}
    data.update(kw)
    rule = automation_rules.create_rule(db.session, data, world["admin"])
    db.session.commit()
    return rule


def execution(rule, at, matched=True, actions_run=0, error=None, ticket=None):
    db.session.add(RuleExecution(rule_id=rule.id, ticket_id=ticket.id if ticket else None, event=rule.trigger_event,
                                 matched=matched, actions_run=actions_run, error=error, at=at, duration_ms=1.5,
                                 outcomes=[{"type": "set_priority", "label": "Set priority",
                                            "result": "raise priority to High", "ok": True}] if matched else []))


# --- create, edit, validation -------------------------------------------------------------------

def test_admin_creates_a_rule_that_starts_off(world, client):
    response = client.post("/admin/automation/new", data=rule_form(world))
    assert response.status_code == 303
    rule = db.session.scalars(db.select(AutomationRule)).one()
    assert response.location.endswith(f"/admin/automation/{rule.id}/edit")
    assert (rule.name, rule.entity_id, rule.trigger_event) == ("Urgent refunds", world["acme"].id, "ticket_created")
    assert rule.conditions == CONDITIONS and rule.actions == ACTIONS
    assert rule.is_active is False and rule.stop_processing is False
    assert rule.execution_order == 10 and rule.updated_by_id == world["admin"].id

    page = client.get(response.location)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'data-rb-registry="automation"' in body  # the shared condition builder, automation vocabulary
    assert body.count("data-action-row") == 2
    assert "Test mode writes nothing" in screen(page)


def test_edit_saves_and_records_who_and_when(world, client):
    rule = make_auto(world, "Old name")
    later = NOW + timedelta(hours=2)
    clock.set_now(later)
    response = client.post(f"/admin/automation/{rule.id}/edit",
                           data=rule_form(world, name="New name", entity_id="", stop_processing="y", is_active="y"))
    assert response.status_code == 303
    db.session.expire_all()
    assert (rule.name, rule.entity_id, rule.stop_processing, rule.is_active) == ("New name", None, True, True)
    assert rule.updated_at == later and rule.updated_by_id == world["admin"].id


def test_errors_keep_every_value_and_sit_under_the_field_at_fault(world, client):
    actions = [{"type": "set_priority", "priority": "high"}, {"type": "assign", "strategy": "agent"},
               {"type": "send_email", "template": "ticket-assigned"}]
    response = client.post("/admin/automation/new",
                           data=rule_form(world, name="", trigger_event="bogus", actions=json.dumps(actions)))
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    text = screen(response)
    assert "Name is required." in text
    assert "Choose the event that runs the rule." in text
    # The agent field of the second action and the recipients of the third, each under its own field.
    agent = re.search(r'<div class="field ac-param has-error" data-param="agent_id".*?</div>', body, re.S).group(0)
    assert "Agent: this is required." in agent
    assert "Choose who gets the email." in body
    assert body.count("data-action-row") == 3
    assert '<option value="high" selected>' in body  # the first action's value is kept
    assert json.loads(re.search(r'<textarea class="rb-json" name="conditions" hidden>(.*?)</textarea>', body, re.S)
                      .group(1).replace("&#34;", '"').replace("&quot;", '"')) == CONDITIONS
    assert db.session.scalar(db.select(db.func.count()).select_from(AutomationRule)) == 0


@pytest.mark.parametrize("actions, message", [
    ("[", "The actions are not valid JSON"),
    ("[]", "Add at least one action"),
    ('{"type": "close"}', "The actions must be a list of actions."),
])
def test_actions_that_cannot_be_read_are_named(world, client, actions, message):
    response = client.post("/admin/automation/new", data=rule_form(world, actions=actions))
    assert response.status_code == 422
    assert message in screen(response)


def test_bad_conditions_are_named(world, client):
    bad = {"all": [{"field": "nope", "op": "is", "value": "x"}]}
    response = client.post("/admin/automation/new", data=rule_form(world, conditions=json.dumps(bad)))
    assert response.status_code == 422
    assert "nope" in screen(response)


def test_action_row_redraws_for_the_new_type_keeping_id_and_values(world, client):
    data = {"row": "acr0a1b2c", "ac-acr0a1b2c-type": "assign", "ac-acr0a1b2c-strategy": "agent",
            "entity_id": str(world["acme"].id)}
    response = client.post("/admin/automation/action-row", data=data, headers=HTMX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'id="acr0a1b2c"' in body
    assert '<option value="agent" selected>' in body
    agent = re.search(r'<div class="field ac-param" data-param="agent_id"[^>]*>', body).group(0)
    assert "hidden" not in agent and "data-show-if" in agent  # shown: the strategy is "agent"
    assert "Dana Agent" in body  # Acme's members are the choices
    new = client.post("/admin/automation/action-row", data={"type": ""}, headers=HTMX)
    assert "Choose an action" in new.get_data(as_text=True)
    assert client.post("/admin/automation/action-row", data={"row": "<script>"}, headers=HTMX).status_code == 400


# --- the list: order, switch, delete ------------------------------------------------------------

def orders(*rules):
    db.session.expire_all()
    return [r.execution_order for r in rules]


def test_reorder_all_or_one_trigger_list(world, client):
    a, b, c = (make_auto(world, n) for n in "abc")
    d = make_auto(world, "d", trigger="reply_added")
    response = client.post("/admin/automation/reorder", data={"ids": [c.id, a.id, d.id, b.id]}, headers=HTMX)
    assert response.status_code == 200 and 'id="automation-list"' in response.get_data(as_text=True)
    assert orders(c, a, d, b) == [10, 20, 30, 40]
    # One trigger's list: only those rules move, within the slots they hold.
    client.post("/admin/automation/reorder", data={"ids": [b.id, c.id, a.id]}, headers=HTMX)
    assert orders(b, c, d, a) == [10, 20, 30, 40]
    # A no-JS form post redirects back to the list.
    response = client.post("/admin/automation/reorder", data={"ids": [a.id, b.id]})
    assert response.status_code == 303


def test_reorder_refuses_unknown_or_repeated_ids(world, client):
    a, b = make_auto(world, "a"), make_auto(world, "b")
    for ids in ([a.id, 999999], [a.id, a.id], ["x"], []):
        response = client.post("/admin/automation/reorder", data={"ids": ids}, headers=HTMX)
        assert response.status_code == 422
        assert "reload the page" in screen(response)
    assert orders(a, b) == [10, 20]


def test_list_has_up_down_buttons_that_send_the_swapped_order(world, client):
    a, b = make_auto(world, "First"), make_auto(world, "Second")
    body = client.get("/admin/automation/").get_data(as_text=True)
    down = re.search(r'<form[^>]*reorder[^>]*class="inline">(?:(?!</form>).)*aria-label="Move First down"', body, re.S)
    assert re.findall(r'name="ids" value="(\d+)"', down.group(0)) == [str(b.id), str(a.id)]
    assert "data-sortable-rules" in body and "drag-handle" in body


def test_switch_on_and_off(world, client):
    rule = make_auto(world, "Toggle me")
    response = client.post(f"/admin/automation/{rule.id}/active", data={"active": "1"}, headers=HTMX)
    assert response.status_code == 200 and "Switch off Toggle me" in response.get_data(as_text=True)
    db.session.expire_all()
    assert rule.is_active
    response = client.post(f"/admin/automation/{rule.id}/active", data={"active": "0"})
    assert response.status_code == 303
    db.session.expire_all()
    assert not rule.is_active


def test_delete(world, client):
    rule = make_auto(world, "Doomed")
    execution(rule, NOW)
    db.session.commit()
    response = client.post(f"/admin/automation/{rule.id}/delete")
    assert response.status_code == 303 and response.location.endswith("/admin/automation/")
    assert count_rows(db.session, AutomationRule) == 0 and count_rows(db.session, RuleExecution) == 0


def test_post_without_csrf_is_refused(world, client):
    rule = make_auto(world, "Safe")
    for url, data in ((f"/admin/automation/{rule.id}/active", {"active": "1"}), ("/admin/automation/new",
                      rule_form(world)), ("/admin/automation/test", {"test_ticket": world["ticket"].number})):
        assert client.post(url, data=data, csrf=False).status_code == 400
    db.session.expire_all()
    assert not rule.is_active and count_rows(db.session, AutomationRule) == 1


# --- analytics ----------------------------------------------------------------------------------

def test_counts_over_7_and_30_days_and_last_fired(world, client):
    rule, quiet = make_auto(world, "Busy"), make_auto(world, "Quiet")
    t = world["ticket"]
    execution(rule, NOW - timedelta(hours=1), matched=True, actions_run=2, ticket=t)
    execution(rule, NOW - timedelta(days=2), matched=False)
    execution(rule, NOW - timedelta(days=7), matched=True, actions_run=1, error="boom")  # the 7-day edge counts
    execution(rule, NOW - timedelta(days=7, seconds=1), matched=True, actions_run=3)   # 30 days only
    execution(rule, NOW - timedelta(days=30), matched=False, error="old")             # the 30-day edge counts
    execution(rule, NOW - timedelta(days=31), matched=True, actions_run=5)            # neither
    db.session.commit()
    found = automation_rules.stats(db.session, [rule.id, quiet.id], NOW)
    week, month = found[rule.id].week, found[rule.id].month
    assert (week.evaluated, week.matched, week.actions_run, week.errors) == (3, 2, 3, 1)
    assert (month.evaluated, month.matched, month.actions_run, month.errors) == (5, 3, 6, 2)
    assert found[rule.id].last_fired == NOW - timedelta(hours=1)
    assert found[quiet.id].last_fired is None and found[quiet.id].week.evaluated == 0

    text = screen(client.get("/admin/automation/"))
    assert "3 evaluated 2 matched 3 actions 1 error 5 evaluated 3 matched 6 actions 2 errors 1h ago" in text
    assert "never" in text


def test_rule_page_shows_settings_counts_and_executions(world, client):
    rule = make_auto(world, "Shown", conditions=json.dumps(CONDITIONS), entity_id=str(world["acme"].id))
    execution(rule, NOW - timedelta(minutes=5), matched=True, actions_run=1, ticket=world["ticket"])
    execution(rule, NOW - timedelta(minutes=3), matched=False, error="Nobody to assign", ticket=world["other"])
    db.session.commit()
    response = client.get(f"/admin/automation/{rule.id}")
    assert response.status_code == 200
    text = screen(response)
    assert "Acme and the entities below it" in text
    assert "Priority is urgent and (Subject contains refund or" in text
    assert "Set priority to High" in text and "Add an internal note" in text
    assert "raise priority to High" in text and "Nobody to assign" in text
    assert world["ticket"].number in text and world["other"].number in text
    assert text.index(world["other"].number) < text.index(world["ticket"].number)  # newest first


def test_list_groups_by_trigger_and_filters(world, client):
    make_auto(world, "On create", conditions=json.dumps(CONDITIONS), stop_processing="y")
    make_auto(world, "On reply", trigger="reply_added")
    text = screen(client.get("/admin/automation/"))
    assert "Ticket created 1 rule" in text and "Reply added 1 rule" in text
    assert "All entities" in text and "Stops processing" in text
    assert "Priority is urgent and (Subject contains refund or" in text
    assert "Set priority to High" in text
    filtered = screen(client.get("/admin/automation/?trigger=reply_added", headers=HTMX))
    assert "On reply" in filtered and "On create" not in filtered


# --- test mode ----------------------------------------------------------------------------------

def counts():
    return {m.__tablename__: count_rows(db.session, m) for m in WRITES}


def test_test_mode_explains_a_ticket_and_writes_nothing(world, client):
    rule = make_auto(world, "Draft")
    before = counts()
    data = {**rule_form(world), "test_ticket": world["ticket"].number, "test_event": ""}
    response = client.post("/admin/automation/test", data=data, headers=HTMX)
    assert response.status_code == 200
    assert counts() == before
    text = screen(response)
    assert "This rule matches" in text
    assert "Priority is urgent — the ticket's: urgent" in text
    assert "Subject contains refund — the ticket's: Please refund me" in text
    assert "Set priority: lower priority to High" in text
    assert f"Add an internal note: add an internal note: “Watch {world['ticket'].number}”" in text

    recent = client.post("/admin/automation/test", data={**rule_form(world), "test_recent": "1"}, headers=HTMX)
    assert recent.status_code == 200 and counts() == before
    text = screen(recent)
    assert "1 of the last 1 tickets match" in text  # Globex's ticket is outside Acme
    assert rule.id  # the saved rule is untouched by testing a draft


def test_test_mode_shows_a_drafts_problems_with_200(world, client):
    before = counts()
    data = {**rule_form(world, actions=json.dumps([{"type": "assign", "strategy": "agent"}]),
                        conditions=json.dumps({"all": [{"field": "priority", "op": "is", "value": "low"}]})),
            "test_ticket": world["ticket"].number}
    response = client.post("/admin/automation/test", data=data, headers=HTMX)
    assert response.status_code == 200 and counts() == before
    text = screen(response)
    assert "does not match" in text and "Priority is low — the ticket's: urgent" in text
    assert "Agent: this is required." in text
    broken = client.post("/admin/automation/test", data={**rule_form(world, actions="["),
                                                          "test_ticket": "NOPE-1"}, headers=HTMX)
    assert broken.status_code == 200
    assert "not valid JSON" in screen(broken) and "No ticket NOPE-1" in screen(broken)


def test_a_saved_webhook_secret_never_reaches_the_page_and_is_kept_on_save(world, client):
    hook = [{"type": "webhook", "url": "https://hooks.example/mets", "secret": SIGNING_KEY}]
    rule = make_auto(world, actions=json.dumps(hook))
    page = client.get(f"/admin/automation/{rule.id}/edit").get_data(as_text=True)
    assert SIGNING_KEY not in page
    assert automation_rules.SECRET_KEPT in page

    # Saved as shown (the secret untouched): the stored secret stays.
    shown = [{**hook[0], "secret": automation_rules.SECRET_KEPT}]
    response = client.post(f"/admin/automation/{rule.id}/edit",
                           data=rule_form(world, name="Rule", entity_id="", actions=json.dumps(shown)))
    assert response.status_code == 303
    db.session.refresh(rule)
    assert rule.actions[0]["secret"] == SIGNING_KEY

    # The URL changed: the old secret is not sent to the new address; the admin must enter one.
    moved = [{**shown[0], "url": "https://elsewhere.example/hook"}]
    response = client.post(f"/admin/automation/{rule.id}/edit",
                           data=rule_form(world, name="Rule", entity_id="", actions=json.dumps(moved)))
    assert response.status_code == 422
    assert "enter the signing secret again" in screen(response)
    db.session.refresh(rule)
    assert rule.actions[0]["url"] == "https://hooks.example/mets"


def test_a_webhook_secret_must_be_a_whsec_secret(world, client):
    hook = [{"type": "webhook", "url": "https://hooks.example/mets", "secret": "plain-old-secret"}]
    response = client.post("/admin/automation/new", data=rule_form(world, name="Hook", entity_id="",
                                                                    actions=json.dumps(hook)))
    assert response.status_code == 422
    assert "Enter a Standard Webhooks secret: whsec_" in screen(response)
