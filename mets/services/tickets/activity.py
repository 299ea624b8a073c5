"""A ticket's activity trail as people read it: who did what, and each change with names instead of ids.

Read only. The template prints the lines; every id the audit rows name is resolved here, one query per kind.
"""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from mets.models import Entity, SlaRule, Ticket, TicketEvent, User
from mets.models.tickets import PRIORITIES, STATUS_LABELS
from mets.services.sla.clocks import CLOCK_LABELS
from mets.services.durations import format_minutes

# Audit values that are ids, and the model whose name shows instead.
NAMED = {"assignee_id": User, "entity_id": Entity, "sla_rule_id": SlaRule}
EMPTY = "—"
VIA_PHRASES = {"portal": " in the portal", "email": " by email"}
# Fields a ticket_updated row may change, as people call them (anything else: the field's name, spaced).
FIELD_LABELS = {"subject": "subject", "category": "category", "status": "status", "priority": "priority"}
# Audit keys that are details of another change, never a line of their own.
QUIET = {"number"}


@dataclass
class ActivityLine:
    at: datetime
    who: str  # the actor's name, the automation rule's name, or "System"
    by_rule: bool
    text: str  # the whole line: "Bea assigned the ticket to Dan", "Priority raised from Normal to Urgent by rule “VIP”"


@dataclass
class _Phrase:
    """One change said two ways: after a person's name, and on its own (made by a rule or the system)."""
    active: str  # "raised the priority from Normal to Urgent"
    passive: str  # "Priority raised from Normal to Urgent"


def activity_lines(session, ticket: Ticket) -> list[ActivityLine]:
    """The ticket's audit rows, newest first, each as one sentence with names instead of ids."""
    rows = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
        .options(joinedload(TicketEvent.actor), joinedload(TicketEvent.rule))
        .order_by(TicketEvent.at.desc(), TicketEvent.id.desc())
    ).all()
    names = _names(session, [(name, value) for row in rows for name, value in (row.changes or {}).items()
                             if isinstance(value, list)])
    return [ActivityLine(row.at, *_who(row), _sentence(row, names)) for row in rows]


def _who(row: TicketEvent) -> tuple[str, bool]:
    """Who made the change, and whether that was an automation rule."""
    if row.actor:
        return row.actor.name, False
    if row.rule:
        return row.rule.name, True
    return "System", False


def _sentence(row: TicketEvent, names) -> str:
    changes = row.changes or {}
    if row.event in ("sla_breach_warning", "sla_breach_occurred") or (row.event == "escalation_due"
                                                                      and "clock" in changes):
        return _sla_sentence(row.event, changes)
    actor = row.actor.name if row.actor else None
    if row.event == "ticket_created":
        via = VIA_PHRASES.get(changes.get("via"), "")
        opened = f"{actor} opened the ticket{via}" if actor else f"Ticket opened{via}"
        if row.rule and not actor:
            opened += f" by rule “{row.rule.name}”"
        assignee = changes.get("assignee_id")
        if isinstance(assignee, list) and assignee[1] is not None:
            opened += f", assigned to {_value('assignee_id', assignee[1], names)}"
        return opened
    if row.event == "reply_added":
        what = "added an internal note" if changes.get("internal") else "replied"
        who = actor or (f"Rule “{row.rule.name}”" if row.rule else "System")
        return f"{who} {what}{VIA_PHRASES.get(changes.get('via'), '')}"
    phrases = [_phrase(name, value, names, actor_id=row.actor_id, changes=changes)
               for name, value in changes.items() if isinstance(value, list) and len(value) == 2 and name not in QUIET]
    if row.event == "escalation_due":
        level = changes.get("level")
        reason = f" ({changes['reason']})" if changes.get("reason") else ""
        if changes.get("policy"):
            reason += f" — policy “{changes['policy']}”"
        phrases = [_Phrase(f"escalated the ticket to level {level}{reason}", f"Escalated to level {level}{reason}")]
    if not phrases:
        return f"{actor or 'System'} updated the ticket"
    if actor:
        return f"{actor} {_joined([p.active for p in phrases])}"
    text = "; ".join([phrases[0].passive] + [p.passive[:1].lower() + p.passive[1:] for p in phrases[1:]])
    return text + (f" by rule “{row.rule.name}”" if row.rule else "")


def _sla_sentence(event: str, changes: dict) -> str:
    """'First response SLA: 80% used — warning', 'Resolution SLA breached', 'Escalation due (SLA)'."""
    clock_label = CLOCK_LABELS.get(changes.get("clock"), str(changes.get("clock", "")).replace("_", " ").capitalize())
    if event == "escalation_due":
        return "Escalation due: the SLA's escalation time passed"
    if event == "sla_breach_occurred":
        return f"{clock_label} SLA breached"
    point = str(changes.get("point", ""))
    threshold = point.partition(":")[2]
    if threshold.endswith("%"):
        return f"{clock_label} SLA: {threshold} used — warning"
    if threshold:
        return f"{clock_label} SLA: {format_minutes(_minutes(threshold))} left — warning"
    return f"{clock_label} SLA: warning"


def _minutes(threshold: str) -> int:
    """'30m' -> 30, '2h' -> 120 (the warning points' notation); anything else: its digits."""
    digits = int("".join(ch for ch in threshold if ch.isdigit()) or 0)
    return digits * 60 if threshold.endswith("h") else digits


def _phrase(name: str, value: list, names, *, actor_id, changes: dict) -> _Phrase:
    old, new = (_value(name, v, names) for v in value)
    if name == "assignee_id":
        if value[1] is None:
            return _Phrase(f"unassigned the ticket (was {old})", f"Unassigned (was {old})")
        if value[1] == actor_id:
            return _Phrase("took the ticket" + (f" from {old}" if value[0] is not None else ""),
                           f"Assigned to {new}")
        if value[0] is None:
            return _Phrase(f"assigned the ticket to {new}", f"Assigned to {new}")
        return _Phrase(f"reassigned the ticket from {old} to {new}", f"Reassigned from {old} to {new}")
    if name == "priority":
        order = {p: i for i, p in enumerate(PRIORITIES)}
        verb = "raised" if order.get(value[1], 0) > order.get(value[0], 0) else "lowered"
        return _Phrase(f"{verb} the priority from {old} to {new}", f"Priority {verb} from {old} to {new}")
    if name == "entity_id":
        numbers = changes.get("number")
        if isinstance(numbers, list) and len(numbers) == 2:
            old, new = f"{old} ({numbers[0]})", f"{new} ({numbers[1]})"
        return _Phrase(f"moved the ticket from {old} to {new}", f"Moved from {old} to {new}")
    if name == "sla_extension_minutes":
        added = format_minutes((value[1] or 0) - (value[0] or 0))
        return _Phrase(f"extended the SLA by {added}", f"SLA extended by {added}")
    if name == "sla_rule_id":
        return _Phrase(f"changed the SLA rule from {old} to {new}", f"SLA rule changed from {old} to {new}")
    if name == "escalation_level":
        return _Phrase(f"changed the escalation level from {old} to {new}",
                       f"Escalation level changed from {old} to {new}")
    label = FIELD_LABELS.get(name, name.replace("_", " "))
    if value[0] in (None, ""):
        return _Phrase(f"set the {label} to {new}", f"{label.capitalize()} set to {new}")
    if value[1] in (None, ""):
        return _Phrase(f"cleared the {label} (was {old})", f"{label.capitalize()} cleared (was {old})")
    return _Phrase(f"changed the {label} from {old} to {new}", f"{label.capitalize()} changed from {old} to {new}")


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


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
    if name == "priority":
        return str(value).capitalize()
    if name == "sla_extension_minutes":
        return format_minutes(value) if value else EMPTY
    if name == "subject":
        return f"“{value}”"
    return str(value)
