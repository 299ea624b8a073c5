"""The REST API (/api/v1): tokens (made on the profile page, shown once, revoked at once), the access matrix by
token, problem+json for every refusal, the throttle, changes through the API, cursor pages and the CSV exports."""
import csv
import io
import json
import threading

import pytest
from sqlalchemy import event, select

from mets import clock
from mets.extensions import db
from mets.models import ApiToken, Entity, Ticket, User
from mets.services.directory import api_tokens, users
from mets.services.errors import DomainError
from tests.conftest import login, login_customer
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket

PROBLEM = "application/problem+json"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def token_for(session, user, name: str = "script") -> str:
    made = api_tokens.create_token(session, user, name, clock.now())
    session.commit()
    return made.token


@pytest.fixture
def world(session, snapshot):
    """Acme with its Billing department and unrelated Globex; one ticket in each; a token for each staff role."""
    return snapshot(lambda: _build(session))


def _build(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    admin = make_staff(name="Ada Admin", is_admin=True)
    manager = make_staff(acme, role="manager", name="Maria Manager")
    agent = make_staff(globex, name="Gus Agent")
    make_rule(acme, "Acme standard", response_minutes=240, resolution_minutes=2400)
    owner = make_customer("Olive Owner")
    ours = make_ticket(billing, customer=owner, subject="Charged twice")
    theirs = make_ticket(globex, subject="Globex printer")
    session.commit()
    return {"acme_number": ours.number, "globex_number": theirs.number, "owner": owner.email,
            "manager_id": manager.id, "agent_id": agent.id, "agent_email": agent.email,
            "manager_email": manager.email,
            "tokens": {"admin": token_for(session, admin, "a"), "manager": token_for(session, manager, "m"),
                       "agent": token_for(session, agent, "g")}}


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["type"] and body["title"] and "detail" in body
    return body


# --- tokens on the profile page ---------------------------------------------------------------------------

def test_a_token_is_made_on_the_profile_page_shown_once_and_revoked_at_once(app, client, session, world):
    login(client, world["manager_email"])
    page = client.post("/profile/tokens", data={"name": "Nightly export"})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    token = page.get_data(as_text=True).split('id="new-token"')[1].split('value="')[1].split('"')[0]
    assert token.startswith("mets_")
    row = session.scalar(select(ApiToken).where(ApiToken.name == "Nightly export"))
    assert row.secret_hash != token and token not in row.secret_hash  # only its hash is kept
    again = client.get("/profile").get_data(as_text=True)
    assert "Nightly export" in again and token not in again  # listed, never shown again

    api = app.test_client()
    assert api.get("/api/v1/tickets", headers=bearer(token)).status_code == 200
    assert client.post(f"/profile/tokens/{row.id}/revoke").status_code == 303
    is_problem(api.get("/api/v1/tickets", headers=bearer(token)), 401)  # the very next request


def test_a_token_name_is_required_and_unique(client, world):
    login(client, world["manager_email"])
    assert client.post("/profile/tokens", data={"name": ""}).status_code == 422
    assert client.post("/profile/tokens", data={"name": "m"}).status_code == 422  # the fixture's token's name


def test_someone_elses_token_cannot_be_revoked(app, client, session, world):
    other = session.scalar(select(ApiToken).where(ApiToken.name == "g"))
    login(client, world["manager_email"])
    assert client.post(f"/profile/tokens/{other.id}/revoke").status_code == 404
    assert app.test_client().get("/api/v1/tickets", headers=bearer(world["tokens"]["agent"])).status_code == 200


def test_customers_get_no_tokens(client, session, world):
    login_customer(client, world["owner"])
    assert client.get("/profile").status_code == 404
    assert client.post("/profile/tokens", data={"name": "x"}).status_code == 404
    customer = session.scalar(select(Ticket).where(Ticket.number == world["acme_number"])).customer
    with pytest.raises(DomainError):
        api_tokens.create_token(session, customer, "mine", clock.now())


def test_a_customers_token_row_authenticates_nobody(app, session, world):
    """Even a row written by hand (no page makes one) is refused: tokens are staff's."""
    customer = session.scalar(select(Ticket).where(Ticket.number == world["acme_number"])).customer
    staff_token = api_tokens.create_token(session, session.get(User, world["agent_id"]), "moved",
                                          clock.now())
    staff_token.row.user_id = customer.id
    session.commit()
    is_problem(app.test_client().get("/api/v1/tickets", headers=bearer(staff_token.token)), 401)


def test_a_deactivated_users_tokens_stop_working(app, session, world):
    api = app.test_client()
    token = world["tokens"]["agent"]
    assert api.get("/api/v1/tickets", headers=bearer(token)).status_code == 200
    session.get(User, world["agent_id"]).active = False
    session.commit()
    is_problem(api.get("/api/v1/tickets", headers=bearer(token)), 401)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz",
                                    "Bearer mets_AAAAAAAAAAAA_" + "x" * 43, "Token {agent}", "Bearer {agent}x"])
def test_missing_unknown_and_malformed_tokens_are_401_problems(app, world, header):
    headers = {"Authorization": header.format(agent=world["tokens"]["agent"])} if header else {}
    body = is_problem(app.test_client().get("/api/v1/tickets", headers=headers), 401)
    assert "Bearer" in body["detail"]


def test_a_session_cookie_does_not_authenticate_the_api(client, world):
    """Signed in on the site, no token: the API refuses (a cross-site request carries the cookie, never a token)."""
    login(client, world["manager_email"])
    is_problem(client.get("/api/v1/tickets"), 401)
    is_problem(client.post(f"/api/v1/tickets/{world['acme_number']}/replies", json={"body": "Hi"}, csrf=False), 401)


def test_the_api_sets_no_cookie(app, world):
    response = app.test_client().get("/api/v1/tickets", headers=bearer(world["tokens"]["agent"]))
    assert "Set-Cookie" not in response.headers


def test_last_used_is_recorded(app, session, world):
    app.test_client().get("/api/v1/tickets", headers=bearer(world["tokens"]["agent"]))
    session.expire_all()
    assert session.scalar(select(ApiToken).where(ApiToken.name == "g")).last_used_at is not None


# --- the access matrix by token ---------------------------------------------------------------------------

TOKEN_ROLES = ("admin", "manager", "agent", "none")
# Acme's ticket: the admin and Acme's manager (Billing is below Acme) may; Globex's agent gets a 404, as for a
# ticket that does not exist; no token is a 401.
ACME = "200 200 404 401"
ACME_WRITE = "201 201 404 401"
ANYONE = "200 200 200 401"
API_ROUTES = [
    ("GET", "/api/v1/tickets", "/api/v1/tickets", None, ANYONE),
    ("POST", "/api/v1/tickets", "/api/v1/tickets",
     {"entity": "billing", "customer": {"email": "new@example.com", "name": "New"}, "subject": "Hello",
      "body": "Text"}, "201 201 422 401"),
    ("GET", "/api/v1/tickets/<number>", "/api/v1/tickets/{acme_number}", None, ACME),
    ("PATCH", "/api/v1/tickets/<number>", "/api/v1/tickets/{acme_number}", {"priority": "high"}, ACME),
    ("GET", "/api/v1/tickets/<number>/replies", "/api/v1/tickets/{acme_number}/replies", None, ACME),
    ("POST", "/api/v1/tickets/<number>/replies", "/api/v1/tickets/{acme_number}/replies", {"body": "On it"},
     ACME_WRITE),
    ("GET", "/api/v1/tickets/<number>/sla", "/api/v1/tickets/{acme_number}/sla", None, ACME),
    ("GET", "/api/v1/sla-rules", "/api/v1/sla-rules", None, ANYONE),
    ("GET", "/api/v1/business-hours", "/api/v1/business-hours", None, ANYONE),
    ("GET", "/api/v1/escalation-policies", "/api/v1/escalation-policies", None, ANYONE),
    ("GET", "/api/v1/metrics/summary", "/api/v1/metrics/summary", None, ANYONE),
    ("GET", "/api/v1/exports/tickets.csv", "/api/v1/exports/tickets.csv", None, ANYONE),
    ("GET", "/api/v1/exports/sla-report.csv", "/api/v1/exports/sla-report.csv", None, ANYONE),
    ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", None, "200 200 200 200"),
    ("GET", "/api/v1/docs", "/api/v1/docs", None, "200 200 200 200"),
]


def test_every_api_route_has_a_line_in_the_matrix(app):
    rules = {(m, r.rule) for r in app.url_map.iter_rules() if r.rule.startswith("/api/")
             for m in r.methods - {"HEAD", "OPTIONS"}}
    assert rules == {(m, r) for m, r, *_ in API_ROUTES}


@pytest.mark.parametrize("role", TOKEN_ROLES)
@pytest.mark.parametrize("method, rule, path, body, expected", [pytest.param(*r, id=f"{r[0]} {r[1]}")
                                                                for r in API_ROUTES])
def test_api_route_answers_each_token_exactly(app, world, role, method, rule, path, body, expected):
    headers = bearer(world["tokens"][role]) if role != "none" else {}
    response = app.test_client().open(path.format(**world), method=method, json=body, headers=headers)
    code = int(expected.split()[TOKEN_ROLES.index(role)])
    assert response.status_code == code, response.get_data(as_text=True)[:300]
    if code >= 400:
        is_problem(response, code)


def test_lists_show_only_the_tokens_scope(app, world):
    api = app.test_client()
    numbers = {role: {t["number"] for t in api.get("/api/v1/tickets?status=all",
                                                   headers=bearer(world["tokens"][role])).get_json()["items"]}
               for role in ("admin", "manager", "agent")}
    assert numbers["admin"] == {world["acme_number"], world["globex_number"]}
    assert numbers["manager"] == {world["acme_number"]}
    assert numbers["agent"] == {world["globex_number"]}
    rules = api.get("/api/v1/sla-rules", headers=bearer(world["tokens"]["agent"])).get_json()["items"]
    assert rules == []
    hours = api.get("/api/v1/business-hours", headers=bearer(world["tokens"]["manager"])).get_json()["items"]
    assert {h["entity"] for h in hours} == {"acme", "billing"}
    assert {h["follows"] for h in hours if h["entity"] == "billing"} == {"acme"}  # a department follows its parent


def test_a_membership_change_counts_from_the_next_request(app, session, world):
    """The scope is read with the token on every request (and the list's statement is kept per scope): a membership
    added or removed changes the very next list and ticket."""
    api, headers = app.test_client(), bearer(world["tokens"]["agent"])

    def listed():
        return {t["number"] for t in api.get("/api/v1/tickets?status=all", headers=headers).get_json()["items"]}

    sla = f"/api/v1/tickets/{world['acme_number']}/sla"
    assert listed() == {world["globex_number"]} and api.get(sla, headers=headers).status_code == 404
    agent = session.get(User, world["agent_id"])
    acme = session.scalar(select(Entity).where(Entity.slug == "acme"))
    membership = users.set_membership(session, agent, acme, "agent", 1, [])
    session.commit()
    assert listed() == {world["globex_number"], world["acme_number"]}
    assert api.get(sla, headers=headers).status_code == 200
    users.remove_membership(session, membership)
    session.commit()
    assert listed() == {world["globex_number"]} and api.get(sla, headers=headers).status_code == 404


def test_an_agent_cannot_reply_to_or_change_another_entitys_ticket(app, session, world):
    api = app.test_client()
    headers = bearer(world["tokens"]["agent"])
    number = world["acme_number"]
    is_problem(api.post(f"/api/v1/tickets/{number}/replies", json={"body": "Sneaky"}, headers=headers), 404)
    is_problem(api.patch(f"/api/v1/tickets/{number}", json={"status": "closed"}, headers=headers), 404)
    # Filtering by an entity the agent does not work in is refused like one that does not exist.
    assert is_problem(api.get("/api/v1/tickets?entity=acme", headers=headers), 404)["detail"] == \
        is_problem(api.get("/api/v1/tickets?entity=nonesuch", headers=headers), 404)["detail"]
    is_problem(api.get("/api/v1/metrics/summary?entity=acme", headers=headers), 404)
    ticket = session.scalar(select(Ticket).where(Ticket.number == number))
    session.refresh(ticket)
    assert ticket.status == "new" and ticket.replies == []


# --- changes through the API ------------------------------------------------------------------------------

def test_create_reply_and_patch(app, session, world):
    api = app.test_client()
    headers = bearer(world["tokens"]["manager"])
    made = api.post("/api/v1/tickets", headers=headers, json={
        "entity": "billing", "customer": {"email": "zoe@example.com", "name": "Zoe"}, "subject": "Refund",
        "body": "Order 7", "priority": "high"})
    assert made.status_code == 201
    number = made.get_json()["number"]
    assert made.headers["Location"].endswith(f"/api/v1/tickets/{number}")
    note = api.post(f"/api/v1/tickets/{number}/replies", headers=headers, json={"body": "Check", "internal": True})
    assert note.status_code == 201 and note.get_json()["internal"] is True
    reply = api.post(f"/api/v1/tickets/{number}/replies", headers=headers, json={"body": "Done, Zoe."})
    assert reply.get_json()["internal"] is False
    changed = api.patch(f"/api/v1/tickets/{number}", headers=headers,
                        json={"priority": "urgent", "assignee": world["manager_email"], "status": "pending"})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["events"] == ["priority_changed", "assigned_to_changed", "status_changed"]
    ticket = changed.get_json()["ticket"]
    assert (ticket["priority"], ticket["status"], ticket["assignee"]["email"]) == \
        ("urgent", "pending", world["manager_email"])
    replies = api.get(f"/api/v1/tickets/{number}/replies", headers=headers).get_json()["items"]
    assert [r["body"] for r in replies] == ["Check", "Done, Zoe."]
    unassigned = api.patch(f"/api/v1/tickets/{number}", headers=headers, json={"assignee": None})
    assert unassigned.get_json()["ticket"]["assignee"] is None


def test_a_refused_change_is_a_422_naming_the_field_and_changes_nothing(app, session, world):
    api = app.test_client()
    headers = bearer(world["tokens"]["manager"])
    number = world["acme_number"]
    # The priority would change, then the assignee (who does not work in Acme) is refused: nothing is kept.
    body = is_problem(api.patch(f"/api/v1/tickets/{number}", headers=headers,
                                json={"priority": "low", "assignee": world["agent_email"]}), 422)
    assert "assignee" in body["errors"]
    assert api.get(f"/api/v1/tickets/{number}", headers=headers).get_json()["priority"] == "normal"
    body = is_problem(api.patch(f"/api/v1/tickets/{number}", headers=headers, json={"assignee": "no@one.example"}),
                      422)
    assert "assignee" in body["errors"]
    body = is_problem(api.patch(f"/api/v1/tickets/{number}", headers=headers, json={"entity": "globex"}), 422)
    assert "entity" in body["errors"]


def test_sla_status(app, world):
    body = app.test_client().get(f"/api/v1/tickets/{world['acme_number']}/sla",
                                 headers=bearer(world["tokens"]["manager"])).get_json()
    assert body["rule"] == "Acme standard"
    assert {c["name"]: c["state"] for c in body["clocks"]} == {"response": "running", "resolution": "running"}
    assert body["response_due"] == next(c["due"] for c in body["clocks"] if c["name"] == "response")


# --- problem+json on bad input ----------------------------------------------------------------------------

def _reply(app, world, **kwargs):
    return app.test_client().post(f"/api/v1/tickets/{world['acme_number']}/replies",
                                  headers={**bearer(world["tokens"]["manager"]), **kwargs.pop("headers", {})},
                                  **kwargs)


def test_malformed_json_is_400(app, world):
    body = is_problem(_reply(app, world, data='{"body": ', content_type="application/json"), 400)
    assert "JSON" in body["detail"]


def test_not_json_is_415(app, world):
    is_problem(_reply(app, world, data="body=hi", content_type="application/x-www-form-urlencoded"), 415)


@pytest.mark.parametrize("payload, field", [
    ({"body": 42}, "body"),
    ({"body": "Hi", "internal": "perhaps"}, "internal"),
    ({"body": "Hi", "colour": "red"}, "colour"),  # an unknown field is refused, never ignored
    ({}, "body"),
    ([1, 2], "_schema"),
])
def test_wrong_types_and_unknown_fields_are_422_by_field(app, world, payload, field):
    body = is_problem(_reply(app, world, data=json.dumps(payload), content_type="application/json"), 422)
    assert field in body["errors"] and all(isinstance(m, str) for m in body["errors"][field])


def test_nested_field_errors_are_named_by_path(app, world):
    response = app.test_client().post("/api/v1/tickets", headers=bearer(world["tokens"]["manager"]), json={
        "entity": "billing", "customer": {"email": "not-an-address"}, "subject": "x", "body": "y"})
    assert "customer.email" in is_problem(response, 422)["errors"]


def test_an_oversized_body_is_413(app, world):
    is_problem(_reply(app, world, data=json.dumps({"body": "x" * (3 * 1024 * 1024)}),
                      content_type="application/json"), 413)


def test_unknown_paths_and_methods_are_problems(app, world):
    headers = bearer(world["tokens"]["manager"])
    is_problem(app.test_client().get("/api/v1/nothing-here", headers=headers), 404)
    response = app.test_client().delete(f"/api/v1/tickets/{world['acme_number']}", headers=headers)
    is_problem(response, 405)
    assert "PATCH" in response.headers["Allow"]


@pytest.mark.parametrize("query", ["status=sleeping", "limit=0", "limit=abc", "limit=1000", "cursor=@@@",
                                   "cursor=c1234567", "priority=extreme", "colour=red"])
def test_bad_queries_are_400_by_parameter(app, world, query):
    body = is_problem(app.test_client().get(f"/api/v1/tickets?{query}", headers=bearer(world["tokens"]["admin"])),
                      400)
    assert query.split("=")[0] in body["errors"]


@pytest.fixture
def app_overrides(request):
    return {"API_RATE_LIMIT": "3 per minute"} if "throttle" in request.node.name else {}


def test_throttle_answers_429_with_retry_after_per_token(app, world):
    api = app.test_client()
    for _ in range(3):
        assert api.get("/api/v1/tickets", headers=bearer(world["tokens"]["agent"])).status_code == 200
    response = api.get("/api/v1/tickets", headers=bearer(world["tokens"]["agent"]))
    is_problem(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    # Counted per token: another person's script is not held up.
    assert api.get("/api/v1/tickets", headers=bearer(world["tokens"]["manager"])).status_code == 200


# --- cursor pages -----------------------------------------------------------------------------------------

def walk(api, headers, query: str = "status=all&limit=2") -> list[str]:
    numbers, cursor = [], None
    while True:
        page = api.get(f"/api/v1/tickets?{query}" + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        numbers += [t["number"] for t in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return numbers


def test_pages_follow_the_cursor_newest_first_and_keep_the_filters(app, session, world):
    billing = session.scalar(select(Ticket).where(Ticket.number == world["acme_number"])).entity
    made = [make_ticket(billing, priority="high").number for _ in range(5)]
    session.commit()
    api = app.test_client()
    headers = bearer(world["tokens"]["manager"])
    assert walk(api, headers, "status=all&limit=2&priority=high") == made[::-1]
    everything = walk(api, headers)
    assert len(everything) == len(set(everything)) == 6


# --- CSV exports ------------------------------------------------------------------------------------------

def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_ticket_export_is_scoped_filtered_and_defuses_formulas(app, client, session, world):
    billing = session.scalar(select(Ticket).where(Ticket.number == world["acme_number"])).entity
    make_ticket(billing, subject='=HYPERLINK("http://evil.example","Click")', priority="urgent")
    make_ticket(billing, subject="@SUM(A1)", priority="urgent")
    session.commit()
    api = app.test_client()
    manager = rows_of(api.get("/api/v1/exports/tickets.csv?status=all", headers=bearer(world["tokens"]["manager"])))
    assert manager[0][:3] == ["Number", "Entity", "Subject"]
    subjects = [r[2] for r in manager[1:]]
    assert subjects == ["'@SUM(A1)", "'=HYPERLINK(\"http://evil.example\",\"Click\")", "Charged twice"]
    agent = rows_of(api.get("/api/v1/exports/tickets.csv?status=all", headers=bearer(world["tokens"]["agent"])))
    assert [r[2] for r in agent[1:]] == ["Globex printer"]
    urgent = rows_of(api.get("/api/v1/exports/tickets.csv?priority=urgent", headers=bearer(world["tokens"]["admin"])))
    assert len(urgent) == 3

    # The web list offers the same download with its current filters, scoped to the signed-in user.
    login(client, world["agent_email"])
    page = client.get("/tickets/?priority=urgent&status=all").get_data(as_text=True)
    assert "/tickets/export.csv?status=all&amp;priority=urgent" in page
    web = rows_of(client.get("/tickets/export.csv?status=all"))
    assert [r[2] for r in web[1:]] == ["Globex printer"]


def test_the_sla_report(app, client, world):
    rows = rows_of(app.test_client().get("/api/v1/exports/sla-report.csv?status=all",
                                         headers=bearer(world["tokens"]["admin"])))
    header, by_number = rows[0], {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert header[:5] == ["Number", "Entity", "Status", "Priority", "SLA rule"]
    acme = by_number[world["acme_number"]]
    assert acme["SLA rule"] == "Acme standard" and acme["First response result"] == "running"
    assert acme["First response due"].endswith("Z") and float(acme["First response business (minutes)"]) >= 0
    assert acme["Next reply due"] == ""
    assert by_number[world["globex_number"]]["SLA rule"] == ""
    login(client, world["manager_email"])
    assert [r[0] for r in rows_of(client.get("/tickets/sla-report.csv?status=all"))[1:]] == [world["acme_number"]]


@pytest.mark.committing
@pytest.mark.parametrize("path", ["/api/v1/exports/tickets.csv?status=all", "/api/v1/exports/sla-report.csv"])
def test_an_export_streams_after_its_request_was_torn_down(app, session, path):
    """As under gunicorn: the request's app context (and its session) ends before the body is read, and the stream
    must not need anything that session held (the user's row was expired by then)."""
    entity = make_entity("Acme", "acme")
    make_rule(entity, "Standard", response_minutes=60)
    manager = make_staff(entity, role="manager")
    numbers = {make_ticket(entity).number for _ in range(3)}
    token = token_for(session, manager)
    got = {}

    def call():  # a thread with no app context: the request pushes its own, as a server's does
        response = app.test_client().get(path, headers=bearer(token), buffered=False)
        got["rows"] = rows_of(response)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(timeout=60)
    assert {row[0] for row in got["rows"][1:]} == numbers


@pytest.mark.committing
def test_reads_run_without_a_transaction_and_changes_in_one(app, session):
    """A GET sends no BEGIN and no ROLLBACK (each statement commits by itself, mets.transaction.autocommit); a change,
    and an export (its server-side cursor lives in a transaction), run in a transaction as before."""
    entity = make_entity("Acme", "acme")
    make_rule(entity, "Standard", response_minutes=60)
    manager = make_staff(entity, role="manager")
    number = make_ticket(entity).number
    token = token_for(session, manager)
    token_row = session.scalar(select(ApiToken).where(ApiToken.user_id == manager.id))
    token_row.last_used_at = clock.now()  # marked used a moment ago: the requests below write nothing
    session.commit()
    seen = []

    def record(conn, _cursor, statement, *_args):
        dbapi = conn.connection.dbapi_connection  # psycopg's autocommit; pysqlite's is isolation_level None
        autocommit = dbapi.autocommit if conn.dialect.name == "postgresql" else dbapi.isolation_level is None
        seen.append((autocommit, statement.split(None, 1)[0]))

    def call(method, path, **kwargs):  # a thread with no app context: the request's session is its own
        got = {}

        def run():
            response = app.test_client().open(path, method=method, headers=bearer(token), **kwargs)
            got.update(status=response.status_code, body=response.get_data(as_text=True))

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=60)
        return got["status"], got["body"]

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        for path in ("/api/v1/tickets", f"/api/v1/tickets/{number}/sla", f"/api/v1/tickets/{number}"):
            seen.clear()
            assert call("GET", path)[0] == 200
            assert seen and all(autocommit for autocommit, _ in seen), (path, seen)
        seen.clear()
        assert call("POST", f"/api/v1/tickets/{number}/replies", json={"body": "On it"})[0] == 201
        assert seen and not any(autocommit for autocommit, _ in seen)
        seen.clear()
        status, body = call("GET", "/api/v1/exports/tickets.csv?status=all")
        assert status == 200 and number in body
        assert seen and not any(autocommit for autocommit, _ in seen)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
