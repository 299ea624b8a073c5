"""End to end, in Chromium: an admin builds a two-level escalation policy in the editor (levels added, removed,
moved by keyboard and by drag and drop, each with its actions) and reads the preview's local and UTC instants.

Set ESCALATION_SCREENSHOT=/path.png to keep a screenshot of the editor with its preview.
"""
import os

import pytest

from mets import clock
from mets.extensions import db
from mets.models import EscalationPolicy
from tests.e2e.helpers import expect, settled
from tests.factories import PASSWORD, make_customer, make_entity, make_rule, make_staff, make_ticket, ny

pytestmark = pytest.mark.e2e


def levels(page):
    return page.locator("#esc-levels > li")


def add_action(page, level, type_name):
    level.get_by_role("button", name="+ Add action").click()
    settled(page)
    rows = level.locator(".ac-rows > li")
    row = rows.nth(rows.count() - 1)
    row.get_by_label("Action", exact=True).select_option(type_name)
    settled(page)
    return row


def test_admin_builds_a_two_level_policy_and_reads_the_preview(live_server, page):
    with live_server.app_context():
        acme = make_entity("Acme", "acme", timezone="America/New_York")  # Mon-Fri 09-17 by default
        make_rule(acme, "Standard", response_minutes=4 * 60, resolution_minutes=16 * 60)
        make_staff(acme, role="manager", name="Maria Manager")
        admin = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
        with clock.freeze(ny(2026, 11, 23, 9, 0)):  # a Monday, as the desk opens
            ticket = make_ticket(acme, customer=make_customer(), subject="Invoice is wrong")
        db.session.commit()
        number, email = ticket.number, admin.email

    clock.set_now(ny(2026, 11, 23, 10, 0))  # the server thread shares the clock
    try:
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Escalation").click()
        expect(page.locator(".sla-entity").first).to_contain_text("Acme")
        page.get_by_role("link", name="+ Policy for Acme").click()
        settled(page)

        page.get_by_label("Name").fill("Near breach")
        page.get_by_label("Clock it watches").select_option("resolution")
        # A new policy starts with two levels (75%, at the breach): take the second away and add it again.
        expect(levels(page)).to_have_count(2)
        levels(page).nth(1).get_by_role("button", name="Remove level 2").click()
        expect(levels(page)).to_have_count(1)
        page.get_by_role("button", name="+ Add level").click()
        settled(page)
        expect(levels(page)).to_have_count(2)
        second = levels(page).nth(1)
        expect(second.locator(".esc-level-number")).to_have_text("2")
        second.get_by_label("Fires").select_option("after_breach")
        second.get_by_label("Percent or minutes").fill("0")
        add_action(page, second, "raise_priority")
        first = levels(page).nth(0)
        notify = add_action(page, first, "notify")
        notify.get_by_label("The entity's managers").check()

        # The preview follows the form as it stands.
        result = page.locator("#esc-preview-result")
        page.get_by_label("Ticket number").fill(number)
        expect(result.locator("li[data-level='1']")).to_contain_text("75% of the resolution target used")
        expect(result.locator("li[data-level='1']")).to_contain_text("Tue 24 Nov 2026 13:00 America/New_York")
        expect(result.locator("li[data-level='1']")).to_contain_text("Tue 24 Nov 2026 18:00 UTC")
        expect(result.locator("li[data-level='2']")).to_contain_text("the resolution target was breached")
        expect(result.locator("li[data-level='2']")).to_contain_text("Tue 24 Nov 2026 17:00 America/New_York")
        expect(result.locator("li[data-level='2']")).to_contain_text("Tue 24 Nov 2026 22:00 UTC")
        settled(page)

        # Reordered from the keyboard (Move down), then back by dragging its handle: the preview follows both.
        levels(page).nth(0).get_by_role("button", name="Move level 1 down").focus()
        page.keyboard.press("Enter")
        expect(levels(page).nth(0).get_by_label("Fires")).to_have_value("after_breach")
        expect(result.locator("li[data-level='1']")).to_contain_text("the resolution target was breached")
        settled(page)
        levels(page).nth(1).locator(".lv-handle").drag_to(levels(page).nth(0).locator(".lv-handle"))
        expect(levels(page).nth(0).get_by_label("Fires")).to_have_value("percent")
        expect(result.locator("li[data-level='1']")).to_contain_text("75% of the resolution target used")
        settled(page)

        # A mistake is shown beside its field, in words.
        levels(page).nth(1).get_by_label("Percent or minutes").fill("soon")
        page.get_by_role("button", name="Create policy").click()
        expect(levels(page).nth(1)).to_contain_text("Enter whole minutes up to 525,600.")
        settled(page)
        levels(page).nth(1).get_by_label("Percent or minutes").fill("0")
        page.get_by_role("button", name="Create policy").click()
        expect(page.locator("body")).to_contain_text("Created “Near breach”")
        settled(page)

        # Saved in that order, with its actions; the saved policy previews the same instants.
        expect(levels(page).nth(0).get_by_label("Fires")).to_have_value("percent")
        expect(levels(page).nth(1).get_by_label("Fires")).to_have_value("after_breach")
        page.get_by_label("Ticket number").fill(number)
        expect(result.locator("li[data-level='2']")).to_contain_text("Tue 24 Nov 2026 22:00 UTC")
        expect(result).to_contain_text("Follows now: Near breach — this policy")
        settled(page)
        if os.environ.get("ESCALATION_SCREENSHOT"):
            page.screenshot(path=os.environ["ESCALATION_SCREENSHOT"], full_page=True)
    finally:
        clock.set_now(None)

    with live_server.app_context():
        policy = db.session.query(EscalationPolicy).filter_by(name="Near breach").one()
        assert [(lv.trigger, lv.value, lv.actions) for lv in policy.levels] == [
            ("percent", 75, [{"type": "notify", "to": ["managers"]}]),
            ("after_breach", 0, [{"type": "raise_priority"}])]
