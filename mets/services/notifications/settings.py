"""Which events mail whom: the catalogue of notification events and each entity's settings.

An entity without its own row for an event inherits its parent's, up to the defaults below.
"""
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from mets import clock
from mets.models import CRITICAL, NORMAL, WARNING, Entity, NotificationSetting
from mets.services import outbox
from mets.services.directory import access
from mets.services.errors import DomainError, check
from mets.services.validation import normalize_email

MAX_EXTRA_ADDRESSES = 20

RECIPIENTS = {
    "customer": "The customer",
    "assignee": "The assignee",
    "agents": "All agents of the entity",
    "managers": "The entity's managers",
    "admins": "Admins",
}


@dataclass(frozen=True)
class NotifyEvent:
    key: str
    label: str
    customer_template: str | None  # None: never mailed to the customer (internal events)
    staff_template: str
    default_recipients: tuple[str, ...]
    priority: int  # 1 most urgent; CRITICAL goes to the high-priority queue

    @property
    def recipient_choices(self) -> dict[str, str]:
        return {k: v for k, v in RECIPIENTS.items() if k != "customer" or self.customer_template}

    def template_for(self, audience: str) -> str:
        return self.customer_template if audience == "customer" and self.customer_template else self.staff_template


EVENTS: dict[str, NotifyEvent] = {e.key: e for e in (
    NotifyEvent("ticket_created", "Ticket created", "ticket-created-customer", "ticket-created-agent",
                ("customer", "agents"), NORMAL),
    NotifyEvent("reply_added", "Reply added", "ticket-reply-customer", "ticket-reply-agent",
                ("customer", "assignee"), NORMAL),
    NotifyEvent("assigned", "Ticket assigned", None, "ticket-assigned", ("assignee",), NORMAL),
    NotifyEvent("status_changed", "Status changed", "ticket-status-changed", "ticket-status-changed",
                ("customer",), NORMAL),
    NotifyEvent("sla_warning", "SLA warning", None, "sla-breach-warning", ("assignee", "managers"), WARNING),
    NotifyEvent("sla_breach", "SLA breach", None, "sla-breach-notification", ("assignee", "managers"), CRITICAL),
    NotifyEvent("escalation", "Escalation", None, "escalation-notification", ("managers", "admins"), CRITICAL),
)}

# ticket_events.event -> notification event
FROM_TICKET_EVENT = {
    "ticket_created": "ticket_created",
    "reply_added": "reply_added",
    "assigned_to_changed": "assigned",
    "status_changed": "status_changed",
    "sla_breach_warning": "sla_warning",
    "sla_breach_occurred": "sla_breach",
    "escalation_due": "escalation",
}


@dataclass(frozen=True)
class Effective:
    """The setting that applies to an entity: its own row, an ancestor's, or the default (source None)."""

    event: str
    enabled: bool
    recipients: tuple[str, ...]
    extra_addresses: tuple[str, ...]
    source: Entity | None

    def inherited_for(self, entity: Entity) -> bool:
        return self.source is None or self.source.id != entity.id


def _default(event: str) -> Effective:
    return Effective(event, True, EVENTS[event].default_recipients, (), None)


def effective_all(session, entity: Entity) -> dict[str, Effective]:
    """Every event's setting for `entity` (one query for the whole chain of ancestors)."""
    chain = access.lineage(session, entity)
    rows = session.scalars(select(NotificationSetting).where(
        NotificationSetting.entity_id.in_([e.id for e in chain]))).all()
    by_key = {(r.entity_id, r.event): r for r in rows}
    out = {}
    for event in EVENTS:
        row = next((by_key[(e.id, event)] for e in chain if (e.id, event) in by_key), None)
        out[event] = _default(event) if row is None else Effective(
            event, row.enabled, tuple(r for r in row.recipients if r in EVENTS[event].recipient_choices),
            tuple(row.extra_addresses or ()), row.entity)
    return out


def effective(session, entity: Entity, event: str) -> Effective:
    """The setting for one event."""
    return effective_all(session, entity)[event]


def parse_addresses(text: str) -> list[str]:
    """Split a textarea of addresses on commas, semicolons and line breaks."""
    for sep in ",;\r\n":
        text = text.replace(sep, " ")
    return [normalize_email(a) for a in text.split() if a.strip()]


def save(session, entity: Entity, event: str, *, enabled: bool, recipients: list[str],
         extra_addresses: list[str]) -> NotificationSetting:
    """Give `entity` its own setting for `event` (overriding what it inherits)."""
    if event not in EVENTS:
        raise DomainError({"event": f"Unknown event '{event}'."})
    errors = {}
    choices = EVENTS[event].recipient_choices
    unknown = [r for r in recipients if r not in choices]
    if unknown:
        errors["recipients"] = f"Unknown recipient(s): {', '.join(unknown)}."
    if len(extra_addresses) > MAX_EXTRA_ADDRESSES:
        errors["extra_addresses"] = f"At most {MAX_EXTRA_ADDRESSES} extra addresses."
    config = current_app.config
    bad = [f"{a}: {msg}" for a in extra_addresses if (msg := outbox.refusal(session, a, config))]
    if bad:
        errors["extra_addresses"] = "; ".join(bad)
    check(errors)
    row = session.scalars(select(NotificationSetting).where(
        NotificationSetting.entity_id == entity.id, NotificationSetting.event == event)).first()
    if row is None:
        row = NotificationSetting(entity=entity, event=event)
        session.add(row)
    row.enabled = enabled
    row.recipients = [r for r in choices if r in recipients]  # catalogue order, no duplicates
    row.extra_addresses = list(dict.fromkeys(extra_addresses))
    row.updated_at = clock.now()
    session.flush()
    return row


def reset(session, entity: Entity, event: str) -> None:
    """Drop the entity's own setting so it inherits again."""
    row = session.scalars(select(NotificationSetting).where(
        NotificationSetting.entity_id == entity.id, NotificationSetting.event == event)).first()
    if row is not None:
        session.delete(row)
        session.flush()
