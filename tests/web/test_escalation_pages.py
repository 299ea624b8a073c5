"""The ticket page's escalation box: the level, the timeline, and escalating by hand with a reason."""
import pytest

from mets.models import EscalationEvent, Ticket
from mets.services import escalation
from tests.conftest import HTMX, count_rows, login, text_of
from tests.factories import make_customer, make_entity, make_staff, make_ticket


@pytest.fixture
def desk(session, client):
    acme = make_entity("Acme", "acme")
    escalation.create_policy(session, acme, name="Hot tickets", clock="since_created", business_time=False, levels=[
        {"trigger": "after_duration", "value": 600, "actions": [{"type": "raise_priority"}]},
        {"trigger": "after_duration", "value": 1200, "actions": []}])
    agent = make_staff(acme, name="Ann Agent")
    ticket = make_ticket(acme, customer=make_customer())
    other = make_staff(make_entity("Globex", "globex"), name="Gus Globex")
    session.commit()
    return {"ticket": ticket, "agent": agent, "other": other}


def test_the_ticket_page_shows_the_level_and_the_next_one(client, desk):
    login(client, desk["agent"])
    page = text_of(client.get(f"/tickets/{desk['ticket'].number}"))
    assert "Level 0" in page and "policy “Hot tickets” (2 levels)" in page
    assert "Next: level 1 at" in page and "(10h since created)" in page


def test_escalating_by_hand_moves_to_the_next_level_and_shows_on_the_timeline(client, session, desk):
    login(client, desk["agent"])
    number = desk["ticket"].number
    response = client.post(f"/tickets/{number}/escalate", data={"reason": "Customer is a hospital"})
    assert response.status_code == 303
    ticket = session.get(Ticket, desk["ticket"].id)
    session.refresh(ticket)
    assert ticket.escalation_level == 1 and ticket.priority == "high"
    page = text_of(client.get(f"/tickets/{number}"))
    assert "Level 1" in page and "of “Hot tickets” — by Ann Agent: Customer is a hospital" in page
    assert "Raise priority to High." in page
    assert "Ann Agent escalated the ticket to level 1 (Customer is a hospital) — policy “Hot tickets”" in page


def test_a_reason_is_required(client, desk):
    login(client, desk["agent"])
    response = client.post(f"/tickets/{desk['ticket'].number}/escalate", data={"reason": " "}, headers=HTMX)
    assert response.status_code == 422
    assert "Say why you escalate it." in text_of(response)
    assert count_rows(client.application.extensions["sqlalchemy"].session, EscalationEvent) == 0


def test_htmx_gets_the_box_back_and_the_page_refreshes_the_rest(client, desk):
    login(client, desk["agent"])
    response = client.post(f"/tickets/{desk['ticket'].number}/escalate", data={"reason": "VIP"}, headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "ticket-changed"
    assert 'id="escalation-panel"' in response.get_data(as_text=True) and "Level 1" in text_of(response)


def test_another_entitys_agent_cannot_escalate_nor_see_it(client, desk):
    login(client, desk["other"])
    assert client.post(f"/tickets/{desk['ticket'].number}/escalate", data={"reason": "x"}).status_code == 404
    assert client.get(f"/tickets/{desk['ticket'].number}/escalation").status_code == 404


def test_escalating_needs_the_csrf_token(client, desk):
    login(client, desk["agent"])
    response = client.post(f"/tickets/{desk['ticket'].number}/escalate", data={"reason": "x"}, csrf=False)
    assert response.status_code == 400


def test_the_list_filters_and_sorts_by_escalation_level(client, session, desk):
    from tests.factories import make_ticket as new_ticket

    calm = new_ticket(desk["ticket"].entity, customer=make_customer(), subject="Calm one")
    hot = desk["ticket"]
    escalation.escalate(session, hot, desk["agent"], "Hot", now=None)
    escalation.escalate(session, hot, desk["agent"], "Hotter", now=None)
    session.commit()
    login(client, desk["agent"])
    page = client.get("/tickets/?escalation=escalated").get_data(as_text=True)
    assert hot.number in page and calm.number not in page and ">L2</span>" in page
    assert calm.number not in client.get("/tickets/?escalation=level_2").get_data(as_text=True)
    assert hot.number not in client.get("/tickets/?escalation=level_3").get_data(as_text=True)
    ordered = text_of(client.get("/tickets/?sort=escalation&dir=desc"))
    assert ordered.index(hot.number) < ordered.index(calm.number)
    assert "Calm one" in text_of(client.get("/tickets/?escalation=bogus"))  # an unknown value is dropped


def test_the_timeline_says_until_when_a_held_notice_waits(client, session):
    """A business-time level fired at night: the box says whom it will tell, and when (the desk's local time)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from mets import clock
    from tests.factories import make_rule

    paris = make_entity("Paris desk", "paris", timezone="Europe/Paris")  # the default hours, Mon-Fri 09:00-17:00
    make_rule(paris, "Round the clock", resolution_minutes=60, business_hours_only=False)
    lead = make_staff(paris, role="manager", name="Lea Lead", email="lea@paris.example")
    escalation.create_policy(session, paris, name="Night watch", clock="resolution", business_time=True, levels=[
        {"trigger": "percent", "value": 100, "actions": [{"type": "notify", "to": ["managers"]}]}])
    saturday = datetime(2026, 11, 14, 2, 0, tzinfo=ZoneInfo("Europe/Paris"))
    with clock.freeze(saturday):
        ticket = make_ticket(paris, customer=make_customer())
    escalation.tick(session, saturday.replace(hour=3))
    session.commit()
    login(client, lead)
    page = text_of(client.get(f"/tickets/{ticket.number}"))
    assert "lea@paris.example: held until Mon 09:00 (Europe/Paris)" in page
