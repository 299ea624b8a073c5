"""Staying current: the open ticket page's poll, the held reply when others changed the ticket, and presence.

Two agents work the same ticket through two test clients (two browsers), as two people at two desks would.
"""
import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from mets import clock, jobs
from mets.extensions import db
from mets.models import Reply, Ticket, TicketViewer, User
from mets.services import macros
from mets.services import tickets as ticket_service
from mets.services.directory import users
from tests.conftest import CSRFClient, HTMX, count_rows, login, login_customer
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.web.helpers import screen


@pytest.fixture
def desk(session, client, app):
    """Dana (signed in on `client`) and Bea (on `other`) work Acme; Carol's ticket is open on both desks."""
    acme = make_entity("Acme", "acme")
    globex = make_entity("Globex", "globex")
    dana = make_staff(acme, name="Dana Agent")
    bea = make_staff(acme, name="Bea Billing")
    gus = make_staff(globex, name="Gus Globex")
    carol = make_customer(name="Carol Customer", email="carol@example.com")
    ticket = make_ticket(acme, carol, subject="VAT is wrong on invoice 42", body="The VAT line says 0%.")
    session.commit()
    login(client, dana)
    other = app.test_client()
    assert isinstance(other, CSRFClient)
    login(other, bea)
    return {"dana": dana, "bea": bea, "gus": gus, "carol": carol, "ticket": ticket, "number": ticket.number,
            "other": other, "acme": acme}


def page_state(response) -> dict:
    """What the page (or a poll's answer) remembers: the poll's version and viewers, the reply form's version."""
    body = response.get_data(as_text=True)
    poll = re.search(r'<form id="live".*?</form>', body, re.S).group(0)
    state = {"version": re.search(r'name="version" value="(\d*)"', poll).group(1),
             "viewers": re.search(r'name="viewers" value="([^"]*)"', poll).group(1)}
    reply = re.search(r'<form class="reply-form".*?</form>', body, re.S)
    if reply:
        state["reply_version"] = re.search(r'name="version"[^>]*value="(\d*)"|value="(\d*)"[^>]*name="version"',
                                           reply.group(0)).group(1)
    return state


def poll(client, number, state, **kw):
    return client.post(f"/tickets/{number}/live", data={"version": state["version"], "viewers": state["viewers"]},
                       headers=HTMX, **kw)


# --- the poll ---------------------------------------------------------------------------------------------------

def test_an_unchanged_ticket_answers_the_poll_with_an_empty_204_reading_no_conversation(client, desk):
    state = page_state(client.get(f"/tickets/{desk['number']}"))
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        response = poll(client, desk["number"], state)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert response.status_code == 204
    assert response.get_data() == b""
    # Nothing but the scoped load of the ticket (one statement, the scope within it; the version comes with it) and
    # presence: one upsert, one read. Never the conversation.
    reads = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(reads) == 2 and "FROM tickets" in reads[0] and "FROM ticket_viewers" in reads[1], reads
    assert not any("replies" in s for s in statements), statements
    assert len([s for s in statements if "INSERT INTO ticket_viewers" in s]) == 1


def test_a_colleagues_reply_reaches_the_open_page_by_the_poll_and_the_reply_box_is_never_in_it(client, desk):
    state = page_state(client.get(f"/tickets/{desk['number']}"))
    sent = desk["other"].post(f"/tickets/{desk['number']}/replies", headers=HTMX,
                              data={"body": "Bea here: I have corrected the VAT line.", "version": state["version"]})
    assert sent.status_code == 200

    response = poll(client, desk["number"], state)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert '<div id="messages" class="messages" hx-swap-oob="true">' in body
    assert "Bea here: I have corrected the VAT line." in screen(response)
    assert "<textarea" not in body and "reply-form" not in body  # what Dana is typing stays as it is
    assert 'id="activity"' in body and 'id="properties"' in body and 'id="sla-panel"' in body
    assert int(page_state(response)["version"]) > int(state["version"])
    # And the next poll, with what that answer said, is quiet again.
    assert poll(client, desk["number"], page_state(response)).status_code == 204


@pytest.mark.parametrize("change", ["note", "status", "assignee"])
def test_notes_status_and_assignee_changes_by_others_reach_the_poll(client, session, desk, change):
    state = page_state(client.get(f"/tickets/{desk['number']}"))
    ticket = session.get(Ticket, desk["ticket"].id)
    bea = session.get(type(desk["bea"]), desk["bea"].id)
    if change == "note":
        ticket_service.add_reply(session, ticket, actor=bea, body="Customer called: waiting on finance.",
                                 internal=True)
        shown = "Customer called: waiting on finance."
    elif change == "status":
        ticket_service.change_status(session, ticket, "pending", actor=bea)
        shown = 'value="pending" selected'
    else:
        ticket_service.assign(session, ticket, bea, actor=bea)
        shown = f'value="{bea.id}" selected'
    session.commit()
    response = poll(client, desk["number"], state)
    assert response.status_code == 200
    assert shown in response.get_data(as_text=True)


def test_a_ticket_out_of_reach_answers_the_poll_with_404(client, session, app, desk):
    state = page_state(client.get(f"/tickets/{desk['number']}"))
    outsider = app.test_client()
    login(outsider, desk["gus"])
    assert poll(outsider, desk["number"], state).status_code == 404
    assert poll(outsider, "ACME-999999", state).status_code == 404

    # Dana loses her membership while the page is open: her next poll is a 404 (and the page stops polling).
    dana = session.get(type(desk["dana"]), desk["dana"].id)
    users.remove_membership(session, dana.memberships[0])
    session.commit()
    assert poll(client, desk["number"], state).status_code == 404


def test_a_customer_cannot_poll_the_staff_page(app, session, desk):
    portal = app.test_client()
    login_customer(portal, desk["carol"])
    assert poll(portal, desk["number"], {"version": "0", "viewers": ""}).status_code == 404
    assert count_rows(session, TicketViewer) == 0


def test_the_poll_refuses_a_request_without_the_csrf_token(client, desk):
    state = page_state(client.get(f"/tickets/{desk['number']}"))
    response = client.post(f"/tickets/{desk['number']}/live", data=state, headers=HTMX, csrf=False)
    assert response.status_code == 400


def test_a_malformed_poll_version_counts_as_changed_never_as_an_error(client, desk):
    response = client.post(f"/tickets/{desk['number']}/live", data={"version": "٣", "viewers": "x" * 5000},
                           headers=HTMX)
    assert response.status_code == 200
    assert "The VAT line says 0%." in screen(response)


# --- the held reply ---------------------------------------------------------------------------------------------

def replies(session, ticket_id):
    return count_rows(session, Reply, Reply.ticket_id == ticket_id)


def test_a_reply_on_a_ticket_a_colleague_answered_meanwhile_is_held_with_the_text_kept_then_sent_anyway(
        client, session, desk):
    number = desk["number"]
    dana_state = page_state(client.get(f"/tickets/{number}"))
    bea_state = page_state(desk["other"].get(f"/tickets/{number}"))
    assert desk["other"].post(f"/tickets/{number}/replies", headers=HTMX, data={
        "body": "Bea here: the VAT line is fixed.", "version": bea_state["reply_version"]}).status_code == 200
    before = replies(session, desk["ticket"].id)

    typed = "Hi Carol, <b>sorry</b> about the VAT: I will fix it today."
    held = client.post(f"/tickets/{number}/replies", headers=HTMX,
                       data={"body": typed, "version": dana_state["reply_version"]})
    assert held.status_code == 409
    text = screen(held)
    assert re.search(r"Bea Billing replied (just now|\dm ago)\.", text)
    assert "Your reply was not sent" in text
    assert "Bea here: the VAT line is fixed." in text  # the colleague's reply, shown above the box
    assert "Hi Carol, &lt;b&gt;sorry&lt;/b&gt; about the VAT: I will fix it today." in held.get_data(as_text=True)
    assert "Send anyway" in text
    assert replies(session, desk["ticket"].id) == before  # nothing sent to Carol

    # "Send anyway" posts the form as it came back: the current version, so it sends, once.
    again = page_state(held) if 'id="live"' in held.get_data(as_text=True) else None
    assert again is None  # the held answer is the conversation box alone: the poll is not part of it
    version = re.search(r'name="version"[^>]*value="(\d+)"|value="(\d+)"[^>]*name="version"',
                        held.get_data(as_text=True))
    sent = client.post(f"/tickets/{number}/replies", headers=HTMX,
                       data={"body": typed, "version": version.group(1) or version.group(2)})
    assert sent.status_code == 200
    assert replies(session, desk["ticket"].id) == before + 1
    assert session.scalars(select(Reply).where(Reply.body == typed)).one()
    assert "Send anyway" not in screen(sent)


@pytest.mark.committing  # two threads, two connections: the ticket row's lock decides between them
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_two_replies_sent_at_the_same_instant_on_one_version_send_one_and_hold_the_other(app, session, backend):
    """Dana and Bea both press Send on the page they loaded at the same version: the second waits for the first's
    lock, then sees its reply and is held; Carol gets one answer."""
    acme = make_entity("Acme", "acme")
    dana, bea = make_staff(acme, name="Dana Agent"), make_staff(acme, name="Bea Billing")
    ticket = make_ticket(acme, make_customer(name="Carol Customer"), subject="Refund please")
    session.commit()
    ticket_id, version, dana_id, bea_id = ticket.id, ticket.version, dana.id, bea.id
    session.close()  # the main thread holds no connection or lock while the two send
    outcomes: dict[str, str] = {}
    errors: list[BaseException] = []
    first_checked = threading.Event()

    def send(user_id: int, hold: bool) -> None:
        with app.app_context():
            try:
                actor = db.session.get(User, user_id)
                sent = macros.send_reply(db.session, db.session.get(Ticket, ticket_id), None, actor=actor,
                                         body=f"{actor.name}: your refund is on its way.", seen_version=version)
                outcomes[actor.name] = "held by " + ", ".join(u.who for u in sent.held) if sent.held else "sent"
                if hold:
                    first_checked.set()
                    time.sleep(0.5)  # the second arrives after the first's check, before its commit
                db.session.commit()
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                first_checked.set()
                db.session.remove()

    first = threading.Thread(target=send, args=(dana_id, True))
    first.start()
    assert first_checked.wait(10)
    second = threading.Thread(target=send, args=(bea_id, False))
    second.start()
    first.join(20)
    second.join(20)
    assert not first.is_alive() and not second.is_alive()
    if errors:
        raise errors[0]
    assert outcomes == {"Dana Agent": "sent", "Bea Billing": "held by Dana Agent"}
    assert [r.body for r in db.session.scalars(select(Reply).where(Reply.ticket_id == ticket_id))] == [
        "Dana Agent: your refund is on its way."]


def test_without_htmx_the_held_reply_is_the_whole_page_with_the_warning(client, session, desk):
    number = desk["number"]
    state = page_state(client.get(f"/tickets/{number}"))
    ticket_service.add_reply(session, session.get(Ticket, desk["ticket"].id),
                             actor=session.get(type(desk["carol"]), desk["carol"].id), body="Any news?")
    session.commit()
    held = client.post(f"/tickets/{number}/replies", data={"body": "We are on it.", "version": state["reply_version"]})
    assert held.status_code == 409
    assert "Carol Customer replied" in screen(held) and "We are on it." in screen(held)
    assert replies(session, desk["ticket"].id) == 1


def test_own_changes_and_internal_notes_are_never_held(client, session, desk):
    number = desk["number"]
    state = page_state(client.get(f"/tickets/{number}"))
    # Dana changes the priority herself, then replies from the form she loaded before: sent.
    assert client.post(f"/tickets/{number}/fields/priority", data={"priority": "high"},
                       headers=HTMX).status_code == 200
    assert client.post(f"/tickets/{number}/replies", headers=HTMX,
                       data={"body": "Raised to high.", "version": state["reply_version"]}).status_code == 200
    # Bea replies; Dana's internal note from the old form still goes in (a note answers no customer).
    ticket_service.add_reply(session, session.get(Ticket, desk["ticket"].id),
                             actor=session.get(type(desk["bea"]), desk["bea"].id), body="On it.")
    session.commit()
    assert client.post(f"/tickets/{number}/replies", headers=HTMX, data={
        "body": "Note to self.", "internal": "y", "version": state["reply_version"]}).status_code == 200
    assert replies(session, desk["ticket"].id) == 3


def test_a_priority_change_by_a_colleague_does_not_hold_a_reply(client, session, desk):
    number = desk["number"]
    state = page_state(client.get(f"/tickets/{number}"))
    ticket_service.update_fields(session, session.get(Ticket, desk["ticket"].id), {"priority": "urgent"},
                                 actor=session.get(type(desk["bea"]), desk["bea"].id))
    session.commit()
    assert client.post(f"/tickets/{number}/replies", headers=HTMX,
                       data={"body": "Looking now.", "version": state["reply_version"]}).status_code == 200


def test_a_malformed_reply_version_is_a_clear_error_and_keeps_the_text(client, session, desk):
    response = client.post(f"/tickets/{desk['number']}/replies", headers=HTMX,
                           data={"body": "Text I typed for ages.", "version": "12abc"})
    assert response.status_code == 422
    assert "This page is out of date" in screen(response)
    assert "Text I typed for ages." in screen(response)
    assert replies(session, desk["ticket"].id) == 0


def test_the_reply_refuses_a_request_without_the_csrf_token(client, session, desk):
    response = client.post(f"/tickets/{desk['number']}/replies", headers=HTMX, csrf=False,
                           data={"body": "Hello", "version": "1"})
    assert response.status_code == 400
    assert replies(session, desk["ticket"].id) == 0


# --- presence ---------------------------------------------------------------------------------------------------

def test_two_agents_on_one_ticket_see_each_other_on_the_page_and_in_the_list(client, app, session, desk):
    number = desk["number"]
    other_ticket = make_ticket(desk["acme"], subject="Printer offline")
    session.commit()
    dana_state = page_state(client.get(f"/tickets/{number}"))
    assert "also viewing" not in screen(client.get(f"/tickets/{number}"))

    bea_page = desk["other"].get(f"/tickets/{number}")
    assert "Dana Agent is also viewing" in screen(bea_page)

    # Dana's poll notices Bea (the ticket itself did not change: only the viewers line comes back).
    response = poll(client, number, dana_state)
    assert response.status_code == 200
    assert "Bea Billing is also viewing" in screen(response)
    assert 'id="messages"' not in response.get_data(as_text=True)

    listing = screen(client.get("/tickets/"))
    row = re.search(r"VAT is wrong on invoice 42.*?(?=ACME-|$)", listing).group(0)
    assert "Bea Billing viewing" in row
    assert "Printer offline Bea" not in listing and "Dana Agent viewing" not in listing  # never oneself
    assert other_ticket.number in listing


def test_a_customer_on_the_portal_is_never_a_viewer(client, app, session, desk):
    portal = app.test_client()
    login_customer(portal, desk["carol"])
    assert portal.get(f"/portal/tickets/{desk['number']}").status_code == 200
    assert count_rows(session, TicketViewer) == 0
    page = screen(client.get(f"/tickets/{desk['number']}"))
    assert "also viewing" not in page
    assert "Carol Customer viewing" not in screen(client.get("/tickets/"))


def test_viewers_who_stopped_polling_are_gone_after_a_minute_and_pruned_later_by_the_periodic_job(
        client, session, desk):
    number = desk["number"]
    start = clock.now()
    clock.set_now(start)
    desk["other"].get(f"/tickets/{number}")  # Bea opens it, then closes her laptop
    clock.set_now(start + timedelta(seconds=30))
    assert "Bea Billing is also viewing" in screen(client.get(f"/tickets/{number}"))
    clock.set_now(start + timedelta(seconds=95))
    # Her row is still there (nothing has pruned it), and every read ignores it: the page, the poll, the list.
    assert count_rows(session, TicketViewer, TicketViewer.user_id == desk["bea"].id) == 1
    page = client.get(f"/tickets/{number}")
    assert "also viewing" not in screen(page)
    assert "also viewing" not in screen(poll(client, number, {"version": "0", "viewers": str(desk["bea"].id)}))
    assert "Bea Billing viewing" not in screen(client.get("/tickets/"))

    clock.set_now(start + timedelta(minutes=11))
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert client.get(f"/tickets/{number}").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    # Opening a ticket page deletes nothing: only the opener's own presence is written.
    assert not [s for s in statements if s.lstrip().upper().startswith("DELETE")]
    assert count_rows(session, TicketViewer, TicketViewer.user_id == desk["bea"].id) == 1
    assert jobs.presence_prune() == "presence: 1 stale viewers removed"  # the periodic job deletes it
    assert count_rows(session, TicketViewer, TicketViewer.user_id == desk["bea"].id) == 0
    assert count_rows(session, TicketViewer, TicketViewer.user_id == desk["dana"].id) == 1  # Dana is still there


# --- the list's viewer badges, kept current by the list's poll -----------------------------------------------------

def list_poll_state(response) -> dict:
    """What the list's poll sends: the ids of its rows and the key of the badges shown."""
    body = response.get_data(as_text=True)
    form = re.search(r'<form id="list-viewers".*?</form>', body, re.S).group(0)
    return {"ticket": re.findall(r'name="ticket" value="(\d+)"', form),
            "viewers": re.search(r'name="viewers" value="([^"]*)"', form).group(1)}


def list_poll(client, state, **kw):
    return client.get("/tickets/viewers", query_string=state, headers=HTMX, **kw)


def badge(response, ticket_id) -> str | None:
    """The text of one row's viewer slot in a poll's answer (None: the answer leaves that row alone)."""
    found = re.search(rf'<span id="viewing-{ticket_id}" class="row-viewers" hx-swap-oob="true">(.*?)</span>\s*</span>|'
                      rf'<span id="viewing-{ticket_id}" class="row-viewers" hx-swap-oob="true"></span>',
                      response.get_data(as_text=True), re.S)
    return None if found is None else re.sub(r"<[^>]+>", "", found.group(1) or "").strip()


def test_a_colleague_opening_a_ticket_shows_in_the_list_without_a_reload_and_goes_when_they_leave(
        client, session, desk):
    printer = make_ticket(desk["acme"], subject="Printer offline")
    session.commit()
    start = clock.now()
    clock.set_now(start)
    page = client.get("/tickets/")
    body = page.get_data(as_text=True)
    assert re.search(r'<form id="list-viewers"[^>]*hx-get="/tickets/viewers"[^>]*hx-trigger="every 10s"'
                     r'[^>]*hx-swap="none" hx-push-url="false"', body)
    state = list_poll_state(page)
    assert sorted(state["ticket"]) == sorted([str(desk["ticket"].id), str(printer.id)]) and state["viewers"] == ""
    assert list_poll(client, state).status_code == 204  # nobody else: nothing to change

    desk["other"].get(f"/tickets/{desk['number']}")  # Bea opens Carol's ticket
    answer = list_poll(client, state)
    assert answer.status_code == 200
    assert badge(answer, desk["ticket"].id) == "Bea Billing viewing"
    assert badge(answer, printer.id) == ""  # each row's slot, so a badge that went is cleared too
    assert "Dana Agent" not in screen(answer)  # never oneself
    new_key = re.search(r'<input type="hidden" id="list-viewers-key" name="viewers" value="([^"]+)" '
                        r'hx-swap-oob="true">', answer.get_data(as_text=True)).group(1)
    state["viewers"] = new_key
    assert list_poll(client, state).status_code == 204  # the page has it now
    assert list_poll_state(client.get("/tickets/"))["viewers"] == new_key  # the same key a fresh page starts with

    clock.set_now(start + timedelta(seconds=95))  # Bea closed her laptop: three polls missed
    gone = list_poll(client, state)
    assert gone.status_code == 200 and badge(gone, desk["ticket"].id) == ""
    assert "Bea Billing" not in screen(gone)


def test_the_list_poll_never_reveals_another_entitys_tickets_and_writes_nothing(client, app, session, desk):
    gus = session.get(type(desk["gus"]), desk["gus"].id)
    globex_ticket = make_ticket(gus.memberships[0].entity, subject="Globex secret")
    session.commit()
    spy = app.test_client()
    login(spy, gus)
    spy.get(f"/tickets/{globex_ticket.number}")  # Gus is viewing his own entity's ticket
    desk["other"].get(f"/tickets/{desk['number']}")  # and Bea Acme's
    missing = globex_ticket.id + 1000

    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        # Dana asks about Globex's ticket and one that does not exist, beside her own: the same silence for both.
        foreign = list_poll(client, {"ticket": [str(globex_ticket.id)], "viewers": ""})
        nothing = list_poll(client, {"ticket": [str(missing)], "viewers": ""})
        mixed = list_poll(client, {"ticket": [str(globex_ticket.id), str(desk["ticket"].id), "x", "-3"],
                                   "viewers": ""})
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert foreign.status_code == nothing.status_code == 204
    assert foreign.get_data() == nothing.get_data() == b""
    assert mixed.status_code == 200
    assert badge(mixed, desk["ticket"].id) == "Bea Billing viewing"
    assert f'viewing-{globex_ticket.id}"' not in mixed.get_data(as_text=True) and "Gus" not in screen(mixed)
    assert badge(mixed, globex_ticket.id) is None
    # A GET that writes nothing: polling the list is not viewing a ticket.
    assert not [s for s in statements if s.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert count_rows(session, TicketViewer, TicketViewer.user_id == desk["dana"].id) == 0

    # Gus's own poll shows him nothing of Acme's either (Bea is on an Acme ticket).
    assert list_poll(spy, {"ticket": [str(desk["ticket"].id)], "viewers": ""}).status_code == 204


def test_a_customer_cannot_poll_the_lists_viewers(app, desk):
    portal = app.test_client()
    login_customer(portal, desk["carol"])
    assert list_poll(portal, {"ticket": [str(desk["ticket"].id)], "viewers": ""}).status_code == 404
