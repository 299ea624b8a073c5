"""What automation rules do: a registry of action types, each validated on save and planned per ticket.

Every action type has parameters that describe themselves (the builder's per-action form is
generated from them), a `check` for its parameters, and a `plan(run, params) -> Plan`: the words
test mode shows ("assign to Dana (4 open)") and, unless it is skipped, `apply()` that makes the
change through `services.tickets` (so it is audited, notified and can trigger further rules).
Test mode calls `plan` only; the engine calls `plan(...).apply()`. One code path decides both.
"""
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from markupsafe import escape
from sqlalchemy import select

from mets.models import PRIORITIES, STATUSES, Entity, SlaRule, Ticket, TicketEvent, User
from mets.models.tickets import STATUS_LABELS
from mets.services import access, automation_assign, mail_templates, mail_variables, notify, outbox, tickets, webhooks
from mets.services.durations import format_minutes, parse_duration
from mets.services.errors import DomainError
from mets.services.notification_settings import parse_addresses

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


def _fixed(pairs):
    return lambda session, entity: list(pairs)


_STATUS_CHOICES = [(s, STATUS_LABELS[s]) for s in STATUSES if s != "new"]
_PRIORITY_CHOICES = [(p, p.capitalize()) for p in PRIORITIES]
_TEMPLATE_CHOICES = [(n, n) for n in mail_templates.NAMES]


# --- validation -------------------------------------------------------------------------------

def validate(session, entity: Entity | None, raw_actions) -> list[dict]:
    """The actions as they will be stored, or DomainError keyed "actions", "actions[i]" or "actions[i].param"."""
    if not isinstance(raw_actions, list):
        raise DomainError({"actions": "The actions must be a list."})
    if not raw_actions:
        raise DomainError({"actions": "Add at least one action."})
    if len(raw_actions) > MAX_ACTIONS:
        raise DomainError({"actions": f"A rule does at most {MAX_ACTIONS} actions."})
    errors, clean = {}, []
    for index, raw in enumerate(raw_actions):
        where = f"actions[{index}]"
        kind = ACTIONS.get(raw.get("type")) if isinstance(raw, dict) else None
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
    return param.choices in (_agents, _sla_rules)  # checked against the database by the action's check


def _snippet_error(label: str, source: str) -> str | None:
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

def _check_assign(session, entity, params) -> dict:
    if params.get("strategy") != "agent":
        return {}
    try:
        user = session.get(User, int(params.get("agent_id", "")))
    except ValueError:
        user = None
    if user is None or not user.is_staff or not user.active:
        return {"agent_id": "Choose an active agent."}
    if entity is not None and not access.is_member(session, user, entity):
        return {"agent_id": f"{user.name} is not a member of {entity.name}."}
    return {}


def _assign_words(session, params) -> str:
    if params.get("strategy") == "agent":
        user = session.get(User, int(params["agent_id"])) if str(params.get("agent_id", "")).isdigit() else None
        return f"Assign to {user.name if user else 'a removed agent'}"
    return "Assign " + dict(automation_assign.STRATEGIES).get(params.get("strategy"), "?").lower()


@action("assign", "Assign", "Assignment",
        Param("strategy", "How", "select", choices=_fixed(automation_assign.STRATEGIES)),
        Param("agent_id", "Agent", "select", show_if={"strategy": ("agent",)}, choices=_agents),
        check=_check_assign, words=_assign_words)
def _assign(run: Run, p: dict) -> Plan:
    agent_id = int(p["agent_id"]) if p.get("strategy") == "agent" else None
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


@action("set_status", "Set status", "Ticket", Param("status", "Status", "select", choices=_fixed(_STATUS_CHOICES)),
        words=lambda s, p: f"Set status to {STATUS_LABELS.get(p.get('status'), p.get('status'))}")
def _set_status(run: Run, p: dict) -> Plan:
    return _status_plan(run, p["status"])


@action("close", "Close the ticket", "Ticket")
def _close(run: Run, p: dict) -> Plan:
    return _status_plan(run, "closed")


@action("set_priority", "Set priority", "Ticket",
        Param("priority", "Priority", "select", choices=_fixed(_PRIORITY_CHOICES)),
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
        words=lambda s, p: "Switch the SLA rule to " + getattr(s.get(SlaRule, int(p["rule_id"])), "name", "?"))
def _switch_sla(run: Run, p: dict) -> Plan:
    rule = run.session.get(SlaRule, int(p["rule_id"]))
    if rule is None:
        raise DomainError("The SLA rule no longer exists.")
    if run.ticket.sla_rule_id == rule.id:
        return Plan(f"SLA rule is already {rule.name}", skipped=True)
    return Plan(f"switch the SLA rule to {rule.name}",
                lambda: tickets.switch_sla_rule(run.session, run.ticket, rule, actor=None, now=run.now))


# --- communication ----------------------------------------------------------------------------

def _variables(run: Run) -> dict:
    return mail_variables.ticket_values(run.ticket, actor=None, changes=run.changes, now=run.now)


def _check_email(session, entity, params) -> dict:
    if not params.get("to") and not params.get("extra"):
        return {"to": "Choose who gets the email."}
    for address in parse_addresses(params.get("extra", "")):
        if why := outbox.refusal(session, address, current_app.config):
            return {"extra": f"{address}: {why}"}
    return {}


@action("send_email", "Send an email", "Communication",
        Param("template", "Template", "select", choices=_fixed(_TEMPLATE_CHOICES)),
        Param("to", "To", "multi", required=False, choices=_fixed(RECIPIENT_CHOICES)),
        Param("extra", "Other addresses", "text", required=False, help="Comma-separated."),
        check=_check_email,
        words=lambda s, p: f"Email {p.get('template')} to " + ", ".join(
            [dict(RECIPIENT_CHOICES).get(t, t).lower() for t in p.get("to", [])] + ([p["extra"]] if p.get("extra") else [])))
def _send_email(run: Run, p: dict) -> Plan:
    found = notify.people(run.session, run.ticket, set(p.get("to", [])), parse_addresses(p.get("extra", "")))
    if not found:
        return Plan(f"email {p['template']}: nobody to send it to", skipped=True)

    def apply():
        shared = _variables(run)
        for person in found.values():
            variables = {**shared, **mail_variables.recipient_values(
                run.ticket, audience=person.audience, recipient_name=person.name or "", recipient_email=person.email)}
            rendered = mail_templates.render(run.session, run.ticket.entity, p["template"], variables)
            if person.audience == "customer":
                rendered = mail_templates.ensure_portal_link(rendered, variables["portal_url"])
            outbox.queue_message(
                run.session, to=person.email, name=person.name, subject=rendered.subject, text=rendered.text,
                html=rendered.html, audience=person.audience, entity=run.ticket.entity, ticket=run.ticket,
                event_name="automation", template_name=p["template"],
                dedupe_key=f"rule:{run.rule_id}:{run.event_id}:{run.index}:{person.email}", now=run.now)
    return Plan(f"email {p['template']} to {', '.join(found)}", apply)


def _check_note(session, entity, params) -> dict:
    message = _snippet_error("Note", params.get("body", ""))
    return {"body": message} if message else {}


@action("add_note", "Add an internal note", "Communication",
        Param("body", "Note", "textarea", help="A template: {{ ticket_number }}, {{ customer_name }}... (sandboxed)."),
        check=_check_note, words=lambda s, p: "Add an internal note")
def _add_note(run: Run, p: dict) -> Plan:
    text = mail_templates.render_snippet(p["body"], _variables(run))
    if run.ticket.status in tickets.FINAL:
        raise DomainError("The ticket is closed: no note can be added.")
    html = "".join(f"<p>{escape(line)}</p>" for line in text.splitlines() if line.strip()) or "<p>(empty)</p>"
    return Plan(f"add an internal note: \u201c{_short(text)}\u201d",
                lambda: tickets.add_reply(run.session, run.ticket, actor=None, body=html, internal=True, via="system",
                                          now=run.now))


def _check_sms(session, entity, params) -> dict:
    if not webhooks.sms_enabled(current_app.config):
        return {"": "SMS is off: set SMS_GATEWAY_URL to a gateway first."}
    numbers = [n for n in (params.get("to") or "").split(",") if n.strip()]
    bad = next((m for n in numbers if (m := webhooks.phone_error(n))), None)
    problems = {"to": bad} if bad else ({} if numbers else {"to": "Enter at least one phone number."})
    if message := _snippet_error("Text", params.get("text", "")):
        problems["text"] = message
    return problems


@action("send_sms", "Send an SMS", "Communication",
        Param("to", "Phone numbers", "text", help="International format, comma-separated: +44 20 7946 0958."),
        Param("text", "Text", "textarea", help="A template, like the note. Cut at 1,600 characters."),
        check=_check_sms, words=lambda s, p: f"SMS {p.get('to')}")
def _send_sms(run: Run, p: dict) -> Plan:
    numbers = [webhooks.normalize_phone(n) for n in p["to"].split(",") if n.strip()]
    text = mail_templates.render_snippet(p["text"], _variables(run))

    def apply():
        for n, number in enumerate(numbers):
            webhooks.queue_sms(run.session, to=number, text=text, entity=run.ticket.entity, ticket=run.ticket,
                               rule_id=run.rule_id, event=run.event,
                               dedupe_key=f"rule:{run.rule_id}:{run.event_id}:{run.index}:{n}", now=run.now)
    return Plan(f"SMS to {', '.join(numbers)}: \u201c{_short(text)}\u201d", apply)


def _check_webhook(session, entity, params) -> dict:
    problems = {}
    if message := webhooks.url_error(params.get("url", "")):
        problems["url"] = message
    body = params.get("body")
    if body:
        try:
            template = json.loads(body)
        except ValueError as exc:
            return {**problems, "body": f"The body is not valid JSON ({exc.msg}, character {exc.pos})."}
        if not isinstance(template, dict):
            problems["body"] = "The body must be a JSON object: {\"key\": \"value\"}."
        elif message := next((m for s in _strings(template) if (m := _snippet_error("Body", s))), None):
            problems["body"] = message
    return problems


def _strings(value):
    """Every string with a template tag in a JSON value (others need no check)."""
    if isinstance(value, str):
        return [value] if "{" in value else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _fill(value, variables: dict):
    """The JSON body with each templated string rendered (values stay strings: no JSON injection)."""
    if isinstance(value, str):
        return mail_templates.render_snippet(value, variables) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    return value


def _default_payload(run: Run) -> dict:
    t = run.ticket
    return {"event": run.event, "rule": {"id": run.rule_id, "name": run.rule_name}, "changes": run.changes,
            "ticket": {"number": t.number, "subject": t.subject, "status": t.status, "priority": t.priority,
                       "category": t.category, "entity": t.entity.slug, "customer_email": t.customer.email,
                       "assignee_email": t.assignee.email if t.assignee else None,
                       "escalation_level": t.escalation_level,
                       "created_at": t.created_at.isoformat(), "updated_at": t.updated_at.isoformat()}}


@action("webhook", "Call a webhook", "Communication",
        Param("url", "URL", "text", help="https://… — POSTed as JSON by a worker, retried on failure."),
        Param("body", "JSON body", "json", required=False,
              help='Leave empty for the standard payload, or a JSON object whose strings may use {{ ticket_number }}.'),
        Param("secret", "Signing secret", "secret", required=False,
              help="Signs each call: X-METS-Signature = sha256 HMAC of timestamp.body."),
        check=_check_webhook, words=lambda s, p: f"POST to {p.get('url')}")
def _webhook(run: Run, p: dict) -> Plan:
    payload = _fill(json.loads(p["body"]), _variables(run)) if p.get("body") else _default_payload(run)
    size = len(json.dumps(payload, ensure_ascii=False).encode())

    def apply():
        webhooks.queue_webhook(run.session, url=p["url"], payload=payload, secret=p.get("secret") or None,
                               entity=run.ticket.entity, ticket=run.ticket, rule_id=run.rule_id, event=run.event,
                               dedupe_key=f"rule:{run.rule_id}:{run.event_id}:{run.index}", now=run.now)
    return Plan(f"POST {size} bytes of JSON to {p['url']}" + (" (signed)" if p.get("secret") else ""), apply)


def _short(text: str, limit: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit - 1] + "\u2026"


@dataclass
class Outcome:
    """What one action did (the execution log keeps these)."""

    type: str
    label: str
    result: str
    ok: bool = True
    skipped: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"type": self.type, "label": self.label, "result": self.result, "ok": self.ok, "skipped": self.skipped}
