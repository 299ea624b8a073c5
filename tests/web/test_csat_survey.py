"""The satisfaction survey page a mail links to: a GET (a mail scanner's too) only shows the form, a POST records,
a second POST changes the same answer; expired, tampered and other customers' links are refused; the dashboard's
CSAT figures."""
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import CsatResponse, QueuedEmail
from mets.services import tickets
from mets.services.directory import portal_auth
from mets.services.metrics import csat
from tests.conftest import count_rows, login, login_customer, text_of
from tests.factories import make_customer, make_entity, make_staff, make_ticket, ny

RESOLVED = ny(2026, 11, 27, 16, 0)  # Friday
SENT = ny(2026, 12, 2, 16, 0)  # 24 business hours later
LATER = SENT + timedelta(days=1)


@pytest.fixture
def world(session):
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    agent = make_staff(acme, name="Dana")
    jane, carl = make_customer("Jane Cooper", "jane@example.com"), make_customer("Carl Other", "carl@example.com")
    found = {"acme": acme, "agent": agent, "jane": jane, "carl": carl}
    for who in ("jane", "carl"):
        ticket = make_ticket(acme, customer=found[who], subject=f"{who}'s invoice", now=ny(2026, 11, 27, 9, 0))
        tickets.assign(session, ticket, agent, actor=agent, now=ny(2026, 11, 27, 9, 30))
        tickets.change_status(session, ticket, "resolved", actor=agent, now=RESOLVED)
        found[f"{who}_ticket"] = ticket
    csat.tick(session, SENT)
    session.commit()
    return found


def mailed_link(session, ticket, score=4) -> str:
    """The survey link for `score` from the mail the customer got (path and query)."""
    mail = session.scalars(select(QueuedEmail).where(QueuedEmail.ticket_id == ticket.id,
                                                     QueuedEmail.template_name == "csat-survey")).one()
    url = re.search(rf"http://mets\.test(/portal/survey/\S+\?score={score})", mail.body).group(1)
    return url


def survey_row(session, ticket) -> CsatResponse:
    session.expire_all()
    return session.scalars(select(CsatResponse).where(CsatResponse.ticket_id == ticket.id)).one()


def path_of(link: str) -> str:
    return urlsplit(link).path


def test_a_link_scanners_get_records_nothing(client, session, world):
    link = mailed_link(session, world["jane_ticket"], score=4)
    with clock.freeze(LATER):
        response = client.get(link)
    body = text_of(response)
    assert response.status_code == 200 and "How did we do?" in body
    assert re.search(r'<input[^>]*checked[^>]*value="4"|<input[^>]*value="4"[^>]*checked', response.get_data(True))
    row = survey_row(session, world["jane_ticket"])
    assert row.score is None and row.answered_at is None and row.comment == ""


def test_a_post_records_and_a_second_post_edits_the_same_row(client, session, world):
    ticket = world["jane_ticket"]
    link = mailed_link(session, ticket, score=5)
    with clock.freeze(LATER):
        response = client.post(path_of(link), data={"score": "5", "comment": "Quick & <kind>"})
    assert response.status_code == 303 and urlsplit(response.location).path == path_of(link)
    row = survey_row(session, ticket)
    assert (row.score, row.comment, row.agent_id, row.answered_at) == (5, "Quick & <kind>", world["agent"].id, LATER)

    with clock.freeze(LATER):
        page = client.get(response.location)
    assert "your answer is recorded" in text_of(page) and "Quick &amp; &lt;kind&gt;" in page.get_data(True)

    with clock.freeze(LATER + timedelta(days=2)):
        assert client.post(path_of(link), data={"score": "2", "comment": "It broke again"}).status_code == 303
    row = survey_row(session, ticket)
    assert (row.score, row.comment) == (2, "It broke again")
    assert count_rows(session, CsatResponse, CsatResponse.ticket_id == ticket.id) == 1


def test_a_post_without_the_csrf_token_or_with_a_bad_score_records_nothing(client, session, world):
    link = path_of(mailed_link(session, world["jane_ticket"]))
    with clock.freeze(LATER):
        assert client.post(link, data={"score": "4"}, csrf=False).status_code == 400
        bad = client.post(link, data={"score": "9"})
        assert bad.status_code == 422 and "Not a valid choice" in text_of(bad)
        assert client.post(link, data={"comment": "no score"}).status_code == 422
    assert survey_row(session, world["jane_ticket"]).score is None


def test_an_expired_link_is_refused_with_a_clear_page(client, session, world):
    link = mailed_link(session, world["jane_ticket"])
    with clock.freeze(SENT + timedelta(days=14)):
        page = client.get(link)
        post = client.post(path_of(link), data={"score": "4"})
    assert page.status_code == 410 and "This survey link has expired" in text_of(page)
    assert post.status_code == 410
    assert survey_row(session, world["jane_ticket"]).score is None
    with clock.freeze(SENT + timedelta(days=14) - timedelta(seconds=1)):  # until then it still takes answers
        assert client.post(path_of(link), data={"score": "4"}).status_code == 303


def test_a_tampered_link_is_refused(client, session, world):
    link = path_of(mailed_link(session, world["jane_ticket"]))
    token = link.rsplit("/", 1)[1]
    payload, _, signature = token.partition(".")
    forged = f"{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"
    with clock.freeze(LATER):
        for bad in (f"/portal/survey/{forged}", "/portal/survey/nonsense", link[:-3]):
            response = client.post(bad, data={"score": "1"})
            assert response.status_code == 400 and "This survey link is not valid" in text_of(response), bad
            assert client.get(bad).status_code == 400
    assert survey_row(session, world["jane_ticket"]).score is None


def test_another_customers_token_cannot_answer(app, client, session, world):
    jane_row, carl_row = survey_row(session, world["jane_ticket"]), survey_row(session, world["carl_ticket"])
    # Carl's address signed onto Jane's survey (as if Carl edited the id in his own link): refused.
    stolen = portal_auth.make_survey_token(app.secret_key, jane_row.id, "carl@example.com")
    login_customer(client, world["carl"])
    with clock.freeze(LATER):
        assert client.post(f"/portal/survey/{stolen}", data={"score": "1"}).status_code == 400
        # Carl's own link answers his own survey only, whoever is signed in.
        assert client.post(path_of(mailed_link(session, world["carl_ticket"])), data={"score": "3"}).status_code == 303
    assert survey_row(session, world["jane_ticket"]).score is None
    assert survey_row(session, world["carl_ticket"]).score == 3
    # A survey token is not a sign-in token (its own salt), nor the reverse.
    sign_in = portal_auth.make_token(app.secret_key, "jane@example.com", kind=portal_auth.TICKET)
    assert client.get(f"/portal/survey/{sign_in}").status_code == 400
    assert carl_row.id != jane_row.id


def test_the_dashboard_shows_the_csat_figures(client, session, world):
    admin = make_staff(name="Ada Admin", is_admin=True)
    session.commit()
    for who, score in (("jane", 5), ("carl", 2)):
        with clock.freeze(LATER):
            client.post(path_of(mailed_link(session, world[f"{who}_ticket"])), data={"score": str(score)})
    login(client, admin)
    with clock.freeze(LATER):
        body = text_of(client.get("/metrics/?from=2026-12-01&to=2026-12-03"))
        empty = text_of(client.get("/metrics/?from=2026-11-01&to=2026-11-07"))
    assert "CSAT score (answers of 4 or 5) 50%" in body
    assert "Mean score (1–5) 3.50" in body
    assert "Response rate 100% (2 of 2 surveys)" in body
    assert "No satisfaction surveys were sent in this period." in empty


def test_the_agent_page_and_the_csv_exports_carry_the_csat_figures(client, session, world):
    other = make_entity("Globex", "globex")
    gus = make_staff(other, name="Gus")
    manager = make_staff(other, role="manager", name="Greta")
    admin = make_staff(name="Ada Admin", is_admin=True)
    session.commit()
    with clock.freeze(LATER):  # Jane answers 5; Carl's survey stays unanswered
        client.post(path_of(mailed_link(session, world["jane_ticket"])), data={"score": "5"})
    week = "from=2026-12-01&to=2026-12-03"
    header = "Surveys sent,Answers,Response rate (%),CSAT score (answers of 4 or 5) (%),Mean score (1–5)"
    for who, path, expected in ((admin, f"/metrics/export/csat.csv?{week}", "2,1,50.0,100.0,5.00"),
                                (admin, f"/metrics/export/csat.csv?{week}&agent={gus.id}", "0,0,,,"),
                                (manager, f"/metrics/export/csat.csv?{week}", "0,0,,,"),  # Acme's are not theirs
                                (world["agent"], f"/metrics/agents/{world['agent'].id}/export/agent_csat.csv?{week}",
                                 "2,1,50.0,100.0,5.00"),
                                (admin, f"/metrics/agents/{gus.id}/export/agent_csat.csv?{week}", "0,0,,,")):
        fresh = client.application.test_client()  # a sign-in of its own for each viewer
        login(fresh, who)
        with clock.freeze(LATER):
            response = fresh.get(path)
        assert response.status_code == 200, path
        assert response.get_data(as_text=True).splitlines() == [header, expected], (who.name, path)
    agent, greta = client.application.test_client(), client.application.test_client()
    login(agent, world["agent"])
    with clock.freeze(LATER):
        body = text_of(agent.get(f"/metrics/agents/{world['agent'].id}?{week}"))
    assert "Customer satisfaction" in body and "CSAT score (answers of 4 or 5) 100%" in body
    assert "Response rate 50% (1 of 2 surveys)" in body
    login(greta, manager)
    with clock.freeze(LATER):
        assert greta.get(f"/metrics/agents/{world['agent'].id}/export/agent_csat.csv?{week}").status_code == 404
