"""Response metrics written when the event happens: one `Recorder` per ticket turns its ticket events into rows.

The same code runs at event time (`subscriber.ticket_changed`: the facts come from the ticket as the change left
it) and in the rebuild (`services.metrics.rebuild`: the facts come from replaying the ticket's
`ticket_events`), so a rebuild writes exactly what event time wrote while calendars and rules are unchanged.

What each event does (the row types are in `mets.models.metrics`):
- ticket_created: opens first_response, first_resolution and full_resolution (start = creation).
- a public reply by staff: completes first_response, or the open response (agent = the replier); counts a public reply.
- a public reply by a customer after the first response, none open: opens a response (the SLA's next_reply round).
- status_changed into pending / on_hold opens a waiting_on_customer / on_hold span; leaving it completes the span.
- resolved or closed from an active status: completes first_resolution (once) and full_resolution.
- an active status from resolved or closed (a reopen): counts a reopen and takes full_resolution back (end NULL,
  reopens + 1, reopened_at = now, its business minutes so far kept); the next resolution completes it again.

Durations: `duration_minutes` is wall-clock time. `business_minutes` is business time in the calendar of the
ticket's SLA rule (`sla.calendar_for_rule`: the entity's hours, or round the clock for a 24/7 rule), or in the
entity's hours without a rule; for the clock-like rows (responses and resolutions) it leaves out the SLA's pauses
(`sla_pauses`: pause statuses and resolved/closed spans), as the SLA's clock does. `within_sla` is the SLA's
verdict: the span ended at or before the clock's due time (target + the ticket's extension, walked through the
pauses). Entity, agent and priority are the ones when the row is completed.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from mets import clock
from mets.models import ResponseMetric, SlaPause, SlaRule, Ticket
from mets.models.metrics import (FIRST_RESOLUTION, FIRST_RESPONSE, FULL_RESOLUTION, ON_HOLD, RESPONSE,
                                 WAITING_ON_CUSTOMER)
from mets.services import hours, sla

MUTED = "metrics"  # transaction.muted(session, MUTED): history written without metrics (the demo rebuilds them)
STOPPED = set(sla.STOPPED_STATUSES)
SPAN_STATUSES = {"pending": WAITING_ON_CUSTOMER, "on_hold": ON_HOLD}
# The SLA clock each clock-like row measures (its target, its pauses).
CLOCK_OF = {FIRST_RESPONSE: "response", RESPONSE: "next_reply", FIRST_RESOLUTION: "resolution",
            FULL_RESOLUTION: "resolution"}


@dataclass
class Facts:
    """What one ticket event needs to know of the ticket and the actor, as they were just after it."""

    event: str
    changes: dict
    at: datetime
    actor_id: int | None
    actor_is_staff: bool
    actor_is_customer: bool
    entity: object  # Entity
    priority: str
    assignee_id: int | None
    extension_minutes: int
    rule: SlaRule | None


class Recorder:
    """The metric rows of one ticket and what its next events do to them (`rows`: every row of the ticket)."""

    def __init__(self, session, ticket: Ticket, rows: list[ResponseMetric], pauses=None):
        self.session = session
        self.ticket = ticket
        self.rows = rows
        self._pauses = pauses  # loaded on the first completed clock-like row
        self.reopens = 0  # counted here; the caller applies them to the ticket
        self.public_replies = 0

    # --- the events ---------------------------------------------------------------------------

    def apply(self, facts: Facts) -> None:
        if facts.event == "ticket_created":
            for kind in (FIRST_RESPONSE, FIRST_RESOLUTION, FULL_RESOLUTION):
                if not self._all(kind):
                    self._open(kind, facts)
        elif facts.event == "reply_added" and not facts.changes.get("internal") and facts.actor_id is not None:
            if facts.actor_is_staff:
                self.public_replies += 1
                for kind in (FIRST_RESPONSE, RESPONSE):
                    if (row := self._open_row(kind)) is not None:
                        self._close(row, facts, agent_id=facts.actor_id)
            elif facts.actor_is_customer and self._all(FIRST_RESPONSE) and self._open_row(FIRST_RESPONSE) is None \
                    and self._open_row(RESPONSE) is None:
                self._open(RESPONSE, facts)
        elif facts.event == "status_changed":
            old, new = facts.changes.get("status", [None, None])
            if old in SPAN_STATUSES and (row := self._open_row(SPAN_STATUSES[old])) is not None:
                self._close(row, facts, agent_id=self._agent(facts))
            if new in SPAN_STATUSES:
                self._open(SPAN_STATUSES[new], facts)
            if new in STOPPED and old not in STOPPED:
                for kind in (FIRST_RESOLUTION, FULL_RESOLUTION):
                    if (row := self._open_row(kind)) is not None:
                        self._close(row, facts, agent_id=self._agent(facts))
            elif old in STOPPED and new not in STOPPED:
                self.reopens += 1
                row = self._last(FULL_RESOLUTION)
                if row is not None and row.end_at is not None:
                    row.end_at = row.duration_minutes = row.within_sla = None
                    row.reopens += 1
                    row.reopened_at = facts.at

    # --- rows ---------------------------------------------------------------------------------

    def _all(self, kind: str) -> list[ResponseMetric]:
        return [r for r in self.rows if r.metric_type == kind]

    def _last(self, kind: str) -> ResponseMetric | None:
        return max(self._all(kind), key=lambda r: r.seq, default=None)

    def _open_row(self, kind: str) -> ResponseMetric | None:
        row = self._last(kind)
        return row if row is not None and row.end_at is None else None

    def _open(self, kind: str, facts: Facts) -> ResponseMetric:
        last = self._last(kind)
        row = ResponseMetric(ticket_id=self.ticket.id, metric_type=kind, seq=(last.seq + 1) if last else 1,
                             start_at=facts.at, entity_id=facts.entity.id, priority=facts.priority,
                             agent_id=facts.assignee_id, reopens=0, recorded_at=clock.now())
        self.session.add(row)
        self.rows.append(row)
        return row

    def _agent(self, facts: Facts) -> int | None:
        """Who a resolution or a span is put down to: the assignee, else the staff member who made the change."""
        return facts.assignee_id or (facts.actor_id if facts.actor_is_staff else None)

    def _close(self, row: ResponseMetric, facts: Facts, agent_id: int | None) -> None:
        end = facts.at
        rule = facts.rule
        cal = _calendar(self.session, rule, facts.entity)
        clock_name = CLOCK_OF.get(row.metric_type)
        row.end_at = end
        row.duration_minutes = _minutes(end - row.start_at)
        row.entity_id, row.priority, row.agent_id = facts.entity.id, facts.priority, agent_id
        row.recorded_at = clock.now()
        if clock_name is None:  # a pending or on-hold span: its business time, no target
            row.business_minutes = _minutes(cal.between(row.start_at, end))
            return
        pauses = self._clipped_pauses(end)
        if row.reopened_at is not None:  # a reopened full resolution: what it had, and the time since the reopen
            row.business_minutes = (row.business_minutes or 0) + _minutes(
                sla.used_between(cal, row.reopened_at, end, pauses))
        else:
            row.business_minutes = _minutes(sla.used_between(cal, row.start_at, end, pauses))
        target = rule.target_minutes(clock_name) if rule is not None else None
        if target is None:
            row.sla_target_minutes = row.within_sla = None
            return
        row.sla_target_minutes = target + (facts.extension_minutes or 0)
        due = sla.due_after(cal, row.start_at, timedelta(minutes=row.sla_target_minutes), pauses)
        row.within_sla = due is not None and end <= due

    def _clipped_pauses(self, end: datetime) -> list[tuple[datetime, datetime]]:
        """The ticket's SLA pauses as they stood at `end` (a pause still open, or ending later, ends there)."""
        if self._pauses is None:
            # No autoflush: the change flushed its pauses before emitting, and flushing here would write the row
            # being completed half-done (its end), then again with its minutes: two UPDATEs for one.
            with self.session.no_autoflush:
                self._pauses = pauses_of(self.session, [self.ticket.id]).get(self.ticket.id, [])
        return [(a, end if b is None or b > end else b) for a, b in self._pauses if a < end]


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _calendar(session, rule: SlaRule | None, entity):
    """The rule's calendar (as sla.calendar_for_rule, for the entity the ticket is in), else the entity's hours."""
    if rule is not None and not rule.business_hours_only:
        return sla.ALWAYS_OPEN
    return hours.calendar_for(session, entity)


def pauses_of(session, ticket_ids) -> dict[int, list[tuple[datetime, datetime | None]]]:
    out: dict[int, list] = {}
    rows = session.execute(select(SlaPause.ticket_id, SlaPause.started_at, SlaPause.ended_at)
                           .where(SlaPause.ticket_id.in_(list(ticket_ids)))
                           .order_by(SlaPause.ticket_id, SlaPause.started_at, SlaPause.id))
    for ticket_id, started, ended in rows:
        out.setdefault(ticket_id, []).append((started, ended))
    return out
