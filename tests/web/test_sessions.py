"""A stolen or left-behind cookie is worth nothing after a sign-out, a password change or a deactivation.

The attacker saved the victim's `session` cookie or `remember_token` cookie and replays it from
another browser after the event; the app must treat them as signed out (a redirect to /login).
"""
import pytest

from tests.conftest import CSRFClient, login, login_customer
from tests.factories import PASSWORD, make_customer, make_entity, make_staff


@pytest.fixture
def people(session):
    acme = make_entity("Acme", "acme")
    admin = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
    victim = make_staff(acme, name="Vic Victim", email="vic@staff.example")
    session.commit()
    return admin, victim


def new_browser(app) -> CSRFClient:
    app.test_client_class = CSRFClient
    return app.test_client()


def stolen_cookie(client, name: str) -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie was set"
    return cookie.value


def replay(app, name: str, value: str):
    """GET the ticket list from a fresh browser holding only the stolen cookie."""
    thief = new_browser(app)
    thief.set_cookie(name, value)
    return thief.get("/tickets/")


def edit_user(admin_browser, user, **changes):
    data = {"name": user.name, "email": user.email, "active": "y", **changes}
    data = {k: v for k, v in data.items() if v is not None}
    response = admin_browser.post(f"/admin/users/{user.id}", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


def sign_out(app, admin, victim, browser):
    assert browser.post("/logout").status_code == 302


def change_password(app, admin, victim, browser):
    admin_browser = new_browser(app)
    login(admin_browser, admin)
    edit_user(admin_browser, victim, password="a-brand-new-password")


def deactivate_and_reactivate(app, admin, victim, browser):
    """Deactivation alone already refuses the user; after a reactivation old cookies must stay dead."""
    admin_browser = new_browser(app)
    login(admin_browser, admin)
    edit_user(admin_browser, victim, active=None)
    edit_user(admin_browser, victim)


EVENTS = [sign_out, change_password, deactivate_and_reactivate]


@pytest.mark.parametrize("cookie", ["session", "remember_token"])
def test_a_cookie_works_until_something_happens(app, client, people, cookie):
    """The control: without any event the stolen cookie does sign in (so the refusals below mean something)."""
    _, victim = people
    client.post("/login", data={"email": victim.email, "password": PASSWORD, "remember": "y"})
    assert replay(app, cookie, stolen_cookie(client, cookie)).status_code == 200


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("cookie", ["session", "remember_token"])
def test_a_saved_cookie_is_refused_after(app, client, people, event, cookie):
    admin, victim = people
    client.post("/login", data={"email": victim.email, "password": PASSWORD, "remember": "y"})
    saved = stolen_cookie(client, cookie)

    event(app, admin, victim, client)

    response = replay(app, cookie, saved)
    assert response.status_code == 302 and response.location.startswith("/login")
    # htmx requests are told to load the sign-in page instead.
    thief = new_browser(app)
    thief.set_cookie(cookie, saved)
    assert thief.get("/tickets/", headers={"HX-Request": "true"}).status_code == 401


def test_signing_out_ends_the_sessions_on_other_devices_too(app, client, people):
    _, victim = people
    laptop, phone = client, new_browser(app)
    login(laptop, victim)
    login(phone, victim)
    laptop.post("/logout")
    assert phone.get("/tickets/").status_code == 302


def test_the_user_signs_in_again_with_the_new_password(app, client, people):
    admin, victim = people
    change_password(app, admin, victim, client)
    assert client.post("/login", data={"email": victim.email, "password": PASSWORD}).status_code == 422
    login(client, victim, "a-brand-new-password")
    assert client.get("/tickets/").status_code == 200


def test_an_admin_who_changes_their_own_password_stays_signed_in_here(app, client, people):
    admin, _ = people
    other_device = new_browser(app)
    login(other_device, admin)
    login(client, admin)

    edit_user(client, admin, is_admin="y", password="my-own-new-password")

    assert client.get("/tickets/").status_code == 200
    assert other_device.get("/tickets/").status_code == 302


def test_editing_a_name_signs_nobody_out(app, client, people):
    admin, victim = people
    victim_browser = new_browser(app)
    login(victim_browser, victim)
    login(client, admin)
    edit_user(client, victim, name="Victor Victim")
    assert victim_browser.get("/tickets/").status_code == 200


def test_a_customer_who_signs_out_cannot_replay_the_portal_session(app, client, session):
    carl = make_customer("Carl Customer", "carl@example.com")
    session.commit()
    login_customer(client, carl)
    saved = stolen_cookie(client, "session")
    client.post("/logout")

    thief = new_browser(app)
    thief.set_cookie("session", saved)
    assert thief.get("/portal/").status_code == 302


def test_the_remember_cookie_has_the_session_cookies_protections(client, people):
    _, victim = people
    response = client.post("/login", data={"email": victim.email, "password": PASSWORD, "remember": "y"})
    remember = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("remember_token="))
    assert "HttpOnly" in remember and "SameSite=Lax" in remember
    assert "Secure" not in remember  # SESSION_COOKIE_SECURE is off in tests: the remember cookie follows it


@pytest.fixture
def app_overrides(request):
    return {"SESSION_COOKIE_SECURE": True} if request.function.__name__ in BEHIND_HTTPS else {}


BEHIND_HTTPS = {"test_the_remember_cookie_is_secure_behind_https"}


def test_the_remember_cookie_is_secure_behind_https(client, people):
    _, victim = people
    response = client.post("/login", data={"email": victim.email, "password": PASSWORD, "remember": "y"})
    assert all("Secure" in h for h in response.headers.getlist("Set-Cookie"))
