"""The escalation policy pages: the list, the editor (levels in place, their order as posted), field errors in
place, scoping, CSRF, and the preview of each level's local and UTC instant for one ticket."""
import json
import re

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import EscalationLevel, EscalationPolicy, Ticket
from mets.services import escalation
from tests.conftest import HTMX, count_rows, login
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket, ny
from tests.web.helpers import screen


@pytest.fixture
def desk(session, client):
    acme = make_entity("Acme", "acme", timezone="America/New_York")  # Mon-Fri 09-17 by default
    globex = make_entity("Globex", "globex")
    make_rule(acme, "Standard", response_minutes=4 * 60, resolution_minutes=16 * 60)
    admin = make_staff(name="Ada Admin", is_admin=True)
    manager = make_staff(acme, role="manager", name="Maria Manager")
    outsider = make_staff(globex, name="Gus Globex")
    with clock.freeze(ny(2026, 11, 23, 9, 0)):  # a Monday, as the desk opens
        ticket = make_ticket(acme, customer=make_customer(), subject="Invoice is wrong")
        policy = escalation.create_policy(session, acme, name="Slow answers", clock="since_created",
                                          business_time=False,
                                          levels=[{"trigger": "after_duration", "value": 600, "actions": []}])
    session.commit()
    login(client, admin)
    return {"acme": acme, "globex": globex, "admin": admin, "manager": manager, "outsider": outsider,
            "ticket": ticket, "policy": policy}


def level(row: str, trigger: str, value, actions=(), level_id="") -> dict:
    return {f"lv-{row}-id": str(level_id), f"lv-{row}-trigger": trigger, f"lv-{row}-value": str(value),
            f"lv-{row}-actions": json.dumps(list(actions))}


def policy_form(entity, *levels, rows=None, **fields) -> dict:
    """The editor's post: the policy's fields, each level's inputs, and the level rows in page order."""
    data = {"name": "Near breach", "entity_id": str(entity.id), "clock": "resolution", "business_time": "y",
            "is_active": "y", "position": "", "conditions": "", **fields}
    for each in levels:
        data.update(each)
    found = rows if rows is not None else [k.split("-")[1] for each in levels for k in each if k.endswith("-trigger")]
    return {**data, "level_row": found}


TWO_LEVELS = (level("lvr1", "percent", 75, [{"type": "notify", "to": ["managers"]}]),
              level("lvr2", "after_breach", 0, [{"type": "raise_priority"}]))


def test_the_list_shows_each_entitys_policies_and_the_nav_links_to_it(client, desk):
    page = client.get("/admin/escalation/")
    assert page.status_code == 200
    text = screen(page)
    assert "Slow answers" in text and "Time since created" in text and "10h after the clock started" in text
    assert 'href="/admin/escalation/"' in page.get_data(as_text=True)  # the admin's nav


def test_creating_a_two_level_policy_stores_its_levels_in_order(client, session, desk):
    response = client.post("/admin/escalation/new", data=policy_form(desk["acme"], *TWO_LEVELS))
    assert response.status_code == 303
    policy = session.scalars(select(EscalationPolicy).where(EscalationPolicy.name == "Near breach")).one()
    stored = session.scalars(select(EscalationLevel).where(EscalationLevel.policy_id == policy.id)
                             .order_by(EscalationLevel.position)).all()
    assert [(lv.trigger, lv.value) for lv in stored] == [("percent", 75), ("after_breach", 0)]
    assert stored[0].actions == [{"type": "notify", "to": ["managers"]}]
    page = screen(client.get(response.location))
    assert "Near breach" in page and "Level" in page


def test_the_order_posted_is_the_order_saved_and_levels_keep_their_identity(client, session, desk):
    client.post("/admin/escalation/new", data=policy_form(desk["acme"], *TWO_LEVELS))
    policy = session.scalars(select(EscalationPolicy).where(EscalationPolicy.name == "Near breach")).one()
    first, second = policy.levels
    ids = (first.id, second.id)
    moved = policy_form(desk["acme"], level("lvra", "percent", 75, [], level_id=ids[0]),
                        level("lvrb", "after_breach", 30, [], level_id=ids[1]), rows=["lvrb", "lvra"])
    assert client.post(f"/admin/escalation/{policy.id}", data=moved).status_code == 303
    session.expire_all()
    policy = session.get(EscalationPolicy, policy.id)
    assert [(lv.id, lv.trigger, lv.value) for lv in policy.levels] == [(ids[1], "after_breach", 30),
                                                                       (ids[0], "percent", 75)]


def test_field_errors_are_shown_in_place_in_peoples_words(client, session, desk):
    data = policy_form(desk["acme"], level("lvr1", "percent", "abc"),
                       level("lvr2", "after_breach", 10, [{"type": "notify"}]), name=" ")
    response = client.post("/admin/escalation/new", data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    row1 = html[html.index('id="lvr1"'):html.index('id="lvr2"')]
    row2 = html[html.index('id="lvr2"'):]
    assert "Enter a percent from 1 to 1000." in row1 and 'value="abc"' in row1  # kept as typed, beside its field
    assert "Choose who is told." in row2
    assert "Name" in screen(response) and "required" in screen(response).lower()
    assert count_rows(session, EscalationPolicy) == 1


def test_a_percent_level_needs_an_sla_clock_and_a_policy_needs_a_level(client, session, desk):
    response = client.post("/admin/escalation/new",
                           data=policy_form(desk["acme"], level("lvr1", "percent", 50), clock="since_created"))
    assert response.status_code == 422
    assert "Percent and breach offsets need an SLA clock" in screen(response)
    response = client.post("/admin/escalation/new", data=policy_form(desk["acme"], rows=[]))
    assert response.status_code == 422 and "Add at least one level." in screen(response)


def test_a_named_recipient_must_work_in_the_policys_entity(client, desk):
    data = policy_form(desk["acme"], level("lvr1", "percent", 75,
                                           [{"type": "notify", "user_id": str(desk["outsider"].id)}]))
    response = client.post("/admin/escalation/new", data=data)
    assert response.status_code == 422
    assert "Gus Globex does not work in Acme." in screen(response)


def test_non_admins_get_404_and_another_entitys_policy_is_not_theirs(client, desk):
    policy = desk["policy"]
    for person in (desk["manager"], desk["outsider"]):
        client.post("/logout")
        login(client, person)
        assert client.get("/admin/escalation/").status_code == 404
        assert client.get(f"/admin/escalation/{policy.id}").status_code == 404
        assert client.post(f"/admin/escalation/{policy.id}/delete").status_code == 404
    client.post("/logout")
    login(client, desk["admin"])
    assert client.get("/admin/escalation/99999").status_code == 404


def test_every_form_and_htmx_request_needs_the_csrf_token(client, session, desk):
    policy = desk["policy"]
    data = policy_form(desk["acme"], *TWO_LEVELS)
    for url, htmx in (("/admin/escalation/new", False), (f"/admin/escalation/{policy.id}", False),
                      (f"/admin/escalation/{policy.id}/delete", False), (f"/admin/escalation/{policy.id}/move", True),
                      (f"/admin/escalation/{policy.id}/active", True), ("/admin/escalation/level-row", True),
                      ("/admin/escalation/action-row", True), ("/admin/escalation/preview", True)):
        response = client.post(url, data=data, csrf=False, headers=HTMX if htmx else {})
        assert response.status_code == 400, url
    assert count_rows(session, EscalationPolicy) == 1


def test_htmx_draws_a_new_level_row_and_level_action_rows(client, desk):
    row = client.post("/admin/escalation/level-row", data={"entity_id": desk["acme"].id}, headers=HTMX)
    html = row.get_data(as_text=True)
    assert row.status_code == 200 and 'name="level_row"' in html and "data-level-row" in html
    action = client.post("/admin/escalation/action-row", data={"type": "reassign_tier", "entity_id": desk["acme"].id},
                         headers=HTMX)
    text = action.get_data(as_text=True)
    assert "Reassign to a higher tier" in text and "The next tier up" in text
    assert "/admin/escalation/action-row" in text  # a redraw asks this registry again, not automation's


def test_moving_and_switching_off_answer_the_entitys_box(client, session, desk):
    client.post("/admin/escalation/new", data=policy_form(desk["acme"], *TWO_LEVELS))
    response = client.post(f"/admin/escalation/{desk['policy'].id}/move", data={"direction": "down"}, headers=HTMX)
    assert response.status_code == 200
    names = re.findall(r'/admin/escalation/\d+">([^<]+)</a>', response.get_data(as_text=True))
    assert names == ["Near breach", "Slow answers"]
    response = client.post(f"/admin/escalation/{desk['policy'].id}/active", data={"active": "0"}, headers=HTMX)
    assert "Inactive" in screen(response)
    session.expire_all()
    assert session.get(EscalationPolicy, desk["policy"].id).is_active is False


def test_deleting_a_policy_redirects_to_the_list(client, session, desk):
    response = client.post(f"/admin/escalation/{desk['policy'].id}/delete")
    assert response.status_code == 303 and response.location.endswith("/admin/escalation/")
    assert count_rows(session, EscalationPolicy) == 0


def test_the_preview_gives_each_levels_local_and_utc_instant_and_writes_nothing(client, session, desk):
    ticket = desk["ticket"]
    before = session.get(Ticket, ticket.id).escalation_due_at
    data = {**policy_form(desk["acme"], *TWO_LEVELS), "preview_ticket": ticket.number}
    with clock.freeze(ny(2026, 11, 23, 10, 0)):
        response = client.post("/admin/escalation/preview", data=data, headers=HTMX)
    assert response.status_code == 200
    text = screen(response)
    # 75% of 16 business hours from Monday 09:00 New York: Tuesday 13:00 there; the breach Tuesday 17:00.
    assert re.search(r"Level 1 ?: 75% of the resolution target used Tue 24 Nov 2026 13:00 America/New_York "
                     r"Tue 24 Nov 2026 18:00 UTC", text), text
    assert re.search(r"Level 2 ?: the resolution target was breached Tue 24 Nov 2026 17:00 America/New_York "
                     r"Tue 24 Nov 2026 22:00 UTC", text), text
    assert "Follows now: Slow answers" in text
    session.expire_all()
    assert session.get(Ticket, ticket.id).escalation_due_at == before
    assert count_rows(session, EscalationPolicy) == 1


def test_the_preview_says_what_is_wrong_and_when_the_ticket_is_unknown(client, desk):
    missing = client.post("/admin/escalation/preview", data={"preview_ticket": "NOPE-1"}, headers=HTMX)
    assert "No ticket NOPE-1." in screen(missing)
    data = {**policy_form(desk["acme"], level("lvr1", "percent", 50), clock="since_created"),
            "preview_ticket": desk["ticket"].number, "policy_id": str(desk["policy"].id)}
    response = client.post("/admin/escalation/preview", data=data, headers=HTMX)
    text = screen(response)
    assert "saving would refuse it" in text and "Percent and breach offsets need an SLA clock" in text
    assert re.search("Level 1 ?: 10h since created", text)  # the saved policy is previewed instead


def test_the_preview_marks_a_level_that_fired_this_round(client, session, desk):
    ticket, policy = desk["ticket"], desk["policy"]
    assert escalation.tick(session, ny(2026, 11, 23, 19, 1)) == [(ticket.id, 1)]  # 10h after 09:00
    session.commit()
    data = {"preview_ticket": ticket.number, "policy_id": str(policy.id)}  # no form: the saved policy
    with clock.freeze(ny(2026, 11, 23, 19, 5)):
        text = screen(client.post("/admin/escalation/preview", data=data, headers=HTMX))
    assert re.search(r"Level 1 ?: 10h since created \(fired\) Mon 23 Nov 2026 19:00 America/New_York", text), text
