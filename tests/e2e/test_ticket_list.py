"""The staff ticket list in Chromium: its filter controls always say what the URL and the table say, after Back too."""
import re

import pytest

from mets.extensions import db
from tests.factories import PASSWORD, make_entity, make_staff, make_ticket
from tests.e2e.helpers import expect, settled

pytestmark = pytest.mark.e2e


def sign_in(page, email):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()


@pytest.fixture
def desk(live_server):
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        agent = make_staff(acme, name="Dana Agent", email="dana@staff.example")
        for n in range(3):
            make_ticket(acme, subject=f"Urgent matter {n}", priority="urgent")
        for n in range(2):
            make_ticket(acme, subject=f"Low matter {n}", priority="low")
        make_ticket(acme, subject="Normal matter")
        db.session.commit()
        return agent.email


def test_after_back_from_a_ticket_the_filters_still_say_what_the_table_shows(page, desk):
    sign_in(page, desk)
    page.goto("/tickets/")
    rows = page.locator("#ticket-table tbody tr")
    priority = page.get_by_role("combobox", name="Priority")
    priority.select_option(label="Urgent")
    expect(page).to_have_url(re.compile(r"[?&]priority=urgent(&|$)"))
    expect(rows).to_have_count(3)
    settled(page)

    page.get_by_role("link", name="Urgent matter 1").click()
    expect(page.get_by_role("heading", name=re.compile("Urgent matter 1"))).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(r"[?&]priority=urgent(&|$)"))
    expect(rows).to_have_count(3)
    expect(priority).to_have_value("urgent")

    # The next change keeps the filter.
    page.get_by_role("combobox", name="Status").select_option(label="All statuses")
    expect(page).to_have_url(re.compile(r"[?&]status=all(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]priority=urgent(&|$)"))
    expect(rows).to_have_count(3)


def test_back_between_two_filters_restores_the_earlier_filter_in_its_controls(page, desk):
    sign_in(page, desk)
    page.goto("/tickets/")
    rows = page.locator("#ticket-table tbody tr")
    priority = page.get_by_role("combobox", name="Priority")
    search = page.get_by_role("searchbox", name="Search")
    search.fill("matter")
    expect(page).to_have_url(re.compile(r"[?&]q=matter(&|$)"))
    settled(page)
    priority.select_option(label="Urgent")
    expect(rows).to_have_count(3)
    settled(page)
    priority.select_option(label="Low")
    expect(rows).to_have_count(2)
    settled(page)

    page.go_back()  # htmx restores its snapshot of the urgent list
    expect(page).to_have_url(re.compile(r"[?&]priority=urgent(&|$)"))
    expect(rows).to_have_count(3)
    expect(priority).to_have_value("urgent")
    expect(search).to_have_value("matter")

    page.get_by_role("combobox", name="Status").select_option(label="All statuses")
    expect(page).to_have_url(re.compile(r"[?&]status=all(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]priority=urgent(&|$)"))
    expect(rows).to_have_count(3)

    page.go_back()
    page.go_back()  # the list before any priority was chosen
    expect(page).to_have_url(re.compile(r"/tickets/\?q=matter(&(status|sort|dir)=[a-z]+)*$"))
    expect(priority).to_have_value("")
    expect(rows).to_have_count(6)


def test_an_agent_lands_on_my_open_tickets_and_bulk_assigns_five_tickets(page, live_server):
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        maria = make_staff(acme, role="manager", name="Maria Manager", email="maria@staff.example")
        make_staff(acme, name="Bea Agent", email="bea@staff.example")
        for n in range(5):
            make_ticket(acme, subject=f"Waiting matter {n}")
        make_ticket(acme, subject="Already Maria's", assignee=maria)
        db.session.commit()

    sign_in(page, "maria@staff.example")
    expect(page).to_have_url(re.compile(r"/tickets/\?assignee=mine$"))
    views = page.get_by_role("navigation", name="Views")
    expect(views.locator('[aria-current="page"]')).to_contain_text("My open tickets")
    rows = page.locator("#ticket-table tbody tr")
    expect(rows).to_have_count(1)

    views.get_by_role("link", name=re.compile("^Unassigned")).click()
    expect(page).to_have_url(re.compile(r"[?&]assignee=unassigned(&|$)"))
    expect(rows).to_have_count(5)
    expect(page.get_by_role("combobox", name="Assignee")).to_have_value("unassigned")
    settled(page)

    page.get_by_label("All on this page").check()
    expect(page.locator('input[name="ids"]:checked')).to_have_count(5)
    page.get_by_role("combobox", name="New owner for the selected").select_option(label="Bea Agent")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator(".bulk-result")).to_contain_text("5 tickets updated.")
    expect(page).to_have_url(re.compile(r"[?&]assignee=unassigned(&|$)"))  # still the list, not /bulk
    expect(page.locator("#ticket-table")).to_contain_text("No tickets match these filters.")  # none unassigned
    expect(views.get_by_role("link", name=re.compile("^Unassigned"))).to_contain_text("0")

    # Save the filter as a view: it is listed with its count.
    page.get_by_role("combobox", name="Assignee").select_option(label="Bea Agent")
    expect(rows).to_have_count(5)
    settled(page)
    page.get_by_label("View name").fill("Bea's queue")
    page.get_by_role("button", name="Save view").click()
    expect(views.get_by_role("link", name=re.compile("^Bea's queue"))).to_contain_text("5")
