"""Firing levels: by the minute tick (through `tickets.escalation_due_at`) and by hand, at most once each.

The tick (`tick`, run by the SLA tick's `tick` event) reads only tickets whose `escalation_due_at` has
passed (an index), claims them with FOR UPDATE SKIP LOCKED on PostgreSQL, re-checks each against its
current state (a ticket answered, resolved or paused since has nothing due), and fires each due level:
a row in `escalation_events` inserted with ON CONFLICT DO NOTHING on (ticket, level, cycle), so a second
tick running at once fires nothing twice; then `services.tickets.escalate` (the level, the audit row,
`escalation_due` for notifications and automation, with the policy, level and reason among its changes),
then the level's actions, each in a savepoint, their outcomes kept on the event.
"""
import logging
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from mets import clock, events, transaction
from mets.models import EscalationEvent, Ticket, User
from mets.services import bulk_ids, tickets
from mets.services.automation.actions import Run
from mets.services.directory import access
from mets.services.errors import DomainError
from mets.services.escalation import holds, timing
from mets.services.escalation.actions import ACTOR, LEVEL_ACTIONS, TOLD
from mets.services.escalation.policies import TICK_CACHE, build_policy, policy_for
from mets.services.escalation.timing import LevelDue
from mets.services.sla import tick as sla_tick
from mets.services.validation import text_error

log = logging.getLogger("mets.escalation")
MAX_REASON = 1000


# --- keeping the due instant ----------------------------------------------------------------------

PROCESSING = "escalation.processing"  # transaction.scoped: the ids of the tickets the tick is firing (re-timed after)


def ticket_changed(session, change, actor: User | None, now: datetime) -> None:
    """Every ticket change may move its clocks: recompute when its next level is due."""
    if change.ticket.id in (transaction.current(session, PROCESSING) or ()):
        return  # the tick's own changes to the tickets it is firing: it keeps their next instant after them
    timing.schedule(session, change.ticket, now)


def sla_retimed(session, retimed, now: datetime) -> None:
    """An SLA rule or calendar edit moved these tickets' clocks: their levels move with them (`_retime`)."""
    for ticket in retimed:
        _retime(session, ticket, now, "an SLA rule or the hours were edited")


def retime_after_edit(session, entity_ids, now: datetime) -> int:
    """A policy was added, changed, switched on or reordered: re-time the open tickets below these entities
    (`_retime`), so a new policy whose levels a ticket is already past does not escalate them all at once."""
    return timing.retime_entities(session, entity_ids, now,
                                  each=lambda ticket: _retime(session, ticket, now, "a policy was edited"))


def _retime(session, ticket: Ticket, now: datetime, why: str) -> None:
    """Levels an edit moved into the past are recorded as suppressed instead of all firing at once (no storm of
    escalations after an edit); those already due before it (the tick may not have run yet) are left to the tick."""
    old_due = ticket.escalation_due_at
    for due in timing.pending(session, ticket, now):
        if due.at > now or (old_due is not None and old_due <= now):
            break
        _claim(session, ticket, due, now, None, f"{due.reason}: passed while {why} (not escalated)", suppressed=True)
    timing.schedule(session, ticket, now)


# --- firing ---------------------------------------------------------------------------------------

def _claim(session, ticket: Ticket, due: LevelDue, now: datetime, actor: User | None, reason: str,
           suppressed: bool = False) -> int | None:
    """Insert the level's event; None when this ticket, level and cycle already have one (another tick's)."""
    values = _claim_values(ticket, due, now, actor, reason, suppressed)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(EscalationEvent.__table__).values(**values)
                 .on_conflict_do_nothing(index_elements=["ticket_id", "level_id", "cycle"])
                 .returning(EscalationEvent.id))
    return session.execute(statement).scalar()


def _claim_values(ticket: Ticket, due: LevelDue, now: datetime, actor: User | None, reason: str,
                  suppressed: bool = False) -> dict:
    return {"ticket_id": ticket.id, "policy_id": due.policy.id, "level_id": due.level.id,
            "level_number": due.number, "policy_name": due.policy.name, "clock": due.policy.clock,
            "cycle": due.cycle, "due_at": due.at, "fired_at": now, "reason": reason,
            "actor_id": actor.id if actor else None, "outcomes": [], "suppressed": suppressed}


def _details(due: LevelDue, actor: User | None = None) -> dict:
    """What the `escalation_due` change says of the policy and level, beside the level and reason."""
    return {"policy": due.policy.name, "policy_id": due.policy.id, "level_id": due.level.id,
            **({"manual": True} if actor is not None else {})}


def fire(session, ticket: Ticket, due: LevelDue, now: datetime, actor: User | None = None,
         reason: str | None = None) -> EscalationEvent | None:
    """Fire one level (once: None if it had fired); raise the ticket's level, tell, run the level's actions."""
    reason = reason or due.reason
    event_id = _claim(session, ticket, due, now, actor, reason)
    if event_id is None:
        return None
    change = tickets.escalate(session, ticket, actor=actor, reason=reason, level=due.number, now=now,
                              details=_details(due, actor))
    row = change.events[0]
    # A business-time level fired by the tick holds its mail while the desk is closed (holds); by hand, it goes now.
    hold = event_id if actor is None and due.policy.business_time else None
    with transaction.scoped(session, ACTOR, actor.id if actor else None), \
            transaction.scoped(session, holds.HOLD, hold):  # nobody is told of their own escalation
        outcomes = run_actions(session, ticket, due, row.id, row.changes, now)
    session.execute(update(EscalationEvent).where(EscalationEvent.id == event_id)
                    .values(ticket_event_id=row.id, outcomes=outcomes).execution_options(synchronize_session=False))
    return session.get(EscalationEvent, event_id, populate_existing=True)


def run_actions(session, ticket: Ticket, due: LevelDue, event_id: int, changes: dict, now: datetime,
                savepoints: bool = True) -> list[dict]:
    """The level's actions in order, each in a savepoint: a failure is recorded and the rest go on.

    Without `savepoints` (the tick's batches, inside one savepoint of their own) a refusal while planning is
    recorded the same way (planning writes nothing), but a failure while applying raises: the tick then takes its
    batch back and fires it again ticket by ticket, with savepoints, so the outcomes are the same either way."""
    run = Run(session, ticket, None, f"escalation policy {due.policy.name}", "escalation_due", event_id, changes, now)
    outcomes = []
    for index, params in enumerate(due.level.actions or ()):
        run.index = index
        kind = LEVEL_ACTIONS.get(params.get("type"))
        if kind is None:
            outcomes.append(_outcome(params.get("type"), str(params.get("type")), "Unknown action", ok=False))
            continue
        if not savepoints:
            try:
                plan = kind.plan(run, params)
            except DomainError as exc:
                outcomes.append(_outcome(kind.name, kind.label, exc.summary, ok=False))
                continue
            if plan.apply is not None and not plan.skipped:
                plan.apply()
            outcomes.append(_outcome(kind.name, kind.label, _sentence(plan.text), skipped=plan.skipped))
            continue
        try:
            with session.begin_nested():
                plan = kind.plan(run, params)
                if plan.apply is not None and not plan.skipped:
                    plan.apply()
                session.flush()
            outcomes.append(_outcome(kind.name, kind.label, _sentence(plan.text), skipped=plan.skipped))
        except DomainError as exc:
            outcomes.append(_outcome(kind.name, kind.label, exc.summary, ok=False))
        except Exception as exc:  # recorded, never lost silently; the escalation stands
            log.exception("escalation level %s: action %s failed", due.level.id, kind.name)
            outcomes.append(_outcome(kind.name, kind.label, f"{type(exc).__name__}: {exc}", ok=False))
    return outcomes


def _outcome(type_name, label: str, result: str, ok: bool = True, skipped: bool = False) -> dict:
    return {"type": type_name, "label": label, "result": result, "ok": ok, "skipped": skipped}


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# --- policies -------------------------------------------------------------------------------------

def create_policy(session, entity, *, now: datetime | None = None, **values):
    """Add a checked policy to `entity` (see `policies.build_policy`) and re-time the open tickets below it."""
    policy = build_policy(session, entity, **values)
    retime_after_edit(session, [entity.id], now or clock.now())
    return policy


# --- the tick -------------------------------------------------------------------------------------

def tick(session, now: datetime | None = None, batch_size: int = 500) -> list[tuple[int, int]]:
    """Fire every level due at `now` (commits after each batch); returns (ticket id, level number) fired."""
    now = now or clock.now()
    done: list[tuple[int, int]] = []
    with transaction.scoped(session, TICK_CACHE, {}):
        for batch in sla_tick.due_batches(session, Ticket.escalation_due_at, now, batch_size,
                                          selectinload(Ticket.entity), selectinload(Ticket.sla_rule)):
            done += _process_batch(session, batch, now)
    return done


def _process_batch(session, batch: list[Ticket], now: datetime) -> list[tuple[int, int]]:
    """Re-check the batch's tickets now and fire what is due, in bulk (`_fire_batch`); if any level's action fails
    as it applies, the whole batch is taken back and fired ticket by ticket (`_process`), each action in its own
    savepoint, so that a failure is recorded on its level and the rest still go."""
    ids = [t.id for t in batch]
    pauses = sla_tick.pauses_by_ticket(session, ids)
    found = timing.fired_by_ticket(session, ids)
    todo = {t.id: timing.pending(session, t, now, pauses=pauses[t.id], found=found[t.id]) for t in batch}
    due = [(t, d) for t in batch for d in todo[t.id] if d.at <= now]
    try:
        with session.begin_nested():
            for ticket in batch:  # everything up to now is done (set first: written with the level, one UPDATE)
                _keep_next(ticket, todo[ticket.id], now)
            fired = _fire_batch(session, due, found, now) if due else []
            for ticket in {ticket.id: ticket for ticket, _ in fired}.values():  # what fired may move the rest
                _keep_next(ticket, timing.pending(session, ticket, now, pauses=pauses[ticket.id],
                                                  found=found[ticket.id]), now)
            session.flush()
    except Exception:  # noqa: BLE001 (the batch is fired again, and whatever failed is recorded, or raises, there)
        log.info("escalation tick: a batch of %s tickets fired ticket by ticket", len(batch), exc_info=True)
        return [(ticket.id, event.level_number) for ticket in batch for event in _process(session, ticket, now)]
    return [(ticket.id, due.number) for ticket, due in fired]


def _keep_next(ticket: Ticket, todo: list[LevelDue], now: datetime) -> None:
    due = min((d.at for d in todo if d.at > now), default=None)
    if ticket.escalation_due_at != due:
        ticket.escalation_due_at = due


def _fire_batch(session, due: list[tuple[Ticket, LevelDue]], found: dict, now: datetime
                ) -> list[tuple[Ticket, LevelDue]]:
    """Claim every due level at once (the unique key decides what is this tick's), then fire them round by round
    (each ticket's first due level, then its second, ...: a ticket's levels in order): the `escalation_due`
    changes of a round in bulk (`tickets.escalate_many`), then each level's actions; the outcomes in one go."""
    claimed = _claim_many(session, due, now)
    queue: dict[int, list[tuple[Ticket, LevelDue, int]]] = {}
    for ticket, item in due:
        if (event_id := claimed.get((ticket.id, item.level.id, item.cycle))) is not None:
            queue.setdefault(ticket.id, []).append((ticket, item, event_id))
    fired, outcomes = [], []
    told = transaction.cache(session).setdefault(TOLD, {})
    with transaction.scoped(session, PROCESSING, set(queue)), transaction.scoped(session, ACTOR, None):
        for round_ in range(max((len(q) for q in queue.values()), default=0)):
            items = [q[round_] for q in queue.values() if len(q) > round_]
            changes = tickets.escalate_many(session, [
                (ticket, item.number, item.reason, _details(item)) for ticket, item, _ in items], now=now)
            for (ticket, item, event_id), change in zip(items, changes):
                row = change.events[0]
                told[row.id] = set()
                hold = event_id if item.policy.business_time else None
                with transaction.scoped(session, holds.HOLD, hold):
                    done = run_actions(session, ticket, item, row.id, row.changes, now, savepoints=False)
                outcomes.append({"event": event_id, "ticket_event": row.id, "done": done})
                timing.mark_fired(found[ticket.id], item.level.id, item.policy.id, item.cycle, item.number)
                fired.append((ticket, item))
    session.flush()
    table = EscalationEvent.__table__
    if outcomes:  # one statement, many rows (executemany)
        session.connection().execute(
            update(table).where(table.c.id == bindparam("event"))
            .values(ticket_event_id=bindparam("ticket_event"), outcomes=bindparam("done")), outcomes)
    return fired


def _claim_many(session, due: list[tuple[Ticket, LevelDue]], now: datetime) -> dict[tuple[int, int, str], int]:
    """`_claim` for many levels in one statement: (ticket id, level id, cycle) -> the event id of those inserted
    now (those another tick inserted first are left out)."""
    rows = [_claim_values(ticket, item, now, None, item.reason) for ticket, item in due]
    table = EscalationEvent.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=["ticket_id", "level_id", "cycle"])
    key = (table.c.ticket_id, table.c.level_id, table.c.cycle, table.c.id)
    if ids := bulk_ids.take(session, table, len(rows)):
        # PostgreSQL: the ids first, the rows in one executemany (pipelined), then which of those ids exist: the
        # rows this tick inserted (an id is the sequence's, never another tick's; a conflicting row is skipped).
        for row, row_id in zip(rows, ids):
            row["id"] = row_id
        session.connection().execute(statement, rows)
        won = session.connection().execute(select(*key).where(table.c.id.in_(ids)))
    else:  # Core executemany with RETURNING: rows sent in pages ("insertmanyvalues")
        won = session.connection().execute(statement.returning(*key), rows)
    return {(t, level, cycle): i for t, level, cycle, i in won}


def _process(session, ticket: Ticket, now: datetime) -> list[EscalationEvent]:
    """Re-check the ticket now and fire what is due, in order, each level in a savepoint; then keep its next
    instant (the tick's way when a batch cannot go in bulk)."""
    fired = []
    todo = timing.pending(session, ticket, now)  # computed from the ticket as it is now
    with transaction.scoped(session, PROCESSING, {ticket.id}):
        for due in todo:
            if due.at > now:
                break
            try:
                with session.begin_nested():  # one ticket that cannot escalate (closed meanwhile) stops nothing else
                    event = fire(session, ticket, due, now)
            except DomainError as exc:
                log.warning("ticket %s: level %s not fired: %s", ticket.number, due.number, exc.summary)
                continue
            if event is not None:
                fired.append(event)
    # What the levels changed (a raised priority) may move the rest: read again, unless nothing fired.
    later = [d.at for d in (timing.pending(session, ticket, now) if fired else todo) if d.at > now]
    ticket.escalation_due_at = min(later, default=None)  # everything up to now is done
    session.flush()
    return fired


def _on_tick(session, now: datetime) -> None:
    tick(session, now)
    holds.send_due(session, now)  # the notices held until now (a desk that just opened): one mail per person


# --- by hand --------------------------------------------------------------------------------------

def escalate(session, ticket: Ticket, actor: User, reason: str, now: datetime | None = None) -> EscalationEvent:
    """Escalate by hand to the next level of the ticket's policy (its actions run); a reason is required.

    Without a policy the ticket's level goes up by one and `escalation_due` tells the entity's managers.
    """
    now = now or clock.now()
    if actor is None or not actor.is_staff or not access.can_work_entity(session, actor, ticket.entity):
        raise DomainError({"": "You cannot escalate this ticket."})
    reason = (reason or "").strip()
    if msg := "Say why you escalate it." if not reason else text_error(reason, "Reason", MAX_REASON):
        raise DomainError({"reason": msg})
    if ticket.status in tickets.FINAL:
        raise DomainError({"": "A closed ticket cannot be escalated."})
    policy = policy_for(session, ticket, now)
    number = ticket.escalation_level + 1
    if policy is None:
        change = tickets.escalate(session, ticket, actor=actor, reason=reason, level=number, now=now,
                                  details={"manual": True})
        event = EscalationEvent(ticket_id=ticket.id, level_number=number, cycle=f"manual:{now.isoformat()}",
                                fired_at=now, reason=reason, actor_id=actor.id, ticket_event_id=change.events[0].id,
                                outcomes=[])
        session.add(event)
        session.flush()
        return event
    if number > len(policy.levels):
        raise DomainError({"reason": f"The ticket is at the last level ({len(policy.levels)}) of "
                                     f"“{policy.name}”: there is no higher level."})
    pauses = timing._pauses(session, ticket)
    win = timing.window(session, ticket, policy.clock, now, pauses)
    level = policy.levels[number - 1]
    due = LevelDue(policy, level, number, now, win.cycle if win else "0", reason)
    event = fire(session, ticket, due, now, actor=actor, reason=reason)
    if event is None:  # this level fired in this round before (the level was reset by resolving since)
        due = LevelDue(policy, level, number, now, f"manual:{now.isoformat()}", reason)
        event = fire(session, ticket, due, now, actor=actor, reason=reason)
    timing.schedule(session, ticket, now)
    return event


# --- what people see ------------------------------------------------------------------------------

def timeline(session, ticket: Ticket) -> list[EscalationEvent]:
    """The ticket's escalations, oldest first (level, when, why, who, what each action did)."""
    return list(session.scalars(select(EscalationEvent).where(EscalationEvent.ticket_id == ticket.id)
                                .order_by(EscalationEvent.fired_at, EscalationEvent.id)
                                .options(selectinload(EscalationEvent.actor))))


def init_app(app) -> None:
    """Keep each ticket's next escalation instant as it changes, and fire what is due on every minute tick."""
    events.subscribe(events.TICKET_CHANGED, ticket_changed)
    events.subscribe(events.SLA_RETIMED, sla_retimed)
    events.subscribe(events.TICK, _on_tick)
