"""End to end, in Chromium: an agent works a ticket, a customer signs in by emailed link and follows up.

Everything goes through the real pages, the real CSRF protection and htmx. Where the page should
update in place, `window.__noReload` is set first: a full page load would wipe it.
"""
import re
import shutil

import pytest

from mets.extensions import db
from tests.factories import PASSWORD, make_customer, make_entity, make_staff, make_ticket
from tests.e2e.helpers import expect

pytestmark = pytest.mark.e2e

SCREENSHOT_COPY = "/tmp/mets-ticket.png"



def mark_page(page) -> None:
    """Put a marker on the window that only a full page load removes."""
    page.evaluate("window.__noReload = 1")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"


def test_agent_searches_replies_and_changes_status(live_server, page, tmp_path):
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        globex = make_entity(name="Globex", slug="globex")
        agent = make_staff(acme, name="Dana Agent", email="dana@staff.example")
        carol = make_customer(name="Carol Customer", email="carol@example.com")
        ticket = make_ticket(acme, carol, subject="VPN drops every hour", priority="high",
                             body="Since Monday the VPN disconnects on the hour, every hour.")
        make_ticket(acme, subject="VPN client will not install", priority="low")
        make_ticket(acme, subject="Printer is on fire")
        make_ticket(acme, subject="Refund for invoice 42")
        make_ticket(globex, subject="VPN at Globex")  # another entity: the agent must never see it
        db.session.commit()
        number, agent_email = ticket.number, agent.email

    # Sign in through the form.
    page.goto("/login")
    page.get_by_label("Email").fill(agent_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/tickets/\?assignee=mine$"))  # agents land on My open tickets
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()
    rows = page.locator("#ticket-table tbody tr")
    page.get_by_role("navigation", name="Views").get_by_role("link", name=re.compile("^All active")).click()
    expect(page).to_have_url(re.compile(r"/tickets/\?status=active$"))
    expect(rows).to_have_count(4)

    # Search filters the table in place and pushes the filter into the URL.
    table_requests = []
    page.on("request", lambda r: table_requests.append(r.url)
            if r.headers.get("hx-request") and "/tickets/?" in r.url else None)
    mark_page(page)
    search = page.get_by_role("searchbox", name="Search")
    search.fill("vpn")
    expect(page).to_have_url(re.compile(r"/tickets/\?(.*&)?q=vpn(&|$)"))
    expect(rows).to_have_count(2)
    expect(page.locator("#ticket-table .count")).to_have_text("2 tickets")
    expect(page.locator("#ticket-table")).not_to_contain_text("Globex")
    assert len(table_requests) == 1, table_requests

    # A select narrows it further. Leaving the search box must not reload the table on its own:
    # that swap used to land between mousedown and mouseup and swallow the click on a result.
    search.press("Tab")
    page.get_by_role("combobox", name="Priority").select_option(label="High")
    expect(page).to_have_url(re.compile(r"[?&]priority=high(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]q=vpn(&|$)"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("VPN drops every hour")
    expect(page.locator("#ticket-table .count")).to_have_text("1 ticket")
    assert len(table_requests) == 2, table_requests
    assert_not_reloaded(page)

    # Open the ticket.
    rows.first.get_by_role("link", name="VPN drops every hour").click()
    expect(page).to_have_url(re.compile(rf"/tickets/{number}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("VPN drops every hour")
    conversation = page.locator("#conversation")
    messages = conversation.locator(".message")
    expect(messages).to_have_count(1)
    status = page.locator("#properties").get_by_label("Status")
    activity = page.locator("#activity")
    expect(status).to_have_value("new")

    # Reply: the conversation box swaps in place, the form comes back empty.
    mark_page(page)
    reply_text = "Please restart the router and tell us if the drops continue."
    conversation.get_by_label("Reply", exact=True).fill(reply_text)
    conversation.get_by_role("button", name="Send", exact=True).click()
    expect(messages).to_have_count(2)
    expect(messages.last).to_contain_text(reply_text)
    expect(messages.last).to_contain_text("Dana Agent")
    expect(conversation.get_by_label("Reply", exact=True)).to_have_value("")
    assert_not_reloaded(page)
    # The reply moved the ticket from New to Open; both side panels follow (ticket-changed).
    expect(status).to_have_value("open")
    expect(activity).to_contain_text("Dana Agent changed the status from New to Open")

    # Change the status inline; the activity panel shows the change.
    status.select_option(label="Pending")
    expect(activity).to_contain_text("Dana Agent changed the status from Open to Pending")
    expect(status).to_have_value("pending")
    expect(page.locator("#properties .error")).to_have_count(0)
    assert_not_reloaded(page)

    shot = tmp_path / "ticket.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copyfile(shot, SCREENSHOT_COPY)

    # A real reload shows that all of it was saved.
    page.reload()
    assert page.evaluate("window.__noReload") is None
    expect(status).to_have_value("pending")
    expect(activity).to_contain_text("Dana Agent changed the status from Open to Pending")
    expect(messages).to_have_count(2)
    expect(messages.last).to_contain_text(reply_text)


def test_customer_signs_in_by_link_opens_a_request_and_replies(live_server, page):
    with live_server.app_context():
        make_entity(name="Acme Support", slug="acme")
        make_entity(name="Globex", slug="globex")
        carol = make_customer(name="Carol Customer", email="carol@example.com")
        db.session.commit()
        email = carol.email

    # Ask for a sign-in link.
    page.goto("/portal/login")
    page.get_by_label("Your email address").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.locator("main")).to_contain_text(email)

    # The link arrives in the Maildir, pointing at this server.
    mails = live_server.messages_to(email)
    assert len(mails) == 1
    text = mails[0].get_body(("plain",)).get_content()
    found = re.search(r"(https?://\S+/portal/auth/\S+)", text)
    assert found, text
    link = found.group(1)
    assert link.startswith(live_server.url + "/portal/auth/")

    page.goto(link)
    expect(page).to_have_url(re.compile(r"/portal/$"))
    expect(page.get_by_role("heading", name="My requests")).to_be_visible()
    expect(page.locator("main")).to_contain_text("You have no requests yet.")
    expect(page.locator(".topbar")).to_contain_text("Carol Customer")

    # Open a new request through the portal form.
    page.locator(".page-head").get_by_role("link", name="New request").click()
    expect(page.get_by_role("heading", name="New request")).to_be_visible()
    page.get_by_label("Team").select_option(label="Acme Support")
    page.get_by_label("Urgency").select_option(label="High")
    subject = "Cannot download my invoice"
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("How can we help?").fill("The download button on the billing page does nothing.")
    page.get_by_role("button", name="Send request").click()
    expect(page).to_have_url(re.compile(r"/portal/tickets/ACME-\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(subject)
    number = page.url.rsplit("/", 1)[-1]

    # It is listed under My requests.
    page.get_by_role("link", name="← My requests").click()
    expect(page.get_by_role("heading", name="My requests")).to_be_visible()
    row = page.locator("tbody tr", has_text=subject)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(number)
    expect(row).to_contain_text("Acme Support")
    expect(row).to_contain_text("New")

    # Reply on it; the conversation updates in place.
    row.get_by_role("link", name=subject).click()
    expect(page).to_have_url(re.compile(rf"/portal/tickets/{number}$"))
    conversation = page.locator("#conversation")
    messages = conversation.locator(".message")
    expect(messages).to_have_count(1)
    mark_page(page)
    reply_text = "I tried another browser, same thing."
    conversation.get_by_label("Reply", exact=True).fill(reply_text)
    conversation.get_by_role("button", name="Send reply").click()
    expect(messages).to_have_count(2)
    expect(messages.last).to_contain_text(reply_text)
    expect(messages.last).to_contain_text("Carol Customer")
    expect(conversation.get_by_label("Reply", exact=True)).to_have_value("")
    assert_not_reloaded(page)

    page.reload()
    expect(messages).to_have_count(2)
    expect(messages.last).to_contain_text(reply_text)
