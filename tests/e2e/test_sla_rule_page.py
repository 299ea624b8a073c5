"""End to end, in Chromium: an admin edits an SLA rule and tests it against a ticket as they type.

Set SLA_SCREENSHOT=/path.png to keep a screenshot of the edit page with the builder and the test box.
"""
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from mets import clock
from mets.extensions import db
from tests.factories import PASSWORD, make_customer, make_entity, make_rule, make_staff, make_ticket
from tests.e2e.helpers import expect, settled

pytestmark = pytest.mark.e2e
NY = ZoneInfo("America/New_York")




def test_admin_tests_an_sla_rule_against_a_ticket_while_editing(live_server, page):
    with live_server.app_context():
        acme = make_entity("Acme", "acme", timezone="America/New_York")
        billing = make_entity("Acme Billing", "billing", parent=acme, timezone="America/New_York")
        make_rule(acme, "Urgent", priority="urgent", response_minutes=60, position=0)
        rule = make_rule(acme, "Standard", response_minutes=240, resolution_minutes=2880, position=1,
                         conditions={"all": [{"field": "subject", "op": "contains", "value": "refund"}]},
                         warnings=[{"percent": 80}, {"minutes_before": 30}], pause_statuses=["pending"])
        admin = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
        with clock.freeze(datetime(2026, 11, 27, 16, 55, tzinfo=NY)):  # a Friday
            ticket = make_ticket(billing, customer=make_customer(), subject="Refund for order 7")
        db.session.commit()
        rule_id, number, email = rule.id, ticket.number, admin.email

    clock.set_now(datetime(2026, 11, 27, 17, 30, tzinfo=NY))  # the server thread shares the clock
    try:
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="SLA rules").click()
        expect(page.locator(".sla-entity").first).to_contain_text("Standard")
        page.get_by_role("link", name="Standard").click()
        page.wait_for_url(f"**/admin/sla/{rule_id}")  # loaded: htmx listens to the box from then on

        result = page.locator("#sla-test-result")
        page.get_by_label("Ticket number").fill(number)
        expect(result).to_contain_text("This rule matches")
        expect(result).to_contain_text("First response due Mon 30 Nov 12:55 America/New_York (17:55 UTC)")
        expect(result).to_contain_text("Resolution due Mon 07 Dec 16:55 America/New_York (21:55 UTC)")
        settled(page)

        # Unsaved edits are tested as they are made: a priority the ticket does not have...
        page.get_by_label("Priority").select_option("urgent")
        expect(result).to_contain_text("This rule does not match")
        expect(result).to_contain_text("If saved as it stands: no rule would apply.")
        settled(page)
        page.get_by_label("Priority").select_option("")
        expect(result).to_contain_text("This rule matches")
        settled(page)

        # ...and a condition added in the builder: any of (priority is high or urgent).
        root = page.locator(".rb-root")
        root.locator(":scope > .rb-actions").get_by_role("button", name="+ Group").click()
        settled(page)
        group = root.locator(".rb-items .rb-group").first
        group.get_by_label("How these conditions combine").select_option("any")
        row = group.locator(".rb-row").first
        row.get_by_label("Operator").select_option("in")
        expect(row.locator(".rb-checks")).to_be_visible()
        settled(page)
        row.get_by_label("High").check()
        row.get_by_label("Urgent").check()
        expect(result).to_contain_text("This rule does not match")
        expect(result).to_contain_text("Priority is one of high, urgent — the ticket's: normal")
        settled(page)
        if os.environ.get("SLA_SCREENSHOT"):
            page.evaluate("window.scrollTo(0, 0)")  # the test box is sticky: line it up with the form
            page.screenshot(path=os.environ["SLA_SCREENSHOT"], full_page=True)

        # Saving keeps the tree; an unknown number is named.
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".flash")).to_contain_text("Saved “Standard”.")
        expect(page.locator(".rb-root .rb-group .rb-row")).to_have_count(1)
        page.get_by_label("Ticket number").fill("NOPE-1")
        expect(result).to_contain_text("No ticket NOPE-1.")
        settled(page)

        # On the list, the order changes in place (htmx sends the clicked button's direction).
        page.get_by_role("link", name="All SLA rules").click()
        names = page.locator(".sla-entity").first.locator("tbody tr td:nth-child(2)")
        expect(names).to_have_text(["Urgent", "Standard"])
        page.get_by_role("button", name="Move Standard up").click()
        expect(names).to_have_text(["Standard", "Urgent"])
        settled(page)
        page.locator("#sla-rule-%d" % rule_id).get_by_role("button", name="Deactivate").click()
        expect(page.locator("#sla-rule-%d" % rule_id)).to_contain_text("Inactive")
        if os.environ.get("SLA_SCREENSHOT"):
            page.screenshot(path=os.environ["SLA_SCREENSHOT"].replace(".png", "-list.png"), full_page=True)
    finally:
        clock.set_now(None)
    with live_server.app_context():
        from mets.models import SlaRule

        saved = db.session.get(SlaRule, rule_id)
        assert not saved.is_active and saved.position == 0
        assert saved.conditions == {"all": [{"field": "subject", "op": "contains", "value": "refund"},
                                            {"any": [{"field": "priority", "op": "in", "value": ["high", "urgent"]}]}]}
