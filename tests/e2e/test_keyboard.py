"""Keyboard only, in Chromium: an agent sends a reply and an admin builds a rule with two conditions and an action
without the mouse. After each step the test asserts where the focus is: a swap never drops it to <body>, a redrawn
select keeps it, a row a button adds takes it, and what was done is read out by the page's status region."""
import pytest

from mets.extensions import db
from mets.models import AutomationRule, Reply
from tests.e2e.helpers import expect, settled
from tests.factories import PASSWORD, make_entity, make_staff, make_ticket

pytestmark = pytest.mark.e2e


@pytest.fixture
def desk(live_server):
    with live_server.app_context():
        acme = make_entity("Acme Support", "acme")
        make_staff(acme, name="Andy Agent", email="andy@staff.example")
        make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
        number = make_ticket(acme, subject="Printer offline").number
        db.session.commit()
    return number


def focused(page) -> dict:
    """What has the keyboard's focus: its tag, id, name, accessible label and text."""
    return page.evaluate("""() => { const e = document.activeElement;
        return {tag: e.tagName.toLowerCase(), id: e.id, name: e.getAttribute('name') || '',
                label: e.getAttribute('aria-label') || (e.labels && e.labels[0] ? e.labels[0].textContent.trim() : ''),
                text: (e.textContent || '').trim().slice(0, 40)}; }""")


def tab_to(page, matches, limit: int = 80) -> dict:
    """Press Tab until the focused element matches (a predicate on `focused`), as a keyboard user moves."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        if matches(now):
            return now
    raise AssertionError(f"Tab never reached the control (last: {focused(page)})")


def sign_in(page, email):
    page.goto("/login")
    if focused(page)["name"] != "email":  # the sign-in page puts the focus in its first field
        tab_to(page, lambda f: f["name"] == "email")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()


def test_the_skip_link_is_the_first_stop_and_leads_to_the_content(desk, page):
    sign_in(page, "andy@staff.example")
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Skip to content"
    expect(page.get_by_role("link", name="Skip to content")).to_be_visible()  # shown while it has the focus
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"


def test_an_agent_sends_a_reply_without_the_mouse(desk, page, live_server):
    sign_in(page, "andy@staff.example")
    page.goto(f"/tickets/{desk}")
    settled(page)

    # An empty reply: the error is tied to the box, read out, and the focus is back in the box.
    tab_to(page, lambda f: f["id"] == "body")
    tab_to(page, lambda f: f["tag"] == "button" and f["text"] == "Send")
    page.keyboard.press("Enter")
    settled(page)
    box = page.locator("#body")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#body-error")).to_have_attribute("role", "alert")
    assert box.get_attribute("aria-describedby") == "body-error"
    assert focused(page)["id"] == "body"

    page.keyboard.type("The printer queue is cleared; it prints again.")
    tab_to(page, lambda f: f["tag"] == "button" and f["text"] == "Send")
    page.keyboard.press("Enter")
    expect(page.locator("#messages")).to_contain_text("The printer queue is cleared")
    settled(page)
    assert focused(page)["id"] == "body"  # a fresh box for the next message, not <body>
    expect(page.locator("#status")).to_have_text("Reply sent")
    with live_server.app_context():
        assert db.session.query(Reply).filter(Reply.body.like("The printer queue%")).count() == 1


def test_an_admin_builds_a_rule_with_two_conditions_and_an_action_without_the_mouse(desk, page, live_server):
    sign_in(page, "ada@staff.example")
    page.goto("/admin/automation/new")
    tab_to(page, lambda f: f["name"] == "name")
    page.keyboard.type("Urgent printers")
    tab_to(page, lambda f: f["name"] == "trigger_event")
    page.keyboard.press("ArrowDown")  # the first event after the placeholder, chosen with the arrow key

    for n, field_steps in enumerate((1, 2)):
        tab_to(page, lambda f: f["text"] == "+ Condition")
        page.keyboard.press("Enter")
        settled(page)
        now = focused(page)
        assert now["label"] == "Field", now  # the new row's first control has the focus
        expect(page.locator("#status")).to_have_text("Condition added")
        row_id = now["id"]
        for _ in range(field_steps):
            page.keyboard.press("ArrowDown")  # another field: the row is redrawn...
            settled(page)
            assert focused(page)["id"] == row_id  # ...and the focus stays on its Field select
        value = tab_to(page, lambda f: f["label"] == "Value")
        if value["tag"] == "select":
            page.keyboard.press("ArrowDown")  # the first value
        else:
            page.keyboard.type("billing")
        page.keyboard.press("Tab")  # leaving the value checks it in place
        settled(page)
        assert focused(page)["label"] in ("Field", "Operator", "Value") or focused(page)["tag"] == "button"
        assert page.locator(f"#{row_id.removesuffix('field')[3:].rstrip('-')}-error").is_hidden()  # no error shown
        assert page.locator(".rb-root .rb-row").count() == n + 1

    tab_to(page, lambda f: f["text"] == "+ Add action")
    page.keyboard.press("Enter")
    settled(page)
    action = focused(page)
    assert action["label"] == "Action", action
    expect(page.locator("#status")).to_have_text("Action added")
    while page.locator(f"#{action['id']}").input_value() != "add_note":
        page.keyboard.press("ArrowDown")
        settled(page)
        assert focused(page)["id"] == action["id"]  # the redrawn action row gives the focus back
    tab_to(page, lambda f: f["tag"] == "textarea" or (f["tag"] == "input" and "note" in f["id"]))
    page.keyboard.type("Check the printer queue first.")

    tab_to(page, lambda f: f["tag"] == "button" and f["text"] == "Create rule")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("it is off until you switch it on")
    with live_server.app_context():
        rule = db.session.query(AutomationRule).filter_by(name="Urgent printers").one()
        assert len(rule.conditions["all"]) == 2
        assert [a["type"] for a in rule.actions] == ["add_note"]
        assert db.session.query(Reply).count() == 0
