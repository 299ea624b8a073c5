"""SLA rules as admins edit them: form text checked and stored, order within an entity, re-timing.

The engine (services/sla.py) reads rules; this module writes them. Every change that can alter
which rule a ticket gets or when its clocks fall due re-times the open tickets of the rule's
entity and every entity below it (the only tickets that can choose the rule), in batches, in
the caller's transaction, through `sla.retime` (which records points the edit moved into the
past as suppressed instead of firing them all at the next tick).

Form text: targets are durations ("4h 30m"; empty: that clock does not run; at least one is
needed). Warnings are "80%, 30m before": each a percent of the target (1-99) or a time before
due. A time before due must be shorter than the shortest warned target (response, next reply,
resolution), so that every warning
falls inside every clock it applies to. An absent `warnings` key means the default, 80%; empty
text means no warnings. Pause statuses: open, pending, on_hold (new always counts; resolved
and closed always stop the clocks); absent means the default, pending.
"""
import json
import re
from datetime import datetime

from sqlalchemy import func, select

from mets.models import CLOCKS, PRIORITIES, STATUSES, Entity, SlaRule
from mets.models.sla import DEFAULT_PAUSE_STATUSES, DEFAULT_WARNINGS
from mets.services import rules, sla
from mets.services.directory import entities
from mets.services.durations import format_minutes, parse_duration
from mets.services.errors import DomainError, check
from mets.services.validation import text_error

WARNED_CLOCKS = ("response", "next_reply", "resolution")
PAUSABLE_STATUSES = tuple(s for s in STATUSES if s not in ("new", *sla.STOPPED_STATUSES))
MAX_WARNINGS = 5
# What re-timing depends on (a new name alone changes no ticket).
_TIMING = ("entity_id", "priority", "response_minutes", "next_reply_minutes", "resolution_minutes",
           "business_hours_only", "conditions", "warnings", "pause_statuses", "position",
           "is_active")
_PERCENT = re.compile(r"^(\d+(?:[.,]\d+)?)\s*%$")
_BEFORE = re.compile(r"^(.*?)\s*before(?:\s+(?:the\s+)?due)?$")
_WARNING_HELP = 'Write each warning as a percent of the target ("80%") or a time before due ("30m before").'


# --- reading form text ------------------------------------------------------------------------

def parse_warnings(value) -> list[dict]:
    """"80%, 30m before" (or a stored list) as [{"percent": 80}, {"minutes_before": 30}]; None: the default."""
    if value is None:
        return [dict(w) for w in DEFAULT_WARNINGS]
    items = value if isinstance(value, list) else [p.strip() for p in re.split(r"[,;]", str(value))]
    out: list[dict] = []
    for item in items:
        warning = _warning(item)
        if warning is not None and warning not in out:
            out.append(warning)
    if len(out) > MAX_WARNINGS:
        raise DomainError({"warnings": f"At most {MAX_WARNINGS} warnings per rule."})
    return out


def _warning(item) -> dict | None:
    if isinstance(item, dict):
        if len(item) == 1 and "percent" in item:
            item = f"{item['percent']}%"
        elif len(item) == 1 and "minutes_before" in item:
            item = f"{item['minutes_before']}m before"
        else:
            raise DomainError({"warnings": f"Cannot read {json.dumps(item)} as a warning. {_WARNING_HELP}"})
    text = str(item).strip().lower()
    if not text:
        return None
    if match := _PERCENT.match(text):
        number = match.group(1)
        if not number.isdigit() or not 1 <= int(number) <= 99:
            raise DomainError({"warnings": f'"{item}": a percent warning is a whole number from 1% to 99%.'})
        return {"percent": int(number)}
    if match := _BEFORE.match(text):
        try:
            return {"minutes_before": parse_duration(match.group(1))}
        except ValueError as exc:
            raise DomainError({"warnings": f'"{item}": {exc}'}) from None
    raise DomainError({"warnings": f'Cannot read "{item}" as a warning. {_WARNING_HELP}'})


def format_warnings(warnings) -> str:
    """[{"percent": 80}, {"minutes_before": 30}] as "80%, 30m before"."""
    return ", ".join(f"{w['percent']}%" if "percent" in w else f"{format_minutes(w['minutes_before'])} before"
                     for w in warnings or [])


def _pause_statuses(value, errors: dict) -> list[str]:
    if value is None:
        return list(DEFAULT_PAUSE_STATUSES)
    chosen = [s.strip() for s in (value.split(",") if isinstance(value, str) else value) if s and s.strip()]
    for status in chosen:
        if status in sla.STOPPED_STATUSES:
            errors["pause_statuses"] = "Resolved and closed tickets always stop the clocks: leave them out."
        elif status == "new":
            errors["pause_statuses"] = "The clocks of a new ticket always run: leave New out."
        elif status not in PAUSABLE_STATUSES:
            errors["pause_statuses"] = f"Unknown status '{status}'."
    return [s for s in PAUSABLE_STATUSES if s in chosen]


def validate_rule(data: dict) -> dict:
    """Form values (text) as SlaRule column values; DomainError naming every field at fault."""
    errors: dict[str, str] = {}
    values: dict = {"name": (data.get("name") or "").strip()}
    if msg := text_error(data.get("name"), "Name", 200):
        errors["name"] = msg
    priority = (data.get("priority") or "").strip().lower() or None
    if priority is not None and priority not in PRIORITIES:
        errors["priority"] = f"Choose {', '.join(PRIORITIES)} or any priority."
    values["priority"] = priority
    for name in CLOCKS:
        raw = data.get(name)
        values[f"{name}_minutes"] = None
        if raw is not None and str(raw).strip():
            try:
                values[f"{name}_minutes"] = parse_duration(raw)
            except ValueError as exc:
                errors[name] = str(exc)
    if not any(values[f"{n}_minutes"] for n in CLOCKS) and not any(n in errors for n in CLOCKS):
        errors["response"] = "Set at least one target: first response, next reply or resolution."
    try:
        values["warnings"] = parse_warnings(data.get("warnings"))
        warned = [(values[f"{n}_minutes"], n) for n in WARNED_CLOCKS if values[f"{n}_minutes"]]
        early = [w["minutes_before"] for w in values["warnings"] if "minutes_before" in w]
        if warned and early and max(early) >= min(warned)[0]:
            shortest, name = min(warned)
            errors["warnings"] = (f"A warning {format_minutes(max(early))} before due would come before the "
                                  f"{sla.CLOCK_LABELS[name].lower()} clock starts (its target is "
                                  f"{format_minutes(shortest)}): use less than {format_minutes(shortest)}.")
    except DomainError as exc:
        errors.update(exc.errors)
    values["pause_statuses"] = _pause_statuses(data.get("pause_statuses"), errors)
    try:
        values["conditions"] = rules.parse(data.get("conditions"))
    except DomainError as exc:
        errors.update(exc.errors)
    values["business_hours_only"] = bool(data.get("business_hours_only", True))
    check(errors)
    return values


def form_values(rule: SlaRule) -> dict:
    """A stored rule as the form shows it (targets and warnings as text, conditions as JSON)."""
    out = {"entity_id": rule.entity_id, "name": rule.name, "priority": rule.priority or "",
           "business_hours_only": rule.business_hours_only, "warnings": format_warnings(rule.warnings),
           "pause_statuses": list(rule.pause_statuses or []),
           "conditions": json.dumps(rule.conditions) if rule.conditions else ""}
    out.update({name: format_minutes(rule.target_minutes(name)) for name in CLOCKS})
    return out


# --- saving and ordering ----------------------------------------------------------------------

def rules_of(session, entity: Entity) -> list[SlaRule]:
    """The entity's own rules (active or not) in the order they are tried."""
    return list(session.scalars(select(SlaRule).where(SlaRule.entity_id == entity.id)
                                .order_by(SlaRule.position, SlaRule.id)))


def rules_by_entity(session) -> list[tuple[Entity, int, list[SlaRule]]]:
    """Every entity in tree order with its depth and its rules in order, for the list page."""
    by_entity: dict[int, list[SlaRule]] = {}
    for rule in session.scalars(select(SlaRule).order_by(SlaRule.position, SlaRule.id)):
        by_entity.setdefault(rule.entity_id, []).append(rule)
    return [(e, depth, by_entity.get(e.id, [])) for e, depth in entities.entity_tree(session)]


def end_position(session, entity_id: int) -> int:
    """The position after the entity's last rule (where a new or moved-in rule goes)."""
    last = session.scalar(select(func.max(SlaRule.position)).where(SlaRule.entity_id == entity_id))
    return 0 if last is None else last + 1


def create_rule(session, entity: Entity, data: dict, now: datetime | None = None) -> SlaRule:
    """Validate and add a rule at the end of its entity's order; re-time the tickets it may apply to."""
    values = validate_rule(data)
    rule = SlaRule(entity_id=entity.id, position=end_position(session, entity.id),
                   is_active=bool(data.get("is_active", True)), **values)
    session.add(rule)
    session.flush()
    sla.retime_entities(session, [entity.id], now)
    return rule


def update_rule(session, rule: SlaRule, data: dict, entity: Entity | None = None,
                now: datetime | None = None) -> SlaRule:
    """Validate and save; `entity` moves the rule (to the end of that entity's order). Re-times if timing changed."""
    values = validate_rule(data)
    before = _timing(rule)
    old_entity_id = rule.entity_id
    if entity is not None and entity.id != rule.entity_id:
        rule.entity_id = entity.id
        rule.position = end_position(session, entity.id)
    for key, value in values.items():
        setattr(rule, key, value)
    session.flush()
    if _timing(rule) != before:
        sla.retime_entities(session, {old_entity_id, rule.entity_id}, now)
    return rule


def _timing(rule: SlaRule) -> tuple:
    return tuple(json.dumps(getattr(rule, key), sort_keys=True, default=str) for key in _TIMING)


def set_active(session, rule: SlaRule, active: bool, now: datetime | None = None) -> SlaRule:
    """Activate or deactivate (a deactivated rule is skipped when choosing); re-time its tickets."""
    if rule.is_active != bool(active):
        rule.is_active = bool(active)
        session.flush()
        sla.retime_entities(session, [rule.entity_id], now)
    return rule


def deactivate(session, rule: SlaRule, now: datetime | None = None) -> SlaRule:
    """set_active(rule, False)."""
    return set_active(session, rule, False, now)


def activate(session, rule: SlaRule, now: datetime | None = None) -> SlaRule:
    """set_active(rule, True)."""
    return set_active(session, rule, True, now)


def reorder(session, entity: Entity, ordered_ids, now: datetime | None = None) -> list[SlaRule]:
    """Give the entity's rules this order; `ordered_ids` must list each of them exactly once."""
    current = rules_of(session, entity)
    try:
        ids = [int(i) for i in ordered_ids]
    except (TypeError, ValueError):
        ids = []
    if len(ids) != len(set(ids)) or set(ids) != {r.id for r in current}:
        raise DomainError(f"The new order must list each of {entity.name}'s rules exactly once: "
                          "reload the page and try again.")
    by_id = {r.id: r for r in current}
    if [r.id for r in current] == ids:
        return current
    for position, rule_id in enumerate(ids):
        by_id[rule_id].position = position
    session.flush()
    sla.retime_entities(session, [entity.id], now)
    return [by_id[i] for i in ids]


def move(session, rule: SlaRule, offset: int, now: datetime | None = None) -> list[SlaRule]:
    """Move a rule up (-1) or down (+1) in its entity's order; at either end nothing changes."""
    ordered = rules_of(session, rule.entity)
    index = ordered.index(rule)
    target = index + offset
    if not 0 <= target < len(ordered):
        return ordered
    ordered[index], ordered[target] = ordered[target], ordered[index]
    return reorder(session, rule.entity, [r.id for r in ordered], now)


# --- test mode (services/sla_test_mode.py) ----------------------------------------------------

# --- for the list -----------------------------------------------------------------------------

def describe_conditions(conditions, registry=rules.TICKET) -> str:
    """A tree in words: "Priority is one of high, urgent and (Subject contains refund or ...)"; "" for none."""
    if rules.is_empty(conditions):
        return ""
    return _words(conditions, registry, top=True)


def _words(node, registry, top=False) -> str:
    if isinstance(node, dict) and any(k in node for k in rules.GROUPS):
        join = "all" if "all" in node else "any"
        parts = [_words(child, registry) for child in node.get(join) or []]
        text = (" and " if join == "all" else " or ").join(parts)
        return text if top or len(parts) < 2 else f"({text})"
    if not isinstance(node, dict):
        return "?"
    field_def, op = registry.field(node.get("field") or ""), registry.operator(node.get("op") or "")
    value = node.get("value")
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else str(value))
    words = [field_def.label if field_def else str(node.get("field")), op.label if op else str(node.get("op")), shown]
    return " ".join(w for w in words if w)


def visible_rules(session, entity_ids: set[int] | None) -> list[SlaRule]:
    """The rules of the entities given (access.visible_entity_ids: None for every entity), by entity and order."""
    query = select(SlaRule).order_by(SlaRule.entity_id, SlaRule.position, SlaRule.id)
    if entity_ids is not None:
        query = query.where(SlaRule.entity_id.in_(entity_ids or [0]))
    return list(session.scalars(query))
