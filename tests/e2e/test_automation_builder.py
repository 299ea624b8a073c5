"""End to end, in Chromium: an admin builds an automation rule in the page, tests it live, switches it on, and a
customer's portal request triggers it.

Set AUTOMATION_SCREENSHOT=/path.png to keep a screenshot of the builder with test mode.
"""
import json
import os
import re

import pytest

from mets.extensions import db
from mets.services.automation import admin as automation_rules
from mets.services.directory import portal_auth
from tests.e2e.helpers import expect, settled
from tests.factories import PASSWORD, make_customer, make_entity, make_staff, make_ticket

pytestmark = pytest.mark.e2e


def set_condition(row, page, field, op, value=None, checks=()):
    """Fill one builder row (each change redraws the row through htmx, so settle between them)."""
    row.get_by_label("Field").select_option(field)
    settled(page)
    row.get_by_label("Operator").select_option(op)
    settled(page)
    if value is not None:
        row.get_by_label("Value").fill(value)
        row.get_by_label("Value").press("Tab")
    for label in checks:
        row.get_by_label(label, exact=True).check()
    settled(page)


def add_action(page, type_name):
    page.get_by_role("button", name="+ Add action").click()
    settled(page)
    row = page.locator("#ac-rows > li").nth(page.locator("#ac-rows > li").count() - 1)  # fixed, not "last"
    row.get_by_label("Action", exact=True).select_option(type_name)
    settled(page)
    return row


def saved_actions(page) -> list:
    return json.loads(page.locator("textarea.ac-json").input_value())


def test_admin_builds_tests_and_switches_on_a_rule_that_fires_on_a_portal_request(live_server, page, browser):
    with live_server.app_context():
        acme = make_entity("Acme Support", "acme")
        admin = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
        vip = make_customer("Vera Vip", "vera@vip.example")
        sample = make_ticket(acme, customer=vip, subject="Refund for order 7", priority="high")
        for name in ("Alpha", "Beta"):
            automation_rules.create_rule(db.session, {"name": name, "trigger_event": "ticket_created",
                                                      "actions": [{"type": "escalate"}]}, admin)
        db.session.commit()
        sample_number, admin_email = sample.number, admin.email
        token = portal_auth.make_token(live_server.app.secret_key, vip.email)

    page.goto("/login")
    page.get_by_label("Email").fill(admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Automation").click()
    # The list reorders by dragging a row's handle (and saves the order at once).
    rows = page.locator("#ac-trigger-ticket_created tbody tr")
    expect(rows.first).to_contain_text("Alpha")
    rows.nth(1).locator(".drag-handle").drag_to(rows.nth(0).locator(".drag-handle"))
    expect(rows.first).to_contain_text("Beta")
    settled(page)
    page.reload()
    expect(rows.first).to_contain_text("Beta")
    page.locator(".page-head").get_by_role("link", name="New rule").click()

    page.get_by_label("Name", exact=True).fill("VIP refunds go urgent")
    page.get_by_label("Entity").select_option(label="Acme Support")
    page.get_by_label("When", exact=True).select_option("ticket_created")

    # If: subject contains "refund", and (priority is high or urgent), and (customer email ends with @vip.example
    # or the subject contains "chargeback"): two nested groups.
    root = page.locator(".rb-root")
    root.locator(":scope > .rb-actions").get_by_role("button", name="+ Condition").click()
    settled(page)
    set_condition(root.locator(":scope > .rb-items > .rb-row").first, page, "subject", "contains", "refund")
    for _ in range(2):
        root.locator(":scope > .rb-actions").get_by_role("button", name="+ Group").click()
        settled(page)
    first, second = (root.locator(":scope > .rb-items > .rb-group").nth(i) for i in (0, 1))
    set_condition(first.locator(".rb-row").first, page, "priority", "in", checks=("High", "Urgent"))
    first.get_by_label("How these conditions combine").select_option("any")
    second.get_by_label("How these conditions combine").select_option("any")
    set_condition(second.locator(".rb-row").first, page, "customer.email", "ends_with", "@vip.example")
    second.locator(":scope > .rb-actions").get_by_role("button", name="+ Condition").click()
    settled(page)
    set_condition(second.locator(".rb-row").nth(1), page, "subject", "contains", "chargeback")

    # Then: a note first and the priority second, then dragged into the other order.
    note = add_action(page, "add_note")
    note.get_by_label("Note").fill("VIP refund {{ ticket_number }}: call the customer today.")
    priority = add_action(page, "set_priority")
    priority.get_by_label("Priority").select_option("urgent")
    assert [a["type"] for a in saved_actions(page)] == ["add_note", "set_priority"]
    priority.locator(".ac-handle").drag_to(note.locator(".ac-handle"))
    expect(page.locator("#ac-rows > li").first.get_by_label("Action", exact=True)).to_have_value("set_priority")
    assert saved_actions(page) == [{"type": "set_priority", "priority": "urgent"},
                                   {"type": "add_note", "body": "VIP refund {{ ticket_number }}: call the customer today."}]

    # Test mode explains the unsaved rule against a real ticket, as it is edited.
    result = page.locator("#ac-test-result")
    page.get_by_label("Ticket number").fill(sample_number)
    expect(result).to_contain_text("This rule matches")
    expect(result).to_contain_text("Subject contains refund — the ticket's: Refund for order 7")
    expect(result).to_contain_text("Priority is one of high, urgent — the ticket's: high")
    expect(result).to_contain_text("Customer email ends with @vip.example — the ticket's: vera@vip.example")
    expect(result).to_contain_text("Set priority: raise priority to Urgent")
    expect(result).to_contain_text(f"add an internal note: “VIP refund {sample_number}: call the customer today.”")
    expect(result).to_contain_text("Test mode writes nothing")
    settled(page)
    # An edit the ticket fails is explained at once.
    page.locator(".rb-root > .rb-items > .rb-row").first.get_by_label("Value").fill("invoice")
    expect(result).to_contain_text("This rule does not match")
    expect(result).to_contain_text("Subject contains invoice — the ticket's: Refund for order 7")
    settled(page)
    page.locator(".rb-root > .rb-items > .rb-row").first.get_by_label("Value").fill("refund")
    expect(result).to_contain_text("This rule matches")
    settled(page)
    if os.environ.get("AUTOMATION_SCREENSHOT"):
        page.screenshot(path=os.environ["AUTOMATION_SCREENSHOT"], full_page=True)

    page.get_by_role("button", name="Create rule").click()
    expect(page.locator(".flash")).to_contain_text("it is off until you switch it on")
    assert [a["type"] for a in saved_actions(page)] == ["set_priority", "add_note"]
    page.get_by_role("link", name="Executions").click()
    expect(page.locator("main")).to_contain_text("No executions yet: the rule is off")
    page.get_by_role("button", name="Switch on").click()
    expect(page.get_by_role("button", name="Switch off")).to_be_visible()
    rule_url = page.url

    # The customer opens a matching request in the portal.
    customer = browser.new_context(base_url=live_server.url)
    try:
        portal = customer.new_page()
        portal.goto(f"/portal/auth/{token}")
        portal.goto("/portal/tickets/new")
        portal.get_by_label("Team").select_option(label="Acme Support")
        portal.get_by_label("Urgency").select_option(label="High")
        portal.get_by_label("Subject").fill("Refund for my duplicate order")
        portal.get_by_label("How can we help?").fill("I was charged twice.")
        portal.get_by_role("button", name="Send request").click()
        expect(portal).to_have_url(re.compile(r"/portal/tickets/ACME-\d+$"))
        number = portal.url.rsplit("/", 1)[-1]
    finally:
        customer.close()

    # The staff ticket page shows the rule's work: priority raised and the internal note.
    page.goto(f"/tickets/{number}")
    main = page.locator("main")
    expect(main).to_contain_text(f"VIP refund {number}: call the customer today.")
    expect(page.locator("#input-priority")).to_have_value("urgent")

    # The rule's page lists the execution.
    page.goto(rule_url)
    row = page.locator(".ac-executions tbody tr", has_text=number)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("✓")
    expect(row).to_contain_text("Set priority")
    expect(page.locator(".ac-stats")).to_contain_text("Last 7 days")
