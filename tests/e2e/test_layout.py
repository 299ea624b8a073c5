"""Nothing pushes a page wider than the window: long unbroken words wrap, and the admin nav wraps on a phone."""
import pytest

from mets.extensions import db
from tests.factories import PASSWORD, make_customer, make_entity, make_staff, make_ticket
from tests.e2e.helpers import expect

pytestmark = pytest.mark.e2e

LONG = "x" * 10_000  # issue 12, defect 2: one unbroken 10,000-character subject
ADMIN_PAGES = ["/admin/", "/admin/entities", "/admin/users", "/admin/users/new", "/admin/hours/", "/admin/sla/",
               "/admin/sla/new", "/admin/automation/", "/admin/automation/new", "/admin/mail/",
               "/admin/mail/settings", "/admin/mail/notifications", "/admin/mail/templates/", "/admin/webhooks/",
               "/tickets/"]


def sign_in(page, email):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0: nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def boxed_overflow(page, selector) -> int:
    """How far a box that scrolls sideways on its own (a table's) is wider than it shows."""
    return page.evaluate(f"(e => e.scrollWidth - e.clientWidth)(document.querySelector('{selector}'))")


def culprits(page) -> list[str]:
    """The innermost elements reaching past the window's right edge (what to fix when a page is too wide)."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                     && ![...e.children].some(c => c.getBoundingClientRect().right > window.innerWidth + 1))
        .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                         + (e.className ? '.' + String(e.className).split(' ').join('.') : ''))""")


def test_a_ten_thousand_character_word_wraps_on_the_ticket_page_the_list_and_the_mail_queue(live_server, page):
    with live_server.app_context():
        acme = make_entity(name="Acme", slug="acme")
        admin = make_staff(acme, role="manager", name="Ada Admin", email="ada@staff.example", is_admin=True)
        # The longest subject and category the form takes (their mail goes into the queue), then a subject
        # from before that limit (or another way in): the 10,000 characters.
        ticket = make_ticket(acme, make_customer(name=LONG[:200], email="long@example.com"), subject=LONG[:250],
                             body=LONG, category=LONG[:80])
        db.session.commit()
        ticket.subject = LONG
        db.session.commit()
        number, email = ticket.number, admin.email
    sign_in(page, email)
    page.goto("/tickets/")  # all active tickets (staff land on their own, and this one is nobody's)

    expect(page.locator("#ticket-table")).to_contain_text("xxxx")
    assert overflow(page) <= 0, ("the ticket list", culprits(page))
    assert boxed_overflow(page, "#ticket-table") <= 0, "the list's columns scroll out of sight"
    page.goto(f"/tickets/{number}")
    expect(page.locator("#properties")).to_be_visible()
    assert overflow(page) <= 0, ("the ticket page", culprits(page))
    properties = page.locator("#properties").bounding_box()
    assert properties["x"] + properties["width"] <= 1280, "Properties off-screen"
    page.goto("/admin/mail/")
    expect(page.locator("#mail-queue")).to_contain_text("xxxx")
    assert overflow(page) <= 0, ("the mail queue", culprits(page))
    assert boxed_overflow(page, "#mail-queue") <= 0, "the queue's columns scroll out of sight"
    page.locator("#mail-queue a", has_text="xxxx").first.click()
    expect(page.locator(".mail-status")).to_be_visible()
    assert overflow(page) <= 0, ("one message of the mail queue", culprits(page))


def test_the_admin_pages_fit_a_phone(live_server, page):
    with live_server.app_context():
        acme = make_entity(name="Acme", slug="acme")
        admin = make_staff(acme, role="manager", name="Ada Admin", email="ada@staff.example", is_admin=True)
        make_ticket(acme, subject="Printer is offline")
        db.session.commit()
        email = admin.email
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, email)
    wide = {}
    for path in ADMIN_PAGES:
        page.goto(path)
        if (extra := overflow(page)) > 0:
            wide[path] = (extra, culprits(page))
    assert not wide, f"pages wider than a 390 px phone (px too wide): {wide}"
