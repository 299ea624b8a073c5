"""The automation engine: when <event>, if <conditions>, do <actions> — in the change's transaction.

`services.tickets` calls `ticket_changed` after every change, and the SLA tick calls it for
warnings, breaches and escalations. For each event, the active rules on that trigger whose
entity is the ticket's or one above it (or all entities) run in execution order. A matching
rule's actions go through `services.tickets`, so they are audited (with the rule's id), notified,
and can trigger further rules — up to AUTOMATION_MAX_DEPTH, and never a rule that is already
running further up the chain (a rule does not re-fire on its own change).

Each action runs in a savepoint: one that fails is rolled back alone and recorded, and neither
the change that triggered the rule nor the other actions are lost. Every evaluation is logged in
`rule_executions` (matched or not, what each action did, how long it took).

Rules are compiled once (conditions to closures) and indexed by trigger and entity; the index is
rebuilt when the rules table changes (one cheap query per transaction tells).
"""
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import event as sa_event, func, select
from sqlalchemy.orm import Session

from mets.models import AutomationRule, Reply, RuleExecution, Ticket, User
from mets.services import access, automation_actions as actions, rules, sla_tick
from mets.services.automation_conditions import AUTOMATION
from mets.services.errors import DomainError

log = logging.getLogger("mets.automation")

_STATE = "mets_automation"  # session.info: the running chain (depth, rule ids)
_INDEX = "mets_automation_index"  # session.info: this transaction's rule index
_MUTED = "mets_notify_muted"  # the demo's history: no mail, no rules


# --- the compiled rules -----------------------------------------------------------------------

@dataclass(frozen=True)
class CompiledRule:
    id: int
    name: str
    entity_id: int | None
    trigger: str
    order: tuple
    stop: bool
    actions: tuple
    matches: rules.Condition
    priorities: frozenset | None  # a top-level "priority is/in" condition: other priorities never match


def compile_rule(rule) -> CompiledRule:
    """A rule (row or draft with the same attributes) as closures, ready for many evaluations."""
    return CompiledRule(rule.id, rule.name, rule.entity_id, rule.trigger_event, (rule.execution_order, rule.id or 0),
                        rule.stop_processing, tuple(rule.actions or ()), rules.compile(rule.conditions, AUTOMATION),
                        _required_priorities(rule.conditions))


def _required_priorities(conditions) -> frozenset | None:
    items = conditions.get("all") if isinstance(conditions, dict) else None
    for item in items or ():
        if isinstance(item, dict) and item.get("field") == "priority" and item.get("op") in ("is", "in"):
            value = item.get("value")
            values = value if isinstance(value, list) else [value]
            return frozenset(str(v).casefold() for v in values)
    return None


class RuleIndex:
    """Compiled rules by (trigger, entity id or None), each list in execution order."""

    def __init__(self, compiled):
        self._by_key: dict[tuple, list[CompiledRule]] = defaultdict(list)
        for rule in compiled:
            self._by_key[(rule.trigger, rule.entity_id)].append(rule)
        for bucket in self._by_key.values():
            bucket.sort(key=lambda r: r.order)

    def candidates(self, trigger: str, entity_ids) -> list[CompiledRule]:
        """The rules on `trigger` for all entities or one of `entity_ids`, in execution order."""
        buckets = [self._by_key.get((trigger, None), [])] + [self._by_key.get((trigger, e), []) for e in entity_ids]
        found = [r for b in buckets for r in b]
        return found if len([b for b in buckets if b]) <= 1 else sorted(found, key=lambda r: r.order)

    def __len__(self):
        return sum(len(b) for b in self._by_key.values())


_PROCESS_CACHE: dict = {"version": None, "index": None}


def _index(session) -> RuleIndex:
    """This process's index of active rules, rebuilt when a rule was added, changed or removed."""
    if _INDEX in session.info:
        return session.info[_INDEX]
    # Any saved change moves one of these (the pages stamp updated_at on every edit, toggle and move);
    # the engine's identity keeps two databases in one process (the tests) apart.
    engine = session.get_bind().engine
    version = (id(engine), str(engine.url), *session.execute(
        select(func.count(), func.max(AutomationRule.updated_at), func.max(AutomationRule.id))).one())
    if _PROCESS_CACHE["version"] != version:
        rows = session.scalars(select(AutomationRule).where(AutomationRule.is_active.is_(True))).all()
        compiled = []
        for row in rows:
            try:
                compiled.append(compile_rule(row))
            except DomainError as exc:  # saved before a field left the vocabulary: skip it, say so
                log.warning("automation rule %s cannot run: %s", row.id, exc.errors)
        _PROCESS_CACHE.update(version=version, index=RuleIndex(compiled))
    session.info[_INDEX] = _PROCESS_CACHE["index"]
    return session.info[_INDEX]


@sa_event.listens_for(Session, "after_commit")
@sa_event.listens_for(Session, "after_rollback")
def _forget_index(session) -> None:
    session.info.pop(_INDEX, None)


# --- the context of one event -----------------------------------------------------------------

def actor_kind(actor: User | None, rule_id: int | None) -> str:
    if rule_id is not None:
        return "automation"
    if actor is None:
        return "system"
    return "agent" if actor.is_staff else "customer"


def context_for_event(session, ticket: Ticket, event: str, changes: dict, *, actor: User | None,
                      kind: str, reply: Reply | None, now: datetime) -> rules.Context:
    """The evaluation context: the ticket now, the event's changes (assignee ids as emails)."""
    changes = dict(changes or {})
    pair = changes.get("assignee_id")
    if isinstance(pair, list) and len(pair) == 2:
        changes["assignee_email"] = [getattr(session.get(User, i), "email", None) if i else None for i in pair]
    return rules.context_for(ticket, now=now, changes=changes, session=session, actor=actor, actor_kind=kind,
                             reply=reply, event=event)


# --- running ----------------------------------------------------------------------------------

def ticket_changed(session, change, actor: User | None, now: datetime) -> None:
    """Run the rules for every event of one `services.tickets` change."""
    for row in change.events:
        reply = change.reply if row.event == "reply_added" else None
        run_event(session, change.ticket, row.event, event_id=row.id, changes=row.changes, actor=actor,
                  rule_id=row.rule_id, reply=reply, now=now)


def _on_sla_event(session, ticket: Ticket, event: dict) -> None:
    run_event(session, ticket, event["event"], event_id=event["id"], changes=event["changes"], actor=None,
              rule_id=None, reply=None, now=event["at"])


for _name in ("sla_breach_warning", "sla_breach_occurred", "escalation_due"):
    sla_tick.on(_name)(_on_sla_event)


def run_event(session, ticket: Ticket, event: str, *, event_id: int | None, changes: dict, actor: User | None,
              rule_id: int | None, reply: Reply | None, now: datetime) -> int:
    """Evaluate the rules on `event` for this ticket and run the matching ones; returns how many matched."""
    if session.info.get(_MUTED):
        return 0
    with session.no_autoflush:
        chain = [e.id for e in access.lineage(session, ticket.entity)]
        candidates = _index(session).candidates(event, chain)
    if not candidates:
        return 0
    state = session.info.setdefault(_STATE, {"depth": 0, "running": []})
    depth = state["depth"] + 1
    if depth > current_app.config["AUTOMATION_MAX_DEPTH"]:
        _log_depth_stop(session, candidates, ticket, event, event_id, state, depth, now)
        return 0
    kind = actor_kind(actor, rule_id)
    matched = 0
    context = None
    for rule in candidates:
        if rule.id in state["running"]:
            continue  # the change comes from this rule's own actions (or ones it caused)
        started = time.perf_counter()
        if context is None:  # built again after actions ran: later rules see the ticket as it is now
            context = context_for_event(session, ticket, event, changes, actor=actor, kind=kind, reply=reply, now=now)
        record = RuleExecution(rule_id=rule.id, ticket_id=ticket.id, ticket_event_id=event_id, event=event,
                               depth=depth, at=now, outcomes=[], actions_run=0)
        try:
            with session.no_autoflush:
                hit = _matches(rule, ticket, context)
        except Exception as exc:  # a broken condition must not break the ticket change
            log.exception("automation rule %s failed to evaluate", rule.id)
            hit, record.error = False, f"Conditions failed: {type(exc).__name__}: {exc}"
        record.matched = hit
        if hit:
            matched += 1
            _run_actions(session, rule, ticket, event, event_id, context.changes, now, state, depth, record)
            context = None
        record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        session.add(record)
        if hit and rule.stop:
            break
    return matched


def _matches(rule: CompiledRule, ticket: Ticket, context) -> bool:
    if rule.priorities is not None and ticket.priority.casefold() not in rule.priorities:
        return False  # the index's shortcut: the rule's first condition cannot hold
    return rule.matches(context)


def _run_actions(session, rule: CompiledRule, ticket, event, event_id, changes, now, state, depth, record) -> None:
    """Each action in order, in a savepoint of its own; failures are recorded and the rest go on."""
    from mets.services import tickets  # tickets imports this module

    run = actions.Run(session, ticket, rule.id, rule.name, event, event_id, changes, now)
    outer_depth = state["depth"]
    state["depth"], state["running"] = depth, [*state["running"], rule.id]
    errors = []
    try:
        for index, params in enumerate(rule.actions):
            run.index = index
            outcome = _run_one(session, run, params, tickets)
            record.outcomes = [*record.outcomes, outcome]
            if outcome["ok"] and not outcome["skipped"]:
                record.actions_run += 1
            elif not outcome["ok"]:
                errors.append(f"{outcome['label']}: {outcome['result']}")
    finally:
        state["depth"], state["running"] = outer_depth, state["running"][:-1]
    record.error = "; ".join(errors) or None


def _run_one(session, run: actions.Run, params: dict, tickets) -> dict:
    kind = actions.ACTIONS.get(params.get("type"))
    label = kind.label if kind else str(params.get("type"))
    if kind is None:
        return {"type": params.get("type"), "label": label, "result": "Unknown action", "ok": False, "skipped": False}
    try:
        with session.begin_nested():
            plan = kind.plan(run, params)
            if plan.apply is not None and not plan.skipped:
                with tickets.acting_rule(session, run.rule_id):
                    plan.apply()
                session.flush()
        return {"type": kind.name, "label": label, "result": _sentence(plan.text), "ok": True, "skipped": plan.skipped}
    except DomainError as exc:
        return {"type": kind.name, "label": label, "result": _message(exc), "ok": False, "skipped": False}
    except Exception as exc:  # recorded, never lost silently; the ticket change stands
        log.exception("automation rule %s: action %s failed", run.rule_id, kind.name)
        return {"type": kind.name, "label": label, "result": f"{type(exc).__name__}: {exc}", "ok": False,
                "skipped": False}


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "\u201d")) else ".")


def _message(exc: DomainError) -> str:
    return "; ".join(str(v) for v in exc.errors.values()) if isinstance(exc.errors, dict) else str(exc.errors)


def _log_depth_stop(session, candidates, ticket, event, event_id, state, depth, now) -> None:
    """Rules that would have run past the depth limit: logged as not run, so the loop is visible."""
    limit = depth - 1
    for rule in candidates:
        if rule.id in state["running"]:
            continue
        session.add(RuleExecution(rule_id=rule.id, ticket_id=ticket.id, ticket_event_id=event_id, event=event,
                                  depth=depth, at=now, matched=False, outcomes=[], actions_run=0,
                                  error=f"Not run: rules changed this ticket {limit} levels deep "
                                        f"(AUTOMATION_MAX_DEPTH = {limit}); stopped to prevent a loop."))
    log.warning("automation depth limit reached on ticket %s (%s)", ticket.number, event)
