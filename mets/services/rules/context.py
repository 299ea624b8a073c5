"""What conditions read: a Context built once per ticket and event, and the ticket fields on it."""
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mets import clock
from mets.models import PRIORITIES
from mets.models.tickets import STATUS_LABELS
from mets.services.directory import access
from mets.services.html import message_text
from mets.services.rules.registry import TICKET

# name -> function(context) computing a value the first time a getter asks for it.
_PROVIDERS: dict[str, Callable[["Context"], Any]] = {}


def register_context_value(name: str, provider: Callable[["Context"], Any]) -> None:
    """Make `context.<name>` available, computed once per context on first use (e.g. the SLA state)."""
    if name in _PROVIDERS or name in Context.__dict__:
        raise ValueError(f"context value {name!r} is already defined")
    _PROVIDERS[name] = provider


class Context:
    """One ticket at one instant, and the event's `changes` ({field: [old, new]}).

    Getters read attributes; derived values (`customer`, `body_text`, ...) come from registered
    providers, computed on first use and kept, so many rules evaluated on one context pay once.
    Extra keyword arguments become attributes (who acted, the reply, the event name...).
    """

    def __init__(self, ticket=None, now: datetime | None = None, changes: dict | None = None, **extra):
        now = clock.now() if now is None else now
        if now.tzinfo is None:
            raise ValueError("rules need an aware `now`")
        self.ticket = ticket
        self.now = now
        self.changes = dict(changes or {})
        self.normalized: dict = {}  # field values read so far, normalized (see engine._reader)
        self.__dict__.update(extra)

    def __getattr__(self, name: str):
        # Only called for attributes not set yet.
        provider = _PROVIDERS.get(name)
        if provider is None:
            raise AttributeError(f"the rule context has no value {name!r}")
        value = provider(self)
        self.__dict__[name] = value
        return value

    def __repr__(self):
        return f"<Context {getattr(self.ticket, 'number', None)} at {self.now.isoformat()}>"


def context_for(ticket, now: datetime | None = None, changes: dict | None = None, **extra) -> Context:
    """The evaluation context of a ticket (its loaded relationships), at `now`, for an event's changes."""
    return Context(ticket, now, changes, **extra)


# --- derived values ---------------------------------------------------------------------------

def _entity_lineage(ctx: Context) -> list[str]:
    """The ticket's entity slug and its ancestors' (nearest first): rules for a company cover its departments."""
    slugs, seen, entity = [], set(), ctx.entity
    while entity is not None and entity.id not in seen:
        slugs.append(entity.slug)
        seen.add(entity.id)
        entity = entity.parent
    return slugs


def _hours_since(at):
    return lambda ctx: None if getattr(ctx.ticket, at, None) is None else (
        (ctx.now - getattr(ctx.ticket, at)).total_seconds() / 3600)


register_context_value("customer", lambda ctx: ctx.ticket.customer)
register_context_value("entity", lambda ctx: ctx.ticket.entity)
register_context_value("assignee", lambda ctx: ctx.ticket.assignee)
register_context_value("body_text", lambda ctx: message_text(ctx.ticket.body, ctx.ticket.body_format))
register_context_value("entity_lineage", _entity_lineage)
register_context_value("hours_since_created", _hours_since("created_at"))
register_context_value("hours_since_updated", _hours_since("updated_at"))


def _of(name: str, attr: str):
    """A getter for `context.<name>.<attr>`, None when that object is missing (no assignee)."""
    def get(ctx):
        obj = getattr(ctx, name)
        return None if obj is None else getattr(obj, attr)
    return get


def _domain(ctx):
    email = getattr(ctx.customer, "email", None) or ""
    return email.rpartition("@")[2] if "@" in email else None


def _entity_slugs(session, user) -> list[tuple[str, str]]:
    return [(e.slug, e.name) for e in access.visible_entities(session, user)]


# --- ticket fields ----------------------------------------------------------------------------

field = TICKET.register_field
field("priority", "Priority", "choice", lambda c: c.ticket.priority,
      choices=[(p, p.capitalize()) for p in PRIORITIES], change_key="priority")
field("status", "Status", "choice", lambda c: c.ticket.status, choices=list(STATUS_LABELS.items()), change_key="status")
field("category", "Category", "text", lambda c: c.ticket.category, change_key="category")
field("subject", "Subject", "text", lambda c: c.ticket.subject, change_key="subject")
field("body", "Description", "text", lambda c: c.body_text, help="The ticket's first message, as plain text.")
field("number", "Ticket number", "text", lambda c: c.ticket.number)
field("hours_since_created", "Hours since created", "number", lambda c: c.hours_since_created)
field("hours_since_updated", "Hours since updated", "number", lambda c: c.hours_since_updated)
field("customer.email", "Customer email", "text", _of("customer", "email"), group="Customer")
field("customer.domain", "Customer email domain", "text", _domain, group="Customer",
      help="The part of the address after @, e.g. example.com.")
field("customer.name", "Customer name", "text", _of("customer", "name"), group="Customer")
field("entity.slug", "Entity", "text", _of("entity", "slug"), group="Entity", suggest=_entity_slugs,
      change_key=None, help="The entity's slug, e.g. acme.")
field("entity.name", "Entity name", "text", _of("entity", "name"), group="Entity")
field("entity.lineage", "Entity or a parent", "list", lambda c: c.entity_lineage, group="Entity",
      suggest=_entity_slugs, help="Slugs of the ticket's entity and every entity above it.")
field("assignee.email", "Assignee email", "text", _of("assignee", "email"), group="Assignee",
      help="Empty when nobody is assigned.")
field("assignee.name", "Assignee name", "text", _of("assignee", "name"), group="Assignee")
del field
