from tests.conftest import HTMX, login, text_of
from tests.factories import make_entity, make_staff, make_ticket


def test_agent_replies_and_sees_it_in_the_conversation(client, session):
    entity = make_entity(name="Acme", slug="acme")
    agent = make_staff(entity, name="Dana Agent")
    ticket = make_ticket(entity, subject="Printer is on fire")
    session.commit()
    login(client, agent)
    page = client.get(f"/tickets/{ticket.number}")
    assert "Printer is on fire" in text_of(page)
    response = client.post(f"/tickets/{ticket.number}/replies", data={"body": "Extinguisher on its way"}, headers=HTMX)
    assert response.status_code == 200
    assert "Extinguisher on its way" in text_of(response)
    assert ticket.number == "ACME-1001"
