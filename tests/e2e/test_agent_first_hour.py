"""End to end, in Chromium: an agent's first hour, as the issue walks it.

Dana lands on My open tickets, finds a customer's ticket by the customer's name, fills her reply
from a macro, sees a colleague's reply arrive while the page is open, is warned before answering
over it, sends anyway (the macro's status change goes with the reply), and bulk-assigns the five
unassigned tickets to that colleague.
"""
import re

import pytest

from mets.extensions import db
from mets.models import SENT, QueuedEmail, Reply, Ticket, User
from mets.services import macros, tickets
from tests.e2e.helpers import expect, settled
from tests.factories import PASSWORD, make_customer, make_entity, make_staff, make_ticket
from tests.servers import wait_until

pytestmark = pytest.mark.e2e


def test_an_agents_first_hour(live_server, page):
    live_server.app.config["TICKET_POLL_SECONDS"] = 1
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        dana = make_staff(acme, name="Dana Agent", email="dana@staff.example")
        make_staff(acme, name="Bea Billing", email="bea@staff.example")
        kemi = make_customer(name="Kemi Okafor", email="kemi@lagos.example")
        number = make_ticket(acme, kemi, subject="The VAT line on invoice 42 is wrong",
                             body="The VAT on my last invoice says 0%.", assignee=dana).number
        for i in range(5):
            make_ticket(acme, subject=f"Unassigned request {i + 1}")
        macros.create_macro(db.session, acme, {"name": "Looking into it",
                                               "body": "Hello {{ customer_name }}, we are on it.",
                                               "status": "pending"})
        db.session.commit()

    # Sign in: the agent lands on her own open tickets.
    page.goto("/login")
    page.get_by_label("Email").fill("dana@staff.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/tickets/\?assignee=mine$"))
    views = page.get_by_role("navigation", name="Views")
    expect(views.locator('[aria-current="page"]')).to_contain_text("My open tickets")
    rows = page.locator("#ticket-table tbody tr")
    expect(rows).to_have_count(1)

    # All active tickets, then the customer by name: her name is in no subject.
    views.get_by_role("link", name=re.compile("^All active")).click()
    expect(rows).to_have_count(6)
    page.get_by_role("searchbox", name="Search").fill("Kemi")
    expect(page).to_have_url(re.compile(r"[?&]q=Kemi(&|$)"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("The VAT line on invoice 42 is wrong")
    rows.first.get_by_role("link", name=re.compile("VAT line")).click()
    expect(page.get_by_role("heading", name=re.compile("VAT line on invoice 42"))).to_be_visible()

    # A macro fills the reply box with its text for this ticket, to edit before sending (once the picker, which the
    # page loads after itself, is live).
    expect(page.get_by_label("Macro")).to_be_visible()
    settled(page)
    page.get_by_label("Macro").select_option(label="Looking into it")
    box = page.get_by_label("Reply")
    expect(box).to_have_value(re.compile(r"Hello Kemi Okafor, we are on it\."))
    expect(page.locator(".macro-pending")).to_contain_text("Pending")
    box.fill("Hello Kemi Okafor, we are on it: the VAT rate will be corrected today.")

    # Bea answers the customer from her desk meanwhile: her reply appears without a reload.
    page.evaluate("window.__noReload = 1")
    with live_server.app_context():
        ticket = db.session.query(Ticket).filter_by(number=number).one()
        bea = db.session.query(User).filter_by(email="bea@staff.example").one()
        tickets.add_reply(db.session, ticket, actor=bea, body="Bea here: I have sent a corrected invoice.")
        db.session.commit()
    expect(page.locator("#messages")).to_contain_text("Bea here: I have sent a corrected invoice.", timeout=5000)
    expect(box).to_have_value(re.compile("corrected today"))

    # Sending now is held with a warning, the text kept; "Send anyway" sends it once, with the macro's change.
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".held")).to_contain_text("Bea Billing replied")
    expect(page.get_by_label("Reply")).to_have_value(re.compile("corrected today"))
    page.get_by_role("button", name="Send anyway").click()
    expect(page.locator("#messages")).to_contain_text("the VAT rate will be corrected today")
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"
    with live_server.app_context():
        assert db.session.query(Reply).filter(Reply.body.like("%corrected today%")).count() == 1
        assert db.session.query(Ticket).filter_by(number=number).one().status == "pending"

    # Kemi gets both answers by mail. (Waiting for the worker to have sent everything also keeps its commits out of
    # the bulk change below: on SQLite a request that read before another process committed cannot then write.)
    # (Her receipt, both replies and the status change: four messages.)
    mails = live_server.messages_to("kemi@lagos.example", count=4)
    texts = " ".join(m.get_body(("plain",)).get_content() for m in mails)
    assert "I have sent a corrected invoice" in texts and "the VAT rate will be corrected today" in texts
    with live_server.app_context():
        def all_sent():
            db.session.rollback()  # a fresh look each time
            return not db.session.query(QueuedEmail).filter(QueuedEmail.status != SENT).count()
        wait_until(all_sent, timeout=20, what="the worker to send all queued mail")

    # Back on the list: the five unassigned tickets go to Bea in one step.
    page.goto("/tickets/")
    views.get_by_role("link", name=re.compile("^Unassigned")).click()
    expect(rows).to_have_count(5)
    page.get_by_label("All on this page").check()
    page.get_by_role("combobox", name="New owner for the selected").select_option(label="Bea Billing")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator(".bulk-result")).to_contain_text("5 tickets updated.")
    expect(views.get_by_role("link", name=re.compile("^Unassigned"))).to_contain_text("0")
    with live_server.app_context():
        bea = db.session.query(User).filter_by(email="bea@staff.example").one()
        assert db.session.query(Ticket).filter(Ticket.subject.like("Unassigned request %"),
                                               Ticket.assignee_id == bea.id).count() == 5
