"""End to end, in Chromium: an admin edits an email template and previews it with a real ticket as they type.

Set MAIL_TEMPLATE_SCREENSHOT=/path.png to keep a screenshot of the editor with its preview.
"""
import os

import pytest

from mets.extensions import db
from tests.factories import PASSWORD, make_customer, make_entity, make_staff, make_ticket
from tests.e2e.helpers import expect, settled

pytestmark = pytest.mark.e2e


def test_admin_previews_an_email_template_with_a_ticket_and_saves_it(live_server, page):
    with live_server.app_context():
        acme = make_entity("Acme", "acme", timezone="America/New_York")
        billing = make_entity("Acme Billing", "billing", parent=acme)
        admin = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
        ticket = make_ticket(billing, customer=make_customer("Carl Customer"), subject="Charged twice",
                             body="Please refund order 7 <ASAP>.")
        db.session.commit()
        acme_id, number, email = acme.id, ticket.number, admin.email

    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/admin/mail/templates/")
    row = page.locator("#mt-ticket-reply-customer")
    expect(row).to_contain_text("Default")
    row.get_by_role("link", name="ticket-reply-customer").first.click()
    # The editor's page loaded (and htmx bound its form) before typing: the server-drawn preview alone shows earlier.
    page.wait_for_url("**/ticket-reply-customer")

    box = page.locator("#mt-preview")
    expect(box).to_contain_text("With sample data.")
    page.get_by_label("Preview with ticket").fill(number)
    expect(box).to_contain_text(f"With ticket {number}, as its customer would get it.")
    expect(box.locator(".mt-subject")).to_contain_text(f"[{number}] New reply to your request: Charged twice")
    settled(page)

    # Typing in the subject re-renders it with the ticket's data; the HTML part stays inside its sandboxed frame.
    subject = page.get_by_label("Subject")
    subject.fill("")
    subject.press_sequentially("Update on {{ ticket_number }} for {{ customer_name }}", delay=10)
    expect(box.locator(".mt-subject")).to_have_text(f"Subject: Update on {number} for Carl Customer")
    frame = page.frame_locator("#mt-preview iframe.mt-html")
    expect(frame.locator("body")).to_contain_text("Carl Customer")
    settled(page)

    # A variable clicked in the list goes in at the cursor, and the preview follows.
    page.get_by_label("Text part").fill("Hi ")
    page.get_by_role("button", name="customer_name").click()
    expect(box.locator(".mt-text")).to_contain_text("Hi Carl Customer")
    settled(page)

    # A mistake shows its line in the preview, not a broken page.
    page.get_by_label("Text part").fill("Hi\n{{ nope }}")
    expect(box).to_contain_text("Text part: Line 2: unknown variable 'nope'")
    settled(page)
    page.get_by_label("Text part").fill("Hi {{ customer_name }}, see {{ portal_url }}")
    expect(box.locator(".mt-text")).to_contain_text("Hi Carl Customer, see http://")
    settled(page)
    if os.environ.get("MAIL_TEMPLATE_SCREENSHOT"):
        page.screenshot(path=os.environ["MAIL_TEMPLATE_SCREENSHOT"], full_page=True)

    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Saved ticket-reply-customer for Acme.")
    expect(page.get_by_label("Subject")).to_have_value("Update on {{ ticket_number }} for {{ customer_name }}")
    page.get_by_role("link", name="All templates of Acme").click()
    expect(page.locator("#mt-ticket-reply-customer")).to_contain_text("Own override")
    expect(page.locator("#mt-ticket-assigned")).to_contain_text("Default")

    with live_server.app_context():
        from mets.services.notifications import templates as mail_templates

        source, owner = mail_templates.source_for(db.session, db.session.get(type(acme), acme_id),
                                                  "ticket-reply-customer")
        assert owner.id == acme_id and source.body_text == "Hi {{ customer_name }}, see {{ portal_url }}"
