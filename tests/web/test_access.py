"""Every route of the app × every kind of visitor, with the exact answer each one gets.

A route added without a line in ROUTES fails this test: decide who may use it first.
"""
from urllib.parse import urlsplit

import pytest

from mets.services import portal_auth
from tests.conftest import HTMX, login, login_customer
from tests.factories import make_customer, make_entity, make_staff, make_ticket

ROLES = ("admin", "manager", "agent", "owner", "customer", "anonymous")

# Expected answers, one per role in ROLES order. "302>/login": a redirect to that path;
# "401>/login": htmx is told (HX-Redirect) to load that page.
STAFF_PAGE = "200 200 200 404 404 302>/login"
TICKET_PAGE = "200 200 404 404 404 302>/login"
TICKET_HTMX = "200 200 404 404 404 401>/login"
ADMIN_PAGE = "200 404 404 404 404 302>/login"
ADMIN_SAVE = "303 404 404 404 404 302>/login"
ADMIN_HTMX = "200 404 404 404 404 401>/login"
CUSTOMER_PAGE = "404 404 404 200 200 302>/portal/login"
OWNER_PAGE = "404 404 404 200 404 302>/portal/login"

NEW_TICKET = {"entity_id": "{billing}", "customer_email": "new.person@example.com", "customer_name": "New Person",
              "subject": "Cannot log in", "body": "It says my password is wrong.", "priority": "normal"}
ENTITY = {"name": "Acme Billing", "slug": "", "parent_id": "{acme}", "timezone": "Europe/Paris", "active": "y"}
STAFF_USER = {"name": "Nina New", "email": "nina@staff.example", "kind": "staff",
              "password": "long-enough-secret", "active": "y"}

ROUTES = [
    # method, rule, path (None: the rule itself), form data, htmx?, expected answers
    ("GET", "/", None, None, False,
     "302>/tickets/ 302>/tickets/ 302>/tickets/ 302>/portal/ 302>/portal/ 302>/login"),
    ("GET", "/login", None, None, False,
     "302>/tickets/ 302>/tickets/ 302>/tickets/ 200 200 200"),
    ("POST", "/login", None, {"email": "{manager_email}", "password": "{password}"}, False,
     "302>/tickets/ 302>/tickets/ 302>/tickets/ 302>/tickets/ 302>/tickets/ 302>/tickets/"),
    ("POST", "/logout", None, {}, False,
     "302>/login 302>/login 302>/login 302>/portal/login 302>/portal/login 302>/login"),

    ("GET", "/tickets/", None, None, False, STAFF_PAGE),
    ("GET", "/tickets/new", None, None, False, STAFF_PAGE),
    # The agent works in Globex only: Acme Billing is not one of their choices.
    ("POST", "/tickets/new", None, NEW_TICKET, False, "303 303 422 404 404 302>/login"),
    ("GET", "/tickets/<number>", "/tickets/{number}", None, False, TICKET_PAGE),
    ("POST", "/tickets/<number>/replies", "/tickets/{number}/replies", {"body": "On it."}, True, TICKET_HTMX),
    ("GET", "/tickets/<number>/activity", "/tickets/{number}/activity", None, True, TICKET_HTMX),
    ("GET", "/tickets/<number>/properties", "/tickets/{number}/properties", None, True, TICKET_HTMX),
    ("POST", "/tickets/<number>/fields/<name>", "/tickets/{number}/fields/priority", {"priority": "high"}, True,
     TICKET_HTMX),

    ("GET", "/admin/", None, None, False, "302>/admin/entities 404 404 404 404 302>/login"),
    ("GET", "/admin/entities", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/entities/new", None, None, False, ADMIN_PAGE),
    ("POST", "/admin/entities/new", None, {**ENTITY, "name": "Acme Legal", "slug": "legal"}, False, ADMIN_SAVE),
    ("GET", "/admin/entities/<int:entity_id>", "/admin/entities/{billing}", None, False, ADMIN_PAGE),
    ("POST", "/admin/entities/<int:entity_id>", "/admin/entities/{billing}", ENTITY, False, ADMIN_SAVE),
    ("GET", "/admin/users", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/users/new", None, None, False, ADMIN_PAGE),
    ("POST", "/admin/users/new", None, STAFF_USER, False, ADMIN_SAVE),
    ("GET", "/admin/users/<int:user_id>", "/admin/users/{agent_id}", None, False, ADMIN_PAGE),
    ("POST", "/admin/users/<int:user_id>", "/admin/users/{agent_id}",
     {"name": "Gus Renamed", "email": "{agent_email}", "active": "y"}, False, ADMIN_SAVE),
    ("POST", "/admin/users/<int:user_id>/memberships", "/admin/users/{agent_id}/memberships",
     {"entity_id": "{acme}", "role": "agent", "tier": "2", "skills": "billing"}, True, ADMIN_HTMX),
    ("DELETE", "/admin/users/<int:user_id>/memberships/<int:membership_id>",
     "/admin/users/{agent_id}/memberships/{agent_membership}", None, True, ADMIN_HTMX),

    ("GET", "/portal/", None, None, False, CUSTOMER_PAGE),
    ("GET", "/portal/login", None, None, False, "200 200 200 302>/portal/ 302>/portal/ 200"),
    ("POST", "/portal/login", None, {"email": "{owner_email}"}, False, "200 200 200 302>/portal/ 302>/portal/ 200"),
    # A valid link signs its customer in, whoever was signed in before.
    ("GET", "/portal/auth/<token>", "/portal/auth/{token}", None, False, " ".join(["302>/portal/"] * 6)),
    ("GET", "/portal/tickets/new", None, None, False, CUSTOMER_PAGE),
    ("POST", "/portal/tickets/new", None,
     {"entity_id": "{billing}", "subject": "Refund", "body": "Please refund order 7.", "priority": "normal"}, False,
     "404 404 404 303 303 302>/portal/login"),
    ("GET", "/portal/tickets/<number>", "/portal/tickets/{number}", None, False, OWNER_PAGE),
    ("POST", "/portal/tickets/<number>/replies", "/portal/tickets/{number}/replies", {"body": "Any news?"}, True,
     "404 404 404 200 404 401>/portal/login"),
]


def app_routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


@pytest.fixture
def world(session, client):
    """Acme with its Billing department, unrelated Globex, and one ticket in Acme Billing."""
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    people = {
        "admin": make_staff(name="Ada Admin", is_admin=True),
        "manager": make_staff(acme, role="manager", name="Maria Manager"),  # covers Acme Billing
        "agent": make_staff(globex, name="Gus Agent"),
        "owner": make_customer("Olive Owner"),
        "customer": make_customer("Carl Other"),
    }
    ticket = make_ticket(billing, customer=people["owner"], subject="Charged twice")
    session.commit()
    values = {"acme": acme.id, "billing": billing.id, "number": ticket.number, "password": "correct-horse-battery",
              "agent_id": people["agent"].id, "agent_email": people["agent"].email,
              "agent_membership": people["agent"].memberships[0].id, "manager_email": people["manager"].email,
              "owner_email": people["owner"].email,
              "token": portal_auth.make_token(client.application.secret_key, people["owner"].email)}
    return people, values


def sign_in(client, role, people):
    if role in ("admin", "manager", "agent"):
        login(client, people[role])
    elif role in ("owner", "customer"):
        login_customer(client, people[role])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method, rule, path, data, htmx, expected",
                         [pytest.param(*r, id=f"{r[0]} {r[1]}") for r in ROUTES])
def test_route_answers_each_role_exactly(app, client, world, role, method, rule, path, data, htmx, expected):
    missing = app_routes(app) - {(r[0], r[1]) for r in ROUTES}
    assert not missing, f"routes with no access expectation: {sorted(missing)}"
    people, values = world
    sign_in(client, role, people)

    form = {k: v.format(**values) for k, v in data.items()} if data is not None else None
    response = client.open((path or rule).format(**values), method=method, data=form, headers=HTMX if htmx else {})

    code, _, target = expected.split()[ROLES.index(role)].partition(">")
    assert response.status_code == int(code), response.get_data(as_text=True)[:300]
    if code == "401":
        assert response.headers["HX-Redirect"] == target
    elif target:
        assert urlsplit(response.location).path == target
