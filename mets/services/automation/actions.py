"""What automation rules do: a registry of action types, each validated on save and planned per ticket.

Every action type has parameters that describe themselves (the builder's per-action form is
generated from them), a `check` for its parameters, and a `plan(run, params) -> Plan`: the words
test mode shows ("assign to Dana (4 open)") and, unless it is skipped, `apply()` that makes the
change through `services.tickets` (so it is audited, notified and can trigger further rules).
Test mode calls `plan` only; the engine calls `plan(...).apply()`. One code path decides both.
"""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mets.models import PRIORITIES, STATUSES, Entity, SlaRule, Ticket, TicketEvent, User
from mets.models.tickets import STATUS_LABELS
from mets.services import tickets
from mets.services.directory import access, categories
from mets.services.automation import assign as automation_assign
from mets.services.notifications import templates as mail_templates
from mets.services.durations import format_minutes, parse_duration
from mets.services.errors import DomainError
from mets.services.validation import parse_id

MAX_ACTIONS = 20
MAX_TEXT = 5_000
RECIPIENT_CHOICES = (("customer", "The customer"), ("assignee", "The assignee"), ("agents", "The entity's agents"),
                     ("managers", "The entity's managers"), ("admins", "Admins"))


# --- describing parameters --------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One field of an action's form. `choices(session, entity)` lists (value, label) for select/multi."""

    name: str
    label: str
    kind: str  # select multi text textarea duration secret json
    required: bool = True
    help: str = ""
    show_if: dict | None = None  # {"strategy": ("agent",)}: only asked when that parameter has one of these values
    choices: Callable[[Any, Entity | None], list[tuple[str, str]]] | None = None

    def options(self, session, entity: Entity | None) -> list[tuple[str, str]]:
        return self.choices(session, entity) if self.choices else []

    def shown(self, params: dict) -> bool:
        return self.show_if is None or all(params.get(k) in v for k, v in self.show_if.items())


@dataclass
class Plan:
    """What an action would do to one ticket: `text` for people, `apply` to do it (None: nothing to do)."""

    text: str
    apply: Callable[[], Any] | None = None
    skipped: bool = False  # nothing to do, and that is fine (already so, or kept as an agent set it)


@dataclass
class Run:
    """The ticket, event and rule an action runs for."""

    session: Any
    ticket: Ticket
    rule_id: int | None
    rule_name: str
    event: str
    event_id: int | None
    changes: dict
    now: datetime
    index: int = 0


@dataclass(frozen=True)
class ActionType:
    name: str
    label: str
    group: str
    params: tuple[Param, ...]
    plan: Callable[[Run, dict], Plan]
    check: Callable[[Any, Entity | None, dict], dict] = lambda session, entity, params: {}  # param -> message
    words: Callable[[Any, dict], str] | None = None  # the rules list's one line


ACTIONS: dict[str, ActionType] = {}


def action(name: str, label: str, group: str, *params: Param, check=None, words=None):
    """Register an action type whose planner is the decorated function."""
    def register(plan):
        ACTIONS[name] = ActionType(name, label, group, params, plan, check or (lambda s, e, p: {}), words)
        return plan
    return register


# --- choices ----------------------------------------------------------------------------------

def _agents(session, entity: Entity | None) -> list[tuple[str, str]]:
    users = access.members_of(session, entity) if entity is not None else session.scalars(
        select(User).where(User.kind == "staff", User.active.is_(True)).order_by(User.name))
    return [(str(u.id), f"{u.name} <{u.email}>") for u in users]


def _sla_rules(session, entity: Entity | None) -> list[tuple[str, str]]:
    query = select(SlaRule).where(SlaRule.is_active.is_(True)).order_by(SlaRule.entity_id, SlaRule.position)
    if entity is not None:
        query = query.where(SlaRule.entity_id.in_([e.id for e in access.lineage(session, entity)]))
    return [(str(r.id), f"{r.name} ({r.entity.name})") for r in session.scalars(query)]


def _categories(session, entity: Entity | None) -> list[tuple[str, str]]:
    """The categories a rule of `entity` may set: its list (own or inherited); for a rule of every entity, or an
    entity without a list, every active category of the install."""
    names = categories.categories_for(session, entity).names if entity is not None else ()
    if not names and session is not None:
        names = categories.all_category_names(session)
    return [(n, n) for n in names]


def fixed(pairs):
    return lambda session, entity: list(pairs)


_STATUS_CHOICES = [(s, STATUS_LABELS[s]) for s in STATUSES if s != "new"]
_PRIORITY_CHOICES = [(p, p.capitalize()) for p in PRIORITIES]


# --- validation -------------------------------------------------------------------------------

def validate(session, entity: Entity | None, raw_actions, registry: dict | None = None) -> list[dict]:
    """The actions as they will be stored, or DomainError keyed "actions", "actions[i]" or "actions[i].param".

    `registry` is the action types offered (default: automation's; escalation levels offer their own)."""
    registry = ACTIONS if registry is None else registry
    if not isinstance(raw_actions, list):
        raise DomainError({"actions": "The actions must be a list."})
    if not raw_actions:
        raise DomainError({"actions": "Add at least one action."})
    if len(raw_actions) > MAX_ACTIONS:
        raise DomainError({"actions": f"A rule does at most {MAX_ACTIONS} actions."})
    errors, clean = {}, []
    for index, raw in enumerate(raw_actions):
        where = f"actions[{index}]"
        kind = registry.get(raw.get("type")) if isinstance(raw, dict) else None
        if kind is None:
            name = raw.get("type") if isinstance(raw, dict) else raw
            errors[where] = f"Unknown action {name!r}." if name else "Choose what this action does."
            continue
        params, problems = _params(kind, raw)
        problems = problems or kind.check(session, entity, params)
        errors.update({f"{where}.{k}" if k else where: v for k, v in problems.items()})
        clean.append({"type": kind.name, **params})
    if errors:
        raise DomainError(errors)
    return clean


def _params(kind: ActionType, raw: dict) -> tuple[dict, dict]:
    """The declared parameters that are shown, trimmed; a message for each required one left empty."""
    params, problems = {}, {}
    for param in kind.params:
        if not param.shown(raw):
            continue
        value = raw.get(param.name)
        if isinstance(value, str):
            value = value.strip()
        if value in (None, "", []):
            if param.required:
                problems[param.name] = f"{param.label}: this is required."
            continue
        if param.kind == "multi":
            value = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        elif not isinstance(value, str):
            value = str(value)
        if param.kind in ("text", "textarea", "json", "secret") and len(value) > MAX_TEXT:
            problems[param.name] = f"{param.label}: at most {MAX_TEXT:,} characters."
        elif param.kind in ("select", "multi") and param.choices is not None and not _dynamic(param):
            allowed = {v for v, _ in param.options(None, None)}
            bad = [v for v in (value if isinstance(value, list) else [value]) if v not in allowed]
            if bad:
                problems[param.name] = f"{param.label}: {bad[0]!r} is not a choice."
        params[param.name] = value
    return params, problems


def _dynamic(param: Param) -> bool:
    return param.choices in (_agents, _sla_rules, _categories)  # checked against the database by the action's check


def snippet_error(label: str, source: str) -> str | None:
    message = mail_templates.check_snippet(source)
    return f"{label}: {message}" if message else None


def describe(session, action_data: dict) -> str:
    """One line for the rules list ("Assign by skill", "Set priority to High")."""
    kind = ACTIONS.get(action_data.get("type"))
    if kind is None:
        return f"Unknown action {action_data.get('type')!r}"
    return kind.words(session, action_data) if kind.words else kind.label


# --- guarding agents' changes -----------------------------------------------------------------

def kept_by_agent(session, ticket: Ticket, key: str, new_value) -> str | None:
    """Who set `key` by hand, when a rule setting it to `new_value` would undo that agent's change.

    Manual override: the latest change of the field was an agent's, from exactly this value.
    Moving on (resolved -> closed, high -> urgent) is not undoing, and stays allowed.
    """
    rows = session.execute(select(TicketEvent.changes, TicketEvent.actor_id, TicketEvent.rule_id)
                           .where(TicketEvent.ticket_id == ticket.id)
                           .order_by(TicketEvent.at.desc(), TicketEvent.id.desc()).limit(200))
    for changes, actor_id, rule_id in rows:
        pair = (changes or {}).get(key)
        if not (isinstance(pair, list) and len(pair) == 2):
            continue
        if actor_id is None or rule_id is not None or pair[0] != new_value:
            return None
        actor = session.get(User, actor_id)
        return actor.name if actor is not None and actor.is_staff else None
    return None


def _kept(name: str, what: str) -> Plan:
    return Plan(f"leave {what} as {name} set it (an agent's change is never undone)", skipped=True)


# --- assignment and ticket fields -------------------------------------------------------------

def _get(session, model, raw):
    """The row whose id `raw` (a rule's saved parameter) names, or None (never an overflowing query)."""
    row_id = parse_id(raw)
    return session.get(model, row_id) if row_id is not None else None


def _check_assign(session, entity, params) -> dict:
    if params.get("strategy") != "agent":
        return {}
    user = _get(session, User, params.get("agent_id"))
    if user is None or not user.is_staff or not user.active:
        return {"agent_id": "Choose an active agent."}
    if entity is not None and not access.is_member(session, user, entity):
        return {"agent_id": f"{user.name} is not a member of {entity.name}."}
    return {}


def _assign_words(session, params) -> str:
    if params.get("strategy") == "agent":
        user = _get(session, User, params.get("agent_id"))
        return f"Assign to {user.name if user else 'a removed agent'}"
    return "Assign " + dict(automation_assign.STRATEGIES).get(params.get("strategy"), "?").lower()


@action("assign", "Assign", "Assignment",
        Param("strategy", "How", "select", choices=fixed(automation_assign.STRATEGIES)),
        Param("agent_id", "Agent", "select", show_if={"strategy": ("agent",)}, choices=_agents),
        check=_check_assign, words=_assign_words)
def _assign(run: Run, p: dict) -> Plan:
    agent_id = parse_id(p.get("agent_id")) if p.get("strategy") == "agent" else None
    chosen = automation_assign.pick(run.session, run.ticket, p["strategy"], agent_id)
    if chosen.agent is None:
        raise DomainError(f"Nobody to assign: {chosen.reason}.")
    if chosen.agent.id == run.ticket.assignee_id:
        return Plan(f"keep {chosen.text}: already assigned", skipped=True)
    if who := kept_by_agent(run.session, run.ticket, "assignee_id", chosen.agent.id):
        return _kept(who, "the assignee")
    return Plan(f"assign to {chosen.text}", lambda: tickets.assign(run.session, run.ticket, chosen.agent,
                                                                     actor=None, now=run.now))


def _status_plan(run: Run, status: str) -> Plan:
    label = STATUS_LABELS[status]
    if run.ticket.status == status:
        return Plan(f"status is already {label}", skipped=True)
    if run.ticket.status in tickets.FINAL:
        raise DomainError("The ticket is closed: its status cannot change.")
    if who := kept_by_agent(run.session, run.ticket, "status", status):
        return _kept(who, "the status")
    return Plan(f"set status to {label}", lambda: tickets.change_status(run.session, run.ticket, status,
                                                                         actor=None, now=run.now))


@action("set_status", "Set status", "Ticket", Param("status", "Status", "select", choices=fixed(_STATUS_CHOICES)),
        words=lambda s, p: f"Set status to {STATUS_LABELS.get(p.get('status'), p.get('status'))}")
def _set_status(run: Run, p: dict) -> Plan:
    return _status_plan(run, p["status"])


@action("close", "Close the ticket", "Ticket")
def _close(run: Run, p: dict) -> Plan:
    return _status_plan(run, "closed")


@action("set_priority", "Set priority", "Ticket",
        Param("priority", "Priority", "select", choices=fixed(_PRIORITY_CHOICES)),
        words=lambda s, p: f"Set priority to {str(p.get('priority')).capitalize()}")
def _set_priority(run: Run, p: dict) -> Plan:
    new = p["priority"]
    if run.ticket.priority == new:
        return Plan(f"priority is already {new.capitalize()}", skipped=True)
    if who := kept_by_agent(run.session, run.ticket, "priority", new):
        return _kept(who, "the priority")
    return Plan(f"raise priority to {new.capitalize()}" if PRIORITIES.index(new) > PRIORITIES.index(
        run.ticket.priority) else f"lower priority to {new.capitalize()}",
        lambda: tickets.update_fields(run.session, run.ticket, {"priority": new}, actor=None, now=run.now))


def _check_category(session, entity, params) -> dict:
    allowed = {v for v, _ in _categories(session, entity)}
    if params.get("category") in allowed:
        return {}
    where = f"{entity.name}'s categories" if entity is not None else "the categories of an entity"
    return {"category": f"Category: choose one of {where} (Admin › Entities › Categories)."}


@action("set_category", "Set category", "Ticket", Param("category", "Category", "select", choices=_categories),
        check=_check_category, words=lambda s, p: f"Set category to {p.get('category')}")
def _set_category(run: Run, p: dict) -> Plan:
    new = p["category"]
    if (run.ticket.category or "").casefold() == new.casefold():
        return Plan(f"category is already {run.ticket.category}", skipped=True)
    if who := kept_by_agent(run.session, run.ticket, "category", new):
        return _kept(who, "the category")
    # The ticket's entity's list decides (a rule of every entity may name a category this one lacks: a failure).
    categories.check_category(run.session, run.ticket.entity, new)
    return Plan(f"set category to {new}",
                lambda: tickets.update_fields(run.session, run.ticket, {"category": new}, actor=None, now=run.now))


@action("escalate", "Escalate (raise the level, emit escalation_due)", "SLA",
        Param("reason", "Reason", "text", required=False, help="Shown in the ticket's history."))
def _escalate(run: Run, p: dict) -> Plan:
    if run.ticket.status in tickets.FINAL:
        raise DomainError("A closed ticket cannot be escalated.")
    level = run.ticket.escalation_level + 1
    reason = p.get("reason") or f"rule {run.rule_name}"
    return Plan(f"escalate to level {level}", lambda: tickets.escalate(run.session, run.ticket, actor=None,
                                                                       reason=reason, now=run.now))


# --- SLA --------------------------------------------------------------------------------------

def _check_duration(session, entity, params) -> dict:
    try:
        parse_duration(params.get("duration", ""))
    except ValueError as exc:
        return {"duration": str(exc)}
    return {}


@action("extend_sla", "Extend the SLA deadlines", "SLA",
        Param("duration", "By", "duration", help='Business time, e.g. "2h" or "1d 4h".'),
        check=_check_duration, words=lambda s, p: f"Extend the SLA deadlines by {p.get('duration')}")
def _extend_sla(run: Run, p: dict) -> Plan:
    minutes = parse_duration(p["duration"])
    if run.ticket.sla_rule is None:
        raise DomainError("This ticket has no SLA rule: there is no deadline to extend.")
    due = run.ticket.sla_nearest_due
    return Plan(f"extend every SLA deadline by {format_minutes(minutes)}"
                + (f" (nearest due now {due:%Y-%m-%d %H:%M} UTC)" if due else ""),
                lambda: tickets.extend_sla(run.session, run.ticket, minutes, actor=None, now=run.now))


def _check_sla_rule(session, entity, params) -> dict:
    allowed = {v for v, _ in _sla_rules(session, entity)}
    return {} if params.get("rule_id") in allowed else {"rule_id": "Choose an active SLA rule this rule's entity uses."}


@action("switch_sla", "Switch the SLA rule", "SLA", Param("rule_id", "SLA rule", "select", choices=_sla_rules),
        check=_check_sla_rule,
        words=lambda s, p: "Switch the SLA rule to " + getattr(_get(s, SlaRule, p.get("rule_id")), "name", "?"))
def _switch_sla(run: Run, p: dict) -> Plan:
    rule = _get(run.session, SlaRule, p.get("rule_id"))
    if rule is None:
        raise DomainError("The SLA rule no longer exists.")
    if run.ticket.sla_rule_id == rule.id:
        return Plan(f"SLA rule is already {rule.name}", skipped=True)
    return Plan(f"switch the SLA rule to {rule.name}",
                lambda: tickets.switch_sla_rule(run.session, run.ticket, rule, actor=None, now=run.now))

