"""Factories that build data through the services, as the app does."""
import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

from mets.extensions import db
from mets.models import Entity, User
from mets.services import tickets
from mets.services.directory import entities
from mets.services.directory import users

PASSWORD = "correct-horse-battery"
NY = ZoneInfo("America/New_York")
_counter = itertools.count(1)


def make_entity(name: str | None = None, slug: str | None = None, parent: Entity | None = None,
                timezone: str = "UTC", **kw) -> Entity:
    n = next(_counter)
    return entities.create_entity(db.session, {
        "name": name or f"Entity {n}", "slug": slug or f"e{n}", "parent_id": parent.id if parent else None,
        "timezone": timezone, "active": kw.pop("active", True), **kw})


def make_staff(entity: Entity | None = None, role: str = "agent", name: str | None = None, email: str | None = None,
               is_admin: bool = False, tier: int = 1, skills=(), **kw) -> User:
    n = next(_counter)
    user = users.create_user(db.session, {"email": email or f"staff{n}@staff.example", "name": name or f"Staff {n}",
                                          "kind": "staff", "password": PASSWORD, "is_admin": is_admin, **kw})
    if entity is not None:
        users.set_membership(db.session, user, entity, role, tier, list(skills))
    return user


def make_customer(name: str | None = None, email: str | None = None) -> User:
    n = next(_counter)
    return users.get_or_create_customer(db.session, email or f"customer{n}@example.com", name or f"Customer {n}")


def make_ticket(entity: Entity, customer: User | None = None, actor: User | None = None, **kw):
    """A ticket through services.tickets.create_ticket; returns the Ticket."""
    customer = customer or make_customer()
    actor = actor or customer
    kw.setdefault("subject", f"Subject {next(_counter)}")
    kw.setdefault("body", "Please help.")
    # The portal takes only a category of the entity's list; a customer's ticket with a free-text one came by email.
    kw.setdefault("via", ("email" if kw.get("category") else "portal") if actor.is_customer else "agent")
    return tickets.create_ticket(db.session, actor=actor, entity=entity, customer=customer, **kw).ticket


def make_rule(entity: Entity, name: str | None = None, **kw):
    """An active SLA rule in `entity` (targets in minutes; business hours by default)."""
    from mets.models import SlaRule

    rule = SlaRule(entity_id=entity.id, name=name or f"Rule {next(_counter)}", **kw)
    db.session.add(rule)
    db.session.flush()
    return rule


def ny(*args) -> datetime:
    """A New York wall-clock instant: ny(2026, 11, 27, 16, 55)."""
    return datetime(*args, tzinfo=NY)
