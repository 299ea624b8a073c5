"""The API's cursor pages under concurrent inserts (PostgreSQL, real commits): while other connections keep creating
tickets, a walk through the list repeats none and skips none of the tickets that existed when it began."""
import threading

import pytest
from sqlalchemy import select

from mets import clock
from mets.extensions import db
from mets.models import Entity, Ticket, User
from mets.services import tickets
from mets.services.directory import api_tokens
from tests.factories import make_customer, make_entity, make_staff, make_ticket

pytestmark = [pytest.mark.committing, pytest.mark.parametrize("backend", ["postgresql"])]


def test_a_walk_neither_repeats_nor_skips_while_tickets_are_created(app, session):
    entity = make_entity("Acme", "acme")
    manager = make_staff(entity, role="manager")
    customer = make_customer()
    existing = {make_ticket(entity, customer=customer).number for _ in range(40)}
    token = api_tokens.create_token(session, manager, "walker", clock.now()).token
    session.commit()
    ids = (entity.id, manager.id, customer.id)

    stop, errors, created = threading.Event(), [], []

    def create() -> None:
        try:
            with app.app_context():
                s = db.session
                where, actor, who = s.get(Entity, ids[0]), s.get(User, ids[1]), s.get(User, ids[2])
                while not stop.is_set():
                    change = tickets.create_ticket(s, actor=actor, entity=where, customer=who, subject="New",
                                                   body="Created during the walk")
                    created.append(change.ticket.number)
                    s.commit()
        except BaseException as exc:
            errors.append(exc)

    creators = [threading.Thread(target=create, name=f"creator-{n}") for n in range(2)]
    for thread in creators:
        thread.start()
    try:
        api = app.test_client()
        seen, cursor = [], None
        while True:
            page = api.get("/api/v1/tickets?status=all&limit=3" + (f"&cursor={cursor}" if cursor else ""),
                           headers={"Authorization": f"Bearer {token}"})
            assert page.status_code == 200, page.get_data(as_text=True)
            body = page.get_json()
            seen += [t["number"] for t in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        for thread in creators:
            thread.join(timeout=30)
    assert not errors, errors
    assert len(created) > 0, "nothing was created during the walk: the test proved nothing"
    assert len(seen) == len(set(seen)), "a ticket was listed twice"
    assert existing <= set(seen), f"skipped: {sorted(existing - set(seen))}"
    order = {n: i for n, i in session.execute(select(Ticket.number, Ticket.id))}
    assert [order[n] for n in seen] == sorted((order[n] for n in seen), reverse=True)  # newest first, always
