"""Escalation policies as admins edit them: the list by entity, form values checked and stored (levels kept by
identity, so a level that fired this round does not fire again after an edit), order within an entity, the
editor's level rows, and the preview of when each level would fire for one ticket (writes nothing).

Every change that can alter which policy a ticket follows or when its levels fall due re-times the open tickets
of the policy's entity and the entities below it (`engine.retime_after_edit`: levels the edit put in the past are
recorded as passed, not fired all at once), in the caller's transaction.
"""
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mets import clock
from mets.models import Entity, EscalationLevel, EscalationPolicy, Ticket
from mets.services import automation, rules
from mets.services.automation import admin as automation_admin
from mets.services.automation import builder
from mets.services.directory import access, entities
from mets.services.durations import format_minutes
from mets.services.errors import DomainError, check
from mets.services.sla import admin as sla_admin
from mets.services.escalation import engine, timing
from mets.services.escalation.actions import LEVEL_ACTIONS
from mets.services.escalation.conditions import ESCALATION
from mets.services.escalation.policies import (  # noqa: F401 (CLOCK_LABELS, MAX_LEVELS: the pages' too)
    CLOCK_LABELS, MAX_LEVELS, SLA_CLOCKS, TRIGGER_LABELS, check_policy, policy_for,
)
from mets.services.escalation.timing import LevelDue, Window
from mets.services.validation import parse_id, parse_int

LEVEL_ROW = re.compile(r"^lvr[0-9a-f]{1,32}$")
MAX_PLACE = 1000


def new_row_id() -> str:
    return "lvr" + secrets.token_hex(5)


# --- the list ---------------------------------------------------------------------------------

def policies_of(session, entity: Entity) -> list[EscalationPolicy]:
    """The entity's own policies (active or not) in the order they are tried."""
    return list(session.scalars(select(EscalationPolicy).where(EscalationPolicy.entity_id == entity.id)
                                .order_by(EscalationPolicy.position, EscalationPolicy.id)
                                .options(selectinload(EscalationPolicy.levels))))


def policies_by_entity(session) -> list[tuple[Entity, int, list[EscalationPolicy]]]:
    """Every entity in tree order with its depth and its policies in order, for the list page."""
    by_entity: dict[int, list[EscalationPolicy]] = {}
    for policy in session.scalars(select(EscalationPolicy).order_by(EscalationPolicy.position, EscalationPolicy.id)
                                  .options(selectinload(EscalationPolicy.levels))):
        by_entity.setdefault(policy.entity_id, []).append(policy)
    return [(e, depth, by_entity.get(e.id, [])) for e, depth in entities.entity_tree(session)]


def describe_conditions(conditions) -> str:
    """The policy's conditions in words, as the SLA rules list writes them."""
    return sla_admin.describe_conditions(conditions, ESCALATION)


def level_words(session, groups) -> dict[int, str]:
    """Each level of the listed policies (`policies_by_entity`'s groups) in one line, read before rendering."""
    return {level.id: describe_level(session, level) for _, _, policies in groups for p in policies
            for level in p.levels}


def describe_level(session, level) -> str:
    """"At 75% of the target: notify the entity's managers; raise the priority one step"."""
    span = format_minutes(level.value) if isinstance(level.value, int) else str(level.value)
    words = {"percent": f"At {level.value}% of the target", "before_breach": f"{span} before the breach",
             "after_breach": "At the breach" if not level.value else f"{span} after the breach",
             "after_duration": f"{span} after the clock started"}.get(level.trigger, level.trigger)
    done = []
    for action in level.actions or []:
        kind = LEVEL_ACTIONS.get(action.get("type"))
        if kind is None:
            done.append(f"{action.get('type')} (unknown action)")
        elif kind.words:
            try:
                done.append(kind.words(session, action))
            except Exception:  # a stored action that no longer reads must not break the list
                done.append(kind.label)
        else:
            done.append(kind.label)
    return words + (": " + "; ".join(done) if done else " (raises the level only)")


# --- form values ------------------------------------------------------------------------------

def form_values(policy: EscalationPolicy) -> tuple[dict, list[dict]]:
    """A stored policy as the form shows it: its fields, and one row per level (webhook secrets masked)."""
    data = {"name": policy.name, "entity_id": policy.entity_id, "clock": policy.clock,
            "business_time": policy.business_time, "is_active": policy.is_active,
            "position": str(policy.position + 1),
            "conditions": json.dumps(policy.conditions) if policy.conditions else ""}
    levels = [{"row": new_row_id(), "id": str(level.id), "trigger": level.trigger, "value": str(level.value),
               "actions": [automation_admin._masked(a) for a in level.actions or []]} for level in policy.levels]
    return data, levels


def new_level(trigger: str = "percent", value: str = "") -> dict:
    return {"row": new_row_id(), "id": "", "trigger": trigger, "value": value, "actions": []}


def _flag(value) -> bool:
    return str(value).strip().lower() in ("1", "y", "yes", "on", "true") if isinstance(value, str) else bool(value)


def _stored_actions(policy: EscalationPolicy | None) -> list[dict]:
    return [a for level in (policy.levels if policy else []) for a in level.actions or []]


def _validate(session, entity: Entity | None, data: dict, levels: list[dict],
              editing: EscalationPolicy | None = None) -> dict:
    """Form values (text as typed, levels as the editor sends them) as stored values; DomainError naming every
    field, level and action field at fault, in people's words."""
    errors: dict[str, str] = {}
    if entity is None:
        errors["entity_id"] = "Choose the entity whose tickets the policy covers."
    place_text = str(data.get("position") or "").strip()
    place = parse_int(place_text, None, 1, MAX_PLACE) if place_text else None
    if place_text and place is None:
        errors["position"] = "Enter the place as a whole number: 1 is tried first."
    conditions = None
    try:
        conditions = rules.parse(data.get("conditions"), ESCALATION, "conditions")
    except DomainError as exc:
        errors.update(exc.errors)
    stored = _stored_actions(editing)
    raw_levels = []
    for index, level in enumerate(levels):
        value_text = str(level.get("value") or "").strip()
        raw = {"trigger": level.get("trigger"), "value": parse_int(value_text, None, 0, 10 ** 9)
               if value_text else None, "actions": []}
        try:
            raw["actions"] = automation_admin._unmasked(automation_admin.parse_actions(level.get("actions")), stored)
        except DomainError as exc:
            errors.update({f"levels[{index}].{k}": v for k, v in exc.errors.items()})
        raw_levels.append(raw)
    values = {}
    try:
        values = check_policy(session, entity, name=data.get("name") or "", clock=data.get("clock") or "",
                              levels=raw_levels, conditions=conditions,
                              business_time=_flag(data.get("business_time", False)),
                              is_active=_flag(data.get("is_active", False)))
    except DomainError as exc:
        errors.update({k: v for k, v in exc.errors.items() if k not in errors})
    check(errors)
    values["place"] = place
    values["level_ids"] = [parse_id(level.get("id")) for level in levels]
    return values


def _place(session, policy: EscalationPolicy, place: int | None, entity_ids) -> None:
    """Put `policy` at `place` (1-based; None: where its position puts it, a new or moved one last) among its
    entity's policies, and number every policy of these entities 0, 1, ... again."""
    for entity_id in set(entity_ids):
        ordered = list(session.scalars(select(EscalationPolicy).where(EscalationPolicy.entity_id == entity_id)
                                       .order_by(EscalationPolicy.position, EscalationPolicy.id)))
        if entity_id == policy.entity_id and place is not None:
            ordered.remove(policy)
            ordered.insert(min(place, len(ordered) + 1) - 1, policy)
        for position, each in enumerate(ordered):
            if each.position != position:
                each.position = position


def create_policy(session, entity: Entity | None, data: dict, levels: list[dict],
                  now: datetime | None = None) -> EscalationPolicy:
    """Validate and add a policy at its place (default: last) in its entity's order; re-time its tickets."""
    values = _validate(session, entity, data, levels)
    place, clean = values.pop("place"), values.pop("levels")
    values.pop("level_ids")
    policy = EscalationPolicy(entity_id=entity.id, position=MAX_PLACE, **values)
    policy.levels = [EscalationLevel(position=i, **level) for i, level in enumerate(clean)]
    session.add(policy)
    session.flush()
    _place(session, policy, place, [entity.id])
    engine.retime_after_edit(session, [entity.id], now or clock.now())
    return policy


def update_policy(session, policy: EscalationPolicy, entity: Entity | None, data: dict, levels: list[dict],
                  now: datetime | None = None) -> EscalationPolicy:
    """Validate and save; levels keep their identity (a level's id goes with its row through edits and moves),
    so what fired this round stays fired. Re-times the tickets of the old and the new entity."""
    values = _validate(session, entity, data, levels, editing=policy)
    place, clean, ids = values.pop("place"), values.pop("levels"), values.pop("level_ids")
    old_entity_id = policy.entity_id
    moved = entity.id != policy.entity_id
    for key, value in values.items():
        setattr(policy, key, value)
    if moved:
        policy.entity_id, policy.position = entity.id, MAX_PLACE
    existing = {level.id: level for level in policy.levels}
    kept = []
    for position, (level_id, level) in enumerate(zip(ids, clean)):
        row = existing.pop(level_id, None) if level_id is not None else None
        if row is None:
            row = EscalationLevel(**level)
        else:
            row.trigger, row.value, row.actions = level["trigger"], level["value"], level["actions"]
        row.position = position
        kept.append(row)
    policy.levels = kept
    session.flush()
    _place(session, policy, place, {old_entity_id, entity.id})
    session.flush()
    engine.retime_after_edit(session, {old_entity_id, entity.id}, now or clock.now())
    return policy


def delete_policy(session, policy: EscalationPolicy, now: datetime | None = None) -> None:
    """Remove the policy (its tickets' timelines keep its name); re-time its tickets."""
    entity_id = policy.entity_id
    session.delete(policy)
    session.flush()
    for position, each in enumerate(session.scalars(select(EscalationPolicy).where(
            EscalationPolicy.entity_id == entity_id).order_by(EscalationPolicy.position, EscalationPolicy.id))):
        each.position = position
    engine.retime_after_edit(session, [entity_id], now or clock.now())


def set_active(session, policy: EscalationPolicy, active: bool, now: datetime | None = None) -> EscalationPolicy:
    """Switch a policy on or off; re-time its tickets."""
    if policy.is_active != bool(active):
        policy.is_active = bool(active)
        session.flush()
        engine.retime_after_edit(session, [policy.entity_id], now or clock.now())
    return policy


def move(session, policy: EscalationPolicy, offset: int, now: datetime | None = None) -> None:
    """Move a policy up (-1) or down (+1) in its entity's order; at either end nothing changes."""
    ordered = policies_of(session, policy.entity)
    index = ordered.index(policy)
    target = index + offset
    if not 0 <= target < len(ordered):
        return
    ordered[index], ordered[target] = ordered[target], ordered[index]
    for position, each in enumerate(ordered):
        each.position = position
    session.flush()
    engine.retime_after_edit(session, [policy.entity_id], now or clock.now())


# --- the editor's level rows --------------------------------------------------------------------

@dataclass
class LevelRowView:
    row: str
    level_id: str
    trigger: str
    value: str
    actions_json: str
    actions: list = field(default_factory=list)  # builder.ActionRowView
    errors: dict = field(default_factory=dict)  # "trigger", "value", "actions", "" (the level as a whole)


def level_views(session, entity: Entity | None, levels: list[dict], errors: dict | None = None) -> list[LevelRowView]:
    """Each level as an editor row, with its errors (`levels[i]...`) beside its fields and actions."""
    errors = errors or {}
    out = []
    for index, level in enumerate(levels):
        prefix = f"levels[{index}]"
        mine = {k[len(prefix) + 1:]: v for k, v in errors.items() if k.startswith(prefix + ".")}
        if prefix in errors:
            mine[""] = errors[prefix]
        action_errors = {k: v for k, v in mine.items() if k == "actions" or k.startswith("actions[")}
        raw = level.get("actions")
        rows, top = builder.rows_view(session, entity, raw if raw is not None else [], action_errors,
                                      registry=LEVEL_ACTIONS)
        row_id = level.get("row") if LEVEL_ROW.match(str(level.get("row") or "")) else new_row_id()
        out.append(LevelRowView(row_id, str(level.get("id") or ""), str(level.get("trigger") or ""),
                                str(level.get("value") or ""),
                                raw if isinstance(raw, str) else json.dumps(raw or []), rows,
                                {**{k: v for k, v in mine.items() if k not in action_errors},
                                 **({"actions": top} if top else {})}))
    return out


def split_errors(errors: dict) -> tuple[dict, dict]:
    """(errors for the policy's own fields, errors for its levels: "levels" and "levels[i]...")."""
    mine = {k: v for k, v in errors.items() if k == "levels" or k.startswith("levels[")}
    return {k: v for k, v in errors.items() if k not in mine}, mine


def type_groups():
    return builder.type_groups(LEVEL_ACTIONS)


def action_row(session, entity: Entity | None, form, row_id: str | None, type_name: str):
    """A new action row of a level (no `row_id`), or a row drawn again for its newly chosen type."""
    action = builder.action_from_form(form, row_id, type_name, registry=LEVEL_ACTIONS) if row_id else {
        "type": type_name}
    return builder.row_view(session, entity, action, row_id=row_id or None, registry=LEVEL_ACTIONS)


# --- the preview --------------------------------------------------------------------------------

@dataclass
class PreviewLevel:
    number: int
    level: EscalationLevel
    due: LevelDue | None
    passed: bool = False
    fired: bool = False  # this saved level has fired in the current round


@dataclass
class Preview:
    ticket: Ticket
    timezone: str
    policy: EscalationPolicy | None = None  # the draft (the form as it stands) or, when it has errors, the saved one
    draft: bool = False
    errors: dict = field(default_factory=dict)
    in_scope: bool = True
    matches: bool = True
    follows: EscalationPolicy | None = None  # the saved policy the ticket follows now
    window: Window | None = None
    levels: list[PreviewLevel] = field(default_factory=list)
    clock_label: str = ""
    sla_clock: bool = False


def _draft(session, entity: Entity, data: dict, levels: list[dict], editing) -> tuple[EscalationPolicy, list]:
    """The form as a policy never added to the session (the timing code reads it as a saved one), and the saved
    level each of its levels is (None: new)."""
    values = _validate(session, entity, data, levels, editing=editing)
    values.pop("place")
    saved = {level.id for level in editing.levels} if editing else set()
    ids = [i if i in saved else None for i in values.pop("level_ids")]
    clean = values.pop("levels")
    draft = EscalationPolicy(entity_id=entity.id, **values)
    draft.levels = [EscalationLevel(position=i, **level) for i, level in enumerate(clean)]
    return draft, ids


def preview(session, ticket: Ticket, entity: Entity | None, data: dict | None, levels: list[dict] | None,
            editing: EscalationPolicy | None = None, now: datetime | None = None) -> Preview:
    """When each level of the policy (the form as it stands, else the saved one) would fire for `ticket` in the
    current round of the clock it watches: instants from `timing.forecast`. The caller rolls back."""
    now = now or clock.now()
    result = Preview(ticket=ticket, timezone=ticket.entity.timezone, follows=policy_for(session, ticket, now))
    policy = editing
    ids = [level.id for level in editing.levels] if editing else []
    if data is not None and entity is not None:
        try:
            with session.no_autoflush:
                (policy, ids), result.draft = _draft(session, entity, data, levels or [], editing), True
        except DomainError as exc:
            result.errors = exc.errors
    elif data is not None:
        result.errors = {"entity_id": "Choose the entity whose tickets the policy covers."}
    result.policy = policy
    if policy is None:
        return result
    result.clock_label = CLOCK_LABELS.get(policy.clock, policy.clock)
    result.sla_clock = policy.clock in SLA_CLOCKS
    result.in_scope = policy.entity_id in {e.id for e in access.lineage(session, ticket.entity)}
    if policy.conditions:
        context = automation.context_for_event(session, ticket, "escalation_due", {}, actor=None, kind="system",
                                               reply=None, now=now)
        result.matches = rules.compile(policy.conditions, ESCALATION)(context)
    with session.no_autoflush:
        result.window, found = timing.forecast(session, ticket, policy, now)
        fired, _ = timing.fired(session, ticket)
    result.levels = [PreviewLevel(n, level, due, passed=due is not None and due.at <= now,
                                  fired=due is not None and (ids[n - 1], due.cycle) in fired)
                     for n, level, due in found]
    return result



def visible_policies(session, entity_ids: set[int] | None) -> list[EscalationPolicy]:
    """The policies (with their levels) of the entities given (access.visible_entity_ids: None for every entity)."""
    query = (select(EscalationPolicy).options(selectinload(EscalationPolicy.levels))
             .order_by(EscalationPolicy.entity_id, EscalationPolicy.position, EscalationPolicy.id))
    if entity_ids is not None:
        query = query.where(EscalationPolicy.entity_id.in_(entity_ids or [0]))
    return list(session.scalars(query))
