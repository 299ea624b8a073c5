"""Each entity's list of ticket categories, and which list applies to a ticket.

A department without active categories of its own uses its parent's list (the nearest entity up the tree that has
active ones), as hours and notification settings inherit. An entity whose list is empty (none up the tree either)
takes a free-text category, as before lists existed. Tickets store the category's name, not its id: rules,
assign-by-skill and the list's filters match names, and renaming or removing a category leaves the tickets'
history as it was.
"""
from dataclasses import dataclass

from sqlalchemy import func, select

from mets.models import Entity, TicketCategory
from mets.services.directory import access
from mets.services.errors import DomainError, check
from mets.services.validation import text_error

MAX_CATEGORIES = 200  # per entity: a select, not a taxonomy


@dataclass(frozen=True)
class CategoryList:
    """The categories that apply to an entity: `names` in order, from `source` (None: no list, free text)."""

    names: tuple[str, ...]
    source: Entity | None

    def inherited_for(self, entity: Entity) -> bool:
        return self.source is not None and self.source.id != entity.id

    def match(self, value: str) -> str | None:
        """The list's spelling of `value` (case ignored), or None."""
        wanted = value.strip().casefold()
        return next((n for n in self.names if n.casefold() == wanted), None)


def own_categories(session, entity: Entity) -> list[TicketCategory]:
    """The entity's own categories, active or not, in order (the admin page)."""
    return list(session.scalars(select(TicketCategory).where(TicketCategory.entity_id == entity.id)
                                .order_by(TicketCategory.position, TicketCategory.id)))


def categories_for(session, entity: Entity) -> CategoryList:
    """The list that applies to `entity`: its own active categories, else the nearest ancestor's."""
    chain = access.lineage(session, entity)
    rows = session.scalars(select(TicketCategory).where(
        TicketCategory.entity_id.in_([e.id for e in chain]), TicketCategory.active.is_(True))
        .order_by(TicketCategory.position, TicketCategory.id)).all()
    for e in chain:
        names = tuple(r.name for r in rows if r.entity_id == e.id)
        if names:
            return CategoryList(names, e)
    return CategoryList((), None)


def all_category_names(session) -> tuple[str, ...]:
    """Every active category name of the install, once each, by name (what a rule of every entity may set)."""
    names = session.scalars(select(TicketCategory.name).where(TicketCategory.active.is_(True)).distinct())
    return tuple(sorted(set(names), key=str.casefold))


def check_category(session, entity: Entity, value: str | None, listed_only: bool = False) -> str | None:
    """The category to store for a ticket of `entity` (None for none), or a DomainError on "category": one of the
    entity's list (stored as the list spells it), or free text where the entity has no list (not `listed_only`:
    the portal offers only lists)."""
    value = (value or "").strip()
    if not value:
        return None
    if msg := text_error(value, "Category", 80, required=False):
        raise DomainError({"category": msg})
    applying = categories_for(session, entity)
    if not applying.names:
        if listed_only:
            raise DomainError({"category": f"{entity.name} has no categories to choose from."})
        return value
    if (name := applying.match(value)) is None:
        raise DomainError({"category": f"'{value[:80]}' is not a category of {entity.name}: choose one of "
                                       f"{', '.join(applying.names)}."})
    return name


def _validate_name(session, entity: Entity, name: str, category: TicketCategory | None) -> dict[str, str]:
    errors = {}
    if msg := text_error(name, "Name", 80):
        errors["name"] = msg
    else:
        clash = session.scalar(select(TicketCategory.id).where(
            TicketCategory.entity_id == entity.id, func.lower(TicketCategory.name) == name.strip().lower(),
            *([TicketCategory.id != category.id] if category else [])))
        if clash:
            errors["name"] = f"{entity.name} already has the category '{name.strip()}'."
    return errors


def add_category(session, entity: Entity, name: str) -> TicketCategory:
    """Add a category at the end of the entity's own list (it then stops inheriting its parent's)."""
    name = name or ""
    errors = _validate_name(session, entity, name, None)
    existing = own_categories(session, entity)
    if len(existing) >= MAX_CATEGORIES:
        errors["name"] = f"An entity has at most {MAX_CATEGORIES} categories."
    check(errors)
    row = TicketCategory(entity_id=entity.id, name=name.strip(), active=True,
                         position=max((c.position for c in existing), default=-1) + 1)
    session.add(row)
    session.flush()
    return row


def update_category(session, category: TicketCategory, *, name: str, active: bool) -> TicketCategory:
    """Rename or (de)activate a category. Tickets keep the name they were given."""
    name = name or ""
    check(_validate_name(session, category.entity, name, category))
    category.name, category.active = name.strip(), bool(active)
    session.flush()
    return category


def move_category(session, category: TicketCategory, step: int) -> None:
    """Move a category one place up (-1) or down (+1) in its entity's list."""
    rows = own_categories(session, category.entity)
    i = rows.index(category)
    j = i + (1 if step > 0 else -1)
    if 0 <= j < len(rows):
        rows[i], rows[j] = rows[j], rows[i]
    for position, row in enumerate(rows):
        row.position = position
    session.flush()


def delete_category(session, category: TicketCategory) -> None:
    """Remove a category from the list; tickets that have it keep the name."""
    session.delete(category)
    session.flush()
