"""services.entities and services.users: validation, the entity tree, sign-in and memberships."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import Entity, Membership, User
from mets.services.directory import entities
from mets.services.directory import users
from mets.services.errors import DomainError
from tests.conftest import count_rows
from tests.factories import PASSWORD, make_customer, make_entity, make_staff



def entity_data(**kw) -> dict:
    return {"name": "Acme", "slug": "acme", "timezone": "UTC", "parent_id": None, **kw}


# --- entities -------------------------------------------------------------------------------------

@pytest.mark.parametrize("slug", ["", "-acme", "acme-", "ac me", "acme_eu", "acme.eu", "a" * 41, "ünï", "acme/eu"])
def test_bad_slugs_are_refused(session, slug):
    with pytest.raises(DomainError) as exc:
        entities.create_entity(session, entity_data(slug=slug))
    assert set(exc.value.errors) == {"slug"}
    assert "lower-case letters, digits or dashes" in exc.value.for_field("slug")
    assert count_rows(session, Entity) == 0


@pytest.mark.parametrize("slug, stored", [("a", "a"), ("acme-eu-2", "acme-eu-2"), ("a" * 40, "a" * 40),
                                          (" ACME ", "acme")])
def test_good_slugs_are_stored_lower_case_and_prefix_numbers(session, slug, stored):
    entity = entities.create_entity(session, entity_data(slug=slug))
    session.commit()
    assert entity.slug == stored
    assert entity.ticket_prefix == stored.upper()


@pytest.mark.parametrize("second", ["acme", "ACME", " Acme "])
def test_slug_is_unique(session, second):
    entities.create_entity(session, entity_data(slug="acme"))
    session.commit()
    with pytest.raises(DomainError) as exc:
        entities.create_entity(session, entity_data(name="Acme again", slug=second))
    assert exc.value.for_field("slug") == "The slug 'acme' is taken."
    assert count_rows(session, Entity) == 1


@pytest.mark.parametrize("tz", ["", "Mars/Olympus_Mons", "Europe/Pariss", "GMT+25"])
def test_time_zone_must_be_an_iana_name(session, tz):
    with pytest.raises(DomainError) as exc:
        entities.create_entity(session, entity_data(timezone=tz))
    assert set(exc.value.errors) == {"timezone"}
    assert "IANA" in exc.value.for_field("timezone")


def test_iana_time_zone_and_sender_are_kept(session):
    entity = entities.create_entity(session, entity_data(timezone="America/New_York", sender_name=" Acme Help ",
                                                         sender_email=" Help@Acme.example "))
    session.commit()
    session.expire_all()
    entity = session.get(Entity, entity.id)
    assert (entity.timezone, entity.sender_name, entity.sender_email) == \
        ("America/New_York", "Acme Help", "help@acme.example")


@pytest.mark.parametrize("sender", ["not-an-address", "help@", "help@acme.example\r\nBcc: x@evil.example"])
def test_sender_email_is_validated(session, sender):
    with pytest.raises(DomainError) as exc:
        entities.create_entity(session, entity_data(sender_email=sender))
    assert set(exc.value.errors) == {"sender_email"}


def test_name_is_required_and_parent_must_exist(session):
    with pytest.raises(DomainError) as exc:
        entities.create_entity(session, entity_data(name="  ", parent_id=424242))
    assert set(exc.value.errors) == {"name", "parent_id"}
    assert count_rows(session, Entity) == 0


@pytest.fixture
def family(session):
    acme = make_entity(name="Acme", slug="acme")
    support = make_entity(name="Support", slug="support", parent=acme)
    emea = make_entity(name="Support EMEA", slug="support-emea", parent=support)
    session.commit()
    return acme, support, emea


@pytest.mark.parametrize("new_parent", ["itself", "child", "grandchild"])
def test_reparenting_into_a_cycle_is_refused(session, family, new_parent):
    acme, support, emea = family
    parent = {"itself": acme, "child": support, "grandchild": emea}[new_parent]
    with pytest.raises(DomainError) as exc:
        entities.update_entity(session, acme, entity_data(parent_id=parent.id))
    assert "cycle" in exc.value.for_field("parent_id")
    session.rollback()
    session.expire_all()
    assert session.get(Entity, acme.id).parent_id is None
    assert [(e.slug, d) for e, d in entities.entity_tree(session)] == [("acme", 0), ("support", 1),
                                                                      ("support-emea", 2)]


def test_moving_a_department_under_a_sibling_is_allowed(session, family):
    acme, support, emea = family
    billing = make_entity(name="Billing", slug="billing", parent=acme)
    entities.update_entity(session, emea, entity_data(name="Support EMEA", parent_id=billing.id))
    session.commit()
    assert [(e.slug, d) for e, d in entities.entity_tree(session)] == [
        ("acme", 0), ("billing", 1), ("support-emea", 2), ("support", 1)]


def test_update_never_changes_the_slug(session, family):
    acme = family[0]
    entities.update_entity(session, acme, entity_data(name="Acme Corp", slug="other"))
    session.commit()
    assert (acme.name, acme.slug) == ("Acme Corp", "acme")


def test_entity_tree_is_depth_first_by_name(session):
    zeta = make_entity(name="Zeta", slug="zeta")
    acme = make_entity(name="Acme", slug="acme")
    support = make_entity(name="Support", slug="support", parent=acme)
    billing = make_entity(name="Billing", slug="billing", parent=acme)
    make_entity(name="EU", slug="billing-eu", parent=billing)
    make_entity(name="Alpha Desk", slug="zeta-alpha", parent=zeta)
    make_entity(name="Night shift", slug="support-night", parent=support)
    session.commit()
    assert [(e.name, depth) for e, depth in entities.entity_tree(session)] == [
        ("Acme", 0), ("Billing", 1), ("EU", 2), ("Support", 1), ("Night shift", 2),
        ("Zeta", 0), ("Alpha Desk", 1)]


# --- users ----------------------------------------------------------------------------------------

def staff_data(**kw) -> dict:
    return {"email": "foo@x.example", "name": "Foo", "kind": "staff", "password": PASSWORD, **kw}


def test_emails_are_unique_whatever_their_case(session):
    user = users.create_user(session, staff_data(email="Foo@X.example"))
    session.commit()
    assert user.email == "foo@x.example"
    for other in ("foo@x.example", " FOO@x.EXAMPLE "):
        with pytest.raises(DomainError) as exc:
            users.create_user(session, staff_data(email=other, name="Other"))
        assert exc.value.for_field("email") == "Another user has this email address."
    with pytest.raises(DomainError):
        users.create_user(session, {"email": "FOO@X.EXAMPLE", "name": "Customer Foo", "kind": "customer"})
    assert count_rows(session, User) == 1
    assert users.find_by_email(session, "FOO@x.Example").id == user.id


def test_changing_an_email_to_one_in_use_is_refused(session):
    admin = make_staff(is_admin=True)
    users.create_user(session, staff_data(email="foo@x.example"))
    bar = users.create_user(session, staff_data(email="bar@x.example", name="Bar"))
    session.commit()
    with pytest.raises(DomainError) as exc:
        users.update_user(session, bar, {"email": "Foo@X.Example", "name": "Bar"}, actor=admin)
    assert "email" in exc.value.errors
    users.update_user(session, bar, {"email": "BAR@x.example", "name": "Bar B"}, actor=admin)  # own address: fine
    session.commit()
    assert (bar.email, bar.name) == ("bar@x.example", "Bar B")


def test_passwords_are_hashed_and_checked(session):
    user = users.create_user(session, staff_data())
    session.commit()
    session.expire_all()
    user = session.get(User, user.id)
    assert PASSWORD not in user.password_hash
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert user.check_password(PASSWORD)
    assert not user.check_password(PASSWORD.upper())
    assert not user.check_password("")


@pytest.mark.parametrize("password", ["", "short", "123456789"])
def test_staff_need_a_password_of_ten_characters(session, password):
    with pytest.raises(DomainError) as exc:
        users.create_user(session, staff_data(password=password))
    assert exc.value.for_field("password") == "Use at least 10 characters."
    assert count_rows(session, User) == 0


def test_authenticate_signs_in_active_staff_and_records_the_time(session):
    at = datetime(2026, 5, 4, 8, 15, tzinfo=timezone.utc)
    user = users.create_user(session, staff_data(email="Foo@X.example"))
    session.commit()
    with clock.freeze(at):
        signed_in = users.authenticate(session, " FOO@x.example", PASSWORD)
    session.commit()
    session.expire_all()
    assert signed_in is not None and signed_in.id == user.id
    assert session.get(User, user.id).last_login_at == at


def test_authenticate_says_none_for_every_kind_of_failure(session):
    staff = users.create_user(session, staff_data())
    users.create_user(session, staff_data(email="gone@x.example", name="Gone", active=False))
    customer = make_customer(email="cust@x.example")
    customer.set_password(PASSWORD)  # even a customer who somehow has a password cannot use the staff form
    session.commit()
    attempts = [("foo@x.example", "wrong-password-123"), ("foo@x.example", ""), ("foo@x.example", None),
                ("nobody@x.example", PASSWORD), ("gone@x.example", PASSWORD), ("cust@x.example", PASSWORD),
                ("", PASSWORD)]
    for email, password in attempts:
        assert users.authenticate(session, email, password) is None, email
    session.expire_all()
    assert session.get(User, staff.id).last_login_at is None


def test_get_or_create_customer_reuses_the_customer(session):
    first = users.get_or_create_customer(session, " Alice@Example.com ", "Alice Smith")
    again = users.get_or_create_customer(session, "alice@example.COM", "Someone Else")
    session.commit()
    assert again.id == first.id
    assert (first.email, first.name, first.kind) == ("alice@example.com", "Alice Smith", "customer")
    assert first.password_hash is None
    assert count_rows(session, User) == 1
    bob = users.get_or_create_customer(session, "bob.jones@example.com")
    assert bob.name == "bob.jones"


def test_get_or_create_customer_refuses_staff_and_deactivated_customers(session):
    make_staff(email="agent@x.example")
    gone = make_customer(email="gone@example.com")
    gone.active = False
    session.commit()
    with pytest.raises(DomainError) as exc:
        users.get_or_create_customer(session, "Agent@X.example")
    assert "staff" in exc.value.for_field("customer_email")
    with pytest.raises(DomainError) as exc:
        users.get_or_create_customer(session, "gone@example.com")
    assert "deactivated" in exc.value.for_field("customer_email")
    with pytest.raises(DomainError) as exc:
        users.get_or_create_customer(session, "not an address")
    assert "customer_email" in exc.value.errors
    assert count_rows(session, User) == 2


def test_you_cannot_deactivate_yourself_or_drop_your_own_admin_rights(session):
    admin = make_staff(is_admin=True, email="admin@x.example", name="Ada")
    session.commit()
    for data in ({"active": False, "is_admin": True}, {"active": True, "is_admin": False}):
        with pytest.raises(DomainError) as exc:
            users.update_user(session, admin, {"email": admin.email, "name": "Ada", **data}, actor=admin)
        assert "active" in exc.value.errors
    session.rollback()
    session.expire_all()
    admin = session.get(User, admin.id)
    assert admin.active and admin.is_admin


# --- memberships ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, tags", [
    ("Billing, hardware; billing", ["billing", "hardware"]),
    ("  ", []),
    (None, []),
    ("VPN;;network , ,VPN", ["vpn", "network"]),
])
def test_parse_skills(text, tags):
    assert users.parse_skills(text) == tags


@pytest.mark.parametrize("role, tier, skills, field", [
    ("boss", 1, [], "role"),
    ("agent", 0, [], "tier"),
    ("agent", 10, [], "tier"),
    ("agent", "2", [], "tier"),
    ("agent", 1.5, [], "tier"),
    ("agent", 1, ["x" * 41], "skills"),
])
def test_membership_values_are_validated(session, role, tier, skills, field):
    entity = make_entity()
    user = make_staff()
    with pytest.raises(DomainError) as exc:
        users.set_membership(session, user, entity, role, tier, skills)
    assert set(exc.value.errors) == {field}
    assert count_rows(session, Membership) == 0


def test_customers_cannot_be_members(session):
    entity = make_entity()
    customer = make_customer()
    with pytest.raises(DomainError) as exc:
        users.set_membership(session, customer, entity, "agent", 1, [])
    assert "Only staff" in exc.value.for_field("user")
    assert count_rows(session, Membership) == 0


def test_setting_a_membership_again_updates_the_one_row(session):
    entity = make_entity(name="Acme")
    user = make_staff(entity, role="agent", tier=1, skills=["billing"])
    session.commit()
    users.set_membership(session, user, entity, "manager", 3, users.parse_skills("Billing, hardware; billing"))
    session.commit()
    session.expire_all()
    rows = session.scalars(select(Membership).where(Membership.user_id == user.id)).all()
    assert [(m.entity_id, m.role, m.tier, m.skills) for m in rows] == [(entity.id, "manager", 3, ["billing", "hardware"])]


def test_membership_can_be_removed(session):
    entity = make_entity()
    user = make_staff(entity)
    session.commit()
    [membership] = session.get(User, user.id).memberships
    users.remove_membership(session, membership)
    session.commit()
    session.expire_all()
    assert session.get(User, user.id).memberships == []
    assert count_rows(session, Membership) == 0
