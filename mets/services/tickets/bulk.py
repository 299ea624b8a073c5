"""Bulk changes from the staff list: status, priority, assignee or category set on many tickets in one step.

Each ticket changes through `changes` (change_status, update_fields, assign) exactly as if it were changed by hand:
its audit rows, its notifications and its automation run per ticket. A ticket the actor may not work, or that its
change refuses (a closed ticket's status, an assignee who is no member of its entity), is skipped and reported with
the reason, in a savepoint of its own so the others still change.

One bulk request is one transaction: "5 tickets updated" is true exactly when it is committed, and a failure leaves
nothing half done. So a request is bounded (MAX_BULK tickets), which keeps that transaction and its locks short;
"all matching" beyond that is refused with a clear message rather than silently cut.
"""
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from mets import clock
from mets.models import PRIORITIES, STATUSES, Ticket, User
from mets.services.directory import access
from mets.services.errors import DomainError
from mets.services.tickets import changes
from mets.services.tickets.search import TicketFilters, matching_ids
from mets.services.validation import parse_id, text_error

MAX_BULK = 500
# What a bulk change may set, by form field. The category is free text (Ticket.category) for now.
BULK_FIELDS = ("set_status", "set_priority", "set_assignee", "set_category")
UNASSIGN = "none"
OUT_OF_REACH = "not found, or not in an entity you work in"


@dataclass
class BulkResult:
    updated: list[Ticket] = field(default_factory=list)
    unchanged: list[Ticket] = field(default_factory=list)  # already had every value asked for
    refused: list[tuple[str, str]] = field(default_factory=list)  # (the ticket as the user chose it, why)

    @property
    def message(self) -> str:
        n = len(self.updated)
        text = f"{n} ticket{'' if n == 1 else 's'} updated"
        if self.unchanged:
            text += f", {len(self.unchanged)} already so"
        if self.refused:
            text += f", {len(self.refused)} refused"
        return text + "."


def selected_ids(session, user: User, ids: list[str], matching: TicketFilters | None) -> list[int]:
    """The ticket ids a bulk request names: the posted ids, or every ticket matching the list's filters (scoped).
    Refuses an empty, malformed or oversized selection."""
    if matching is not None:
        found = matching_ids(session, user, matching, MAX_BULK + 1)
        if len(found) > MAX_BULK:
            raise DomainError({"ids": f"More than {MAX_BULK} tickets match this filter: narrow it, or change at most "
                                      f"{MAX_BULK} at a time."})
        if not found:
            raise DomainError({"ids": "No tickets match this filter."})
        return found
    if len(ids) > MAX_BULK:
        raise DomainError({"ids": f"Choose at most {MAX_BULK} tickets at a time (you chose {len(ids)})."})
    parsed = [parse_id(raw) for raw in ids]
    if any(number is None for number in parsed):
        raise DomainError({"ids": "The selection is not a list of tickets: reload the list and choose again."})
    if not parsed:
        raise DomainError({"ids": "Choose at least one ticket."})
    return list(dict.fromkeys(parsed))


def _wanted(session, values: dict) -> dict:
    """The posted set_* values checked: {field: value} for those given ("" keeps a field as it is)."""
    wanted, errors = {}, {}
    if status := values.get("set_status"):
        if status not in STATUSES:
            errors["set_status"] = "Choose a status."
        wanted["set_status"] = status
    if priority := values.get("set_priority"):
        if priority not in PRIORITIES:
            errors["set_priority"] = "Choose a priority."
        wanted["set_priority"] = priority
    if assignee := values.get("set_assignee"):
        if assignee == UNASSIGN:
            wanted["set_assignee"] = None
        else:
            person = session.get(User, parse_id(assignee)) if parse_id(assignee) else None
            if person is None or not person.is_staff or not person.active:
                errors["set_assignee"] = changes.NOT_ASSIGNABLE
            wanted["set_assignee"] = person
    if category := (values.get("set_category") or "").strip():
        if msg := text_error(category, "Category", 80):
            errors["set_category"] = msg
        wanted["set_category"] = category
    if errors:
        raise DomainError(errors)
    if not wanted:
        raise DomainError({"": "Choose what to change: a status, priority, assignee or category."})
    return wanted


def _change_one(session, ticket: Ticket, wanted: dict, actor: User, now: datetime) -> bool:
    changed = False
    fields = {}
    if "set_priority" in wanted:
        fields["priority"] = wanted["set_priority"]
    if "set_category" in wanted:
        fields["category"] = wanted["set_category"]
    if fields:
        changed |= changes.update_fields(session, ticket, fields, actor=actor, now=now).changed
    if "set_assignee" in wanted:
        changed |= changes.assign(session, ticket, wanted["set_assignee"], actor=actor, now=now).changed
    if "set_status" in wanted:
        changed |= changes.change_status(session, ticket, wanted["set_status"], actor=actor, now=now).changed
    return changed


def bulk_change(session, actor: User, values: dict, ids: list[str], matching: TicketFilters | None = None,
                now: datetime | None = None) -> BulkResult:
    """Set the fields `values` names (set_status, set_priority, set_assignee, set_category) on each selected ticket
    the actor may work, one ticket at a time through the changes service; the rest are reported, not skipped
    silently."""
    now = now or clock.now()
    wanted = _wanted(session, values)
    chosen = selected_ids(session, actor, ids, matching)
    found = {t.id: t for t in session.scalars(
        access.scope_tickets(select(Ticket).where(Ticket.id.in_(chosen)), session, actor).order_by(Ticket.id))}
    result = BulkResult()
    for ticket_id in chosen:
        ticket = found.get(ticket_id)
        if ticket is None or not access.can_work_entity(session, actor, ticket.entity):
            result.refused.append((f"Ticket id {ticket_id}", OUT_OF_REACH))  # its number would tell too much
            continue
        savepoint = session.begin_nested()
        try:
            changed = _change_one(session, ticket, wanted, actor, now)
        except DomainError as exc:
            savepoint.rollback()
            result.refused.append((ticket.number, " ".join(exc.errors.values())))
            continue
        savepoint.commit()
        (result.updated if changed else result.unchanged).append(ticket)
    return result
