"""The list's views: agents land on My open tickets; built-in and saved views with their counts, never wider than
what their user may see."""
import re

import pytest

from mets.models import SavedView
from mets.services import tickets as ticket_service
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
