"""The staff portal: the ticket list, the ticket page with its inline edits, and new tickets."""
import re

import pytest
from sqlalchemy import event, select

from mets.models import AutomationRule, Reply, Ticket, TicketEvent, User
from mets.services import tickets as ticket_service
from tests.conftest import HTMX, count_rows, login, login_customer, text_of
from mets.services.tickets.activity import activity_lines
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket
from tests.web.helpers import screen, vary


@pytest.fixture
def acme(session):
    """Acme with its Billing department, and Globex next door."""
    acme = make_entity("Acme", "acme")
    return {"acme": acme, "billing": make_entity("Acme Billing", "billing", parent=acme),
            "globex": make_entity("Globex", "globex")}



# --- the list -------------------------------------------------------------------------------

@pytest.fixture
def desk(session, client, acme):
    """A manager of Acme signed in, with tickets in every state, and one in Globex."""
    me = make_staff(acme["acme"], role="manager", name="Maria Manager")
    bea = make_staff(acme["billing"], name="Bea Billing")
    outsider = make_staff(acme["globex"], name="Gus Globex")

    def ticket(subject, entity, status="new", **kw):
        t = make_ticket(acme[entity], subject=subject, **kw)
        if status != "new":
            ticket_service.change_status(session, t, status, actor=me)
        return t

    ticket("Refund for order 7", "billing", "open", priority="high", assignee=me)
    ticket("VPN drops hourly", "acme", priority="low")
    ticket("Invoice shows wrong VAT", "billing", "pending", priority="urgent", assignee=bea)
    ticket("Printer is offline", "acme", "resolved")
    ticket("Laptop was returned", "acme", "closed", assignee=me)
    ticket("Globex parcel lost", "globex", priority="urgent", assignee=outsider)
    session.commit()
    login(client, me)
    return {"bea": bea.id, "billing": acme["billing"].id, "globex": acme["globex"].id}


SUBJECTS = {"Refund for order 7", "VPN drops hourly", "Invoice shows wrong VAT", "Printer is offline",
            "Laptop was returned", "Globex parcel lost"}


@pytest.mark.parametrize("query, shown", [
    ("", {"Refund for order 7", "VPN drops hourly", "Invoice shows wrong VAT"}),  # "active": not resolved/closed
    ("status=active", {"Refund for order 7", "VPN drops hourly", "Invoice shows wrong VAT"}),
    ("status=all", {"Refund for order 7", "VPN drops hourly", "Invoice shows wrong VAT", "Printer is offline",
                    "Laptop was returned"}),
    ("status=resolved", {"Printer is offline"}),
    ("status=closed", {"Laptop was returned"}),
    ("status=pending", {"Invoice shows wrong VAT"}),
    ("status=nonsense", {"Refund for order 7", "VPN drops hourly", "Invoice shows wrong VAT"}),
    ("priority=urgent", {"Invoice shows wrong VAT"}),
    ("priority=low", {"VPN drops hourly"}),
    ("assignee=mine", {"Refund for order 7"}),
    ("assignee=mine&status=all", {"Refund for order 7", "Laptop was returned"}),
    ("assignee=unassigned", {"VPN drops hourly"}),
    ("assignee={bea}", {"Invoice shows wrong VAT"}),
    ("entity={billing}", {"Refund for order 7", "Invoice shows wrong VAT"}),
    ("entity={billing}&priority=high", {"Refund for order 7"}),
    # Out of scope stays out, however it is asked for.
    ("entity={globex}&status=all", set()),
    ("q=globex&status=all", set()),
])
def test_list_filters(client, desk, query, shown):
    response = client.get("/tickets/?" + query.format(**desk))
    assert response.status_code == 200
    visible = {s for s in SUBJECTS if s in text_of(response)}
    assert visible == shown
    assert f"{len(shown)} ticket" in text_of(response)


@pytest.fixture
def searchable(session, client, acme):
    agent = make_staff(acme["acme"])
    for subject in ("Disk at 100% on db1", "Disk at 1000 GB soon", "user_name rejected", "user-name rejected",
                    "VPN Drops Hourly"):
        make_ticket(acme["acme"], subject=subject)
    session.commit()
    login(client, agent)


@pytest.mark.parametrize("q, shown", [
    ("vpn drops", {"VPN Drops Hourly"}),
    ("VPN DROPS", {"VPN Drops Hourly"}),
    ("acme-1003", {"user_name rejected"}),  # the ticket number, in any case
    ("ACME-1003", {"user_name rejected"}),
    ("100%", {"Disk at 100% on db1"}),  # % and _ are plain characters, not wildcards
    ("user_name", {"user_name rejected"}),
    ("%", {"Disk at 100% on db1"}),
    ("' OR 1=1 --", set()),
])
def test_search_in_subject_and_number(client, searchable, q, shown):
    response = client.get("/tickets/", query_string={"q": q, "status": "all"})
    everything = {"Disk at 100% on db1", "Disk at 1000 GB soon", "user_name rejected", "user-name rejected",
                  "VPN Drops Hourly"}
    assert {s for s in everything if s in text_of(response)} == shown


def test_sorting_by_priority(client, session, acme):
    agent = make_staff(acme["acme"])
    for priority in ("normal", "urgent", "low", "high"):
        make_ticket(acme["acme"], subject=f"A {priority} matter", priority=priority)
    session.commit()
    login(client, agent)

    def order(direction):
        page = text_of(client.get(f"/tickets/?sort=priority&dir={direction}"))
        return sorted(("low", "normal", "high", "urgent"), key=lambda p: page.index(f"A {p} matter"))

    assert order("desc") == ["urgent", "high", "normal", "low"]
    assert order("asc") == ["low", "normal", "high", "urgent"]


def test_pagination_follows_the_configured_page_size(app, client, session, acme):
    agent = make_staff(acme["acme"])
    names = ["Alpha case", "Bravo case", "Charlie case", "Delta case", "Echo case"]
    for name in names:
        make_ticket(acme["acme"], subject=name)
    session.commit()
    app.config["TICKETS_PER_PAGE"] = 2
    login(client, agent)

    def shown(page):
        response = client.get(f"/tickets/?sort=number&dir=asc&page={page}")
        return [n for n in names if n in text_of(response)], text_of(response)

    assert shown(1)[0] == ["Alpha case", "Bravo case"]
    assert "Page 1 of 3" in shown(1)[1]
    assert shown(3)[0] == ["Echo case"]
    assert shown(99)[0] == ["Echo case"]  # past the end: the last page
    assert "5 tickets" in shown(2)[1]


def test_htmx_gets_the_table_alone_and_both_answers_vary_on_hx_request(client, desk):
    page = client.get("/tickets/?priority=urgent")
    fragment = client.get("/tickets/?priority=urgent", headers=HTMX)
    assert "<html" in page.get_data(as_text=True) and 'id="filters"' in page.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="ticket-table"')
    assert "Invoice shows wrong VAT" in text_of(fragment)
    assert "HX-Request" in vary(page) and "HX-Request" in vary(fragment)


def test_agent_never_lists_another_entitys_tickets(client, session, acme):
    agent = make_staff(acme["globex"], name="Gus Globex")
    billing_agent = make_staff(acme["billing"], name="Bea Billing")
    make_ticket(acme["billing"], subject="Secret billing matter", assignee=billing_agent)
    make_ticket(acme["globex"], subject="Parcel lost")
    session.commit()
    login(client, agent)

    for query in (f"entity={acme['billing'].id}&status=all", f"assignee={billing_agent.id}", "q=secret", ""):
        page = text_of(client.get("/tickets/?" + query))
        assert "Secret billing matter" not in page
    page = text_of(client.get("/tickets/"))
    assert "Parcel lost" in page
    assert "Acme Billing" not in page and "Bea Billing" not in page  # not even in the filter choices


# --- the ticket page ------------------------------------------------------------------------

@pytest.fixture
def case(session, client, acme):
    """A Billing agent signed in, looking at a new ticket from Carla."""
    agent = make_staff(acme["billing"], name="Bea Billing")
    carla = make_customer("Carla Customer")
    ticket = make_ticket(acme["billing"], customer=carla, subject="Charged twice")
    session.commit()
    login(client, agent)
    return ticket


def test_public_reply_via_htmx_reaches_the_customer(client, session, case):
    response = client.post(f"/tickets/{case.number}/replies", data={"body": "We refunded the second charge."},
                           headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.get_data(as_text=True)
    assert "We refunded the second charge." in text_of(response)
    assert response.headers["HX-Trigger"] == "ticket-changed"
    session.expire_all()
    assert case.status == "open"  # an agent answered a new ticket

    login_customer(client, case.customer)
    assert "We refunded the second charge." in text_of(client.get(f"/portal/tickets/{case.number}"))


def test_internal_note_never_reaches_the_customer(client, session, case):
    response = client.post(f"/tickets/{case.number}/replies",
                           data={"body": "Customer charged back before too.", "internal": "y"}, headers=HTMX)
    assert response.status_code == 200
    assert re.search(r"Internal note .{0,20}Customer charged back before too\.", text_of(response))
    session.expire_all()
    assert case.status == "new"  # a note is no answer

    login_customer(client, case.customer)
    assert "charged back" not in client.get(f"/portal/tickets/{case.number}").get_data(as_text=True)
    # Not in the conversation the customer's own htmx reply brings back either.
    after_reply = client.post(f"/portal/tickets/{case.number}/replies", data={"body": "Thanks!"}, headers=HTMX)
    assert "Thanks!" in text_of(after_reply)
    assert "charged back" not in after_reply.get_data(as_text=True)


@pytest.mark.parametrize("body", ["", "   ", "\r\n\t\r\n"])
def test_empty_reply_shows_the_error_in_place(client, session, case, body):
    response = client.post(f"/tickets/{case.number}/replies", data={"body": body, "internal": "y"}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" not in html
    assert "Write something before sending." in text_of(response)
    assert "checked" in re.search(r'<input[^>]*name="internal"[^>]*>', html).group(0)  # the choice is kept
    assert "HX-Trigger" not in response.headers
    assert count_rows(session, Reply) == 0


def test_reply_without_htmx_redirects_back_to_the_ticket(client, session, case):
    response = client.post(f"/tickets/{case.number}/replies", data={"body": "Looking into it."})
    assert response.status_code == 303
    assert response.location == f"/tickets/{case.number}"
    assert "Looking into it." in text_of(client.get(response.location))


def test_a_reply_is_stored_as_typed_and_shown_as_text_never_as_markup(client, session, case):
    body = ('Use <Ctrl> + <Alt> + <Del>. The printer shows <error 42>.\n'
            '<script>alert("pwned")</script><b onclick="steal()">Bold move</b> '
            '<a href="javascript:alert(2)">click</a><img src=x onerror="alert(3)">')
    client.post(f"/tickets/{case.number}/replies", data={"body": body}, headers=HTMX)
    response = client.get(f"/tickets/{case.number}")
    html = response.get_data(as_text=True)
    assert "<b onclick" not in html and "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;b onclick=&#34;steal()&#34;&gt;Bold move&lt;/b&gt;" in html  # escaped, not interpreted
    assert "Use <Ctrl> + <Alt> + <Del>. The printer shows <error 42>." in screen(response)  # read as typed
    stored = session.scalars(select(Reply.body)).one()
    assert stored == body


@pytest.mark.parametrize("name, value, event", [
    ("status", "pending", "status_changed"),
    ("priority", "urgent", "priority_changed"),
    ("assignee_id", "{agent}", "assigned_to_changed"),
])
def test_inline_edit_saves_and_answers_with_its_box(client, session, case, name, value, event):
    agent = session.scalar(select(User).where(User.name == "Bea Billing"))
    value = value.format(agent=agent.id)
    response = client.post(f"/tickets/{case.number}/fields/{name}", data={name: value}, headers=HTMX)

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<form class="field inline-field" id="field-{name}"')
    assert f'<option value="{value}" selected>' in html
    assert response.headers["HX-Trigger"] == "ticket-changed"
    session.expire_all()
    assert str(getattr(case, name)) == value
    last = session.scalars(select(TicketEvent).order_by(TicketEvent.id.desc())).first()
    assert (last.event, last.actor_id, last.changes[name][1]) == (event, agent.id, getattr(case, name))


def test_inline_edit_to_the_same_value_records_nothing(client, session, case):
    response = client.post(f"/tickets/{case.number}/fields/priority", data={"priority": "normal"}, headers=HTMX)
    assert response.status_code == 200
    assert "HX-Trigger" not in response.headers
    assert count_rows(session, TicketEvent) == 1  # ticket_created only


@pytest.mark.parametrize("name, value, message", [
    ("status", "bogus", "Unknown status 'bogus'."),
    ("priority", "whenever", "Unknown priority 'whenever'."),
    # Whoever the id belongs to (another entity's agent, a customer, nobody), the answer names nobody.
    ("assignee_id", "{outsider}", "Choose an active agent of this ticket's entity."),
    ("assignee_id", "{customer}", "Choose an active agent of this ticket's entity."),
    ("assignee_id", "{retired}", "Choose an active agent of this ticket's entity."),
    ("assignee_id", "987654", "Choose an active agent of this ticket's entity."),
    ("assignee_id", "me", "Choose an active agent of this ticket's entity."),
    ("entity_id", "{globex}", "Choose an active entity you work in."),
    ("category", "refunds\r\nX-Injected: yes", "Category must be a single line."),
])
def test_inline_edit_refuses_bad_values_in_place(client, session, acme, case, name, value, message):
    outsider = make_staff(acme["globex"], name="Gus Globex")
    retired = make_staff(acme["billing"], name="Rita Retired", active=False)
    session.commit()
    value = value.format(outsider=outsider.id, customer=case.customer_id, retired=retired.id,
                         globex=acme["globex"].id)
    before = (case.status, case.priority, case.assignee_id, case.entity_id, case.category)

    response = client.post(f"/tickets/{case.number}/fields/{name}", data={name: value}, headers=HTMX)

    assert response.status_code == 422
    assert message in screen(response)
    assert f'id="field-{name}"' in response.get_data(as_text=True)
    assert "HX-Trigger" not in response.headers
    session.expire_all()
    assert (case.status, case.priority, case.assignee_id, case.entity_id, case.category) == before
    assert count_rows(session, TicketEvent) == 1


def test_ticket_cannot_go_back_to_new(client, session, case):
    client.post(f"/tickets/{case.number}/fields/status", data={"status": "pending"}, headers=HTMX)
    response = client.post(f"/tickets/{case.number}/fields/status", data={"status": "new"}, headers=HTMX)
    assert response.status_code == 422
    assert "A ticket cannot go back to New." in text_of(response)
    session.expire_all()
    assert case.status == "pending"


def test_unknown_inline_field_is_not_found(client, session, case):
    response = client.post(f"/tickets/{case.number}/fields/customer_id", data={"customer_id": "1"}, headers=HTMX)
    assert response.status_code == 404


def test_closed_ticket_cannot_be_reopened_or_answered(client, session, case):
    client.post(f"/tickets/{case.number}/fields/status", data={"status": "closed"}, headers=HTMX)

    response = client.post(f"/tickets/{case.number}/fields/status", data={"status": "open"}, headers=HTMX)
    assert response.status_code == 422
    assert "This ticket is closed and cannot be reopened" in text_of(response)
    reply = client.post(f"/tickets/{case.number}/replies", data={"body": "One more thing"}, headers=HTMX)
    assert reply.status_code == 422
    assert "This ticket is closed." in text_of(reply)
    session.expire_all()
    assert case.status == "closed"
    assert count_rows(session, Reply) == 0


def test_the_activity_trail_names_people_entities_and_rules_resolved_before_the_page_renders(
        client, session, acme, case):
    bea = session.scalar(select(User).where(User.name == "Bea Billing"))
    maria = make_staff(acme["acme"], role="manager", name="Maria Manager")
    gold = make_rule(acme["acme"], name="Gold", response_minutes=60, business_hours_only=False)
    ticket_service.change_status(session, case, "open", actor=bea)
    ticket_service.assign(session, case, bea, actor=bea)
    ticket_service.assign(session, case, maria, actor=bea)
    ticket_service.switch_sla_rule(session, case, gold, actor=None)
    ticket_service.extend_sla(session, case, 90, actor=None)
    session.commit()
    page = screen(client.get(f"/tickets/{case.number}/activity", headers=HTMX))
    assert "Bea Billing changed the status from New to Open" in page
    assert "Bea Billing took the ticket" in page and "Bea Billing reassigned the ticket from Bea Billing to Maria Manager" in page
    assert "SLA rule changed from — to Gold" in page and "SLA extended by 1h 30m" in page
    assert "changed" not in page.replace("changed the status", "").replace("rule changed from", "")
    ticket_service.update_fields(session, case, {"entity_id": acme["acme"].id}, actor=maria)
    session.commit()
    session.refresh(case)
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", count)
    try:
        lines = activity_lines(session, case)
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert lines[0].text == f"Maria Manager moved the ticket from Acme Billing (BILLING-1001) to Acme ({case.number})"
    assert (lines[0].who, lines[-1].text) == ("Maria Manager", "Carla Customer opened the ticket in the portal")
    assert len(statements) <= 4  # the events with their actors, then one query per kind of id named


def test_every_kind_of_activity_line_reads_as_a_sentence(client, session, acme, case):
    """Issue 12, defect 8: no "assigned to changed", and each SLA line says which clock and what happened."""
    bea = session.scalar(select(User).where(User.name == "Bea Billing"))
    dan = make_staff(acme["billing"], name="Dan Desk")
    vip = AutomationRule(name="VIP", trigger_event="ticket_created", actions=[])
    session.add(vip)
    session.flush()
    ticket_service.add_reply(session, case, actor=bea, body="On it.")
    ticket_service.add_reply(session, case, actor=bea, body="Refund pending.", internal=True)
    ticket_service.assign(session, case, dan, actor=bea)
    with ticket_service.acting_rule(session, vip.id):
        ticket_service.update_fields(session, case, {"priority": "urgent"}, actor=None)
        ticket_service.assign(session, case, bea, actor=None)
    ticket_service.update_fields(session, case, {"priority": "low"}, actor=bea)
    ticket_service.update_fields(session, case, {"subject": "Charged twice in May", "category": "Refunds"}, actor=bea)
    ticket_service.assign(session, case, None, actor=bea)
    ticket_service.escalate(session, case, actor=bea, reason="customer called twice")
    for kind, changes in [("sla_breach_warning", {"clock": "response", "point": "warning:80%"}),
                          ("sla_breach_warning", {"clock": "resolution", "point": "warning:30m"}),
                          ("sla_breach_occurred", {"clock": "resolution", "point": "breach"}),
                          ("escalation_due", {"clock": "escalation", "point": "escalation"})]:
        session.add(TicketEvent(ticket=case, event=kind, changes={**changes, "due": "2026-01-05T10:00:00+00:00"},
                                at=case.created_at))
    session.commit()

    page = screen(client.get(f"/tickets/{case.number}/activity", headers=HTMX))
    for line in ["Carla Customer opened the ticket in the portal",
                 "Bea Billing replied",
                 "Bea Billing added an internal note",
                 "Bea Billing assigned the ticket to Dan Desk",
                 "Priority raised from Normal to Urgent by rule “VIP”",
                 "Reassigned from Dan Desk to Bea Billing by rule “VIP”",
                 "Bea Billing lowered the priority from Urgent to Low",
                 "Bea Billing changed the subject from “Charged twice” to “Charged twice in May” "
                 "and set the category to Refunds",
                 "Bea Billing unassigned the ticket (was Bea Billing)",
                 "Bea Billing escalated the ticket to level 1 (customer called twice)",
                 "First response SLA: 80% used — warning",
                 "Resolution SLA: 30m left — warning",
                 "Resolution SLA breached",
                 "Escalation due: the SLA's escalation time passed"]:
        assert line in page, line
    for jargon in ("assigned to changed", "sla breach warning", "assignee_id", "priority changed", "ticket updated",
                   "reply added", "→"):
        assert jargon not in page.lower(), jargon


def test_missing_and_out_of_scope_tickets_look_the_same(client, session, acme, case):
    hidden = make_ticket(acme["globex"], subject="Globex internal matter")
    session.commit()
    out_of_scope = client.get(f"/tickets/{hidden.number}")
    missing = client.get("/tickets/GLOBEX-9999")
    assert out_of_scope.status_code == missing.status_code == 404
    assert text_of(out_of_scope) == text_of(missing)


# --- new ticket for a customer --------------------------------------------------------------

@pytest.fixture
def agent(session, client, acme):
    user = make_staff(acme["billing"], name="Bea Billing", email="bea@acme.example")
    session.commit()
    login(client, user)
    return user


def new_ticket_form(acme, **overrides):
    return {"entity_id": str(acme["billing"].id), "customer_email": "Nina.New@Example.com",
            "customer_name": "Nina New", "subject": "Cannot download invoice",
            "body": "The link gives an error.", "priority": "high", "category": "invoices", **overrides}


def test_new_ticket_for_a_new_customer(client, session, acme, agent):
    response = client.post("/tickets/new", data=new_ticket_form(acme))

    assert response.status_code == 303
    assert response.location == "/tickets/BILLING-1001"
    ticket = session.scalar(select(Ticket))
    assert (ticket.number, ticket.subject, ticket.priority) == ("BILLING-1001", "Cannot download invoice", "high")
    assert (ticket.customer.email, ticket.customer.name, ticket.customer.kind) == (
        "nina.new@example.com", "Nina New", "customer")
    page = text_of(client.get(response.location))
    assert "Cannot download invoice" in page and "nina.new@example.com" in page


def test_new_ticket_reuses_a_known_customer_whatever_the_case(client, session, acme, agent):
    known = make_customer("Nina New", "nina.new@example.com")
    session.commit()
    client.post("/tickets/new", data=new_ticket_form(acme, customer_email="NINA.NEW@example.COM"))
    assert session.scalar(select(Ticket)).customer_id == known.id
    assert count_rows(session, User) == 2


def test_new_ticket_subject_is_shown_as_text(client, session, acme, agent):
    client.post("/tickets/new", data=new_ticket_form(acme, subject="<script>alert(1)</script> help"))
    html = client.get("/tickets/BILLING-1001").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; help" in html
    assert "<script>alert(1)" not in html


@pytest.mark.parametrize("overrides, message", [
    ({"subject": ""}, "This field is required."),
    ({"customer_email": "bea@acme.example"}, "That address belongs to a staff member, not a customer."),
    ({"customer_email": "not an address"}, "Invalid email address."),
    ({"entity_id": "{globex}"}, "Not a valid choice."),  # a tampered form: Globex is not theirs
    ({"priority": "whenever"}, "Not a valid choice."),
])
def test_new_ticket_errors_keep_what_was_typed(client, session, acme, agent, overrides, message):
    data = new_ticket_form(acme, **{k: v.format(globex=acme["globex"].id) for k, v in overrides.items()})
    response = client.post("/tickets/new", data=data)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in text_of(response)
    assert f'value="{data["customer_email"]}"' in html
    assert "The link gives an error.</textarea>" in html
    assert count_rows(session, Ticket) == 0
    assert count_rows(session, User) == 1  # no customer was created either


# --- trust: typed text, moved tickets, replies on resolved tickets ----------------------------------

def test_a_new_ticket_keeps_angle_brackets_on_the_page_and_in_both_parts_of_the_customers_mail(
        client, session, acme):
    from mets.models import QueuedEmail

    agent = make_staff(acme["billing"], name="Bea Billing")
    session.commit()
    login(client, agent)
    typed = "Use <Ctrl> + <Alt> + <Del>\r\nThe printer shows <error 42>."
    response = client.post("/tickets/new", data={
        "entity_id": str(acme["billing"].id), "customer_email": "carla@example.com", "subject": "Keys <F12>",
        "body": typed, "priority": "normal"})
    assert response.status_code == 303
    page = client.get(response.location)
    assert "Use <Ctrl> + <Alt> + <Del> The printer shows <error 42>." in screen(page)
    assert "Keys <F12>" in screen(page)
    mail = session.scalars(select(QueuedEmail).where(QueuedEmail.recipient_email == "carla@example.com")).one()
    assert "Use <Ctrl> + <Alt> + <Del>\nThe printer shows <error 42>." in mail.body
    assert "Use &lt;Ctrl&gt; + &lt;Alt&gt; + &lt;Del&gt;<br>The printer shows &lt;error 42&gt;." in mail.body_html


def test_a_ticket_written_before_plain_text_still_reads_as_its_sanitised_html(client, session, case):
    case.body_format = "html"  # rows from before migration 0006 keep their (sanitised) markup
    case.body = '<p>Hi <b>there</b></p><img src=x onerror="alert(1)">'
    session.commit()
    html = client.get(f"/tickets/{case.number}").get_data(as_text=True)
    assert "<p>Hi <b>there</b></p>" in html and "onerror" not in html


def test_moving_a_ticket_to_an_entity_that_has_its_number_renumbers_it_and_the_old_number_still_works(
        client, session, acme):
    """BILLING-1001 moves to Acme, which has its own ACME-1001: no 500, the next Acme number, and
    links and searches for BILLING-1001 still reach it."""
    manager = make_staff(acme["acme"], role="manager", name="Maria Manager")
    make_ticket(acme["acme"], subject="Acme's own first ticket")
    moving = make_ticket(acme["billing"], subject="Belongs to IT")
    session.commit()
    login(client, manager)
    assert moving.number == "BILLING-1001"

    response = client.post("/tickets/BILLING-1001/fields/entity_id", data={"entity_id": str(acme["acme"].id)},
                           headers=HTMX)
    assert response.status_code == 200
    session.expire_all()
    assert moving.number == "ACME-1002" and moving.entity_id == acme["acme"].id

    old_link = client.get("/tickets/BILLING-1001")
    assert old_link.status_code == 302 and old_link.location == "/tickets/ACME-1002"
    page = client.get(old_link.location)
    assert "Belongs to IT" in screen(page)
    assert "BILLING-1001" in screen(client.get(f"/tickets/{moving.number}/activity"))
    found = screen(client.get("/tickets/?status=all&q=billing-1001"))
    assert "Belongs to IT" in found and "Acme's own first ticket" not in found


def test_the_old_number_of_a_moved_ticket_stays_out_of_reach_of_other_entities(client, session, acme):
    outsider = make_staff(acme["globex"], name="Gus Globex")
    moving = make_ticket(acme["billing"], subject="Belongs to IT")
    session.commit()
    ticket_service.update_fields(session, moving, {"entity_id": acme["acme"].id}, actor=None)
    session.commit()
    login(client, outsider)
    assert client.get("/tickets/BILLING-1001").status_code == 404
    assert "Belongs to IT" not in screen(client.get("/tickets/?status=all&q=BILLING-1001"))


def test_an_agents_reply_on_a_resolved_ticket_is_mailed_and_the_ticket_stays_resolved(client, session, case):
    from mets.models import QueuedEmail

    ticket_service.change_status(session, case, "resolved", actor=None)
    session.commit()
    page = client.get(f"/tickets/{case.number}")
    assert "This ticket is resolved. A reply is still emailed to the customer" in screen(page)
    response = client.post(f"/tickets/{case.number}/replies", data={"body": "One more tip: restart it."},
                           headers=HTMX)
    assert response.status_code == 200
    session.expire_all()
    assert case.status == "resolved"
    mail = session.scalars(select(QueuedEmail).where(QueuedEmail.template_name == "ticket-reply-customer")).one()
    assert mail.recipient_email == case.customer.email and "One more tip: restart it." in mail.body
