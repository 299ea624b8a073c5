"""The only way tickets change: create, reply, update fields, change status, assign.

Each function validates, writes the change and its TicketEvent rows, flushes and returns a
`Change`. The caller commits, so the change and its audit trail land together.
"""
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import inspect, select, update
from sqlalchemy.orm.attributes import set_committed_value

from mets import clock, events, transaction
from mets.models import PRIORITIES, STATUSES, VIAS, Entity, Reply, SlaRule, Ticket, TicketAlias, TicketEvent, User
from mets.services import bulk_ids, sla
from mets.services.directory import access
from mets.services.directory.categories import check_category
from mets.services.errors import DomainError, check
from mets.services.html import TEXT, typed_text
from mets.services.validation import text_error

# Statuses a ticket cannot leave by a plain status change.
FINAL = {"closed"}
EDITABLE_FIELDS = ("subject", "category", "priority", "entity_id")
_ACTING_RULE = "tickets.acting_rule"  # transaction.scoped: the automation rule whose action is changing tickets


@dataclass
class Change:
    """What one service call did: the ticket and the audit events it wrote."""

    ticket: Ticket
    events: list[TicketEvent] = field(default_factory=list)
    reply: Reply | None = None

    @property
    def changes(self) -> dict:
        merged: dict = {}
        for event in self.events:
            merged.update(event.changes)
        return merged

    @property
    def changed(self) -> bool:
        return bool(self.events)


def acting_rule(session, rule_id: int):
    """Changes made inside this block are recorded as this automation rule's (the audit trail says which rule)."""
    return transaction.scoped(session, _ACTING_RULE, rule_id)


def _bump_version(session, ticket: Ticket) -> int:
    """The ticket's next version. An UPDATE ... SET version = version + 1 (taking the row's lock until commit), so
    concurrent changes never hand out one version twice; a ticket being created starts at 1."""
    if not inspect(ticket).persistent:
        ticket.version = (ticket.version or 0) + 1
        return ticket.version
    version = session.execute(
        update(Ticket).where(Ticket.id == ticket.id).values(version=Ticket.version + 1)
        .returning(Ticket.version).execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(ticket, "version", version)
    return version


def _bump_locked_versions(batch: list[Ticket]) -> None:
    """`_bump_version` for tickets whose rows the caller holds locked (the tick's batches: FOR UPDATE on PostgreSQL,
    SQLite's one writer), so their loaded version is the row's: moved in Python, it goes out in each ticket's one
    UPDATE of the caller's flush instead of an UPDATE of its own (at a million tickets each UPDATE of a row costs
    every index of it)."""
    for ticket in batch:
        ticket.version += 1


def _record(session, change: Change, event: str, actor: User | None, changes: dict, now: datetime,
            bumped: bool = False) -> None:
    """The change's audit row, at the ticket's next version (`bumped`: the caller has moved it already)."""
    version = change.ticket.version if bumped else _bump_version(session, change.ticket)
    row = TicketEvent(ticket=change.ticket, event=event, actor_id=actor.id if actor else None, changes=changes, at=now,
                      rule_id=transaction.current(session, _ACTING_RULE), version=version)
    session.add(row)
    change.events.append(row)
    change.ticket.updated_at = now


def _dispatch(session, change: Change, actor: User | None, now: datetime) -> Change:
    """Tell the subscribers (notifications, automation) of the change, in its own transaction."""
    if change.events:
        events.emit(events.TICKET_CHANGED, session, change, actor, now)
    return change


def _require_actor(session, actor: User | None, ticket: Ticket, customer_may: bool = False) -> None:
    """Defence in depth behind the routes' scoping: staff only in their entities, customers only
    on their own tickets and only where `customer_may`; None is the system (jobs, rules)."""
    if actor is None:
        return
    if actor.is_staff and access.can_work_entity(session, actor, ticket.entity):
        return
    if actor.is_customer and customer_may and actor.id == ticket.customer_id:
        return
    raise DomainError({"": "You cannot change this ticket."})


def _set_status(session, change: Change, actor: User | None, new: str, now: datetime) -> None:
    """Every status change goes through here: the audit row and the SLA pause bookkeeping."""
    ticket = change.ticket
    old, ticket.status = ticket.status, new
    changes = {"status": [old, new]}
    if new in sla.STOPPED_STATUSES and ticket.escalation_level:
        # Resolving ends the escalation (its history stays in escalation_events and the trail).
        changes["escalation_level"] = [ticket.escalation_level, 0]
        ticket.escalation_level = 0
    _record(session, change, "status_changed", actor, changes, now)
    sla.status_changed(session, ticket, old, new, now)


def _next_number(session, entity: Entity) -> tuple[int, str]:
    # The UPDATE takes the entity row's lock until commit, so concurrent creators queue here
    # instead of reading the same value; the unique key on (entity_id, seq) backs it up.
    seq = session.execute(
        update(Entity).where(Entity.id == entity.id).values(ticket_seq=Entity.ticket_seq + 1)
        .returning(Entity.ticket_seq)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return seq, f"{entity.ticket_prefix}-{seq}"


# Says nothing about who the person is: the id may belong to another entity's staff, or nobody.
NOT_ASSIGNABLE = "Choose an active agent of this ticket's entity."


def _check_assignee(session, ticket_entity: Entity, assignee: User | None) -> str | None:
    if assignee is None:
        return None
    if not assignee.is_staff or not assignee.active or not access.is_member(session, assignee, ticket_entity):
        return NOT_ASSIGNABLE
    return None


# Room for a long pasted log or a detailed report (about 8,000 words), while one request cannot store
# megabytes (the request itself is capped by MAX_CONTENT_LENGTH).
MAX_BODY = 50_000  # characters
BODY_TOO_LONG_MESSAGE = f"Keep it under {MAX_BODY:,} characters: split a longer text into several messages."


def _body_error(body: str, empty_message: str) -> str | None:
    if not body.strip():
        return empty_message
    if len(body) > MAX_BODY:
        return BODY_TOO_LONG_MESSAGE
    return None


def create_ticket(session, *, actor: User, entity: Entity | None, customer: User, subject: str, body: str,
                  priority: str = "normal", category: str | None = None, via: str = "agent",
                  assignee: User | None = None, now: datetime | None = None) -> Change:
    """Open a ticket for `customer` in `entity`, by the customer (portal) or by staff on their behalf."""
    now = now or clock.now()
    body = typed_text(body)
    errors = {}
    if entity is None or not entity.active:
        errors["entity_id"] = "Choose an active entity."
    elif actor.is_staff and not access.can_work_entity(session, actor, entity):
        errors["entity_id"] = "You cannot create tickets in that entity."
    elif actor.is_customer and actor.id != customer.id:
        errors["entity_id"] = "Customers open tickets only for themselves."
    elif actor.is_customer and via == "portal" and not entity.portal_enabled:
        errors["entity_id"] = "Choose one of the teams offered."
    if msg := text_error(subject, "Subject", 250):
        errors["subject"] = msg
    if msg := _body_error(body, "Describe the request."):
        errors["body"] = msg
    if priority not in PRIORITIES:
        errors["priority"] = f"Unknown priority '{priority}'."
    if entity is not None:
        try:
            category = check_category(session, entity, category, listed_only=via == "portal")  # entity's list
        except DomainError as exc:
            errors.update(exc.errors)
    if via not in VIAS:
        errors["via"] = f"Unknown channel '{via}'."
    if not customer.is_customer:
        errors["customer_email"] = "Tickets are opened for customers, not staff."
    if entity is not None and (msg := _check_assignee(session, entity, assignee)):
        errors["assignee_id"] = msg
    check(errors)

    seq, number = _next_number(session, entity)
    ticket = Ticket(entity=entity, seq=seq, number=number, subject=subject.strip(), body=body,
                    body_format=TEXT, status="new", priority=priority, category=category,
                    customer=customer, assignee=assignee, created_at=now, updated_at=now)
    session.add(ticket)
    if assignee is not None:
        assignee.last_assigned_at = now
    change = Change(ticket)
    _record(session, change, "ticket_created", actor,
            {"number": number, "priority": priority, "via": via,
             **({"assignee_id": [None, assignee.id]} if assignee else {})}, now)
    session.flush()
    sla.assign_rule(session, ticket, now)
    return _dispatch(session, change, actor, now)


def add_reply(session, ticket: Ticket, *, actor: User, body: str, internal: bool = False,
              via: str | None = None, now: datetime | None = None) -> Change:
    """Add a public reply or an internal note; a customer's reply reopens a pending or resolved ticket."""
    now = now or clock.now()
    _require_actor(session, actor, ticket, customer_may=True)
    body = typed_text(body)
    via = via or ("portal" if actor is not None and actor.is_customer else "agent")
    errors = {}
    if msg := _body_error(body, "Write something before sending."):
        errors["body"] = msg
    if ticket.status in FINAL:
        errors["body"] = "This ticket is closed; open a new ticket instead."
    if internal and actor is not None and not actor.is_staff:
        errors["internal"] = "Only staff can write internal notes."
    if via not in VIAS:
        errors["via"] = f"Unknown channel '{via}'."
    check(errors)

    reply = Reply(ticket=ticket, author=actor, body=body, body_format=TEXT, internal=internal, via=via,
                  created_at=now)
    session.add(reply)
    change = Change(ticket, reply=reply)
    session.flush()
    _record(session, change, "reply_added", actor,
            {"reply_id": reply.id, "internal": internal, "via": via, "public": not internal}, now)
    new_status = _status_after_reply(ticket, actor, internal)
    if new_status != ticket.status:
        _set_status(session, change, actor, new_status, now)
    if actor is not None:  # a system message answers nobody and asks nothing
        sla.reply_added(session, ticket, author_is_staff=actor.is_staff, public=not internal, now=now)
    session.flush()
    return _dispatch(session, change, actor, now)


def _status_after_reply(ticket: Ticket, actor: User, internal: bool) -> str:
    if internal or actor is None:
        return ticket.status
    if actor.is_customer and ticket.status in {"pending", "resolved"}:
        return "open"  # the customer answered: the ball is back with the agents
    if actor.is_staff and ticket.status == "new":
        return "open"
    return ticket.status


def change_status(session, ticket: Ticket, status: str, *, actor: User, now: datetime | None = None) -> Change:
    """Move the ticket to `status`. A closed ticket stays closed; nothing goes back to new."""
    now = now or clock.now()
    _require_actor(session, actor, ticket)
    change = Change(ticket)
    if status not in STATUSES:
        raise DomainError({"status": f"Unknown status '{status}'."})
    if status == ticket.status:
        return change
    if ticket.status in FINAL:
        raise DomainError({"status": "This ticket is closed and cannot be reopened; open a new ticket instead."})
    if status == "new":
        raise DomainError({"status": "A ticket cannot go back to New."})
    _set_status(session, change, actor, status, now)
    session.flush()
    return _dispatch(session, change, actor, now)


def assign(session, ticket: Ticket, assignee: User | None, *, actor: User, now: datetime | None = None) -> Change:
    """Give the ticket to a member of its entity, or unassign it with None."""
    now = now or clock.now()
    _require_actor(session, actor, ticket)
    change = Change(ticket)
    if (assignee.id if assignee else None) == ticket.assignee_id:
        return change
    if msg := _check_assignee(session, ticket.entity, assignee):
        raise DomainError({"assignee_id": msg})
    old = ticket.assignee_id
    ticket.assignee = assignee
    if assignee is not None:
        assignee.last_assigned_at = now  # round-robin gives the next ticket to whoever waited longest
    _record(session, change, "assigned_to_changed", actor,
            {"assignee_id": [old, assignee.id if assignee else None]}, now)
    session.flush()
    return _dispatch(session, change, actor, now)


def update_fields(session, ticket: Ticket, values: dict, *, actor: User, now: datetime | None = None) -> Change:
    """Change subject, category, priority or entity. A priority-only change is `priority_changed`."""
    now = now or clock.now()
    _require_actor(session, actor, ticket)
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise DomainError({"": f"Unknown field(s): {', '.join(sorted(unknown))}."})
    errors, changes = {}, {}
    if "subject" in values:
        if msg := text_error(values["subject"], "Subject", 250):
            errors["subject"] = msg
        elif values["subject"].strip() != ticket.subject:
            changes["subject"] = [ticket.subject, values["subject"].strip()]
    if "priority" in values:
        if values["priority"] not in PRIORITIES:
            errors["priority"] = f"Unknown priority '{values['priority']}'."
        elif values["priority"] != ticket.priority:
            changes["priority"] = [ticket.priority, values["priority"]]
    new_entity = None
    if "entity_id" in values and values["entity_id"] != ticket.entity_id:
        new_entity = session.get(Entity, values["entity_id"]) if values["entity_id"] else None
        if new_entity is None or not new_entity.active or (
                actor is not None and not access.can_work_entity(session, actor, new_entity)):
            errors["entity_id"] = "Choose an active entity you work in."
        else:
            changes["entity_id"] = [ticket.entity_id, new_entity.id]
    if "category" in values and (values["category"] or "").strip() != (ticket.category or ""):
        # One of the list of the entity the ticket is in (or moves to); an unchanged category is kept as it is.
        try:
            new = check_category(session, new_entity or ticket.entity, values["category"])
        except DomainError as exc:
            errors.update(exc.errors)
        else:
            if new != ticket.category:
                changes["category"] = [ticket.category, new]
    check(errors)

    change = Change(ticket)
    if not changes:
        return change
    for name, (_, new) in changes.items():
        if name != "entity_id":
            setattr(ticket, name, new)
    if new_entity is not None:
        _move(session, ticket, new_entity, changes, now)
    if new_entity is not None and ticket.assignee and not access.is_member(session, ticket.assignee, new_entity):
        # The assignee cannot work in the new entity: the ticket goes back to its queue.
        changes["assignee_id"] = [ticket.assignee_id, None]
        ticket.assignee = None
    event = "priority_changed" if set(changes) == {"priority"} else "ticket_updated"
    _record(session, change, event, actor, changes, now)
    session.flush()
    if {"priority", "category", "entity_id"} & set(changes):
        sla.assign_rule(session, ticket, now)  # due times recomputed from the original start
    return _dispatch(session, change, actor, now)


KEEP = object()


def edit_ticket(session, ticket: Ticket, *, actor: User, fields: dict | None = None, status: str | None = None,
                assignee=KEEP, now: datetime | None = None) -> list[Change]:
    """Several changes at once (the API's PATCH): fields first (a move to another entity may unassign), then the
    assignee (`KEEP`: unchanged, None: unassigned), then the status; each as its own change and event, one
    transaction. A refusal of any leaves none made (the caller rolls back)."""
    now = now or clock.now()
    made = []
    if fields:
        made.append(update_fields(session, ticket, fields, actor=actor, now=now))
    if assignee is not KEEP:
        made.append(assign(session, ticket, assignee, actor=actor, now=now))
    if status is not None:
        made.append(change_status(session, ticket, status, actor=actor, now=now))
    return [change for change in made if change.changed]


def _move(session, ticket: Ticket, entity: Entity, changes: dict, now: datetime) -> None:
    """Put the ticket in `entity` under that entity's next number; the old number stays an alias,
    so links in mail already sent and searches for it still reach the ticket."""
    old_number = ticket.number
    seq, number = _next_number(session, entity)
    session.add(TicketAlias(ticket=ticket, number=old_number, created_at=now))
    ticket.entity, ticket.seq, ticket.number = entity, seq, number
    changes["number"] = [old_number, number]


def escalate(session, ticket: Ticket, *, actor: User | None, reason: str = "", level: int | None = None,
             details: dict | None = None, now: datetime | None = None) -> Change:
    """Escalate to `level` (default: one above the current) and emit `escalation_due` (its notifications and
    rules follow). The ticket's level never goes down here; `details` (the policy) join the event's changes."""
    now = now or clock.now()
    _require_actor(session, actor, ticket)
    _check_escalable(ticket)
    change = Change(ticket)
    _record(session, change, "escalation_due", actor, _raise_level(ticket, level, reason, details), now)
    session.flush()
    return _dispatch(session, change, actor, now)


def escalate_many(session, items: list[tuple[Ticket, int, str, dict]], *, now: datetime) -> list[Change]:
    """`escalate` by the system for many tickets at once (the escalation tick: (ticket, level, reason, details),
    each ticket once, their rows locked by the caller): one flush writes their audit rows and each ticket's one
    UPDATE, then each change is emitted, in order, as `escalate` emits it. Nothing changes if any of them cannot be
    escalated."""
    for ticket, *_ in items:
        _check_escalable(ticket)
    if not items:
        return []
    _bump_locked_versions([ticket for ticket, *_ in items])
    done = []
    for ticket, level, reason, details in items:
        change = Change(ticket)
        _record(session, change, "escalation_due", None, _raise_level(ticket, level, reason, details), now,
                bumped=True)
        done.append(change)
    bulk_ids.number(session, [event for change in done for event in change.events])  # one executemany
    session.flush()
    return [_dispatch(session, change, None, now) for change in done]


def _check_escalable(ticket: Ticket) -> None:
    if ticket.status in FINAL:
        raise DomainError({"": "A closed ticket cannot be escalated."})


def _raise_level(ticket: Ticket, level: int | None, reason: str, details: dict | None) -> dict:
    """Move the ticket's level up to `level` (default: one above; never down); the `escalation_due` changes."""
    old = ticket.escalation_level
    level = old + 1 if level is None else level
    ticket.escalation_level = max(old, level)
    values = {**(details or {}), "level": level, **({"reason": reason} if reason else {})}
    if ticket.escalation_level != old:
        values["escalation_level"] = [old, ticket.escalation_level]
    return values


def extend_sla(session, ticket: Ticket, minutes: int, *, actor: User | None, now: datetime | None = None) -> Change:
    """Push every SLA deadline of the ticket later by `minutes` of the rule's (business) time."""
    now = now or clock.now()
    _require_actor(session, actor, ticket)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 525_600:
        raise DomainError({"minutes": "Extend by 1 minute to 365 days."})
    if ticket.sla_rule is None:
        raise DomainError({"": "This ticket has no SLA rule: there is no deadline to extend."})
    change = Change(ticket)
    old = ticket.sla_extension_minutes
    ticket.sla_extension_minutes = old + minutes
    _record(session, change, "ticket_updated", actor, {"sla_extension_minutes": [old, old + minutes]}, now)
    sla.refresh(session, ticket, now)
    session.flush()
    return _dispatch(session, change, actor, now)


def switch_sla_rule(session, ticket: Ticket, rule: SlaRule, *, actor: User | None,
                    now: datetime | None = None) -> Change:
    """Put the ticket under `rule` (active, of its entity or above), kept when priority or category change."""
    now = now or clock.now()
    _require_actor(session, actor, ticket)
    lineage = {e.id for e in access.lineage(session, ticket.entity)}
    if rule is None or not rule.is_active or rule.entity_id not in lineage:
        raise DomainError({"rule_id": "Choose an active SLA rule of the ticket's entity or one above it."})
    change = Change(ticket)
    if ticket.sla_rule_id == rule.id and ticket.sla_rule_pinned:
        return change
    old = ticket.sla_rule_id
    sla.pin_rule(session, ticket, rule, now)
    _record(session, change, "ticket_updated", actor, {"sla_rule_id": [old, rule.id]}, now)
    session.flush()
    return _dispatch(session, change, actor, now)


def find_by_number(session, number: str) -> Ticket | None:
    """Unscoped lookup, for jobs and the CLI; routes use access.find_ticket."""
    return session.scalar(select(Ticket).where(Ticket.number == number.upper()))
