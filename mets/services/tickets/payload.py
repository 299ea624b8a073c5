"""A ticket as JSON: the one shape the REST API answers and webhooks send, so integrators parse one thing.

Instants are ISO 8601 in UTC with a `Z`; people are their email and name (never an internal id); the
ticket is named by its number, as everywhere a person sees it. Internal notes and bodies are not part
of it: the API's conversation endpoint and the `reply_added` webhook carry a reply's own payload.
"""
from datetime import datetime, timezone

from sqlalchemy import select

from mets.models import Entity, SlaRule, Ticket, User


def instant(at: datetime | None) -> str | None:
    """`2026-12-01T18:30:00Z` (seconds kept exact, UTC), or None."""
    if at is None:
        return None
    if at.tzinfo is not timezone.utc:  # (the models' instants are UTC already: a page has some 200 of them)
        at = at.astimezone(timezone.utc)
    return at.isoformat(timespec="seconds")[:19] + "Z"


def person(user) -> dict | None:
    return None if user is None else {"email": user.email, "name": user.name}


def sla_payload(ticket: Ticket) -> dict:
    """The ticket's SLA clocks: the rule, each due instant (None while stopped or paused) and what breached."""
    return _sla(ticket, ticket.sla_rule.name if ticket.sla_rule else None)


def _sla(t, rule: str | None) -> dict:
    return {
        "rule": rule,
        "response_due": instant(t.sla_response_due),
        "next_reply_due": instant(t.sla_next_reply_due),
        "resolution_due": instant(t.sla_resolution_due),
        "response_breached": t.sla_response_breached,
        "next_reply_breached": t.sla_next_reply_breached,
        "resolution_breached": t.sla_resolution_breached,
        "nearest_due": instant(t.sla_nearest_due),
        "first_response_at": instant(t.first_response_at),
    }


def _ticket(t, entity: str, customer: dict | None, assignee: dict | None, rule: str | None) -> dict:
    """The one shape, from a Ticket or a row of ROW_COLUMNS (`t`: their common attributes)."""
    return {
        "number": t.number,
        "entity": entity,
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "category": t.category,
        "customer": customer,
        "assignee": assignee,
        "escalation_level": t.escalation_level,
        "created_at": instant(t.created_at),
        "updated_at": instant(t.updated_at),
        "resolved_at": instant(t.resolved_at),
        "sla": _sla(t, rule),
    }


def ticket_payload(ticket: Ticket) -> dict:
    return _ticket(ticket, ticket.entity.slug, person(ticket.customer), person(ticket.assignee),
                   ticket.sla_rule.name if ticket.sla_rule else None)


# A page of the API's list is read as these columns, not as Tickets: the ORM building 26 tickets with four
# related rows each cost more than the query. Named as the Ticket's attributes, so `_ticket` reads either. The
# related rows' columns are scalar subqueries, not joins: PostgreSQL planned the five-table join anew for every page
# (1 ms, twice the query's run), while a subquery per column is a primary-key lookup it plans in a fraction of that.
def _of(column, key):
    """`column` of the row whose id is `key` (a column of the ticket), or NULL."""
    return select(column).where(column.class_.id == key).scalar_subquery()


ROW_COLUMNS = (
    Ticket.id, Ticket.number, _of(Entity.slug, Ticket.entity_id).label("entity_slug"), Ticket.subject,
    Ticket.status, Ticket.priority, Ticket.category,
    _of(User.email, Ticket.customer_id).label("customer_email"),
    _of(User.name, Ticket.customer_id).label("customer_name"),
    _of(User.email, Ticket.assignee_id).label("assignee_email"),
    _of(User.name, Ticket.assignee_id).label("assignee_name"),
    Ticket.escalation_level, Ticket.created_at, Ticket.updated_at, Ticket.resolved_at,
    _of(SlaRule.name, Ticket.sla_rule_id).label("rule_name"),
    Ticket.sla_response_due, Ticket.sla_next_reply_due, Ticket.sla_resolution_due, Ticket.sla_response_breached,
    Ticket.sla_next_reply_breached, Ticket.sla_resolution_breached, Ticket.sla_nearest_due,
    Ticket.first_response_at,
)


def payload_rows(query):
    """A select over Ticket (its filters, order and limit kept) reading ROW_COLUMNS instead, the related rows'
    columns within: one statement, whose rows `row_payload` shapes."""
    return query.with_only_columns(*ROW_COLUMNS, maintain_column_froms=True)


def _person(email: str | None, name: str | None) -> dict | None:
    return None if email is None else {"email": email, "name": name}


def row_payload(row) -> dict:
    """`ticket_payload` of a row of `payload_rows`."""
    return _ticket(row, row.entity_slug, _person(row.customer_email, row.customer_name),
                   _person(row.assignee_email, row.assignee_name), row.rule_name)


def reply_payload(reply) -> dict:
    """A reply as the API and the `reply_added` webhook show it (the body as typed, plain text)."""
    return {
        "id": reply.id,
        "ticket": reply.ticket.number,
        "author": person(reply.author),
        "internal": reply.internal,
        "via": reply.via,
        "body": reply.body,
        "body_format": reply.body_format,
        "created_at": instant(reply.created_at),
    }


def clock_state(state) -> str:
    """Where an SLA clock (`services.sla.clocks`' ClockState) stands: breached (its due passed before it stopped, or
    before now), met, paused or running."""
    if state.breached:
        return "breached"
    if state.stopped_at is not None:
        return "met"
    return "paused" if state.paused else "running"


def clock_payload(state) -> dict:
    """One SLA clock as the SLA status endpoint shows it: its target and due, the business minutes it has used,
    and where it stands."""
    return {
        "name": state.name,
        "target_minutes": state.target.total_seconds() / 60,
        "started_at": instant(state.start),
        "due": instant(state.due),
        "stopped_at": instant(state.stopped_at),
        "business_minutes_used": round(state.used.total_seconds() / 60, 2),
        "state": clock_state(state),
    }
