"""When each level of a ticket's policy is due, and the ticket's next due instant (`tickets.escalation_due_at`).

A policy watches one clock. The three SLA clocks (first response, next reply, resolution) come from the
ticket's SLA rule: a level at a percent of the target or some minutes before the breach is measured in
that rule's time (so 100% is the breach), one some minutes after the breach or after the clock started
in the policy's time (the entity's business hours when `business_time`, else calendar time). The two
plain clocks run from creation and from the customer's latest unanswered public message. Time while the
ticket is in a pause status (SLA pauses) does not count; a paused, met or resolved clock has nothing due.

Each clock round has a cycle key (the next-reply round, the customer message's instant; "0" for clocks
that run once): a level fires at most once per ticket, level and cycle (escalation_events' unique key).
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from mets.models import EscalationEvent, EscalationLevel, EscalationPolicy, Reply, SlaPause, Ticket, User
from mets.services import hours, sla
from mets.services.directory import access
from mets.services.durations import format_minutes
from mets.services.escalation.policies import CLOCK_LABELS, SLA_CLOCKS, policy_for


@dataclass(frozen=True)
class Window:
    """The watched clock as it runs now: since when, its round, and the SLA clock state (SLA clocks only)."""

    start: datetime
    cycle: str
    state: sla.ClockState | None = None


@dataclass(frozen=True)
class LevelDue:
    """One level of the ticket's policy, when it is due in the current round, and why."""

    policy: EscalationPolicy
    level: EscalationLevel
    number: int  # 1, 2, ...: the level's place in its policy
    at: datetime
    cycle: str
    reason: str

    @property
    def key(self) -> tuple[int, str]:
        return self.level.id, self.cycle


def _pauses(session, ticket: Ticket) -> list[tuple[datetime, datetime | None]]:
    rows = session.execute(select(SlaPause.started_at, SlaPause.ended_at).where(SlaPause.ticket_id == ticket.id)
                           .order_by(SlaPause.started_at)).all()
    return [(a, b) for a, b in rows]


def _customer_message(session, ticket: Ticket) -> datetime | None:
    """The customer's latest public message that no public staff reply answered since (None: answered)."""
    last_customer = session.scalar(
        select(func.max(Reply.created_at)).join(User, User.id == Reply.author_id)
        .where(Reply.ticket_id == ticket.id, Reply.internal.is_(False), User.kind == "customer"))
    since = last_customer or ticket.created_at
    answered = session.scalar(
        select(Reply.id).join(User, User.id == Reply.author_id)
        .where(Reply.ticket_id == ticket.id, Reply.internal.is_(False), User.kind == "staff",
               Reply.created_at >= since).limit(1))
    return None if answered else since


def window(session, ticket: Ticket, clock: str, now: datetime, pauses) -> Window | None:
    """The watched clock's current round, or None when it is not running (met, resolved, paused)."""
    if ticket.status in sla.STOPPED_STATUSES or any(b is None and a <= now for a, b in pauses):
        return None
    if clock in SLA_CLOCKS:
        state = next((s for s in sla.clocks(session, ticket, now, pauses) if s.name == clock), None)
        if state is not None and not state.running:
            return None
        if clock == "response":
            return None if ticket.first_response_at else Window(ticket.created_at, "0", state)
        if clock == "next_reply":
            since = ticket.sla_next_reply_since
            return None if since is None else Window(since, str(ticket.sla_next_reply_cycle), state)
        return Window(ticket.created_at, "0", state)
    if clock == "since_created":
        return Window(ticket.created_at, "0")
    since = _customer_message(session, ticket)
    return None if since is None else Window(since, since.isoformat())


def _minutes(n: int) -> str:
    return format_minutes(n)


def level_at(session, ticket: Ticket, policy: EscalationPolicy, level: EscalationLevel, win: Window,
             pauses) -> tuple[datetime, str] | None:
    """When `level` is due in this round and the words for why (None: it cannot be, e.g. no SLA target)."""
    label = CLOCK_LABELS.get(policy.clock, policy.clock)
    policy_cal = hours.calendar_for(session, ticket.entity) if policy.business_time else sla.ALWAYS_OPEN
    kind, value = level.trigger, level.value
    business = " of business time" if policy.business_time else ""
    if kind == "after_duration":
        at = sla.due_after(policy_cal, win.start, timedelta(minutes=value), pauses)
        since = {"since_created": "since created", "since_customer_message": "since the customer's message"}.get(
            policy.clock, f"since the {label} clock started")
        return (at, f"{_minutes(value)}{business} {since}") if at else None
    state = win.state
    if state is None or state.due is None or ticket.sla_rule is None:
        return None  # the ticket's SLA rule does not run this clock: no target to measure against
    sla_cal = sla.calendar_for_rule(session, ticket.sla_rule, ticket)
    if kind == "percent":
        at = sla.due_after(sla_cal, win.start, state.target * value / 100, pauses)
        return (at, f"{value}% of the {label} target used") if at else None
    if kind == "before_breach":
        offset = max(state.target - timedelta(minutes=value), timedelta(0))
        at = sla.due_after(sla_cal, win.start, offset, pauses)
        return (at, f"{_minutes(value)} before the {label} target") if at else None
    if kind == "after_breach":
        at = policy_cal.add(state.due, timedelta(minutes=value))
        return at, (f"{_minutes(value)}{business} after the {label} target was breached" if value
                    else f"the {label} target was breached")
    return None


def levels_due(session, ticket: Ticket, now: datetime, policy: EscalationPolicy | None = None,
               pauses=None) -> list[LevelDue]:
    """Every level of the ticket's policy with its instant in the current round (reached or not, fired or not)."""
    policy = policy or policy_for(session, ticket, now)
    if policy is None:
        return []
    pauses = _pauses(session, ticket) if pauses is None else pauses
    win = window(session, ticket, policy.clock, now, pauses)
    if win is None:
        return []
    out = []
    for number, level in enumerate(policy.levels, start=1):
        found = level_at(session, ticket, policy, level, win, pauses)
        if found is not None:
            out.append(LevelDue(policy, level, number, found[0], win.cycle, found[1]))
    return out


def forecast(session, ticket: Ticket, policy: EscalationPolicy, now: datetime
             ) -> tuple[Window | None, list[tuple[int, EscalationLevel, LevelDue | None]]]:
    """For the policy editor's preview: the watched clock's current round (None: not running) and each level
    of `policy` (saved or a draft never added to the session) with when it is due in that round (None: it
    cannot be, e.g. the ticket's SLA rule sets no target for the clock). Reads, never writes."""
    pauses = _pauses(session, ticket)
    win = window(session, ticket, policy.clock, now, pauses)
    due = {d.number: d for d in levels_due(session, ticket, now, policy=policy, pauses=pauses)} if win else {}
    return win, [(number, level, due.get(number)) for number, level in enumerate(policy.levels, start=1)]


Fired = tuple[set[tuple[int, str]], dict[tuple[int, str], int]]  # (level id, cycle) fired; (policy, cycle) -> reached


def fired(session, ticket: Ticket) -> Fired:
    """The (level id, cycle) already fired, and per (policy id, cycle) the highest level reached."""
    return fired_by_ticket(session, [ticket.id])[ticket.id]


def fired_by_ticket(session, ids) -> dict[int, Fired]:
    """`fired` for many tickets in one query (the tick's batch)."""
    out: dict[int, Fired] = {i: (set(), {}) for i in ids}
    rows = session.execute(select(EscalationEvent.ticket_id, EscalationEvent.level_id, EscalationEvent.policy_id,
                                  EscalationEvent.cycle, EscalationEvent.level_number, EscalationEvent.suppressed)
                           .where(EscalationEvent.ticket_id.in_(list(ids))))
    for ticket_id, level_id, policy_id, cycle, number, suppressed in rows:
        mark_fired(out[ticket_id], level_id, policy_id, cycle, number, suppressed)
    return out


def mark_fired(found: Fired, level_id: int | None, policy_id: int | None, cycle: str, number: int,
               suppressed: bool = False) -> None:
    """Add one fired level to what `fired` found (the tick keeps its batch's up to date as it fires)."""
    keys, reached = found
    keys.add((level_id, cycle))
    if not suppressed:
        reached[(policy_id, cycle)] = max(reached.get((policy_id, cycle), 0), number)


def pending(session, ticket: Ticket, now: datetime, pauses=None, found: Fired | None = None) -> list[LevelDue]:
    """The levels still to fire this round, soonest first (a level below one reached this round by hand is
    passed over: escalating to level 2 by hand means level 1 has nothing left to say). `pauses` and `found`
    (`fired`) are read here unless the caller loaded them for a batch."""
    keys, reached = fired(session, ticket) if found is None else found
    out = [d for d in levels_due(session, ticket, now, pauses=pauses)
           if d.key not in keys and d.number > reached.get((d.policy.id, d.cycle), 0)]
    return sorted(out, key=lambda d: (d.at, d.number))


def schedule(session, ticket: Ticket, now: datetime) -> list[LevelDue]:
    """Recompute the ticket's next escalation instant (`escalation_due_at`); returns the pending levels."""
    todo = pending(session, ticket, now)
    due = todo[0].at if todo else None
    if ticket.escalation_due_at != due:
        ticket.escalation_due_at = due
    return todo


def retime_entities(session, entity_ids, now: datetime, batch_size: int = 500, each=None) -> int:
    """Re-time the open tickets of these entities and their departments (after a policy was added or changed):
    `each(ticket)` for every one (the engine's `retime_after_edit`), `schedule` by default."""
    each = each or (lambda ticket: schedule(session, ticket, now))
    session.flush()
    ids = list(access.with_descendants(session, list(entity_ids)))
    done, last_id = 0, 0
    while True:  # keyset batches: memory stays flat however many tickets are open
        batch = session.scalars(
            select(Ticket).where(Ticket.entity_id.in_(ids), Ticket.status.notin_(sla.STOPPED_STATUSES),
                                 Ticket.id > last_id)
            .order_by(Ticket.id).limit(batch_size)
            .options(selectinload(Ticket.sla_rule), selectinload(Ticket.entity))).all()
        if not batch:
            return done
        for ticket in batch:
            each(ticket)
        done += len(batch)
        last_id = batch[-1].id
