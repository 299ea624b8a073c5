"""End to end, in Chromium: a ticket page stays current while it is open.

A colleague's reply (written through the service, as another process would) shows up on Dana's open page
without a reload and without touching what she is typing; her reply is then held with a warning, and
"Send anyway" sends it once. A colleague opening the same ticket shows as "also viewing".
"""
import re

import pytest

from mets.extensions import db
from mets.models import Reply, Ticket, User
from mets.services import tickets
from tests.e2e.helpers import expect
from tests.factories import PASSWORD, make_customer, make_entity, make_staff, make_ticket

pytestmark = pytest.mark.e2e


def sign_in(page, email):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/tickets/(\?assignee=mine)?$"))


def test_a_colleagues_reply_arrives_on_the_open_page_and_a_reply_after_it_is_held(live_server, page, browser):
    live_server.app.config["TICKET_POLL_SECONDS"] = 1
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        make_staff(acme, name="Dana Agent", email="dana@staff.example")
        make_staff(acme, name="Bea Billing", email="bea@staff.example")
        carol = make_customer(name="Carol Customer", email="carol@example.com")
        number = make_ticket(acme, carol, subject="VAT is wrong on invoice 42", body="The VAT line says 0%.").number
        db.session.commit()

    sign_in(page, "dana@staff.example")
    page.goto(f"/tickets/{number}")
    page.evaluate("window.__noReload = 1")
    box = page.get_by_label("Reply")
    typed = "Hi Carol, sorry about the VAT: I am fixing it today."
    box.fill(typed)

    # Bea answers the customer from her desk while Dana is typing.
    with live_server.app_context():
        ticket = db.session.query(Ticket).filter_by(number=number).one()
        bea = db.session.query(User).filter_by(email="bea@staff.example").one()
        tickets.add_reply(db.session, ticket, actor=bea, body="Bea here: the VAT line is fixed now.")
        db.session.commit()

    expect(page.locator("#messages")).to_contain_text("Bea here: the VAT line is fixed now.", timeout=5000)
    expect(page.locator("#activity")).to_contain_text("Bea Billing")
    expect(box).to_have_value(typed)  # the poll never touched the reply box
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"

    # Dana sends: held, with the warning, her text kept, and "Send anyway".
    page.get_by_role("button", name="Send").click()
    warning = page.locator(".held")
    expect(warning).to_contain_text("Bea Billing replied")
    expect(warning).to_contain_text("Your reply was not sent")
    expect(page.get_by_label("Reply")).to_have_value(typed)
    page.get_by_role("button", name="Send anyway").click()
    expect(page.locator("#messages")).to_contain_text(typed)
    expect(page.locator(".held")).to_have_count(0)
    expect(page.get_by_label("Reply")).to_have_value("")
    with live_server.app_context():
        assert db.session.query(Reply).filter_by(body=typed).count() == 1

    # Bea opens the ticket in her browser: Dana's page says so, and Bea's says Dana is there.
    context = browser.new_context(base_url=live_server.url)
    try:
        bea_page = context.new_page()
        sign_in(bea_page, "bea@staff.example")
        bea_page.goto(f"/tickets/{number}")
        expect(bea_page.locator("#viewers")).to_have_text("Dana Agent is also viewing")
        expect(page.locator("#viewers")).to_have_text("Bea Billing is also viewing", timeout=5000)
        # And the list shows Dana that Bea is on it.
        page.goto("/tickets/")
        expect(page.locator("#ticket-table tbody tr", has_text="VAT is wrong")).to_contain_text("Bea Billing viewing")
    finally:
        context.close()
    assert page.evaluate("window.__noReload") is None  # (the list was a real navigation)


def test_a_poll_never_replaces_a_box_the_agent_is_typing_in_and_stops_when_access_is_lost(live_server, page,
                                                                                         request):
    live_server.app.config["TICKET_POLL_SECONDS"] = 1
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        make_staff(acme, name="Dana Agent", email="dana@staff.example")
        make_staff(acme, name="Bea Billing", email="bea@staff.example")
        number = make_ticket(acme, subject="Printer offline").number
        db.session.commit()

    sign_in(page, "dana@staff.example")
    page.goto(f"/tickets/{number}")
    category = page.get_by_label("Category")
    category.fill("hardw")  # still typing: not sent yet (the box sends on change)

    with live_server.app_context():
        ticket = db.session.query(Ticket).filter_by(number=number).one()
        bea = db.session.query(User).filter_by(email="bea@staff.example").one()
        tickets.update_fields(db.session, ticket, {"priority": "urgent"}, actor=bea)
        db.session.commit()

    expect(page.locator("#activity")).to_contain_text("Bea Billing", timeout=5000)
    expect(category).to_have_value("hardw")
    expect(category).to_be_focused()
    # Once she leaves the box (which saves it), the next poll brings the priority Bea set.
    category.fill("hardware")
    category.press("Tab")
    expect(page.get_by_label("Priority")).to_have_value("urgent", timeout=5000)
    expect(page.get_by_label("Category")).to_have_value("hardware")

    # Dana loses access while the page is open: the next poll is a 404 (which the browser logs), the page says so
    # and stops polling.
    request.node.console_expected = [r"status of 404 .*/tickets/ACME-\d+/live\)$",
                                     r"Response Status Error Code 404 from /tickets/ACME-\d+/live"]
    with live_server.app_context():
        from mets.services.directory import users

        dana = db.session.query(User).filter_by(email="dana@staff.example").one()
        users.remove_membership(db.session, dana.memberships[0])
        db.session.commit()
    expect(page.locator("#notice")).to_have_text("That item is no longer available to you.", timeout=5000)
    expect(page.locator("#live")).to_have_count(0)


def test_a_colleague_opening_a_ticket_shows_in_the_list_without_a_reload(live_server, page, browser):
    live_server.app.config["TICKET_POLL_SECONDS"] = 1
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        make_staff(acme, name="Dana Agent", email="dana@staff.example")
        make_staff(acme, name="Bea Billing", email="bea@staff.example")
        number = make_ticket(acme, subject="VAT is wrong on invoice 42").number
        make_ticket(acme, subject="Printer offline")
        db.session.commit()

    sign_in(page, "dana@staff.example")
    page.goto("/tickets/?status=all")
    page.evaluate("window.__noReload = 1")
    row = page.locator("#ticket-table tbody tr", has_text="VAT is wrong")
    expect(row).not_to_contain_text("viewing")

    context = browser.new_context(base_url=live_server.url)
    try:
        bea_page = context.new_page()
        sign_in(bea_page, "bea@staff.example")
        bea_page.goto(f"/tickets/{number}")
        expect(row).to_contain_text("Bea Billing viewing", timeout=5000)
        expect(page.locator("#ticket-table tbody tr", has_text="Printer offline")).not_to_contain_text("viewing")
    finally:
        context.close()
    assert page.evaluate("window.__noReload") == 1, "the list was reloaded"
    expect(page).to_have_url(re.compile(r"/tickets/\?status=all$"))  # the poll never moves the address
