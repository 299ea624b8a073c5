"""Automation rules as admins edit them: form values checked and stored, order, and per-rule analytics.

The engine (services/automation.py) reads rules; this module writes them and reads their
execution log. Rules run per trigger in (execution_order, id) order; orders are kept as 10, 20, ...
so the list shows one sequence across triggers and a drag within one trigger's list only swaps
the slots those rules hold.
"""
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import joinedload

from mets import clock
from mets.models import TRIGGERS, AutomationRule, Entity, RuleExecution
from mets.services.sla import admin as sla_rules
from mets.services.automation import actions
from mets.services import rules
from mets.services.automation.conditions import AUTOMATION
from mets.services.errors import DomainError, check
from mets.services.validation import parse_id, text_error

TRIGGER_LABELS = {
    "ticket_created": "Ticket created",
    "ticket_updated": "Ticket updated",
    "reply_added": "Reply added",
    "status_changed": "Status changed",
    "priority_changed": "Priority changed",
    "assigned_to_changed": "Assignee changed",
    "sla_breach_warning": "SLA breach warning",
    "sla_breach_occurred": "SLA breached",
    "escalation_due": "Escalation due",
}
ORDER_STEP = 10
WINDOWS = (7, 30)  # days the list counts over


# --- form values ------------------------------------------------------------------------------

def _flag(value) -> bool:
    return str(value).strip().lower() in ("1", "y", "yes", "on", "true") if isinstance(value, str) else bool(value)


def _entity(session, raw, errors: dict) -> Entity | None:
    if raw in (None, "", 0, "0"):
        return None
    entity_id = parse_id(raw)
    entity = session.get(Entity, entity_id) if entity_id is not None else None
    if entity is None:
        errors["entity_id"] = "Choose an entity, or all entities."
    return entity


def parse_actions(raw) -> list:
    """The form's actions (JSON text or a list) as a list; DomainError on "actions" when it is not one."""
    if isinstance(raw, str):
        if not raw.strip():
            raw = []
        else:
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise DomainError({"actions": f"The actions are not valid JSON ({exc.msg} at character {exc.pos})."
                                              " Reload the page and build them again."}) from None
    if raw is None:
        raw = []
    if not isinstance(raw, list) or not all(isinstance(a, dict) for a in raw):
        raise DomainError({"actions": "The actions must be a list of actions."})
    return raw


def validate_rule(session, data: dict) -> dict:
    """Form values as AutomationRule column values; DomainError naming every field (and action field) at fault.

    Parameters an action hides (show_if) are dropped by `actions.validate`, as the page hides them.
    """
    errors: dict[str, str] = {}
    values: dict = {"name": (data.get("name") or "").strip()}
    if msg := text_error(data.get("name"), "Name", 200):
        errors["name"] = msg
    entity = _entity(session, data.get("entity_id"), errors)
    values["entity_id"] = entity.id if entity else None
    trigger = (data.get("trigger_event") or "").strip()
    if trigger not in TRIGGERS:
        errors["trigger_event"] = "Choose the event that runs the rule."
    values["trigger_event"] = trigger
    try:
        values["conditions"] = rules.parse(data.get("conditions"), AUTOMATION, "conditions")
    except DomainError as exc:
        errors.update(exc.errors)
    try:
        raw_actions = parse_actions(data.get("actions"))
        if not raw_actions:
            errors["actions"] = "Add at least one action: a rule with none does nothing."
        elif "entity_id" not in errors:
            values["actions"] = actions.validate(session, entity, raw_actions)
    except DomainError as exc:
        errors.update(exc.errors)
    values["stop_processing"] = _flag(data.get("stop_processing", False))
    values["is_active"] = _flag(data.get("is_active", False))
    check(errors)
    return values


def form_values(rule: AutomationRule) -> dict:
    """A stored rule as the form shows it (conditions and actions as JSON text)."""
    return {"name": rule.name, "entity_id": "" if rule.entity_id is None else str(rule.entity_id),
            "trigger_event": rule.trigger_event, "stop_processing": rule.stop_processing,
            "is_active": rule.is_active, "conditions": json.dumps(rule.conditions) if rule.conditions else "",
            "actions": json.dumps([_masked(a) for a in rule.actions or []])}


# A saved webhook secret never goes back to the browser: the form shows this instead, and saving it
# unchanged keeps the stored secret (of the webhook with the same URL).
SECRET_KEPT = "(saved secret)"


def _masked(action: dict) -> dict:
    return {**action, "secret": SECRET_KEPT} if action.get("secret") else action


def _unmasked(raw_actions: list, stored: list) -> list:
    """The form's actions with each kept secret put back; a kept secret whose URL changed must be entered again."""
    saved = {a.get("url"): a["secret"] for a in stored or [] if a.get("type") == "webhook" and a.get("secret")}
    out = []
    for index, action in enumerate(raw_actions):
        if action.get("secret") == SECRET_KEPT:
            if action.get("url") not in saved:
                raise DomainError({f"actions[{index}].secret": "The URL changed: enter the signing secret again."})
            action = {**action, "secret": saved[action["url"]]}
        out.append(action)
    return out


# --- saving and ordering ----------------------------------------------------------------------

def list_rules(session, trigger: str | None = None) -> list[AutomationRule]:
    """Every rule (or one trigger's) in the order the engine tries them."""
    query = select(AutomationRule).options(joinedload(AutomationRule.entity))
    if trigger:
        query = query.where(AutomationRule.trigger_event == trigger)
    return list(session.scalars(query.order_by(AutomationRule.execution_order, AutomationRule.id)))


def by_trigger(session, trigger: str | None = None) -> list[tuple[str, list[AutomationRule]]]:
    """(trigger, its rules in order) for each trigger that has rules (or the one asked for, even empty)."""
    grouped: dict[str, list[AutomationRule]] = {t: [] for t in TRIGGERS}
    for rule in list_rules(session, trigger):
        grouped.setdefault(rule.trigger_event, []).append(rule)
    return [(t, found) for t, found in grouped.items() if found or t == trigger]


def create_rule(session, data: dict, user=None, now: datetime | None = None) -> AutomationRule:
    """Validate and add a rule after every other one (off unless the form switched it on)."""
    values = validate_rule(session, data)
    now = now or clock.now()
    last = session.scalar(select(func.max(AutomationRule.execution_order)))
    rule = AutomationRule(execution_order=(last or 0) + ORDER_STEP, created_at=now, updated_at=now,
                          updated_by_id=getattr(user, "id", None), **values)
    session.add(rule)
    session.flush()
    return rule


def update_rule(session, rule: AutomationRule, data: dict, user=None, now: datetime | None = None) -> AutomationRule:
    """Validate and save; records who saved it and when."""
    if isinstance(data.get("actions"), (str, list)):
        data = {**data, "actions": _unmasked(parse_actions(data["actions"]), rule.actions)}
    values = validate_rule(session, data)
    for key, value in values.items():
        setattr(rule, key, value)
    rule.updated_at = now or clock.now()
    rule.updated_by_id = getattr(user, "id", None)
    session.flush()
    return rule


def delete_rule(session, rule: AutomationRule) -> None:
    """Remove the rule (its execution log goes with it)."""
    session.delete(rule)
    session.flush()


def set_active(session, rule: AutomationRule, active: bool, user=None, now: datetime | None = None):
    """Switch a rule on or off."""
    if rule.is_active != bool(active):
        rule.is_active = bool(active)
        rule.updated_at = now or clock.now()
        rule.updated_by_id = getattr(user, "id", None)
        session.flush()
    return rule


def reorder(session, ordered_ids, now: datetime | None = None) -> list[AutomationRule]:
    """Put these rules in this order: all of them, or some (one trigger's list) within the slots they hold.

    Every rule is then renumbered 10, 20, ... DomainError for an unknown or repeated id.
    """
    try:
        ids = [int(i) for i in ordered_ids]
    except (TypeError, ValueError):
        raise DomainError("The new order could not be read: reload the page and try again.") from None
    current = list_rules(session)
    by_id = {r.id: r for r in current}
    if not ids or len(ids) != len(set(ids)) or not set(ids) <= set(by_id):
        raise DomainError("The new order lists rules that do not exist (any more) or lists one twice: "
                          "reload the page and try again.")
    incoming, chosen = iter(ids), set(ids)
    ordered = [by_id[next(incoming)] if r.id in chosen else r for r in current]
    now = now or clock.now()
    for index, rule in enumerate(ordered, start=1):
        if rule.execution_order != index * ORDER_STEP:
            rule.execution_order = index * ORDER_STEP
            rule.updated_at = now  # every process's rule index notices the new order by this stamp
    session.flush()
    return ordered


def moved(rules_in_list: list[AutomationRule], index: int, offset: int) -> list[int]:
    """The ids of a list with the rule at `index` moved up (-1) or down (+1): what the up/down buttons send."""
    ids = [r.id for r in rules_in_list]
    target = index + offset
    if 0 <= target < len(ids):
        ids[index], ids[target] = ids[target], ids[index]
    return ids


# --- in words ---------------------------------------------------------------------------------

def describe_actions(session, rule_actions) -> list[str]:
    """Each action in one line, for the list and the rule page."""
    out = []
    for action in rule_actions or []:
        try:
            out.append(actions.describe(session, action))
        except Exception:  # a stored action the engine no longer knows must not break the list
            out.append(f"{action.get('type', '?')} (unknown action)")
    return out


def describe_conditions(conditions) -> str:
    """The rule's conditions in words, as the SLA rules list writes them."""
    return sla_rules.describe_conditions(conditions, AUTOMATION)


# --- analytics --------------------------------------------------------------------------------

@dataclass
class Counts:
    evaluated: int = 0
    matched: int = 0
    actions_run: int = 0
    errors: int = 0


@dataclass
class RuleStats:
    days: dict[int, Counts] = field(default_factory=lambda: {d: Counts() for d in WINDOWS})
    last_fired: datetime | None = None

    @property
    def week(self) -> Counts:
        return self.days[7]

    @property
    def month(self) -> Counts:
        return self.days[30]


def stats(session, rule_ids, now: datetime | None = None) -> dict[int, RuleStats]:
    """Counts over the last 7 and 30 days (an execution exactly N days old counts) and the last match kept.

    One grouped query with conditional sums over the last 30 days of rule_executions (its (rule_id,
    at) index), and one for the last match (the log keeps AUTOMATION_LOG_DAYS).
    """
    ids = list(rule_ids)
    out = {i: RuleStats() for i in ids}
    if not ids:
        return out
    now = now or clock.now()
    E = RuleExecution
    columns = []
    for days in WINDOWS:
        since = and_(E.at >= now - timedelta(days=days), E.at <= now)
        columns += [func.sum(case((since, 1), else_=0)),
                    func.sum(case((and_(since, E.matched.is_(True)), 1), else_=0)),
                    func.sum(case((since, E.actions_run), else_=0)),
                    func.sum(case((and_(since, E.error.is_not(None)), 1), else_=0))]
    query = (select(E.rule_id, *columns)
             .where(E.rule_id.in_(ids), E.at >= now - timedelta(days=max(WINDOWS))).group_by(E.rule_id))
    for rule_id, last_fired in session.execute(select(E.rule_id, func.max(E.at)).where(
            E.rule_id.in_(ids), E.matched.is_(True)).group_by(E.rule_id)):
        out[rule_id].last_fired = last_fired
    for rule_id, *sums in session.execute(query):
        result = out[rule_id]
        for n, days in enumerate(WINDOWS):
            result.days[days] = Counts(*(int(v or 0) for v in sums[n * 4:n * 4 + 4]))
    return out


def recent_executions(session, rule: AutomationRule, limit: int = 50) -> list[RuleExecution]:
    """The rule's latest executions, newest first, with their tickets."""
    query = (select(RuleExecution).options(joinedload(RuleExecution.ticket))
             .where(RuleExecution.rule_id == rule.id)
             .order_by(RuleExecution.at.desc(), RuleExecution.id.desc()).limit(limit))
    return list(session.scalars(query))
