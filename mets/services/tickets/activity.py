"""A ticket's activity trail as people read it: who did what, and each change with names instead of ids.

Read only. The template prints the lines; every id the audit rows name is resolved here, one query per kind.
"""
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from mets.models import Entity, SlaRule, Ticket, TicketEvent, User
from mets.models.tickets import STATUS_LABELS
from mets.services.durations import format_minutes

CHANGE_LABELS = {"assignee_id": "assignee", "entity_id": "entity", "sla_rule_id": "SLA rule",
                 "sla_extension_minutes": "SLA extended by"}
# Audit values that are ids, and the model whose name shows instead.
NAMED = {"assignee_id": User, "entity_id": Entity, "sla_rule_id": SlaRule}
EMPTY = "—"


@dataclass
class ChangeLine:
    label: str  # "assignee"
    old: str  # "Maria Manager"
    new: str


@dataclass
class ActivityLine:
    at: datetime
    who: str  # the actor's name, the automation rule's name, or "System"
    by_rule: bool
    what: str  # "status changed"
    changes: list[ChangeLine] = field(default_factory=list)


def activity_lines(session, ticket: Ticket) -> list[ActivityLine]:
    """The ticket's audit rows, newest first, as lines (only changes recorded as [old, new] are listed)."""
    rows = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
        .options(joinedload(TicketEvent.actor), joinedload(TicketEvent.rule))
        .order_by(TicketEvent.at.desc(), TicketEvent.id.desc())
    ).all()
    pairs = [[(name, value) for name, value in row.changes.items() if isinstance(value, list) and len(value) == 2]
             for row in rows]
    names = _names(session, [change for changes in pairs for change in changes])
    return [ActivityLine(row.at, *_who(row), row.event.replace("_", " "),
                         [ChangeLine(change_label(name), _value(name, old, names), _value(name, new, names))
                          for name, (old, new) in changes])
            for row, changes in zip(rows, pairs)]


def _who(row: TicketEvent) -> tuple[str, bool]:
    """Who made the change, and whether that was an automation rule."""
    if row.actor:
        return row.actor.name, False
    if row.rule:
        return row.rule.name, True
    return "System", False


def change_label(name: str) -> str:
    return CHANGE_LABELS.get(name, name).replace("_", " ")


def _names(session, changes) -> dict[str, dict[int, str]]:
    """For each id-valued field the changes name, id -> name, in one query per model."""
    wanted: dict[str, set[int]] = {}
    for name, values in changes:
        if name in NAMED:
            wanted.setdefault(name, set()).update(v for v in values if isinstance(v, int))
    return {name: dict(session.execute(select(NAMED[name].id, NAMED[name].name).where(NAMED[name].id.in_(ids))).all())
            for name, ids in wanted.items() if ids}


def _value(name: str, value, names: dict[str, dict[int, str]]) -> str:
    """An audit value as people read it: names instead of ids, labels instead of codes."""
    if value is None or value == "":
        return EMPTY
    if name in NAMED:
        return names.get(name, {}).get(value, f"#{value}")
    if name == "status":
        return STATUS_LABELS.get(value, value)
    if name == "sla_extension_minutes":
        return format_minutes(value) if value else EMPTY
    return str(value)
