"""A ticket as JSON: the one shape the REST API answers and webhooks send, so integrators parse one thing.

Instants are ISO 8601 in UTC with a `Z`; people are their email and name (never an internal id); the
ticket is named by its number, as everywhere a person sees it. Internal notes and bodies are not part
of it: the API's conversation endpoint and the `reply_added` webhook carry a reply's own payload.
"""
from datetime import datetime, timezone

from mets.models import Ticket


def instant(at: datetime | None) -> str | None:
    """`2026-12-01T18:30:00Z` (seconds kept exact, UTC), or None."""
    if at is None:
        return None
    return at.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def person(user) -> dict | None:
    return None if user is None else {"email": user.email, "name": user.name}


def sla_payload(ticket: Ticket) -> dict:
    """The ticket's SLA clocks: the rule, each due instant (None while stopped or paused) and what breached."""
    return {
        "rule": ticket.sla_rule.name if ticket.sla_rule else None,
        "response_due": instant(ticket.sla_response_due),
        "next_reply_due": instant(ticket.sla_next_reply_due),
        "resolution_due": instant(ticket.sla_resolution_due),
        "response_breached": ticket.sla_response_breached,
        "next_reply_breached": ticket.sla_next_reply_breached,
        "resolution_breached": ticket.sla_resolution_breached,
        "nearest_due": instant(ticket.sla_nearest_due),
        "first_response_at": instant(ticket.first_response_at),
    }


def ticket_payload(ticket: Ticket) -> dict:
    return {
        "number": ticket.number,
        "entity": ticket.entity.slug,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category,
        "customer": person(ticket.customer),
        "assignee": person(ticket.assignee),
        "escalation_level": ticket.escalation_level,
        "created_at": instant(ticket.created_at),
        "updated_at": instant(ticket.updated_at),
        "resolved_at": instant(ticket.resolved_at),
        "sla": sla_payload(ticket),
    }


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
