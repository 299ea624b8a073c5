"""Creating and editing entities: a tree of organisations with no cycles."""
from sqlalchemy import select, update

from mets.models import Entity
from mets.services.errors import check
from mets.services.validation import SLUG_RE, email_error, normalize_email, text_error, timezone_error


def _validate(session, entity: Entity | None, data: dict) -> dict[str, str]:
    errors = {}
    if msg := text_error(data.get("name"), "Name", 200):
        errors["name"] = msg
    if msg := timezone_error(data.get("timezone") or ""):
        errors["timezone"] = msg
    # Check the address as it will be stored (trimmed, lower-cased by _apply).
    if (sender := normalize_email(data.get("sender_email"))) and (msg := email_error(sender)):
        errors["sender_email"] = msg
    if msg := text_error(data.get("sender_name"), "Sender name", 200, required=False):
        errors["sender_name"] = msg
    if data.get("portal_default") and not (data.get("portal_enabled") and data.get("active", True)):
        errors["portal_default"] = ("The portal's default team must take portal requests: tick "
                                    "\"Takes portal requests\" (and Active) too, or choose another default.")
    parent_id = data.get("parent_id")
    if parent_id:
        parent = session.get(Entity, parent_id)
        if parent is None:
            errors["parent_id"] = "That parent entity does not exist."
        elif entity is not None and _would_cycle(entity, parent):
            errors["parent_id"] = (f"{parent.name} is {entity.name} itself or one of its departments: "
                                  "that would make a cycle.")
    return errors


def _would_cycle(entity: Entity, new_parent: Entity) -> bool:
    current = new_parent
    seen = set()
    while current is not None and current.id not in seen:
        if current.id == entity.id:
            return True
        seen.add(current.id)
        current = current.parent
    return False


def _apply(entity: Entity, data: dict) -> None:
    entity.name = data["name"].strip()
    entity.timezone = data["timezone"]
    entity.parent_id = data.get("parent_id") or None
    entity.sender_name = (data.get("sender_name") or "").strip() or None
    entity.sender_email = (data.get("sender_email") or "").strip().lower() or None
    entity.active = bool(data.get("active", True))
    entity.portal_enabled = bool(data.get("portal_enabled", True))
    entity.portal_default = bool(data.get("portal_default", False))


def _one_default(session, entity: Entity) -> None:
    """One portal default per install: choosing this one unsets any other."""
    if entity.portal_default:
        session.execute(update(Entity).where(Entity.id != entity.id, Entity.portal_default.is_(True))
                        .values(portal_default=False).execution_options(synchronize_session="fetch"))


def create_entity(session, data: dict) -> Entity:
    """Validate and add an entity. `data`: name, slug, timezone, parent_id, sender_name, sender_email, active,
    portal_enabled (default True), portal_default (default False; at most one entity is the default)."""
    errors = _validate(session, None, data)
    slug = (data.get("slug") or "").strip().lower()
    if not SLUG_RE.match(slug):
        errors["slug"] = "Use 1-40 lower-case letters, digits or dashes (it prefixes ticket numbers)."
    elif session.scalar(select(Entity.id).where(Entity.slug == slug)):
        errors["slug"] = f"The slug '{slug}' is taken."
    check(errors)
    entity = Entity(slug=slug)
    _apply(entity, data)
    session.add(entity)
    session.flush()
    _one_default(session, entity)
    return entity


def update_entity(session, entity: Entity, data: dict) -> Entity:
    """Validate and change an entity. The slug never changes: existing ticket numbers carry it."""
    check(_validate(session, entity, data))
    _apply(entity, data)
    session.flush()
    _one_default(session, entity)
    return entity


def entity_tree(session) -> list[tuple[Entity, int]]:
    """All entities depth-first with their depth, for the admin tree and indented selects."""
    entities = list(session.scalars(select(Entity).order_by(Entity.name)))
    by_parent: dict[int | None, list[Entity]] = {}
    for e in entities:
        by_parent.setdefault(e.parent_id, []).append(e)
    out: list[tuple[Entity, int]] = []

    def walk(parent_id, depth):
        for e in by_parent.get(parent_id, []):
            out.append((e, depth))
            walk(e.id, depth + 1)

    walk(None, 0)
    return out


def active_entities(session) -> list[Entity]:
    """The active entities by name."""
    return list(session.scalars(select(Entity).where(Entity.active.is_(True)).order_by(Entity.name)))


def takes_portal_requests(entity: Entity | None) -> bool:
    """A team a customer may open a ticket with in the portal: active and portal-enabled."""
    return entity is not None and entity.active and entity.portal_enabled


def portal_entities(session) -> list[Entity]:
    """The teams a customer may open a ticket with in the portal, by name."""
    return list(session.scalars(select(Entity).where(Entity.active.is_(True), Entity.portal_enabled.is_(True))
                                .order_by(Entity.name)))


def portal_default(session) -> Entity | None:
    """The team the portal's new-request form preselects (None: the customer chooses)."""
    return next((e for e in portal_entities(session) if e.portal_default), None)
