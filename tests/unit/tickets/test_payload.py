"""services.tickets.payload: the API's list reads columns (payload_rows/row_payload), everything else Tickets
(ticket_payload); both must give the one shape, field for field."""
from mets.services import tickets
from mets.services.tickets import payload, search
from tests.factories import make_entity, make_rule, make_staff, make_ticket


def test_a_row_of_the_list_is_the_tickets_own_payload(session):
    desk = make_entity(name="Desk", slug="desk")
    agent = make_staff(desk)
    rule = make_rule(desk, name="Gold", response_minutes=60, resolution_minutes=600, business_hours_only=False)
    plain = make_ticket(desk, subject="No rule, nobody")
    plain.sla_rule_id = None
    assigned = make_ticket(desk, subject="Assigned", priority="high", category="Billing")
    tickets.edit_ticket(session, assigned, actor=agent, fields={}, status="pending", assignee=agent)
    ruled = make_ticket(desk, subject="With the rule")
    ruled.sla_rule_id = rule.id
    session.commit()

    rows, more = search.ticket_feed(session, agent, search.TicketFilters(status="all"), None, 25)
    assert more is None
    by_number = {row.number: payload.row_payload(row) for row in rows}
    assert set(by_number) == {plain.number, assigned.number, ruled.number}
    for ticket in (plain, assigned, ruled):
        session.refresh(ticket)
        assert by_number[ticket.number] == payload.ticket_payload(ticket)
    assert by_number[assigned.number]["assignee"] == {"email": agent.email, "name": agent.name}
    assert by_number[ruled.number]["sla"]["rule"] == "Gold"
    assert by_number[plain.number]["sla"]["rule"] is None and by_number[plain.number]["assignee"] is None
