"""The list's views: agents land on My open tickets; built-in and saved views with their counts, never wider than
what their user may see."""
import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import event

from mets import clock
from mets.extensions import db
from mets.models import SavedView
from mets.services import tickets as ticket_service
from mets.services.tickets import views
from tests.conftest import HTMX, count_rows, login
from tests.factories import make_entity, make_rule, make_staff, make_ticket
from tests.web.helpers import screen


@pytest.fixture
def desk(session):
    acme = make_entity("Acme", "acme")
    globex = make_entity("Globex", "globex")
    make_rule(globex, "Fast", response_minutes=1, business_hours_only=False)
    maria = make_staff(acme, role="manager", name="Maria Manager")
    dana = make_staff(acme, name="Dana Agent")
    gus = make_staff(globex, name="Gus Globex")
    make_ticket(acme, subject="Acme mine one", assignee=dana)
    make_ticket(acme, subject="Acme mine two", assignee=dana)
    make_ticket(acme, subject="Acme nobody's")
    waiting = make_ticket(acme, subject="Acme waiting on customer", assignee=maria)
    ticket_service.change_status(session, waiting, "pending", actor=maria)
    for n in range(3):
        make_ticket(globex, subject=f"Globex parcel {n}")
    session.commit()
    return {"acme": acme, "globex": globex, "maria": maria, "dana": dana, "gus": gus}


def sign_in_as(client, user):
    client.post("/logout")
    return login(client, user)


def counts(response) -> dict[str, int]:
    """View name -> the count shown beside it."""
    nav = re.search(r'<nav class="views".*?</ul>', response.get_data(as_text=True), re.S).group(0)
    return {re.sub(r"\s+", " ", name).strip(): int(n)
            for name, n in re.findall(r'<a [^>]*>([^<]+)<span class="badge view-count">(\d+)</span>', nav)}


def test_an_agent_lands_on_my_open_tickets(client, desk):
    response = login(client, desk["dana"])
    assert response.location == "/tickets/?assignee=mine"
    page = client.get(response.location)
    assert re.search(r'aria-current="page">\s*My open tickets', page.get_data(as_text=True))
    shown = screen(page)
    assert "Acme mine one" in shown and "Acme mine two" in shown and "Acme nobody's" not in shown


def test_an_admin_who_works_in_no_entity_lands_on_the_whole_list(client, desk):
    admin = make_staff(name="Ada Admin", is_admin=True)
    assert login(client, admin).location == "/tickets/"


def test_built_in_views_count_only_what_the_agent_may_see(client, desk):
    login(client, desk["dana"])
    shown = counts(client.get("/tickets/"))
    assert shown == {"My open tickets": 2, "Unassigned": 1, "Due within 1 h": 0, "Breached": 0,
                     "Pending on the customer": 1, "All active": 4}
    sign_in_as(client, desk["gus"])
    theirs = counts(client.get("/tickets/", headers=HTMX))  # Globex's one-minute rule: all three due within 1 h
    assert theirs == {"My open tickets": 0, "Unassigned": 3, "Due within 1 h": 3, "Breached": 0,
                      "Pending on the customer": 0, "All active": 3}


def save(client, name, query="priority=urgent&status=all", **extra):
    data = dict(pair.split("=") for pair in query.split("&")) if query else {}
    return client.post("/tickets/views", data={"name": name, **data, **extra}, headers=HTMX)


def test_a_saved_view_is_listed_with_its_count_and_opens_the_list_at_its_filters(client, session, desk):
    login(client, desk["dana"])
    response = save(client, "Everything of mine", "assignee=mine&status=all")
    assert response.status_code == 200
    assert counts(response)["Everything of mine"] == 2
    view = session.query(SavedView).filter_by(name="Everything of mine").one()
    assert view.owner_id == desk["dana"].id and view.entity_id is None
    opened = client.get(f"/tickets/views/{view.id}")
    assert opened.status_code == 303
    assert opened.location == "/tickets/?status=all&assignee=mine"


def test_another_users_personal_view_is_never_listed_or_usable(client, session, desk):
    login(client, desk["dana"])
    save(client, "Dana's secret list")
    view = session.query(SavedView).filter_by(name="Dana's secret list").one()
    sign_in_as(client, desk["maria"])  # same entity, even a manager
    assert "Dana's secret list" not in screen(client.get("/tickets/"))
    assert client.get(f"/tickets/views/{view.id}").status_code == 404
    assert client.post(f"/tickets/views/{view.id}/delete", headers=HTMX).status_code == 404
    assert count_rows(session, SavedView) == 1


def test_a_manager_shares_a_view_with_their_entity_and_nobody_else_sees_it(client, session, desk):
    login(client, desk["maria"])
    response = save(client, "Acme urgent", share_with=str(desk["acme"].id))
    assert response.status_code == 200
    view = session.query(SavedView).filter_by(name="Acme urgent").one()
    assert view.entity_id == desk["acme"].id

    sign_in_as(client, desk["dana"])
    page = client.get("/tickets/")
    assert "Acme urgent" in counts(page)
    assert f'/tickets/views/{view.id}/delete' not in page.get_data(as_text=True)  # not theirs to delete
    assert client.post(f"/tickets/views/{view.id}/delete", headers=HTMX).status_code == 404

    sign_in_as(client, desk["gus"])
    assert "Acme urgent" not in screen(client.get("/tickets/"))
    assert client.get(f"/tickets/views/{view.id}").status_code == 404


@pytest.mark.parametrize("who, entity", [("dana", "acme"), ("maria", "globex")])
def test_only_managers_share_and_only_with_entities_they_manage(client, session, desk, who, entity):
    login(client, desk[who])
    response = save(client, "Shared by the wrong person", share_with=str(desk[entity].id))
    assert response.status_code == 422
    assert "Share with an entity you manage, or keep the view to yourself." in screen(response)
    assert count_rows(session, SavedView) == 0


def test_a_views_stored_filters_never_widen_what_it_shows(client, session, desk):
    # A shared view whose filters name another entity (written before a move, or by hand): read through scoping.
    view = SavedView(name="Globex everything", owner_id=desk["maria"].id, entity_id=desk["acme"].id,
                     filters={"entity": desk["globex"].id, "status": "all"})
    session.add(view)
    session.commit()
    login(client, desk["dana"])
    assert counts(client.get("/tickets/"))["Globex everything"] == 0
    page = screen(client.get(client.get(f"/tickets/views/{view.id}").location))
    assert "Globex parcel" not in page and "0 tickets" in page


def test_saving_a_view_needs_a_name_and_the_csrf_token(client, session, desk):
    login(client, desk["dana"])
    assert "Name the view." in screen(save(client, ""))
    assert client.post("/tickets/views", data={"name": "No token"}, headers=HTMX, csrf=False).status_code == 400
    assert count_rows(session, SavedView) == 0


def test_the_owner_deletes_their_view(client, session, desk):
    login(client, desk["dana"])
    save(client, "Short-lived")
    view = session.query(SavedView).filter_by(name="Short-lived").one()
    response = client.post(f"/tickets/views/{view.id}/delete", data={"status": "all"}, headers=HTMX)
    assert response.status_code == 200
    assert "Short-lived" not in screen(response)
    assert count_rows(session, SavedView) == 0


# --- the counts: what each view's list shows, in one query ---------------------------------------------------------

@pytest.fixture
def busy(session, desk):
    """More of Acme's tickets, across the views: urgent ones, one breached and one due within the hour (a one-hour
    rule), one resolved; and an invoice ticket to search for."""
    acme, dana, maria = desk["acme"], desk["dana"], desk["maria"]
    make_rule(acme, "Acme hour", resolution_minutes=60, business_hours_only=False)
    with clock.freeze(clock.now() - timedelta(hours=2)):
        make_ticket(acme, subject="Acme late urgent", priority="urgent", assignee=dana)  # breached by now
    make_ticket(acme, subject="Acme urgent nobody's", priority="urgent")  # due within the hour
    done = make_ticket(acme, subject="Acme urgent done", priority="urgent", assignee=maria)
    ticket_service.change_status(session, done, "resolved", actor=maria)
    make_ticket(acme, subject="Acme invoice 42 is wrong", assignee=dana)
    make_ticket(desk["globex"], subject="Globex urgent invoice", priority="urgent")
    session.commit()
    return desk


def view_hrefs(response) -> dict[str, str]:
    """View name -> where its link goes."""
    nav = re.search(r'<nav class="views".*?</ul>', response.get_data(as_text=True), re.S).group(0)
    return {re.sub(r"\s+", " ", name).strip(): html.unescape(href)
            for href, name in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)<span class="badge view-count">', nav)}


def listed(response) -> int:
    """The number of tickets the list says it holds."""
    return int(re.search(r'<p class="muted count">(\d+) tickets?</p>', response.get_data(as_text=True)).group(1))


@pytest.mark.parametrize("who", ["dana", "maria"])
def test_every_views_count_is_the_number_of_tickets_its_list_shows(client, busy, who):
    login(client, busy["maria"])
    save(client, "Urgent, any status", "priority=urgent&status=all")  # Maria's own
    save(client, "Acme urgent queue", "priority=urgent&assignee=unassigned", share_with=str(busy["acme"].id))
    save(client, "Invoices", "q=invoice&status=all")  # a text search: counted on its own
    sign_in_as(client, busy[who])
    if who == "dana":
        save(client, "Everything of Dana", "assignee=mine&status=all")
    page = client.get("/tickets/")
    shown = counts(page)
    expected = {"My open tickets": 4, "Unassigned": 2, "Due within 1 h": 2, "Breached": 1,
                "Pending on the customer": 1, "All active": 7, "Acme urgent queue": 1}
    expected.update({"Everything of Dana": 4} if who == "dana" else
                    {"My open tickets": 1, "Urgent, any status": 3, "Invoices": 1})
    assert shown == expected
    for name, href in view_hrefs(page).items():
        assert listed(client.get(href, follow_redirects=True)) == shown[name], name


def statements_of(client, url) -> list[str]:
    seen = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_the_views_counts_are_one_statement_however_many_saved_views_there_are(client, session, desk):
    login(client, desk["maria"])
    save(client, "The first", "priority=urgent")
    session.commit()  # as before the second measure, so the two requests start alike
    few = statements_of(client, "/tickets/")
    for n in range(views.MAX_SAVED - 1):  # as many as are listed, personal and shared, each with other filters
        session.add(SavedView(name=f"View {n:02}", owner_id=desk["maria"].id,
                              entity_id=desk["acme"].id if n % 2 else None,
                              filters={"status": ["open", "pending", "all"][n % 3], "priority": "high",
                                       "assignee": "unassigned" if n % 4 else "mine", "sla": "due_4h"}))
    session.commit()
    many = statements_of(client, "/tickets/")
    assert len(counts(client.get("/tickets/"))) == 6 + views.MAX_SAVED
    counting = [s for s in many if s.count("count(*)") >= 6]  # one capped count per view, all in one statement
    assert len(counting) == 1 and counting[0].count("count(*)") == 6 + views.MAX_SAVED, counting
    assert len(many) == len(few)  # thirty views cost what one does
