"""The SLA rule pages: the list by entity, the form with the condition builder, reorder, activate, the test box."""
import html as html_module
import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from mets import clock
from mets.extensions import db
from mets.models import SlaRule
from mets.services.sla import admin as sla_rules
from tests.conftest import HTMX, login
from tests.web.helpers import textarea
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket
from tests.web.helpers import screen

NY = ZoneInfo("America/New_York")
CONDITIONS = {"all": [{"field": "subject", "op": "contains", "value": "refund"},
                      {"any": [{"field": "priority", "op": "in", "value": ["high", "urgent"]}]}]}


@pytest.fixture
def world(session, client):
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    billing = make_entity("Acme Billing", "billing", parent=acme, timezone="America/New_York")
    globex = make_entity("Globex", "globex", timezone="Europe/Paris")
    standard = make_rule(acme, "Standard", response_minutes=270, resolution_minutes=2880, position=0)
    urgent = make_rule(acme, "Urgent", priority="urgent", response_minutes=60, position=1)
    make_rule(globex, "Globex rule", resolution_minutes=600)
    admin = make_staff(name="Ada Admin", is_admin=True)
    manager = make_staff(acme, role="manager", name="Maria Manager")
    with clock.freeze(datetime(2026, 11, 27, 16, 55, tzinfo=NY)):  # a Friday
        ticket = make_ticket(billing, customer=make_customer(), subject="Refund for order 7")
        far = make_ticket(globex, customer=make_customer(), subject="Elsewhere")
    db.session.commit()
    login(client, admin)
    return {"acme": acme, "billing": billing, "globex": globex, "standard": standard, "urgent": urgent,
            "admin": admin, "manager": manager, "ticket": ticket, "far": far}



def input_value(response, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', response.get_data(as_text=True))
    value = re.search(r'value="([^"]*)"', match.group(0))
    return html_module.unescape(value.group(1)) if value else ""


def checked(response, name: str = "pause_statuses") -> list[str]:
    boxes = re.findall(rf'<input[^>]*name="{name}"[^>]*>', response.get_data(as_text=True))
    return [re.search(r'value="([^"]*)"', b).group(1) for b in boxes if re.search(r"\bchecked\b", b)]


def rule_form(world, **kw) -> dict:
    data = {"entity_id": str(world["acme"].id), "name": "Gold", "priority": "", "response": "1h 30m",
            "next_reply": "", "resolution": "2d", "business_hours_only": "y",
            "warnings": "80%, 30m before", "pause_statuses": ["pending"], "conditions": json.dumps(CONDITIONS)}
    data.update(kw)
    return data


def row_names(response) -> list[str]:
    return re.findall(r'<tr id="sla-rule-\d+"[^>]*>\s*<td[^>]*>\d+</td>\s*<td><a [^>]*>([^<]+)</a>',
                      response.get_data(as_text=True))


# --- the list ---------------------------------------------------------------------------------

def test_the_list_groups_rules_by_entity_in_tree_order(client, world):
    response = client.get("/admin/sla/")
    assert response.status_code == 200
    page = screen(response)
    assert page.index("Acme ") < page.index("Acme Billing") < page.index("Globex")
    assert "Standard Any 4h 30m — 2d Business Any ticket Active Deactivate" in page
    assert "Urgent Urgent 1h — — Business" in page
    assert "No rules: its tickets use Acme's rules." in page
    assert row_names(response) == ["Standard", "Urgent", "Globex rule"]
    assert 'href="/admin/sla/"' in response.get_data(as_text=True)  # the nav link


def test_pages_are_for_admins_only(client, world):
    client.post("/logout")
    login(client, world["manager"])
    for path in ("/admin/sla/", "/admin/sla/new", f"/admin/sla/{world['standard'].id}"):
        assert client.get(path).status_code == 404
    assert client.post(f"/admin/sla/{world['standard'].id}/move", data={"direction": "down"},
                       headers=HTMX).status_code == 404
    assert 'href="/admin/sla/"' not in client.get("/tickets/").get_data(as_text=True)


# --- create and edit --------------------------------------------------------------------------

def test_create_with_errors_keeps_the_input_in_place(client, world):
    bad = {"all": [{"field": "subject", "op": "contains", "value": "refund"},
                   {"field": "prioritee", "op": "is", "value": "high"}]}
    response = client.post("/admin/sla/new", data=rule_form(world, name="", response="soonish", resolution="",
                                                            warnings="200%", conditions=json.dumps(bad)))
    assert response.status_code == 422
    page = screen(response)
    assert "Name is required." in page
    assert 'Cannot read "soonish" as a duration.' in page
    assert '"200%": a percent warning is a whole number from 1% to 99%.' in page
    assert "Condition 2: unknown field 'prioritee'." in page
    assert input_value(response, "response") == "soonish" and input_value(response, "warnings") == "200%"
    assert json.loads(textarea(response.get_data(as_text=True))) == bad  # the conditions tree, as submitted
    assert checked(response) == ["pending"]
    assert db.session.query(SlaRule).count() == 3


def test_the_new_form_has_defaults_and_the_builder(client, world):
    response = client.get(f"/admin/sla/new?entity_id={world['billing'].id}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert re.search(rf'<option selected value="{world["billing"].id}">', body)
    assert input_value(response, "warnings") == "80%"
    assert checked(response) == ["pending"] and checked(response, "business_hours_only") == ["y"]
    assert "rule-builder" in body and json.loads(textarea(response.get_data(as_text=True))) == {"all": []}
    assert "Test against ticket" not in body  # only for a saved rule


def test_create_saves_and_goes_to_the_edit_page(client, world):
    response = client.post("/admin/sla/new", data=rule_form(world))
    assert response.status_code == 303
    rule = db.session.query(SlaRule).filter_by(name="Gold").one()
    assert response.location.endswith(f"/admin/sla/{rule.id}")
    assert (rule.response_minutes, rule.resolution_minutes, rule.position) == (90, 2880, 2)
    assert rule.warnings == [{"percent": 80}, {"minutes_before": 30}] and rule.conditions == CONDITIONS
    page = client.get(response.location)
    assert "Created “Gold”." in screen(page)
    assert input_value(page, "response") == "1h 30m" and json.loads(textarea(page.get_data(as_text=True))) == CONDITIONS


def test_edit_saves_and_retimes_open_tickets(client, world):
    ticket = world["ticket"]
    assert ticket.sla_rule_id == world["standard"].id
    assert ticket.sla_response_due == datetime(2026, 11, 30, 13, 25, tzinfo=NY)  # 4h 30m after Friday 16:55
    standard_id = world["standard"].id
    form = rule_form(world, name="Standard", response="4h", resolution="", conditions="")
    with clock.freeze(datetime(2026, 11, 27, 17, 0, tzinfo=NY)):
        response = client.post(f"/admin/sla/{standard_id}", data=form)
    assert response.status_code == 303 and response.location.endswith(f"/admin/sla/{standard_id}")
    db.session.expire_all()
    rule = db.session.get(SlaRule, standard_id)
    assert (rule.response_minutes, rule.resolution_minutes, rule.conditions) == (240, None, None)
    assert db.session.get(type(ticket), ticket.id).sla_response_due == datetime(2026, 11, 30, 12, 55, tzinfo=NY)


def test_edit_with_errors_is_422_and_keeps_the_edits(client, world):
    response = client.post(f"/admin/sla/{world['standard'].id}",
                           data=rule_form(world, response="", resolution="", escalation="",
                                          pause_statuses=["on_hold"]))
    assert response.status_code == 422
    assert "Set at least one target" in screen(response)
    assert checked(response) == ["on_hold"]
    assert json.loads(textarea(response.get_data(as_text=True))) == CONDITIONS
    db.session.expire_all()
    assert db.session.get(SlaRule, world["standard"].id).response_minutes == 270


def test_edit_without_csrf_is_refused(client, world):
    response = client.post(f"/admin/sla/{world['standard'].id}", data=rule_form(world), csrf=False)
    assert response.status_code == 400


# --- reorder and activate ---------------------------------------------------------------------

def test_move_answers_with_the_entitys_box(client, world):
    response = client.post(f"/admin/sla/{world['urgent'].id}/move", data={"direction": "up"}, headers=HTMX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<section class="card sla-entity" id="sla-entity-{world["acme"].id}"')
    assert row_names(response) == ["Urgent", "Standard"]
    assert "<html" not in body
    assert [r.name for r in sla_rules.rules_of(db.session, world["acme"])] == ["Urgent", "Standard"]
    assert client.post(f"/admin/sla/{world['urgent'].id}/move", data={"direction": "sideways"},
                       headers=HTMX).status_code == 400
    plain = client.post(f"/admin/sla/{world['urgent'].id}/move", data={"direction": "down"})
    assert plain.status_code == 303 and plain.location.endswith(f"/admin/sla/#sla-entity-{world['acme'].id}")


def test_deactivate_and_activate(client, world):
    rule_id = world["standard"].id
    response = client.post(f"/admin/sla/{rule_id}/active", data={"active": "0"}, headers=HTMX)
    assert response.status_code == 200
    assert "Standard Any 4h 30m — 2d Business Any ticket Inactive Activate" in screen(response)
    db.session.expire_all()
    assert not db.session.get(SlaRule, rule_id).is_active
    assert db.session.get(type(world["ticket"]), world["ticket"].id).sla_rule_id is None  # no other rule matches
    response = client.post(f"/admin/sla/{rule_id}/active", data={"active": "1", "back": "edit"})
    assert response.status_code == 303 and response.location.endswith(f"/admin/sla/{rule_id}")
    db.session.expire_all()
    assert db.session.get(SlaRule, rule_id).is_active


# --- the test box -----------------------------------------------------------------------------

def test_the_edit_page_has_the_builder_and_the_test_box(client, world):
    body = client.get(f"/admin/sla/{world['urgent'].id}").get_data(as_text=True)
    assert "rule-builder" in body and 'id="sla-test"' in body
    assert f'hx-post="/admin/sla/{world["urgent"].id}/test"' in body and 'hx-include="#sla-rule-form"' in body
    assert 'hx-trigger="input changed delay:400ms, submit' in body


def test_the_test_box_shows_the_rule_the_match_and_the_due_times(client, world):
    number = world["ticket"].number
    with clock.freeze(datetime(2026, 11, 27, 17, 30, tzinfo=NY)):
        response = client.post(f"/admin/sla/{world['standard'].id}/test", data={"ticket": number.lower()},
                               headers=HTMX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="sla-test-result"') and "<html" not in body
    page = screen(response)
    assert "Applies now: Standard (Acme) — this rule" in page
    assert f"This rule matches {number}." in page
    assert "First response due Mon 30 Nov 13:25 America/New_York (18:25 UTC)" in page
    assert "Resolution due Mon 07 Dec 16:55 America/New_York (21:55 UTC)" in page


def test_the_test_box_tests_the_form_as_edited(client, world):
    number = world["ticket"].number
    data = rule_form(world, name="Standard", response="4h", ticket=number)
    with clock.freeze(datetime(2026, 11, 27, 17, 30, tzinfo=NY)):
        response = client.post(f"/admin/sla/{world['standard'].id}/test", data=data, headers=HTMX)
    page = screen(response)
    assert f"This rule does not match {number} (as edited)." in page
    assert "✓ Subject contains refund — the ticket's: Refund for order 7" in page
    assert "✗ Priority is one of high, urgent — the ticket's: normal" in page
    assert "If saved as it stands: no rule would apply." in page
    assert "First response due Mon 30 Nov 12:55 America/New_York (17:55 UTC)" in page
    db.session.expire_all()
    assert db.session.get(SlaRule, world["standard"].id).response_minutes == 270  # nothing saved

    data["conditions"] = ""
    response = client.post(f"/admin/sla/{world['standard'].id}/test", data=data, headers=HTMX)
    assert "If saved as it stands: this rule would apply." in screen(response)


def test_the_test_box_explains_unknown_and_out_of_scope_numbers(client, world):
    url = f"/admin/sla/{world['standard'].id}/test"
    assert "Enter a ticket number" in screen(client.post(url, data={"ticket": ""}, headers=HTMX))
    assert "No ticket NOPE-1. Check the number" in screen(client.post(url, data={"ticket": "NOPE-1"}, headers=HTMX))
    far = world["far"].number
    page = screen(client.post(url, data={"ticket": far}, headers=HTMX))
    assert f"{far} is in Globex, outside Acme and the entities below it: this rule never applies to it." in page
    assert "Applies now: Globex rule" in page and "due" not in page.split("never applies")[1]


def test_the_test_box_without_htmx_answers_with_the_whole_page(client, world):
    response = client.post(f"/admin/sla/{world['standard'].id}/test", data={"ticket": world["ticket"].number})
    assert response.status_code == 200
    assert "<html" in response.get_data(as_text=True) and "Applies now: Standard" in screen(response)
    assert input_value(response, "ticket") == world["ticket"].number
