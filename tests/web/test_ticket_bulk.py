"""Bulk changes from the staff list: each ticket changed as if by hand, only those the agent may work."""
import pytest

from mets.models import QueuedEmail, Ticket, TicketEvent
from mets.services.tickets.bulk import MAX_BULK
from tests.conftest import HTMX, count_rows, login
from tests.factories import make_entity, make_staff, make_ticket
from tests.web.helpers import screen


@pytest.fixture
def desk(session, client):
    acme = make_entity("Acme", "acme")
    globex = make_entity("Globex", "globex")
    maria = make_staff(acme, role="manager", name="Maria Manager")
    bea = make_staff(acme, name="Bea Agent")
    gus = make_staff(globex, name="Gus Globex")
    mine = [make_ticket(acme, subject=f"Acme matter {n}") for n in range(5)]
    theirs = make_ticket(globex, subject="Globex secret parcel")
    session.commit()
    login(client, maria)
    return {"mine": mine, "theirs": theirs, "bea": bea, "gus": gus, "maria": maria}


def post(client, data, **kw):
    return client.post("/tickets/bulk", data=data, headers=HTMX, **kw)


def test_five_tickets_assigned_in_one_step_each_audited_and_notified(client, session, desk):
    ids = [str(t.id) for t in desk["mine"]]
    response = post(client, {"ids": ids, "set_assignee": str(desk["bea"].id)})
    assert response.status_code == 200
    assert "5 tickets updated." in screen(response)
    session.expire_all()
    assert {t.assignee_id for t in desk["mine"]} == {desk["bea"].id}
    for ticket in desk["mine"]:
        assert count_rows(session, TicketEvent, TicketEvent.ticket_id == ticket.id,
                          TicketEvent.event == "assigned_to_changed", TicketEvent.actor_id == desk["maria"].id) == 1
        assert count_rows(session, QueuedEmail, QueuedEmail.ticket_id == ticket.id,
                          QueuedEmail.recipient_email == desk["bea"].email, QueuedEmail.event == "assigned") == 1


def test_a_ticket_of_another_entity_among_the_ids_is_refused_and_said_so(client, session, desk):
    ids = [str(desk["mine"][0].id), str(desk["theirs"].id)]
    response = post(client, {"ids": ids, "set_priority": "urgent"})
    page = screen(response)
    assert "1 ticket updated, 1 refused." in page
    assert f"Ticket id {desk['theirs'].id}: not found, or not in an entity you work in" in page
    assert "Globex secret parcel" not in page and desk["theirs"].number not in page
    session.expire_all()
    assert session.get(Ticket, desk["theirs"].id).priority == "normal"
    assert count_rows(session, TicketEvent, TicketEvent.ticket_id == desk["theirs"].id,
                      TicketEvent.event == "priority_changed") == 0
    assert session.get(Ticket, desk["mine"][0].id).priority == "urgent"


def test_an_assignee_who_cannot_work_a_ticket_refuses_that_ticket_with_the_reason(client, session, desk):
    response = post(client, {"ids": [str(desk["mine"][0].id)], "set_assignee": str(desk["gus"].id)})
    assert f"{desk['mine'][0].number}: Choose an active agent of this ticket's entity." in screen(response)
    session.expire_all()
    assert session.get(Ticket, desk["mine"][0].id).assignee_id is None


def test_all_matching_the_filter_changes_every_match_and_only_those(client, session, desk):
    closed = desk["mine"][4]
    post(client, {"ids": [str(closed.id)], "set_status": "closed"})
    response = post(client, {"scope": "matching", "status": "active", "set_status": "pending"})
    assert "4 tickets updated." in screen(response)
    session.expire_all()
    assert [t.status for t in desk["mine"]] == ["pending"] * 4 + ["closed"]
    assert session.get(Ticket, desk["theirs"].id).status == "new"


def test_a_bulk_change_needs_the_csrf_token(client, session, desk):
    response = post(client, {"ids": [str(desk["mine"][0].id)], "set_priority": "urgent"}, csrf=False)
    assert response.status_code == 400
    session.expire_all()
    assert session.get(Ticket, desk["mine"][0].id).priority == "normal"


@pytest.mark.parametrize("data, message", [
    ({"ids": ["1; DROP TABLE tickets", "abc"], "set_priority": "urgent"}, "The selection is not a list of tickets"),
    ({"ids": [str(n) for n in range(1, MAX_BULK + 2)], "set_priority": "urgent"},
     f"Choose at most {MAX_BULK} tickets at a time (you chose {MAX_BULK + 1})."),
    ({"set_priority": "urgent"}, "Choose at least one ticket."),
    ({"ids": ["{first}"]}, "Choose what to change"),
    ({"ids": ["{first}"], "set_priority": "sky-high"}, "Choose a priority."),
])
def test_a_bad_selection_or_value_is_a_clear_error_and_changes_nothing(client, session, desk, data, message):
    data = {k: [v.format(first=desk["mine"][0].id) for v in vs] if isinstance(vs, list) else vs
            for k, vs in data.items()}
    response = post(client, data)
    assert response.status_code == 422
    assert message in screen(response)
    assert count_rows(session, TicketEvent, TicketEvent.event != "ticket_created") == 0


def test_the_list_offers_the_checkboxes_and_the_bulk_bar(client, desk):
    page = client.get("/tickets/").get_data(as_text=True)
    assert page.count('name="ids"') == 5 and 'form="bulk"' in page
    assert 'id="bulk"' in page and 'hx-push-url="false"' in page


def test_each_ticket_of_a_bulk_change_runs_through_automation(client, session, desk):
    from mets.models import AutomationRule, RuleExecution
    from mets.services.automation import actions as automation_actions

    acme = desk["mine"][0].entity
    rule = AutomationRule(name="Urgent waits on the customer", entity_id=acme.id, trigger_event="priority_changed",
                          actions=automation_actions.validate(session, acme, [{"type": "set_status",
                                                                                "status": "pending"}]),
                          is_active=True, stop_processing=False, execution_order=10)
    session.add(rule)
    session.commit()
    chosen = desk["mine"][:3]
    response = post(client, {"ids": [str(t.id) for t in chosen], "set_priority": "urgent"})
    assert "3 tickets updated." in screen(response)
    session.expire_all()
    assert [t.status for t in desk["mine"]] == ["pending"] * 3 + ["new"] * 2
    assert count_rows(session, RuleExecution, RuleExecution.rule_id == rule.id) == 3
