"""End to end, in Chromium: an agent escalates a ticket by hand from its page; the box, the priority and the
activity follow without a reload, and the escalation-notification mail reaches the manager."""
import re

import pytest

from mets.extensions import db
from mets.services import escalation
from tests.e2e.helpers import expect
from tests.factories import PASSWORD, make_customer, make_entity, make_staff, make_ticket

pytestmark = pytest.mark.e2e


def test_an_agent_escalates_with_a_reason(live_server, page):
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        make_staff(acme, name="Dana Agent", email="dana@staff.example")
        make_staff(acme, role="manager", name="Max Manager", email="max@staff.example")
        escalation.create_policy(db.session, acme, name="Hot tickets", clock="since_created", business_time=False,
                                 levels=[{"trigger": "after_duration", "value": 600, "actions": [
                                     {"type": "notify", "to": ["managers"]}, {"type": "raise_priority"}]}])
        number = make_ticket(acme, make_customer(name="Carol Customer"), subject="Payroll export fails").number
        db.session.commit()

    page.goto("/login")
    page.get_by_label("Email").fill("dana@staff.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/tickets/"))
    page.goto(f"/tickets/{number}")
    page.evaluate("window.__noReload = 1")
    box = page.locator("#escalation-panel")
    expect(box).to_contain_text("Level 0")
    expect(box.get_by_label("Reason")).to_have_attribute("required", "")  # no reason, no escalation
    box.get_by_label("Reason").fill("Payday is tomorrow")
    box.get_by_role("button", name="Escalate").click()
    expect(box).to_contain_text("Level 1")
    expect(box).to_contain_text("by Dana Agent: Payday is tomorrow")
    expect(page.locator("#activity")).to_contain_text("escalated the ticket to level 1 (Payday is tomorrow)")
    expect(page.locator("#properties")).to_contain_text("High")
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"
    mails = [m for m in live_server.messages_to("max@staff.example", count=2) if "Escalated" in m["Subject"]]
    assert len(mails) == 1 and "Escalated to level 1" in mails[0]["Subject"]  # (the other: the new ticket's)
    text = mails[0].get_body(preferencelist=("plain",)).get_content()
    assert "Why: Payday is tomorrow (policy: Hot tickets)" in text
