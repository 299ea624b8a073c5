"""Staff sign-in and sign-out, CSRF refusals and error pages."""
import mailbox

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from mets.extensions import db
from tests.conftest import HTMX, login, login_customer, text_of
from tests.factories import PASSWORD, make_customer, make_entity, make_staff, make_ticket
from tests.web.helpers import screen


@pytest.fixture
def sam(session):
    entity = make_entity("Acme", "acme")
    user = make_staff(entity, name="Sam Staff", email="sam@staff.example")
    session.commit()
    return user


def signed_in(client) -> bool:
    return client.get("/tickets/").status_code == 200


def test_login_lands_on_my_open_tickets(client, sam):
    response = client.post("/login", data={"email": "  SAM@Staff.Example ", "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == "/tickets/?assignee=mine"  # My open tickets
    assert "Sam Staff" in text_of(client.get("/tickets/"))


@pytest.fixture
def refused(session, sam):
    """Addresses that must not get in with the right password, and why."""
    make_staff(name="Rita Retired", email="rita@staff.example", active=False)
    customer = make_customer("Carl Customer", "carl@example.com")
    customer.set_password(PASSWORD)  # even a customer who somehow has a password
    session.commit()


@pytest.mark.parametrize("email, password", [
    ("sam@staff.example", "wrong-password-123"),
    ("nobody@staff.example", PASSWORD),
    ("rita@staff.example", PASSWORD),  # deactivated
    ("carl@example.com", PASSWORD),  # a customer: they use the portal
])
def test_refused_sign_ins_all_get_the_same_generic_answer(client, refused, email, password):
    wrong_password = client.post("/login", data={"email": "sam@staff.example", "password": "wrong-password-123"})
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 422
    assert "Wrong email or password." in text_of(response)
    assert text_of(response) == text_of(wrong_password)  # nothing tells these cases apart
    assert not signed_in(client)


@pytest.mark.parametrize("target, landing", [
    ("/tickets/ACME-1001", "/tickets/ACME-1001"),
    ("/tickets/?status=all&q=vpn", "/tickets/?status=all&q=vpn"),
    ("//evil.example", "/tickets/?assignee=mine"),
    ("//evil.example/tickets/", "/tickets/?assignee=mine"),
    ("https://evil.example", "/tickets/?assignee=mine"),
    ("http:/evil.example", "/tickets/?assignee=mine"),
    ("/\\evil.example", "/tickets/?assignee=mine"),
    ("/\t/evil.example", "/tickets/?assignee=mine"),
    ("javascript:alert(1)", "/tickets/?assignee=mine"),
    ("tickets/", "/tickets/?assignee=mine"),
])
def test_next_only_leads_to_same_site_paths(client, sam, target, landing):
    response = client.post("/login", query_string={"next": target}, data={"email": sam.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == landing


def test_anonymous_visit_comes_back_after_sign_in(client, sam):
    bounce = client.get("/tickets/?status=all")
    assert bounce.status_code == 302
    page = client.get(bounce.location)
    assert "Staff sign in" in text_of(page)
    response = client.post(bounce.location, data={"email": sam.email, "password": PASSWORD})
    assert response.location.startswith("/tickets/?status=all")


def test_logout_is_post_only_and_needs_the_token(client, sam):
    login(client, sam)
    assert client.get("/logout").status_code == 405
    assert signed_in(client)
    refused = client.post("/logout", csrf=False)
    assert refused.status_code == 400
    assert signed_in(client)

    response = client.post("/logout")
    assert response.status_code == 302 and response.location == "/login"
    assert "You are signed out." in text_of(client.get(response.location))
    assert not signed_in(client)


def test_customer_logout_returns_to_the_portal(client, session):
    carl = make_customer("Carl Customer")
    session.commit()
    login_customer(client, carl)
    response = client.post("/logout")
    assert response.location == "/portal/login"
    assert client.get("/portal/").status_code == 302


def test_deactivated_staff_are_signed_out_at_their_next_click(client, session, sam):
    login(client, sam)
    sam.active = False
    session.commit()
    response = client.get("/tickets/")
    assert response.status_code == 302
    assert response.location.startswith("/login")


def table_counts() -> dict[str, int]:
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}


def forged_token(app) -> str:
    """A well-formed token, but for another session: what a cross-site form would carry."""
    return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps("someone-elses-session")


@pytest.mark.parametrize("method, path, data, htmx", [
    ("POST", "/tickets/{number}/replies", {"body": "Refund sent"}, False),
    ("POST", "/tickets/{number}/replies", {"body": "Refund sent"}, True),
    ("POST", "/tickets/{number}/fields/status", {"status": "pending"}, True),
    ("POST", "/tickets/new", {"entity_id": "{entity}", "customer_email": "x@example.com", "subject": "Hi",
                              "body": "Hello", "priority": "normal"}, False),
    ("POST", "/admin/entities/new", {"name": "Evil", "slug": "evil", "timezone": "UTC", "active": "y"}, False),
    ("POST", "/admin/users/{sam}", {"name": "Sam Staff", "email": "sam@staff.example", "is_admin": "y",
                                    "active": "y"}, False),
    ("DELETE", "/admin/users/{sam}/memberships/{membership}", None, True),
    ("POST", "/logout", {}, False),
])
@pytest.mark.parametrize("token", ["none", "forged"])
def test_unsafe_requests_without_a_valid_token_change_nothing(app, client, session, sam, method, path, data, htmx,
                                                               token):
    admin = make_staff(name="Ada Admin", is_admin=True)
    ticket = make_ticket(sam.memberships[0].entity, subject="Charged twice")
    session.commit()
    login(client, admin)
    values = {"number": ticket.number, "entity": sam.memberships[0].entity_id, "sam": sam.id,
              "membership": sam.memberships[0].id}
    before = table_counts()

    headers = {**(HTMX if htmx else {}), **({"X-CSRFToken": forged_token(app)} if token == "forged" else {})}
    response = client.open(path.format(**values), method=method, csrf=False, headers=headers,
                           data={k: v.format(**values) for k, v in data.items()} if data is not None else None)

    assert response.status_code == 400
    assert "Form expired" in text_of(response)
    assert table_counts() == before
    session.expire_all()
    assert (ticket.status, sam.is_admin) == ("new", False)
    assert signed_in(client)


def test_sign_in_form_needs_its_token(client, sam):
    response = client.post("/login", data={"email": sam.email, "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert "Form expired" in text_of(response)
    assert not signed_in(client)


def test_portal_link_request_needs_its_token(app, client, session):
    make_customer("Carl Customer", "carl@example.com")
    session.commit()
    response = client.post("/portal/login", data={"email": "carl@example.com"}, csrf=False)
    assert response.status_code == 400
    assert len(mailbox.Maildir(app.config["MAILDIR"], create=True)) == 0


@pytest.mark.parametrize("path", ["/no-such-page", "/tickets/NOPE-1/activity", "/admin/users/999999",
                                  "/static/../mets/config.py"])
def test_not_found_page_is_friendly_and_reveals_nothing(client, sam, path):
    login(client, sam)
    response = client.get(path)
    assert response.status_code == 404
    page = screen(response)
    assert "Not found" in page and "There is nothing here" in page
    for leak in ("Traceback", "werkzeug", "File \"", "SECRET_KEY"):
        assert leak not in response.get_data(as_text=True)

