"""What staff see of the SLA clocks: the list's nearest state, its filters and sort, the ticket's panel."""
import re

import pytest

from mets import clock
from mets.services import tickets
from mets.services.directory import users
from tests.conftest import HTMX, login, text_of
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket, ny




@pytest.fixture
def desk(session, client):
    acme = make_entity("Acme", "acme", timezone="America/New_York")  # Mon-Fri 09-17 by default
    make_rule(acme, "Standard", response_minutes=4 * 60, resolution_minutes=16 * 60)
    agent = make_staff(acme, name="Dana")
    customer = make_customer()
    made = {}
    for name, at in (("late", ny(2026, 11, 23, 9, 0)), ("soon", ny(2026, 11, 24, 9, 30)),
                     ("later", ny(2026, 11, 24, 11, 0)), ("waiting", ny(2026, 11, 24, 9, 0))):
        with clock.freeze(at):
            made[name] = make_ticket(acme, customer=customer, subject=f"Ticket {name}")
    tickets.change_status(session, made["waiting"], "pending", actor=agent, now=ny(2026, 11, 24, 10, 0))
    session.commit()
    login(client, agent)
    return made


def rows(response) -> dict[str, str]:
    """Subject -> the SLA cell's text, for each row of the ticket table."""
    html = response.get_data(as_text=True)
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        if len(cells) == 10:  # a checkbox, then number, subject, ..., SLA, updated
            subject = re.sub(r"<[^>]+>", "", cells[2]).strip()
            out[subject] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cells[8])).strip()
    return out


def test_the_list_shows_each_tickets_nearest_sla_state(client, desk):
    with clock.freeze(ny(2026, 11, 24, 12, 45)):
        shown = rows(client.get("/tickets/", headers=HTMX))
    assert shown["Ticket late"].startswith("breached")
    assert shown["Ticket soon"] == "due in 45m"  # 09:30 + 4h of business time
    assert shown["Ticket later"] == "due in 2h 15m"
    assert shown["Ticket waiting"] == "paused"


def test_filters_breached_and_due_within_an_hour(client, desk):
    with clock.freeze(ny(2026, 11, 24, 12, 45)):
        breached = rows(client.get("/tickets/?sla=breached", headers=HTMX))
        soon = rows(client.get("/tickets/?sla=due_1h", headers=HTMX))
    assert list(breached) == ["Ticket late"]
    assert list(soon) == ["Ticket soon"]


def test_sort_by_sla_puts_the_most_urgent_first_and_clockless_last(client, desk):
    with clock.freeze(ny(2026, 11, 24, 12, 45)):
        shown = rows(client.get("/tickets/?sort=sla&dir=asc", headers=HTMX))
    assert list(shown) == ["Ticket late", "Ticket soon", "Ticket later", "Ticket waiting"]


def test_the_ticket_page_has_an_sla_panel_per_clock(client, desk):
    ticket = desk["soon"]
    with clock.freeze(ny(2026, 11, 24, 12, 45)):
        page = text_of(client.get(f"/tickets/{ticket.number}"))
        panel = client.get(f"/tickets/{ticket.number}/sla", headers=HTMX)
    assert "First response" in page and "Resolution" in page
    body = panel.get_data(as_text=True)
    assert 'hx-trigger="every 60s, ticket-changed from:body"' in body  # it refreshes itself
    text = text_of(panel)
    assert "Tue 2026-11-24 13:30 America/New_York" in text and "2026-11-24 18:30 UTC" in text
    assert "Used 3h 15m (81%)" in text
    assert "running" in text


def test_the_panel_of_a_paused_ticket_says_what_is_left(client, desk):
    with clock.freeze(ny(2026, 11, 24, 12, 45)):
        text = text_of(client.get(f"/tickets/{desk['waiting'].number}/sla", headers=HTMX))
    assert "paused" in text
    assert "Left 3h when the clock resumes" in text


def _minutes(text: str) -> int:
    """The clock time a shown SLA cell names, in minutes ("breached 2h ago" is negative)."""
    match = re.match(r"(due in|breached) ((?:\d+[dhm] ?)+)", text)
    total = sum(int(n) * {"d": 1440, "h": 60, "m": 1}[u] for n, u in re.findall(r"(\d+)([dhm])", match.group(2)))
    return total if match.group(1) == "due in" else -total


@pytest.fixture
def mixed_hours(session, client):
    """Tickets whose clock time left and business time left disagree in order: Acme works Mon-Fri 09-17 (New York),
    Nightly runs around the clock."""
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    nightly = make_entity("Nightly", "nightly", timezone="America/New_York")
    make_rule(acme, "Urgent", priority="urgent", response_minutes=4 * 60)
    make_rule(acme, "High", priority="high", response_minutes=6 * 60)
    make_rule(acme, "Low", priority="low", response_minutes=8 * 60)
    make_rule(nightly, "Always", response_minutes=8 * 60, business_hours_only=False)
    agent = make_staff(acme, name="Dana")
    users.set_membership(session, agent, nightly, "agent", 1, [])
    for subject, entity, priority, at in (
            ("Breached yesterday's", acme, "urgent", ny(2026, 11, 23, 15, 0)),  # due Tue 11:00: breached
            ("Due at five", acme, "low", ny(2026, 11, 24, 9, 0)),  # due Tue 17:00: 4h 15m either way
            ("Due tonight", nightly, "normal", ny(2026, 11, 24, 12, 0)),  # due Tue 20:00: 7h 15m either way
            ("Due tomorrow", acme, "high", ny(2026, 11, 24, 12, 0))):  # due Wed 10:00: 21h 15m, 5h 15m business
        with clock.freeze(at):
            make_ticket(entity, subject=subject, priority=priority)
    session.commit()
    login(client, agent)


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_the_sla_column_shows_values_in_the_order_it_sorts(client, mixed_hours, direction):
    with clock.freeze(ny(2026, 11, 24, 12, 45)):
        shown = rows(client.get(f"/tickets/?sort=sla&dir={direction}", headers=HTMX))
    assert len(shown) == 4
    values = [_minutes(cell) for cell in shown.values()]
    assert values == sorted(values, reverse=direction == "desc"), shown
    # The business time left is still there, beside the clock time, where the two differ.
    assert shown["Due tomorrow"] == "due in 21h 15m 5h 15m business"
    assert shown["Due at five"] == "due in 4h 15m"
