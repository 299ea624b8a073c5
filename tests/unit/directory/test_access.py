"""services.access: who sees which entities and tickets, and who can be assigned."""
import pytest
from sqlalchemy import select

from mets.models import Membership, Ticket
from mets.services.directory import access
from mets.services.directory import users
from tests.factories import make_customer, make_entity, make_staff, make_ticket


@pytest.fixture
def org(session):
    """Acme > Support > Support EMEA, Acme > Billing, and the unrelated Globex; one ticket in each."""
    acme = make_entity(name="Acme", slug="acme")
    support = make_entity(name="Support", slug="support", parent=acme)
    emea = make_entity(name="Support EMEA", slug="emea", parent=support)
    billing = make_entity(name="Billing", slug="billing", parent=acme)
    globex = make_entity(name="Globex", slug="globex")
    alice, bob = make_customer(name="Alice"), make_customer(name="Bob")
    o = {"acme": acme, "support": support, "emea": emea, "billing": billing, "globex": globex,
         "alice": alice, "bob": bob}
    o["tickets"] = {
        "acme": make_ticket(acme, customer=alice),
        "support": make_ticket(support, customer=alice),
        "emea": make_ticket(emea, customer=bob),
        "billing": make_ticket(billing, customer=bob),
        "globex": make_ticket(globex, customer=alice),
    }
    session.commit()
    return o


def numbers_seen(session, user) -> list[str]:
    query = access.scope_tickets(select(Ticket), session, user).order_by(Ticket.number)
    return [t.number for t in session.scalars(query)]


def test_admin_sees_every_entity_and_ticket(session, org):
    admin = make_staff(is_admin=True)
    assert access.visible_entity_ids(session, admin) is None
    assert numbers_seen(session, admin) == ["ACME-1001", "BILLING-1001", "EMEA-1001", "GLOBEX-1001", "SUPPORT-1001"]
    assert [e.name for e in access.visible_entities(session, admin)] == \
        ["Acme", "Billing", "Globex", "Support", "Support EMEA"]


def test_membership_in_a_parent_covers_children_and_grandchildren(session, org):
    maria = make_staff(org["acme"], role="manager")
    assert access.visible_entity_ids(session, maria) == {org[k].id for k in ("acme", "support", "emea", "billing")}
    assert numbers_seen(session, maria) == ["ACME-1001", "BILLING-1001", "EMEA-1001", "SUPPORT-1001"]
    assert access.find_ticket(session, maria, "globex-1001") is None
    assert access.find_ticket(session, maria, "emea-1001").number == "EMEA-1001"
    assert access.can_work_entity(session, maria, org["emea"])
    assert not access.can_work_entity(session, maria, org["globex"])


def test_membership_in_a_department_does_not_reach_up_or_sideways(session, org):
    sue = make_staff(org["support"])
    assert access.visible_entity_ids(session, sue) == {org["support"].id, org["emea"].id}
    assert numbers_seen(session, sue) == ["EMEA-1001", "SUPPORT-1001"]
    for hidden in ("ACME-1001", "BILLING-1001", "GLOBEX-1001"):
        assert access.find_ticket(session, sue, hidden) is None


def test_memberships_in_two_trees_add_up(session, org):
    gus = make_staff(org["billing"])
    users.set_membership(session, gus, org["globex"], "agent", 1, [])
    assert numbers_seen(session, gus) == ["BILLING-1001", "GLOBEX-1001"]


def test_staff_without_memberships_see_nothing(session, org):
    loner = make_staff()
    assert access.visible_entity_ids(session, loner) == set()
    assert numbers_seen(session, loner) == []
    assert access.visible_entities(session, loner) == []
    assert access.find_ticket(session, loner, "ACME-1001") is None


def test_customers_see_only_their_own_tickets(session, org):
    alice, bob = org["alice"], org["bob"]
    assert access.visible_entity_ids(session, alice) == set()
    assert numbers_seen(session, alice) == ["ACME-1001", "GLOBEX-1001", "SUPPORT-1001"]
    assert numbers_seen(session, bob) == ["BILLING-1001", "EMEA-1001"]
    assert access.find_ticket(session, alice, "EMEA-1001") is None
    assert access.find_ticket(session, bob, "emea-1001").customer_id == bob.id
    assert not access.can_work_entity(session, alice, org["acme"])


def test_find_ticket_for_an_unknown_number_is_none(session, org):
    admin = make_staff(is_admin=True)
    assert access.find_ticket(session, admin, "ACME-9999") is None
    assert access.find_ticket(session, admin, "acme-1001").number == "ACME-1001"


def test_members_of_includes_ancestors_members_only_active_staff(session, org):
    make_staff(org["acme"], name="Maria Manager", role="manager")
    make_staff(org["support"], name="Sue Support")
    make_staff(org["emea"], name="Emil Emea")
    make_staff(org["billing"], name="Bill Billing")          # sibling department: not a member of EMEA
    make_staff(org["globex"], name="Greta Globex")
    make_staff(org["support"], name="Gone Gary", active=False)
    make_staff(is_admin=True, name="Ada Admin")              # admins see all but are not members
    both = make_staff(org["acme"], name="Ben Both")
    users.set_membership(session, both, org["emea"], "agent", 2, [])  # listed once
    # A customer can never get a membership through the services; one written directly still does not count.
    session.add(Membership(user_id=org["alice"].id, entity_id=org["emea"].id, role="agent", tier=1, skills=[]))
    session.commit()
    assert [u.name for u in access.members_of(session, org["emea"])] == \
        ["Ben Both", "Emil Emea", "Maria Manager", "Sue Support"]
    assert [u.name for u in access.members_of(session, org["acme"])] == ["Ben Both", "Maria Manager"]
    assert [u.name for u in access.members_of(session, org["globex"])] == ["Greta Globex"]


def test_is_member_follows_ancestors(session, org):
    maria = make_staff(org["acme"])
    sue = make_staff(org["support"])
    admin = make_staff(is_admin=True)
    assert access.is_member(session, maria, org["emea"])
    assert access.is_member(session, sue, org["emea"])
    assert not access.is_member(session, sue, org["acme"])
    assert not access.is_member(session, sue, org["billing"])
    assert not access.is_member(session, admin, org["acme"])
    assert [e.slug for e in access.ancestors(session, org["emea"])] == ["support", "acme"]


def test_the_scope_in_sql_is_the_tree_walk_for_every_kind_of_user(session, org):
    """find_ticket scopes in the statement (access.worked_in, a recursive query); the lists read the ids first:
    both must be exactly the memberships' entities and everything below them, for every kind of user."""
    gus = make_staff(org["billing"])
    users.set_membership(session, gus, org["globex"], "agent", 1, [])
    people = [make_staff(is_admin=True), make_staff(org["acme"]), make_staff(org["support"]), make_staff(), gus,
              org["alice"], org["bob"]]
    for user in people:
        ids = access.visible_entity_ids(session, user)
        if user.is_staff and not user.is_admin:
            direct = [m.entity_id for m in user.memberships]
            assert ids == access.with_descendants(session, direct)
        in_sql = access.scope_in_sql(select(Ticket.number), user).order_by(Ticket.number)
        assert list(session.scalars(in_sql, access.scope_params(user))) == numbers_seen(session, user)
        for number in ("ACME-1001", "SUPPORT-1001", "EMEA-1001", "BILLING-1001", "GLOBEX-1001"):
            found = access.find_ticket(session, user, number)
            assert (found is not None) == (number in numbers_seen(session, user))
