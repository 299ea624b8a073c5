"""Oversized requests and message bodies are refused before anything is stored.

The attacker (or a runaway script) posts megabytes: a whole request over MAX_CONTENT_LENGTH gets
a 413 page, a body over 50,000 characters the form again with the limit on the field (422).
"""
import pytest

from mets.models import Reply, Ticket
from tests.conftest import HTMX, count_rows, login, login_customer, text_of
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.web.helpers import screen

LIMIT_MESSAGE = "Keep it under 50,000 characters"


@pytest.fixture
def desk(session):
    acme = make_entity("Acme", "acme")
    agent = make_staff(acme, name="Sam Staff")
    carl = make_customer("Carl Customer")
    ticket = make_ticket(acme, customer=carl, subject="Charged twice")
    session.commit()
    return {"acme": acme, "agent": agent, "carl": carl, "ticket": ticket}


def sign_in(client, desk, who):
    if who == "agent":
        login(client, desk["agent"])
    else:
        login_customer(client, desk["carl"])


def posts(desk):
    """(who, path, form) for every form that takes a message body."""
    number, acme = desk["ticket"].number, str(desk["acme"].id)
    return {
        "agent reply": ("agent", f"/tickets/{number}/replies", {}),
        "agent new ticket": ("agent", "/tickets/new", {"entity_id": acme, "customer_email": "new@example.com",
                                                        "subject": "Hello", "priority": "normal"}),
        "portal reply": ("customer", f"/portal/tickets/{number}/replies", {}),
        "portal new ticket": ("customer", "/portal/tickets/new", {"entity_id": acme, "subject": "Hello",
                                                                   "priority": "normal"}),
    }


FORMS = ["agent reply", "agent new ticket", "portal reply", "portal new ticket"]


def stored(session) -> tuple[int, int]:
    return count_rows(session, Reply), count_rows(session, Ticket)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_3_mb_post_is_refused_with_413_and_nothing_is_stored(client, session, desk, form, htmx):
    who, path, data = posts(desk)[form]
    sign_in(client, desk, who)
    before = stored(session)

    response = client.post(path, data={**data, "body": "A" * (3 * 1024 * 1024)}, headers=HTMX if htmx else {})

    assert response.status_code == 413
    page = screen(response)
    assert "Too large to send" in page and "2 MB" in page and "nothing was saved" in page
    assert stored(session) == before


@pytest.mark.parametrize("form", FORMS)
def test_a_body_over_the_limit_is_refused_on_its_field(client, session, desk, form):
    who, path, data = posts(desk)[form]
    sign_in(client, desk, who)
    before = stored(session)

    response = client.post(path, data={**data, "body": "é" * 50_001})  # 100 kB: well inside the request limit

    assert response.status_code == 422
    assert LIMIT_MESSAGE in text_of(response)
    assert stored(session) == before


def test_a_body_at_the_limit_is_kept_whole(client, session, desk):
    sign_in(client, desk, "agent")
    body = "Stack trace follows.\n" + "x" * (50_000 - 21)
    response = client.post(f"/tickets/{desk['ticket'].number}/replies", data={"body": body})
    assert response.status_code == 303
    session.expire_all()
    assert desk["ticket"].replies[-1].body == body


def test_the_reply_box_tells_the_browser_the_limit(client, desk):
    sign_in(client, desk, "agent")
    page = client.get(f"/tickets/{desk['ticket'].number}").get_data(as_text=True)
    assert 'maxlength="50000"' in page
