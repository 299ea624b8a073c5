"""End to end, in Chromium, as in `make run`: a customer opens a request in the portal, the worker
process mails the receipt into the Maildir, its portal link opens the ticket, and the admin's
mail pages show the message as sent."""
import re

import pytest

from mets.extensions import db
from tests.e2e.helpers import expect
from tests.factories import PASSWORD, make_customer, make_entity, make_staff

pytestmark = pytest.mark.e2e


def portal_link(message) -> str:
    text = message.get_body(("plain",)).get_content()
    found = re.search(r"(https?://\S+/portal/auth/\S+)", text)
    assert found, text
    return found.group(1)


def test_customer_gets_a_templated_receipt_whose_link_opens_the_ticket(live_server, page, browser):
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        make_staff(acme, name="Dana Agent", email="dana@staff.example")
        admin = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
        carol = make_customer(name="Carol Customer", email="carol@example.com")
        db.session.commit()
        email, admin_email = carol.email, admin.email

    # Sign in by the emailed link (itself sent by the worker through the outbox).
    page.goto("/portal/login")
    page.get_by_label("Your email address").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    sign_in = live_server.messages_to(email)
    assert len(sign_in) == 1
    page.goto(portal_link(sign_in[0]))
    expect(page.get_by_role("heading", name="My requests")).to_be_visible()

    # Open a request.
    page.locator(".page-head").get_by_role("link", name="New request").click()
    page.get_by_label("Team").select_option(label="Acme Support")
    subject = "Printer eats every second page"
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("How can we help?").fill("It started after the firmware update.")
    page.get_by_role("button", name="Send request").click()
    expect(page).to_have_url(re.compile(r"/portal/tickets/ACME-\d+$"))
    number = page.url.rsplit("/", 1)[-1]

    # The receipt: the customer template, with the number, the subject and a link to the ticket.
    mails = live_server.messages_to(email, count=2)
    receipt = next(m for m in mails if number in m["Subject"])
    assert subject in receipt["Subject"]
    assert receipt["Auto-Submitted"] == "auto-generated"
    assert number in receipt.get_body(("html",)).get_content()
    # The agent of the entity is told too, with the staff template (a link to the staff page).
    agent_mail = live_server.messages_to("dana@staff.example")
    assert len(agent_mail) == 1 and f"/tickets/{number}" in agent_mail[0].get_body(("plain",)).get_content()

    # The link works in a browser that was never signed in, and lands on that ticket.
    fresh = browser.new_context(base_url=live_server.url)
    try:
        other = fresh.new_page()
        other.goto(portal_link(receipt))
        expect(other).to_have_url(re.compile(rf"/portal/tickets/{number}$"))
        expect(other.get_by_role("heading", level=1)).to_contain_text(subject)
    finally:
        fresh.close()

    # The admin sees the message, sent, in the mail pages.
    admin_page = browser.new_context(base_url=live_server.url).new_page()
    try:
        admin_page.goto("/login")
        admin_page.get_by_label("Email").fill(admin_email)
        admin_page.get_by_label("Password").fill(PASSWORD)
        admin_page.get_by_role("button", name="Sign in").click()
        admin_page.goto("/admin/mail/?recipient=carol%40example.com")
        row = admin_page.locator("tbody tr", has_text=number)
        expect(row).to_have_count(1)
        expect(row).to_contain_text("ticket-created-customer")
        expect(row).to_contain_text(re.compile("sent", re.I))
    finally:
        admin_page.context.close()
