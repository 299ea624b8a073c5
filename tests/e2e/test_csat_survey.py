"""A customer answers a satisfaction survey from the emailed link in Chromium: the link's score is preselected, the
answer is recorded only when sent, and can be changed; axe checks every page."""
import re
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from mets import clock
from mets.extensions import db
from mets.models import CsatResponse
from mets.services import tickets
from mets.services.metrics import csat
from tests.e2e.helpers import expect
from tests.factories import make_customer, make_entity, make_staff, make_ticket

pytestmark = pytest.mark.e2e


@pytest.fixture
def survey_sent(live_server):
    """A ticket resolved ten days ago, whose survey the tick has just sent."""
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        agent = make_staff(acme, name="Dana Agent")
        customer = make_customer("Carla Customer", "carla@example.com")
        start = clock.now() - timedelta(days=10)
        ticket = make_ticket(acme, customer=customer, subject="Printer offline", now=start)
        tickets.assign(db.session, ticket, agent, actor=agent, now=start + timedelta(minutes=5))
        tickets.change_status(db.session, ticket, "resolved", actor=agent, now=start + timedelta(hours=1))
        db.session.commit()
        assert csat.tick(db.session, clock.now())
        return ticket.id


def answer(live_server, ticket_id):
    with live_server.app_context():
        row = db.session.scalars(select(CsatResponse).where(CsatResponse.ticket_id == ticket_id)).one()
        return row.score, row.comment


def survey_mail(live_server) -> list:
    """The survey among the customer's mails (the ticket's own come too), once the worker has sent it."""
    deadline = time.monotonic() + 15
    while True:
        found = [m for m in live_server.messages_to("carla@example.com", timeout=0) if "How did we do" in m["Subject"]]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_customer_answers_the_survey_from_the_emailed_link(page, live_server, survey_sent):
    (mail,) = survey_mail(live_server)
    text = mail.get_body(("plain",)).get_content()
    link = urlsplit(re.search(r"https?://\S+/portal/survey/\S+\?score=4", text).group(0))
    page.goto(f"{link.path}?{link.query}")
    expect(page.get_by_role("heading", name="How did we do?")).to_be_visible()
    expect(page.get_by_label("4 – Satisfied")).to_be_checked()
    assert answer(live_server, survey_sent) == (None, "")  # opening the link records nothing

    page.get_by_label("5 – Very satisfied").check()
    page.get_by_label(re.compile("Anything you would like to tell us")).fill("Fixed within the hour.")
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_role("status").filter(has_text="your answer is recorded")).to_be_visible()
    assert answer(live_server, survey_sent) == (5, "Fixed within the hour.")

    page.get_by_label("3 – Neutral").check()
    page.get_by_role("button", name="Update my answer").click()
    expect(page.get_by_text("You can change it here")).to_be_visible()
    assert answer(live_server, survey_sent) == (3, "Fixed within the hour.")
