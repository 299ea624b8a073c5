"""SLA clocks: choosing a ticket's rule, computing due times in business time, pausing, re-timing.

Three clocks run from a ticket's rule: response (creation -> first public agent reply),
next_reply (a customer's message -> the next public agent reply) and resolution (creation ->
resolved); who hears of a ticket at risk, and when, is for escalation policies. Time in a
pause status of the rule, and time while resolved or closed, does not count: every pause is an
`SlaPause` row, and a due time is found by walking the clock's start through the pauses in
business time, so it moves later by exactly the business time spent paused.

The tick (services/sla_tick.py) acts on the points these computations schedule: it reads
`tickets.sla_next_check_at`, which `refresh` keeps at the earliest point not yet fired.
"""
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import selectinload

from mets import clock, events
from mets.models import CLOCKS, SlaFiring, SlaPause, SlaRule, Ticket
from mets.services import hours, rules
from mets.services.directory import access
from mets.services.hours.calendar import BusinessCalendar

ALWAYS_OPEN = BusinessCalendar("UTC", {day: [(time(0), time(0))] for day in range(7)})
STOPPED_STATUSES = ("resolved", "closed")  # clocks never count while a ticket is resolved or closed
BREACH = "breach"

# How people name each clock (pages, mail, the activity trail).
CLOCK_LABELS = {"response": "First response", "next_reply": "Next reply", "resolution": "Resolution"}


@dataclass
class Point:
    """One instant the tick acts on: a warning or the breach of a clock."""

    clock: str
    name: str  # "warning:80%", "warning:30m" or "breach"
    cycle: int
    at: datetime

    @property
    def key(self) -> tuple[str, str, int]:
        return self.clock, self.name, self.cycle


@dataclass
class ClockState:
    """A clock as staff see it: its target, due time and how much business time it has used."""

    name: str
    target: timedelta
    start: datetime
    stopped_at: datetime | None  # when it was met (first reply, resolution); None while it runs
    due: datetime | None  # None while paused: the due time depends on when the pause ends
    used: timedelta  # business time counted so far (up to the stop, or now)
    paused: bool
    breached: bool  # the due time passed before the clock stopped (or before now)
    cycle: int = 0

    @property
    def running(self) -> bool:
        return self.stopped_at is None and not self.paused

    @property
    def remaining(self) -> timedelta:
        return self.target - self.used

    @property
    def percent_used(self) -> float:
        return 100.0 * self.used / self.target if self.target else 0.0


# --- choosing the rule ------------------------------------------------------------------------

def choose_rule(session, ticket: Ticket, now: datetime | None = None) -> SlaRule | None:
    """The ticket's own entity first, then its ancestors; within one by order; first match wins."""
    chain = access.lineage(session, ticket.entity)
    candidates = session.scalars(
        select(SlaRule).where(SlaRule.entity_id.in_([e.id for e in chain]), SlaRule.is_active.is_(True))
        .order_by(SlaRule.position, SlaRule.id)
    ).all()
    if not candidates:
        return None
    context = rules.context_for(ticket, now=now or clock.now())
    for entity in chain:
        for rule in candidates:
            if rule.entity_id == entity.id and rule_matches(rule, ticket, context):
                return rule
    return None


def rule_matches(rule: SlaRule, ticket: Ticket, context) -> bool:
    """Priority (None: any) and conditions (compiled once per content by services.rules)."""
    return rule.priority in (None, "", ticket.priority) and rules.compile(rule.conditions)(context)


# --- business-time arithmetic -----------------------------------------------------------------

def calendar_for_rule(session, rule: SlaRule, ticket: Ticket) -> BusinessCalendar:
    return hours.calendar_for(session, ticket.entity) if rule.business_hours_only else ALWAYS_OPEN


def due_after(cal: BusinessCalendar, start: datetime, target: timedelta, pauses) -> datetime | None:
    """When `target` of business time has run from `start`, skipping the pauses; None if paused first."""
    remaining, cursor = target, start
    for paused_from, paused_to in pauses:
        if paused_to is not None and paused_to <= cursor:
            continue
        used = cal.between(cursor, max(paused_from, cursor))
        if used >= remaining:
            break
        remaining -= used
        if paused_to is None:
            return None  # still paused: the clock stands still before reaching its target
        cursor = paused_to
    return cal.add(cursor, remaining)


def used_between(cal: BusinessCalendar, start: datetime, until: datetime, pauses) -> timedelta:
    """Business time in [start, until) outside the pauses."""
    if until <= start:
        return timedelta(0)
    total = cal.between(start, until)
    for paused_from, paused_to in pauses:
        a, b = max(paused_from, start), min(paused_to or until, until)
        if b > a:
            total -= cal.between(a, b)
    return total


def _aware(at: datetime) -> datetime:
    """Naive datetimes are refused, never guessed."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()}: SLA times must be timezone-aware")
    return at


_PAUSES = select(SlaPause.started_at, SlaPause.ended_at).where(SlaPause.ticket_id == bindparam("ticket_id")) \
    .order_by(SlaPause.started_at)  # built once: building it cost more than running it


def _pauses(session, ticket: Ticket) -> list[tuple[datetime, datetime | None]]:
    return [(r.started_at, r.ended_at) for r in session.execute(_PAUSES, {"ticket_id": ticket.id})]


# --- the clocks of one ticket -----------------------------------------------------------------

def clocks(session, ticket: Ticket, now: datetime | None = None, pauses=None) -> list[ClockState]:
    """Every clock the ticket's rule runs, as of `now`."""
    rule = ticket.sla_rule
    if rule is None:
        return []
    now = _aware(now or clock.now())
    pauses = _pauses(session, ticket) if pauses is None else pauses
    cal = calendar_for_rule(session, rule, ticket)
    resolved_at = ticket.resolved_at if ticket.status in STOPPED_STATUSES else None
    specs = [
        ("response", ticket.created_at, ticket.first_response_at, 0),
        ("next_reply", ticket.sla_next_reply_since, None, ticket.sla_next_reply_cycle),
        ("resolution", ticket.created_at, resolved_at, 0),
    ]
    states = []
    for name, start, stopped_at, cycle in specs:
        minutes = rule.target_minutes(name)
        if minutes is None or start is None:
            continue
        target = timedelta(minutes=minutes + (ticket.sla_extension_minutes or 0))
        until = stopped_at or now
        open_pause = next((p for p in pauses if p[1] is None and p[0] <= until), None)
        # A stopped clock's due is computed as if the pauses after its stop never happened.
        relevant = [p for p in pauses if p[0] <= until]
        if stopped_at is not None:
            relevant = [(a, b if b is not None and b <= stopped_at else stopped_at) for a, b in relevant]
        due = due_after(cal, start, target, relevant)
        states.append(ClockState(
            name=name, target=target, start=start, stopped_at=stopped_at, due=due,
            used=used_between(cal, start, until, relevant), paused=stopped_at is None and open_pause is not None,
            breached=due is not None and (stopped_at > due if stopped_at else now >= due), cycle=cycle))
    return states


def points(session, ticket: Ticket, states: list[ClockState], pauses=None) -> list[Point]:
    """The warning and breach instants of the running clocks, soonest first."""
    rule = ticket.sla_rule
    if rule is None:
        return []
    pauses = _pauses(session, ticket) if pauses is None else pauses
    cal = calendar_for_rule(session, rule, ticket)
    out = []
    for state in states:
        if not state.running or state.due is None:
            continue
        for name, offset in _warning_offsets(rule, state.target):
            at = due_after(cal, state.start, offset, pauses)
            if at is not None:
                out.append(Point(state.name, name, state.cycle, at))
        out.append(Point(state.name, BREACH, state.cycle, state.due))
    return sorted(out, key=lambda p: p.at)


def _warning_offsets(rule: SlaRule, target: timedelta) -> list[tuple[str, timedelta]]:
    """Each warning as (point name, business time from the clock's start)."""
    out = []
    for warning in rule.warnings or []:
        if "percent" in warning:
            offset, name = target * warning["percent"] / 100, f"warning:{warning['percent']}%"
        else:
            before = warning["minutes_before"]
            offset, name = target - timedelta(minutes=before), f"warning:{before}m"
        if timedelta(0) < offset < target:
            out.append((name, offset))
    return out


def fired_keys(session, ticket_ids) -> dict[int, set[tuple[str, str, int]]]:
    """For each ticket, the (clock, point, cycle) already acted on."""
    result: dict[int, set] = {tid: set() for tid in ticket_ids}
    rows = session.execute(select(SlaFiring.ticket_id, SlaFiring.clock, SlaFiring.point, SlaFiring.cycle)
                           .where(SlaFiring.ticket_id.in_(list(ticket_ids))))
    for tid, clock_name, point, cycle in rows:
        result[tid].add((clock_name, point, cycle))
    return result


def refresh(session, ticket: Ticket, now: datetime | None = None, pauses=None, fired=None) -> list[Point]:
    """Recompute the ticket's due times, breached flags and next check; return its pending points."""
    now = now or clock.now()
    pauses = _pauses(session, ticket) if pauses is None else pauses
    states = {s.name: s for s in clocks(session, ticket, now, pauses)}
    for name in CLOCKS:
        state = states.get(name)
        _set(ticket, f"sla_{name}_due", state.due if state else None)
        _set(ticket, f"sla_{name}_breached", bool(state and state.breached))
    running = [s for s in states.values() if s.running and s.due is not None]
    _set(ticket, "sla_nearest_due", min((s.due for s in running), default=None))
    fired = fired_keys(session, [ticket.id])[ticket.id] if fired is None else fired
    pending = [p for p in points(session, ticket, list(states.values()), pauses) if p.key not in fired]
    _set(ticket, "sla_next_check_at", pending[0].at if pending else None)
    return pending


def _set(ticket: Ticket, name: str, value) -> None:
    """Assign only real changes, so the UPDATE the tick flushes carries only what moved."""
    if getattr(ticket, name) != value:
        setattr(ticket, name, value)


# --- reacting to ticket changes (called by services/tickets.py) -------------------------------

def assign_rule(session, ticket: Ticket, now: datetime | None = None) -> None:
    """Choose the rule (on creation, or when priority, category or entity changed) and re-time."""
    now = now or clock.now()
    if not ticket.sla_rule_pinned:
        ticket.sla_rule = choose_rule(session, ticket, now)
    _sync_pause(session, ticket, now)
    refresh(session, ticket, now)


def pin_rule(session, ticket: Ticket, rule: SlaRule, now: datetime) -> None:
    """Put the ticket under `rule` for good (a rule's or an agent's choice), and re-time."""
    ticket.sla_rule = rule
    ticket.sla_rule_pinned = True
    _sync_pause(session, ticket, now)
    refresh(session, ticket, now)


def pausing(ticket: Ticket, status: str) -> bool:
    rule = ticket.sla_rule
    return status in STOPPED_STATUSES or (rule is not None and status in (rule.pause_statuses or []))


def _sync_pause(session, ticket: Ticket, now: datetime) -> None:
    """Keep one open pause exactly while the ticket's status stops its clocks under its current rule
    (a status change, or a rule whose pause statuses differ from the last one's)."""
    session.flush()
    open_pause = session.scalar(select(SlaPause).where(SlaPause.ticket_id == ticket.id, SlaPause.ended_at.is_(None)))
    if pausing(ticket, ticket.status) and open_pause is None:
        session.add(SlaPause(ticket_id=ticket.id, started_at=now))
    elif open_pause is not None and not pausing(ticket, ticket.status):
        open_pause.ended_at = now
    session.flush()


def status_changed(session, ticket: Ticket, old: str, new: str, now: datetime) -> None:
    """Open or close a pause, keep resolved_at, and re-time (`ticket.status` is already `new`)."""
    _sync_pause(session, ticket, now)
    if new in STOPPED_STATUSES and old not in STOPPED_STATUSES:
        ticket.resolved_at = now
    elif old in STOPPED_STATUSES and new not in STOPPED_STATUSES:
        ticket.resolved_at = None  # reopened: the resolution clock resumes where it stopped
    refresh(session, ticket, now)


def reply_added(session, ticket: Ticket, author_is_staff: bool, public: bool, now: datetime) -> None:
    """A public agent reply meets the response and next-reply clocks; a customer's starts next-reply."""
    if not public:
        return
    if author_is_staff:
        if ticket.first_response_at is None:
            ticket.first_response_at = now
        ticket.sla_next_reply_since = None
    elif ticket.first_response_at is not None and ticket.sla_next_reply_since is None:
        ticket.sla_next_reply_since = now
        ticket.sla_next_reply_cycle += 1
    refresh(session, ticket, now)


def retime(session, tickets, now: datetime | None = None) -> int:
    """Re-choose and re-time open tickets after a rule or calendar edit.

    Points the edit moved into the past are recorded as suppressed instead of firing all at
    once (no storm of overdue warnings after an edit). Points that were already due before the
    edit are left for the tick, which may simply not have run yet: a clock whose old due time
    had passed, and any point up to the ticket's old next check.
    """
    now = now or clock.now()
    count, retimed = 0, []
    for ticket in tickets:
        old_check = ticket.sla_next_check_at
        already_due = {name for name in CLOCKS
                       if (due := getattr(ticket, f"sla_{name}_due")) is not None and due <= now}
        if not ticket.sla_rule_pinned or ticket.sla_rule is None or not ticket.sla_rule.is_active:
            ticket.sla_rule_pinned = False  # a pinned rule that was switched off gives way to the choice
            ticket.sla_rule = choose_rule(session, ticket, now)
        _sync_pause(session, ticket, now)
        for point in refresh(session, ticket, now):
            if point.at > now:
                break
            if point.clock not in already_due and not (old_check is not None and point.at <= old_check <= now):
                session.add(SlaFiring(ticket_id=ticket.id, clock=point.clock, point=point.name, cycle=point.cycle,
                                      due_at=point.at, fired_at=now, suppressed=True))
        session.flush()
        refresh(session, ticket, now)
        count += 1
        retimed.append(ticket)
    events.emit(events.SLA_RETIMED, session, retimed, now)  # escalation re-times its levels too
    return count


def retime_entities(session, entity_ids, now: datetime | None = None, batch_size: int = 500) -> int:
    """Re-time the open tickets of these entities and their departments (after an hours or rule edit)."""
    session.flush()
    ids = list(access.with_descendants(session, list(entity_ids)))
    done, last_id = 0, 0
    while True:  # keyset batches: memory stays flat however many tickets are open
        batch = session.scalars(
            select(Ticket).where(Ticket.entity_id.in_(ids), Ticket.status.notin_(STOPPED_STATUSES), Ticket.id > last_id)
            .order_by(Ticket.id).limit(batch_size)
            .options(selectinload(Ticket.sla_rule), selectinload(Ticket.entity))).all()
        if not batch:
            return done
        done += retime(session, batch, now)
        last_id = batch[-1].id


# --- what staff see ---------------------------------------------------------------------------

@dataclass
class Summary:
    """A ticket's nearest SLA state for the list: "due", "breached", "paused", "met" (stopped within target) or
    "none" (no rule). The list sorts by `due`, so it shows `wall_left` first and `business_left` beside it."""

    state: str
    due: datetime | None = None
    business_left: timedelta | None = None  # for "due": business time until the nearest due
    wall_left: timedelta | None = None  # for "due": clock time until the nearest due (what the list sorts by)


def summary(session, ticket: Ticket, now: datetime | None = None) -> Summary:
    """From the ticket's columns alone (no pause history): cheap enough for every list row."""
    now = now or clock.now()
    rule = ticket.sla_rule
    if rule is None:
        return Summary("none")
    if ticket.status in STOPPED_STATUSES:
        breached = ticket.sla_response_breached or ticket.sla_resolution_breached
        return Summary("breached" if breached else "met")
    if pausing(ticket, ticket.status):
        return Summary("paused")
    if ticket.sla_nearest_due is None:
        return Summary("met" if ticket.first_response_at else "none")
    if ticket.sla_nearest_due <= now:
        return Summary("breached", due=ticket.sla_nearest_due)
    left = calendar_for_rule(session, rule, ticket).between(now, ticket.sla_nearest_due)
    return Summary("due", due=ticket.sla_nearest_due, business_left=left, wall_left=ticket.sla_nearest_due - now)
