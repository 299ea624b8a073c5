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
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from mets import events, transaction
from mets.models import AutomationRule, Reply, RuleExecution, Ticket, User
from mets.services import rules, tickets
from mets.services.automation import actions
from mets.services.automation import messages  # noqa: F401 - defines the email, note, SMS and webhook actions
from mets.services.automation.conditions import AUTOMATION
from mets.services.directory import access
from mets.services.errors import DomainError

log = logging.getLogger("mets.automation")

_INDEX = "automation.index"  # transaction.cache: this transaction's rule index
_RUNNING = "automation.running"  # transaction.scoped: the rules whose actions are running
MUTED = "automation"  # transaction.muted(session, MUTED): no rule runs (the demo's history)


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
    keys: tuple  # (field name, frozenset of normalized values) for each top-level "is" / "is one of"


def compile_rule(rule) -> CompiledRule:
    """A rule (row or draft with the same attributes) as closures, ready for many evaluations."""
    return CompiledRule(rule.id, rule.name, rule.entity_id, rule.trigger_event, (rule.execution_order, rule.id or 0),
                        rule.stop_processing, tuple(rule.actions or ()), rules.compile(rule.conditions, AUTOMATION),
                        _index_keys(rule.conditions))


_INDEXABLE_TYPES = ("choice", "text")


def _index_keys(conditions) -> tuple:
    """The top-level conditions that pin a field to a few values: a ticket with another value cannot match."""
    if not isinstance(conditions, dict):
        return ()
    items = conditions.get("all") if "all" in conditions else ([conditions] if "field" in conditions else [])
    keys = []
    for item in items or ():
        field = AUTOMATION.field(item.get("field")) if isinstance(item, dict) else None
        if field is None or field.type not in _INDEXABLE_TYPES or item.get("op") not in ("is", "in"):
            continue
        values = item.get("value") if item.get("op") == "in" else [item.get("value")]
        field_type = AUTOMATION.type(field.type)
        keys.append((field.name, frozenset(field_type.check(v, field)[0] for v in values)))
    return tuple(keys)


class _Bucket:
    """The rules of one (trigger, entity): each filed under one of its pinned fields' values, or always offered.

    A rule is filed under the pinned field with the most distinct values among the bucket's rules
    (the most selective), so an event reaches only the rules that can still match.
    """

    def __init__(self, compiled: list[CompiledRule]):
        spread: dict[str, set] = defaultdict(set)
        for rule in compiled:
            for name, values in rule.keys:
                spread[name].update(values)
        self.always: list[CompiledRule] = []
        self.filed: dict[str, dict] = {}
        for rule in compiled:
            if not rule.keys:
                self.always.append(rule)
                continue
            name, values = max(rule.keys, key=lambda key: len(spread[key[0]]))
            table = self.filed.setdefault(name, defaultdict(list))
            for value in values:
                table[value].append(rule)
        self.readers = {name: rules.value_reader(AUTOMATION, name) for name in self.filed}

    def offer(self, context) -> list[CompiledRule]:
        found = list(self.always)
        for name, table in self.filed.items():
            found.extend(table.get(self.readers[name](context), ()))
        return found


class RuleIndex:
    """Compiled rules by trigger and entity (None: all entities), and within those by pinned field values."""

    def __init__(self, compiled):
        grouped: dict[tuple, list[CompiledRule]] = defaultdict(list)
        for rule in compiled:
            grouped[(rule.trigger, rule.entity_id)].append(rule)
        self._buckets = {key: _Bucket(rules_) for key, rules_ in grouped.items()}

    def has(self, trigger: str, entity_ids) -> bool:
        """Whether any rule could run for this trigger here (before building a context)."""
        return any((trigger, key) in self._buckets for key in (None, *entity_ids))

    def candidates(self, trigger: str, entity_ids, context) -> list[CompiledRule]:
        """The rules on `trigger` for all entities or one of `entity_ids` that can match, in execution order."""
        found = []
        for key in (None, *entity_ids):
            bucket = self._buckets.get((trigger, key))
            if bucket is not None:
                found.extend(bucket.offer(context))
        found.sort(key=lambda rule: rule.order)
        return found



_PROCESS_CACHE: dict = {"version": None, "index": None}


def _index(session) -> RuleIndex:
    """The index of active rules, looked up once per transaction."""
    cache = transaction.cache(session)
    if _INDEX not in cache:
        cache[_INDEX] = _process_index(session)
        transaction.before_flush(session, _INDEX, _forget_index_on_rule_change)
    return cache[_INDEX]


def _forget_index_on_rule_change(session) -> None:
    # A rule saved in this very transaction (a script, a test) is seen by the next event.
    if any(isinstance(obj, AutomationRule) for obj in (*session.new, *session.dirty, *session.deleted)):
        transaction.cache(session).pop(_INDEX, None)


def _process_index(session) -> RuleIndex:
    """This process's index of active rules, rebuilt when a rule was added, changed or removed."""
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
    return _PROCESS_CACHE["index"]


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

@dataclass(frozen=True)
class _Running:
    """The rules whose actions are running, outermost first: their changes may trigger more rules."""

    depth: int = 0
    rule_ids: tuple[int, ...] = ()


def ticket_changed(session, change, actor: User | None, now: datetime) -> None:
    """Run the rules for every event of one `services.tickets` change."""
    for row in change.events:
        reply = change.reply if row.event == "reply_added" else None
        run_event(session, change.ticket, row.event, event_id=row.id, changes=row.changes, actor=actor,
                  rule_id=row.rule_id, reply=reply, now=now)


def _on_sla_event(session, ticket: Ticket, event: dict) -> None:
    run_event(session, ticket, event["event"], event_id=event["id"], changes=event["changes"], actor=None,
              rule_id=None, reply=None, now=event["at"])


def init_app(app) -> None:
    """Run the rules for every ticket change and every SLA point the tick fires."""
    events.subscribe(events.TICKET_CHANGED, ticket_changed)
    for name in events.TICK_EVENTS:
        events.subscribe(name, _on_sla_event)


def run_event(session, ticket: Ticket, event: str, *, event_id: int | None, changes: dict, actor: User | None,
              rule_id: int | None, reply: Reply | None, now: datetime) -> int:
    """Evaluate the rules on `event` for this ticket and run the matching ones; returns how many matched."""
    if transaction.is_muted(session, MUTED):
        return 0
    with session.no_autoflush:
        chain = [e.id for e in access.lineage(session, ticket.entity)]
        index = _index(session)
        if not index.has(event, chain):
            return 0
        kind = actor_kind(actor, rule_id)
        context = context_for_event(session, ticket, event, changes, actor=actor, kind=kind, reply=reply, now=now)
        # Rules the index rules out (a pinned field with another value) are not evaluated, nor logged.
        candidates = index.candidates(event, chain, context)
    if not candidates:
        return 0
    running = transaction.current(session, _RUNNING, _Running())
    depth = running.depth + 1
    if depth > current_app.config["AUTOMATION_MAX_DEPTH"]:
        _log_depth_stop(session, candidates, ticket, event, event_id, running, depth, now)
        return 0
    matched = 0
    while candidates:
        rule = candidates.pop(0)
        if rule.id in running.rule_ids:
            continue  # the change comes from this rule's own actions (or ones it caused)
        started = time.perf_counter()
        record = RuleExecution(rule_id=rule.id, ticket_id=ticket.id, ticket_event_id=event_id, event=event,
                               depth=depth, at=now, outcomes=[], actions_run=0)
        try:
            with session.no_autoflush:
                hit = rule.matches(context)
        except Exception as exc:  # a broken condition must not break the ticket change
            log.exception("automation rule %s failed to evaluate", rule.id)
            hit, record.error = False, f"Conditions failed: {type(exc).__name__}: {exc}"
        record.matched = hit
        if hit:
            matched += 1
            _run_actions(session, rule, ticket, event, event_id, context.changes, now, running, depth, record)
            # Later rules see the ticket as the actions left it (and may now be offered, or not).
            context = context_for_event(session, ticket, event, changes, actor=actor, kind=kind, reply=reply, now=now)
            with session.no_autoflush:
                candidates = [r for r in index.candidates(event, chain, context) if r.order > rule.order]
        record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        session.add(record)
        if hit and rule.stop:
            break
    return matched


def _run_actions(session, rule: CompiledRule, ticket, event, event_id, changes, now, running: _Running, depth,
                 record) -> None:
    """Each action in order, in a savepoint of its own; failures are recorded and the rest go on."""
    run = actions.Run(session, ticket, rule.id, rule.name, event, event_id, changes, now)
    errors = []
    with transaction.scoped(session, _RUNNING, _Running(depth, (*running.rule_ids, rule.id))):
        for index, params in enumerate(rule.actions):
            run.index = index
            outcome = _run_one(session, run, params, tickets)
            record.outcomes = [*record.outcomes, outcome]
            if outcome["ok"] and not outcome["skipped"]:
                record.actions_run += 1
            elif not outcome["ok"]:
                errors.append(f"{outcome['label']}: {outcome['result']}")
    record.error = "; ".join(errors) or None


def _run_one(session, run: actions.Run, params: dict, tickets) -> dict:
    """One action in a savepoint: its outcome for the log ({type, label, result, ok, skipped})."""
    kind = actions.ACTIONS.get(params.get("type"))
    if kind is None:
        return _outcome(params.get("type"), str(params.get("type")), "Unknown action", ok=False)
    try:
        with session.begin_nested():
            plan = kind.plan(run, params)
            if plan.apply is not None and not plan.skipped:
                with tickets.acting_rule(session, run.rule_id):
                    plan.apply()
                session.flush()
        return _outcome(kind.name, kind.label, _sentence(plan.text), skipped=plan.skipped)
    except DomainError as exc:
        return _outcome(kind.name, kind.label, exc.summary, ok=False)
    except Exception as exc:  # recorded, never lost silently; the ticket change stands
        log.exception("automation rule %s: action %s failed", run.rule_id, kind.name)
        return _outcome(kind.name, kind.label, f"{type(exc).__name__}: {exc}", ok=False)


def _outcome(type_name, label: str, result: str, ok: bool = True, skipped: bool = False) -> dict:
    return {"type": type_name, "label": label, "result": result, "ok": ok, "skipped": skipped}


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "\u201d")) else ".")


def _log_depth_stop(session, candidates, ticket, event, event_id, running: _Running, depth, now) -> None:
    """Rules that would have run past the depth limit: logged as not run, so the loop is visible."""
    limit = depth - 1
    for rule in candidates:
        if rule.id in running.rule_ids:
            continue
        session.add(RuleExecution(rule_id=rule.id, ticket_id=ticket.id, ticket_event_id=event_id, event=event,
                                  depth=depth, at=now, matched=False, outcomes=[], actions_run=0,
                                  error=f"Not run: rules changed this ticket {limit} levels deep "
                                        f"(AUTOMATION_MAX_DEPTH = {limit}); stopped to prevent a loop."))
    log.warning("automation depth limit reached on ticket %s (%s)", ticket.number, event)


def prune_log(session, now: datetime, days: int) -> int:
    """Delete execution log rows older than `days` (the analytics look back 30); returns how many."""
    result = session.execute(delete(RuleExecution).where(RuleExecution.at < now - timedelta(days=days)))
    return result.rowcount or 0
