"""Macros on the web: admins and the entity's managers edit them (field errors in place, the template checked in
the sandbox), agents pick one in the reply box (its text filled in for the ticket, its changes made on send), and
another entity's macro is a 404 everywhere."""
import html
import re

import pytest
from sqlalchemy import select

from mets.models import Macro, Reply
from mets.services import macros, tickets
from tests.conftest import HTMX, count_rows, login
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.web.helpers import screen


@pytest.fixture
def desk(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    people = {"admin": make_staff(name="Ada Admin", is_admin=True), "maria": make_staff(acme, "manager", "Maria"),
              "andy": make_staff(billing, name="Andy Agent"), "gus": make_staff(globex, "manager", "Gus")}
    ticket = make_ticket(billing, customer=make_customer("Kemi <b>Adeyemi</b>"), subject="Charged twice")
    session.commit()
    return {"acme": acme, "billing": billing, "globex": globex, "ticket": ticket, **people}


MACRO = {"name": "Refund issued", "body": "Hello {{ customer_name }},\nyour refund for {{ ticket_number }} is on "
         "its way.", "status": "pending", "priority": "", "assignee_id": "", "category": ""}


def test_a_manager_creates_edits_and_deletes_a_macro(client, session, desk):
    login(client, desk["maria"])
    url = f"/admin/entities/{desk['acme'].id}/macros"
    response = client.post(f"{url}/new", data={**MACRO, "body": "Hello {{ customer_name }"})
    assert response.status_code == 422
    assert "Line 1:" in screen(response)
    assert 'value="Refund issued"' in response.get_data(as_text=True)  # what was typed is kept
    runaway = "{% for a in ticket_subject %}" * 8 + "x" + "{% endfor %}" * 8
    response = client.post(f"{url}/new", data={**MACRO, "body": runaway})
    assert response.status_code == 422 and "This template loops more than 10,000 times" in screen(response)
    assert count_rows(session, Macro) == 0

    assert client.post(f"{url}/new", data=MACRO).status_code == 303
    m = session.scalar(select(Macro))
    assert "Refund issued" in screen(client.get(url)) and "status → pending" in screen(client.get(url))
    assert client.post(f"{url}/{m.id}", data={**MACRO, "name": "Refund sent"}).status_code == 303
    session.expire_all()
    assert m.name == "Refund sent"
    assert client.post(f"{url}/{m.id}/delete", csrf=False).status_code == 400  # no CSRF token: refused
    assert client.post(f"{url}/{m.id}/delete").status_code == 303
    assert count_rows(session, Macro) == 0


def test_only_admins_and_the_entitys_managers_manage_its_macros(client, session, desk):
    m = macros.create_macro(session, desk["acme"], MACRO)
    session.commit()
    login(client, desk["andy"])  # an agent
    assert client.get(f"/admin/entities/{desk['billing'].id}/macros").status_code == 404
    client.post("/logout")
    login(client, desk["gus"])  # another entity's manager
    assert client.get(f"/admin/entities/{desk['acme'].id}/macros").status_code == 404
    assert client.post(f"/admin/entities/{desk['globex'].id}/macros/{m.id}/delete").status_code == 404  # not Globex's
    assert count_rows(session, Macro) == 1


def test_an_agent_applies_a_macro_and_sending_makes_its_changes(client, session, desk):
    m = macros.create_macro(session, desk["acme"], {**MACRO, "priority": "high"})
    session.commit()
    ticket = desk["ticket"]
    login(client, desk["andy"])
    picker = client.get(f"/tickets/{ticket.number}/macro", headers=HTMX).get_data(as_text=True)
    assert re.search(r"<option value=\"%d\"\s*>Refund issued \(Acme\)</option>" % m.id, picker)

    filled = client.get(f"/tickets/{ticket.number}/macro?fill=1&macro_id={m.id}", headers=HTMX)
    page = filled.get_data(as_text=True)
    textarea = re.search(r'<textarea id="body" name="body"[^>]*hx-swap-oob="true">\n(.*?)</textarea>', page, re.S)
    assert "&lt;b&gt;" in textarea.group(1)  # the customer's name is text, escaped
    assert html.unescape(textarea.group(1)) == (f"Hello Kemi <b>Adeyemi</b>,\nyour refund for {ticket.number} is "
                                                "on its way.")
    assert "When you send: Status → Pending · Priority → High" in screen(filled)

    response = client.post(f"/tickets/{ticket.number}/replies", headers=HTMX,
                           data={"body": "Hello Kemi, your refund is on its way.", "macro_id": str(m.id)})
    assert response.status_code == 200
    session.expire_all()
    assert (ticket.status, ticket.priority) == ("pending", "high")
    assert ticket.replies[-1].body == "Hello Kemi, your refund is on its way."  # as edited


def test_another_entitys_macro_is_not_found(client, session, desk):
    theirs = macros.create_macro(session, desk["globex"], {**MACRO, "status": "resolved"})
    session.commit()
    ticket = desk["ticket"]
    login(client, desk["andy"])
    assert client.get(f"/tickets/{ticket.number}/macro?fill=1&macro_id={theirs.id}", headers=HTMX).status_code == 404
    response = client.post(f"/tickets/{ticket.number}/replies", headers=HTMX,
                           data={"body": "Sneaky.", "macro_id": str(theirs.id)})
    assert response.status_code == 404
    session.expire_all()
    assert ticket.status == "new" and count_rows(session, Reply) == 0


def _form_fields(page: str) -> dict:
    """The reply form's inputs as a browser posts them before any htmx load has run (name -> value)."""
    form = re.search(r'<form class="reply-form".*?</form>', page, re.S).group(0)
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if name and name.group(1) != "csrf_token" and 'type="checkbox"' not in tag:  # the client sends its own
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return fields


def test_send_anyway_on_a_held_reply_still_makes_the_macros_changes_before_the_picker_reloads(client, session, desk):
    m = macros.create_macro(session, desk["acme"], MACRO)
    session.commit()
    ticket = desk["ticket"]
    login(client, desk["andy"])
    loaded = _form_fields(client.get(f"/tickets/{ticket.number}").get_data(as_text=True))
    tickets.add_reply(session, ticket, actor=desk["maria"], body="Maria here: refund approved.")  # meanwhile
    session.commit()

    held = client.post(f"/tickets/{ticket.number}/replies", headers=HTMX,
                       data={**loaded, "body": "Your refund is on its way.", "macro_id": str(m.id)})
    assert held.status_code == 409 and "Send anyway" in screen(held)
    # The picker comes back by a later request; the form as it stands already carries the chosen macro.
    again = _form_fields(held.get_data(as_text=True))
    assert again.get("macro_id") == str(m.id)

    sent = client.post(f"/tickets/{ticket.number}/replies", headers=HTMX,
                       data={**again, "body": "Your refund is on its way."})
    assert sent.status_code == 200
    session.expire_all()
    assert ticket.status == "pending"  # the macro's change, made with the reply
    assert count_rows(session, Reply, Reply.body == "Your refund is on its way.") == 1
