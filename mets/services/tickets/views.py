"""Views of the staff ticket list: the built-in ones (mine, unassigned, due within 1 h, breached, pending on the
customer) and saved ones (a named filter combination, personal or shared with an entity), each with its count.

A view is only a set of the list's filters: opening one shows the list at the URL of those filters, read through
TicketFilters and access scoping as any URL is, so a stored view can never show more than its user may see.
Sharing: admins with any entity, managers with the entities they manage (and their departments); a shared view is
listed to the people who work in that entity, and deleted by its owner or by those who may share with its entity.
"""
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from mets import clock
from mets.models import Entity, Membership, SavedView, Ticket, User
from mets.services.directory import access
from mets.services.errors import DomainError
from mets.services.tickets.search import TicketFilters, filter_conditions, filtered_query
from mets.services.validation import text_error

# (key, name, the list's query-string filters). "mine" is where agents land.
BUILT_IN = (
    ("mine", "My open tickets", {"assignee": "mine"}),
    ("unassigned", "Unassigned", {"assignee": "unassigned"}),
    ("due_1h", "Due within 1 h", {"sla": "due_1h"}),
    ("breached", "Breached", {"sla": "breached"}),
    ("pending", "Pending on the customer", {"status": "pending"}),
)
ALL_ACTIVE = ("all", "All active", {})  # the list's own default: every ticket not resolved or closed
MAX_SAVED = 30  # listed per user (personal and shared): each is one more aggregate in the counts' one query
_IGNORED = ("page", "sort", "dir")  # what a view does not remember or compare


@dataclass
class ViewLink:
    key: str
    name: str
    args: dict
    count: int
    active: bool
    saved: SavedView | None = None
    deletable: bool = False


def _filter_args(args: dict) -> dict:
    """A view's filters as the list reads them (unknown values dropped), without page and sort."""
    f = TicketFilters.from_args(args)
    return {k: v for k, v in f.as_args().items() if k not in _IGNORED}


def view_args(view: SavedView) -> dict:
    """The list's query string for a saved view."""
    return _filter_args(view.filters or {})


def landing_args(session, user: User) -> dict:
    """Where staff land: "My open tickets" for those who work in an entity, the whole active list otherwise."""
    has_entity = session.scalar(select(Membership.id).where(Membership.user_id == user.id).limit(1)) is not None
    return dict(BUILT_IN[0][2]) if has_entity else {}


def shareable_entities(session, user: User) -> list[Entity]:
    """Entities the user may share a view with: all they work in for admins; those they manage for managers."""
    if not user.is_staff:
        return []
    if user.is_admin:
        return access.visible_entities(session, user)
    managed = session.scalars(select(Membership.entity_id).where(Membership.user_id == user.id,
                                                                 Membership.role == "manager")).all()
    ids = access.with_descendants(session, managed)
    return [e for e in access.visible_entities(session, user) if e.id in ids]


def visible_views(session, user: User) -> list[SavedView]:
    """The user's own views and those shared with an entity they work in, by name."""
    ids = access.visible_entity_ids(session, user)
    shared = SavedView.entity_id.is_not(None) if ids is None else SavedView.entity_id.in_(ids or [-1])
    query = select(SavedView).where(or_((SavedView.owner_id == user.id) & SavedView.entity_id.is_(None), shared))
    return list(session.scalars(query.order_by(func.lower(SavedView.name), SavedView.id).limit(MAX_SAVED)))


def find_view(session, user: User, view_id: int | None) -> SavedView | None:
    """A saved view the user may see (visible_views' rule), else None."""
    view = session.get(SavedView, view_id) if view_id else None
    if view is None:
        return None
    if view.entity_id is None:
        return view if view.owner_id == user.id else None
    ids = access.visible_entity_ids(session, user)
    return view if ids is None or view.entity_id in ids else None


def may_delete(session, user: User, view: SavedView) -> bool:
    if view.owner_id == user.id:
        return True
    return view.entity_id is not None and view.entity_id in {e.id for e in shareable_entities(session, user)}


def view_links(session, user: User, current: TicketFilters, now=None) -> list[ViewLink]:
    """Built-in and saved views with their counts: one query over the user's scoped tickets, a
    `count(*) FILTER (WHERE ...)` per view built from the list's own conditions (search.filter_conditions), so a
    view's count is the number of rows the list shows when it is opened, however many views there are."""
    now = now or clock.now()
    shown = _filter_args(current.as_args())
    entries = [(key, name, _filter_args(args), None) for key, name, args in (*BUILT_IN, ALL_ACTIVE)]
    entries += [(f"saved-{v.id}", v.name, view_args(v), v) for v in visible_views(session, user)]
    counts: dict[str, int] = {}
    columns = []
    for key, _, args, _ in entries:
        f = TicketFilters.from_args(args)
        if f.q:
            # A text search is not a condition on the ticket's row (a union of index lookups, search._filtered):
            # such a saved view keeps a count of its own, through the list's very query.
            counts[key] = session.scalar(select(func.count()).select_from(
                filtered_query(session, user, f, now).subquery()))
            continue
        conditions = filter_conditions(user, f, now)
        columns.append((key, func.count().filter(and_(*conditions)) if conditions else func.count()))
    if columns:
        query = access.scope_tickets(select(*(c for _, c in columns)).select_from(Ticket), session, user)
        counts.update(zip((key for key, _ in columns), session.execute(query).one()))
    shareable = None
    links = []
    for key, name, wanted, saved in entries:
        deletable = False
        if saved is not None:
            if shareable is None:
                shareable = {e.id for e in shareable_entities(session, user)}
            deletable = saved.owner_id == user.id or saved.entity_id in shareable
        links.append(ViewLink(key, name, wanted, counts[key], wanted == shown, saved, deletable))
    return links


def save_view(session, user: User, name: str, filters: TicketFilters, entity_id: int | None = None) -> SavedView:
    """Save the list's current filters under `name`, for the user alone or shared with an entity they may share to."""
    name = (name or "").strip()
    errors = {}
    if msg := text_error(name, "Name", 80):
        errors["name"] = msg
    if entity_id is not None and entity_id not in {e.id for e in shareable_entities(session, user)}:
        errors["share_with"] = "Share with an entity you manage, or keep the view to yourself."
    if errors:
        raise DomainError(errors)
    view = SavedView(name=name, owner_id=user.id, entity_id=entity_id, filters=_filter_args(filters.as_args()))
    session.add(view)
    session.flush()
    return view


def delete_view(session, user: User, view: SavedView) -> None:
    if not may_delete(session, user, view):
        raise DomainError({"": "Only its owner, or a manager of the entity it is shared with, may delete this view."})
    session.delete(view)
    session.flush()
