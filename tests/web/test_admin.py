"""Admin pages: the entity tree, users and their memberships."""
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import select

from mets import clock, jobs
from mets.models import Entity, Membership, User
from tests.conftest import HTMX, count_rows, login, text_of
from tests.factories import make_customer, make_entity, make_staff
from tests.web.helpers import screen


@pytest.fixture
def tree(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    return {"acme": acme, "billing": billing, "refunds": make_entity("Refunds", "refunds", parent=billing),
            "it": make_entity("Acme IT", "it", parent=acme), "globex": make_entity("Globex", "globex")}


@pytest.fixture
def admin(session, client, tree):
    user = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
    session.commit()
    login(client, user)
    return user



# --- entities -------------------------------------------------------------------------------

def test_entity_tree_shows_departments_under_their_parents(client, admin):
    page = text_of(client.get("/admin/entities"))
    rows = ["Acme acme", "└ Acme Billing billing", "└ Refunds refunds", "└ Acme IT it", "Globex globex"]
    positions = [page.index(row) for row in rows]
    assert positions == sorted(positions)


ENTITY = {"name": "Acme Legal", "slug": "legal", "parent_id": "", "timezone": "Europe/Paris",
          "sender_name": "Acme Legal", "sender_email": "legal@acme.example", "active": "y"}


def test_create_entity(client, session, admin, tree):
    response = client.post("/admin/entities/new", data={**ENTITY, "parent_id": str(tree["acme"].id)})
    assert response.status_code == 303
    assert response.location == "/admin/entities"
    legal = session.scalar(select(Entity).where(Entity.slug == "legal"))
    assert (legal.name, legal.parent_id, legal.timezone) == ("Acme Legal", tree["acme"].id, "Europe/Paris")
    assert "└ Acme Legal legal Europe/Paris" in text_of(client.get("/admin/entities"))


@pytest.mark.parametrize("field, value, message", [
    ("slug", "Bad Slug!", "Use 1-40 lower-case letters, digits or dashes"),
    ("slug", "-acme", "Use 1-40 lower-case letters, digits or dashes"),
    ("slug", "acme", "The slug 'acme' is taken."),
    ("slug", "ACME", "The slug 'acme' is taken."),
    ("timezone", "Mars/Olympus", "Unknown time zone 'Mars/Olympus'. Use an IANA name such as Europe/Paris."),
    ("sender_email", "legal at acme", "An email address must have an @-sign."),
    ("sender_email", "legal@acme.example\r\nBcc: all@victims.example", "An email address cannot contain line breaks."),
    ("name", "", "This field is required."),
    ("parent_id", "987654", "Not a valid choice."),
])
def test_create_entity_errors_keep_the_input(client, session, admin, field, value, message):
    response = client.post("/admin/entities/new", data={**ENTITY, field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in screen(response)
    typed = {**ENTITY, field: value}
    for name in ("name", "slug", "timezone", "sender_email"):
        assert not typed[name] or f'value="{escape(typed[name])}"' in html
    assert count_rows(session, Entity) == 5


@pytest.mark.parametrize("new_parent", ["billing", "refunds"])
def test_entity_cannot_move_under_its_own_department(client, session, admin, tree, new_parent):
    acme = tree["acme"]
    page = client.get(f"/admin/entities/{acme.id}").get_data(as_text=True)
    assert f'<option value="{tree[new_parent].id}"' not in page  # not offered as a parent
    assert f'<option value="{tree["globex"].id}"' in page
    # A hand-made form that picks it anyway is refused and changes nothing.
    data = {**ENTITY, "name": "Acme", "parent_id": str(tree[new_parent].id), "timezone": "UTC"}
    response = client.post(f"/admin/entities/{acme.id}", data=data)
    assert response.status_code == 422
    assert "Not a valid choice" in screen(response)
    session.expire_all()
    assert acme.parent_id is None


def test_entity_cannot_be_its_own_parent(client, session, admin, tree):
    acme = tree["acme"]
    response = client.post(f"/admin/entities/{acme.id}", data={**ENTITY, "name": "Acme", "parent_id": str(acme.id)})
    assert response.status_code == 422
    assert "Not a valid choice." in screen(response)
    session.expire_all()
    assert acme.parent_id is None


def test_edit_entity_keeps_its_slug(client, session, admin, tree):
    billing = tree["billing"]
    data = {**ENTITY, "name": "Acme Finance", "slug": "finance", "parent_id": str(tree["it"].id)}
    response = client.post(f"/admin/entities/{billing.id}", data=data)
    assert response.status_code == 303
    session.expire_all()
    assert (billing.name, billing.slug, billing.parent_id) == ("Acme Finance", "billing", tree["it"].id)


# --- users ----------------------------------------------------------------------------------

STAFF = {"name": "Nina New", "email": "nina@staff.example", "kind": "staff", "password": "a-long-enough-secret",
         "active": "y"}


def test_create_staff_who_can_then_sign_in(client, session, admin):
    response = client.post("/admin/users/new", data=STAFF)
    nina = session.scalar(select(User).where(User.email == "nina@staff.example"))
    assert response.status_code == 303
    assert response.location == f"/admin/users/{nina.id}"
    assert (nina.kind, nina.is_admin, nina.active) == ("staff", False, True)
    assert "Memberships" in text_of(client.get(response.location))

    client.post("/logout")
    signed_in = client.post("/login", data={"email": "nina@staff.example", "password": "a-long-enough-secret"})
    assert signed_in.location == "/tickets/"


@pytest.mark.parametrize("field, value, message", [
    ("password", "short", "Use at least 10 characters."),
    ("password", "", "Use at least 10 characters."),  # staff need one
    ("email", "ADA@Staff.Example", "Another user has this email address."),
    ("email", "nina at staff", "An email address must have an @-sign."),
    ("name", "", "This field is required."),
    ("kind", "superuser", "Not a valid choice."),
])
def test_create_user_errors_keep_the_input(client, session, admin, field, value, message):
    response = client.post("/admin/users/new", data={**STAFF, field: value})
    assert response.status_code == 422
    assert message in screen(response)
    kept = {k: v for k, v in STAFF.items() if k in ("name", "email") and k != field}
    assert all(f'value="{v}"' in response.get_data(as_text=True) for v in kept.values())
    assert "a-long-enough-secret" not in response.get_data(as_text=True)  # a password is never echoed
    assert count_rows(session, User) == 1


def test_create_customer_never_makes_an_admin(client, session, admin):
    data = {"name": "Carl Customer", "email": "carl@example.com", "kind": "customer", "is_admin": "y", "active": "y"}
    response = client.post("/admin/users/new", data=data)
    assert response.status_code == 303
    carl = session.scalar(select(User).where(User.email == "carl@example.com"))
    assert (carl.kind, carl.is_admin, carl.password_hash) == ("customer", False, None)
    assert "Memberships" not in text_of(client.get(response.location))


def test_edit_user(client, session, admin):
    sam = make_staff(name="Sam Staff", email="sam@staff.example")
    session.commit()
    data = {"name": "Samuel Staff", "email": "Samuel@Staff.Example", "password": "a-brand-new-secret", "active": "y"}
    response = client.post(f"/admin/users/{sam.id}", data=data)
    assert response.status_code == 303
    session.expire_all()
    assert (sam.name, sam.email, sam.check_password("a-brand-new-secret")) == (
        "Samuel Staff", "samuel@staff.example", True)


def test_edit_user_to_a_taken_email_is_refused(client, session, admin):
    sam = make_staff(name="Sam Staff", email="sam@staff.example")
    session.commit()
    response = client.post(f"/admin/users/{sam.id}", data={"name": "Sam Staff", "email": "ADA@staff.example",
                                                            "active": "y"})
    assert response.status_code == 422
    assert "Another user has this email address." in screen(response)
    session.expire_all()
    assert sam.email == "sam@staff.example"


@pytest.mark.parametrize("data", [
    {"name": "Ada Admin", "email": "ada@staff.example", "is_admin": "y"},  # "active" unticked
    {"name": "Ada Admin", "email": "ada@staff.example", "active": "y"},  # "admin" unticked
])
def test_admin_cannot_lock_themselves_out(client, session, admin, data):
    response = client.post(f"/admin/users/{admin.id}", data=data)
    assert response.status_code == 422
    assert "You cannot deactivate yourself or remove your own admin rights." in screen(response)
    session.expire_all()
    assert (admin.active, admin.is_admin) == (True, True)
    assert client.get("/admin/users").status_code == 200


def test_user_list_search_and_kind(client, session, admin):
    make_customer("Carl 100% Customer", "carl@example.com")
    make_customer("Cora Customer", "cora@example.com")
    session.commit()
    page = text_of(client.get("/admin/users?kind=customer&q=CARL"))
    assert "Carl 100% Customer" in page and "Cora Customer" not in page and "ada@staff.example" not in page
    fragment = client.get("/admin/users?kind=all&q=100%", headers=HTMX)
    assert "<html" not in fragment.get_data(as_text=True)
    assert "Carl 100% Customer" in text_of(fragment) and "Cora Customer" not in text_of(fragment)


# --- memberships ----------------------------------------------------------------------------

@pytest.fixture
def sam(session):
    user = make_staff(name="Sam Staff", email="sam@staff.example")
    session.commit()
    return user


def test_add_and_update_a_membership_via_htmx(client, session, admin, tree, sam):
    url = f"/admin/users/{sam.id}/memberships"
    response = client.post(url, data={"entity_id": tree["billing"].id, "role": "manager", "tier": "2",
                                      "skills": "Billing, refunds; billing"}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="memberships"') and "<html" not in html
    assert "Acme Billing Manager 2 billing refunds" in text_of(response)

    client.post(url, data={"entity_id": tree["billing"].id, "role": "agent", "tier": "1", "skills": ""}, headers=HTMX)
    session.expire_all()
    assert [(m.entity_id, m.role, m.tier, m.skills) for m in sam.memberships] == [(tree["billing"].id, "agent", 1, [])]


@pytest.mark.parametrize("data, message", [
    ({"role": "manager", "tier": "12"}, "Number must be between 1 and 9."),
    ({"role": "owner", "tier": "1"}, "Not a valid choice."),
    ({"role": "agent", "tier": "1", "entity_id": "987654"}, "Not a valid choice."),
])
def test_bad_membership_shows_the_error_in_place(client, session, admin, tree, sam, data, message):
    response = client.post(f"/admin/users/{sam.id}/memberships",
                           data={"entity_id": tree["billing"].id, **data}, headers=HTMX)
    assert response.status_code == 422
    assert "<html" not in response.get_data(as_text=True)
    assert message in screen(response)
    assert count_rows(session, Membership) == 0


def test_customers_cannot_become_members(client, session, admin, tree):
    carl = make_customer("Carl Customer")
    session.commit()
    response = client.post(f"/admin/users/{carl.id}/memberships",
                           data={"entity_id": tree["billing"].id, "role": "agent", "tier": "1"}, headers=HTMX)
    assert response.status_code == 422
    assert "Only staff can be members of an entity." in screen(response)
    assert count_rows(session, Membership) == 0


def test_delete_membership_via_htmx(client, session, admin, tree):
    sam = make_staff(tree["billing"], name="Sam Staff")
    session.commit()
    membership_id = sam.memberships[0].id

    response = client.delete(f"/admin/users/{sam.id}/memberships/{membership_id}", headers=HTMX)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == ""
    assert count_rows(session, Membership) == 0
    assert "No memberships: this person sees no tickets." in text_of(client.get(f"/admin/users/{sam.id}"))


def test_delete_membership_through_another_users_url_is_not_found(client, session, admin, tree, sam):
    bea = make_staff(tree["billing"], name="Bea Billing")
    session.commit()
    response = client.delete(f"/admin/users/{sam.id}/memberships/{bea.memberships[0].id}", headers=HTMX)
    assert response.status_code == 404
    assert count_rows(session, Membership) == 1


# --- background jobs ------------------------------------------------------------------------

def run_periodic_jobs(at):
    """Every periodic job, as a worker runs them, with the clock at `at`."""
    with clock.freeze(at):
        for job, _period_key in jobs.PERIODIC.values():
            job()


def test_the_overview_shows_the_background_jobs_and_warns_when_they_stall(client, session, admin):
    page = text_of(client.get("/admin/", follow_redirects=True))  # the page an admin lands on
    assert "Background jobs" in page
    assert "Warning: SLA tick never ran; Outbox sweep never ran." in page
    assert "SLA tick has never run (every 60 s) never ran" in page

    run_periodic_jobs(clock.now() - timedelta(minutes=5))  # then the worker stopped
    page = text_of(client.get("/admin/entities"))
    assert ("Warning: SLA tick has not succeeded for 5 min (expected every 60 s); "
            "Outbox sweep has not succeeded for 5 min (expected every 30 s).") in page
    assert "SLA tick last ran 5 min ago (every 60 s) stale" in page

    run_periodic_jobs(clock.now() - timedelta(seconds=40))  # it runs again
    page = text_of(client.get("/admin/entities"))
    assert "SLA tick last ran 40 s ago (every 60 s)" in page
    assert "Outbox sweep last ran 40 s ago (every 30 s)" in page
    assert "Warning" not in page and "stale" not in page


# --- only admins ----------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("GET", "/admin/"), ("GET", "/admin/entities"), ("GET", "/admin/entities/new"), ("GET", "/admin/entities/{acme}"),
    ("GET", "/admin/users"), ("GET", "/admin/users/new"), ("GET", "/admin/users/{me}"),
    ("POST", "/admin/users/{me}"), ("POST", "/admin/users/{me}/memberships"),
    ("DELETE", "/admin/users/{me}/memberships/{membership}"),
])
def test_non_admin_staff_get_not_found(client, session, tree, method, path):
    manager = make_staff(tree["acme"], role="manager", name="Maria Manager", email="maria@staff.example")
    session.commit()
    login(client, manager)
    values = {"acme": tree["acme"].id, "me": manager.id, "membership": manager.memberships[0].id}
    # What a manager would try: make themselves admin, or a member of Globex too.
    data = {"name": "Maria Manager", "email": "maria@staff.example", "is_admin": "y", "active": "y",
            "entity_id": str(tree["globex"].id), "role": "manager", "tier": "1"}

    response = client.open(path.format(**values), method=method, data=data if method == "POST" else None,
                           headers=HTMX if "memberships" in path else {})

    assert response.status_code == 404
    session.expire_all()
    assert manager.is_admin is False
    assert [m.entity_id for m in manager.memberships] == [tree["acme"].id]
