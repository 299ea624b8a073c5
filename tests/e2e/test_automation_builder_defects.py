"""The automation builder as an admin meets it (issue 12, defect 5): errors in people's words, shown once;
test mode's "last 50" without aborted requests; one click on Create rule creates the rule."""
import pytest

from mets.extensions import db
from tests.e2e.helpers import expect, settled
from tests.e2e.test_automation_builder import add_action
from tests.factories import PASSWORD, make_entity, make_staff, make_ticket

pytestmark = pytest.mark.e2e


def sign_in_to_new_rule(page, tickets=1):
    page.goto("/login")
    page.get_by_label("Email").fill("ada@staff.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()
    page.goto("/admin/automation/new")
    page.get_by_label("Name", exact=True).fill("VIP")
    page.get_by_label("When", exact=True).select_option("ticket_created")


@pytest.fixture
def desk(live_server):
    with live_server.app_context():
        acme = make_entity("Acme Support", "acme")
        make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
        for n in range(55):
            make_ticket(acme, subject=f"Ticket {n}", priority="high" if n % 2 else "normal")
        db.session.commit()
    return live_server


def test_a_condition_error_is_said_once_beside_its_condition_in_plain_words(desk, page):
    sign_in_to_new_rule(page)
    root = page.locator(".rb-root")
    root.locator(":scope > .rb-actions").get_by_role("button", name="+ Condition").click()
    settled(page)
    row = root.locator(":scope > .rb-items > .rb-row").first
    row.get_by_label("Field").select_option("priority")
    settled(page)
    add_action(page, "escalate")
    page.get_by_role("button", name="Create rule").click()
    form = page.locator("#automation-form")
    expect(form).to_contain_text("Condition 1: enter a value for Priority.")
    expect(form.get_by_text("enter a value for Priority", exact=False)).to_have_count(1)
    expect(form).not_to_contain_text("all[0]")


def test_ticking_the_last_50_aborts_no_request(desk, page):
    aborted = []
    page.on("console", lambda m: aborted.append(m.text) if "sendAbort" in m.text or "abort" in m.text.lower()
            else None)
    sign_in_to_new_rule(page)
    add_action(page, "escalate")
    settled(page)
    result = page.locator("#ac-test-result")
    # Ticked while test mode is still answering an earlier edit (here: the ticket number typed just before).
    with page.expect_request("**/admin/automation/test"):
        page.get_by_label("Ticket number").fill("ACME-1001")
    page.get_by_label("Instead, the last 50 tickets in the rule's scope").check()
    expect(result).to_contain_text("of the last 50 tickets match")
    page.wait_for_timeout(800)  # the input trigger's 400 ms delay, and its request
    settled(page)
    assert not aborted, aborted  # the page fixture also fails the test on any console error


def test_one_click_on_create_rule_creates_it_once_actions_are_added(desk, page):
    sign_in_to_new_rule(page)
    note = add_action(page, "add_note")
    note.get_by_label("Note").fill("Call the customer today.")
    priority = add_action(page, "set_priority")
    priority.get_by_label("Priority").select_option("urgent")
    last = add_action(page, "add_note")
    last.get_by_label("Note").fill("Then write it down.")  # focus stays here: the click below blurs it
    button = page.get_by_role("button", name="Create rule")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(150)  # a person's click: the mouse goes down, then up
    page.mouse.up()
    expect(page.locator(".flash")).to_contain_text("it is off until you switch it on")
