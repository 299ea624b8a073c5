"""Views of the staff ticket list: the built-in ones (mine, unassigned, due within 1 h, breached, pending on the
customer) and saved ones (a named filter combination, personal or shared with an entity), each with its count.

A view is only a set of the list's filters: opening one shows the list at the URL of those filters, read through
TicketFilters and access scoping as any URL is, so a stored view can never show more than its user may see.
Sharing: admins with any entity, managers with the entities they manage (and their departments); a shared view is
listed to the people who work in that entity, and deleted by its owner or by those who may share with its entity.
"""
from dataclasses import dataclass

from sqlalchemy import func, or_, select

from mets import clock
from mets.models import Entity, Membership, SavedView, Ticket, User
from mets.services.directory import access
from mets.services.errors import DomainError
from mets.services.tickets import search
from mets.services.tickets.search import TicketFilters, filtered_query
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
MAX_SAVED = 30  # listed per user (personal and shared): each is one more capped count in the counts' one query
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
    capped: bool = False  # more than `count` (COUNT_LIMIT) tickets: shown as "1,000+"


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
    ids = access.managed_entity_ids(session, user)
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
    """Built-in and saved views with their counts, all from one statement (`_counts`)."""
    now = now or clock.now()
    shown = _filter_args(current.as_args())
    entries = [(key, name, _filter_args(args), None) for key, name, args in (*BUILT_IN, ALL_ACTIVE)]
    entries += [(f"saved-{v.id}", v.name, view_args(v), v) for v in visible_views(session, user)]
    counts = _counts(session, user, [TicketFilters.from_args(args) for _, _, args, _ in entries], now)
    shareable = None
    links = []
    for (key, name, wanted, saved), count in zip(entries, counts):
        deletable = False
        if saved is not None:
            if shareable is None:
                shareable = {e.id for e in shareable_entities(session, user)}
            deletable = saved.owner_id == user.id or saved.entity_id in shareable
        links.append(ViewLink(key, name, wanted, min(count, search.COUNT_LIMIT), wanted == shown, saved,
                              deletable, capped=count > search.COUNT_LIMIT))
    return links


def _counts(session, user: User, filters: list[TicketFilters], now) -> list[int]:
    """Each view's count up to search.COUNT_LIMIT + 1, in one statement of one scalar subquery per view. Each is the
    list's own query (search.filtered_query, so a count and the list it opens agree), unsorted and stopped after
    COUNT_LIMIT + 1 rows: a view of half a million tickets costs what one of a thousand does ("more than 1,000",
    as a search says), where exact counts read every matching ticket on each list request."""
    columns = []
    entity_ids = None if user.is_customer else access.visible_entity_ids(session, user)  # read once for all
    for f in filters:
        rows = filtered_query(session, user, f, now, entity_ids).with_only_columns(Ticket.id).order_by(None)
        capped = rows.limit(search.COUNT_LIMIT + 1).subquery()
        columns.append(select(func.count()).select_from(capped).scalar_subquery())
    return list(session.execute(select(*columns)).one()) if columns else []


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
