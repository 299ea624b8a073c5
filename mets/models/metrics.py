"""Response metrics: one row per measured span of a ticket's life, written when the span ends (services.metrics).

A row is written when its span starts (`end_at` NULL, no durations) and completed when it ends; a completed row
is frozen: a later calendar or rule edit does not rewrite it. The one exception is the ticket's full-resolution
row, which a reopen takes back (`end_at` NULL again, `reopened_at` set, its business minutes so far kept) and the
next resolution completes again, adding only the business time since the reopen.
"""
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime

FIRST_RESPONSE = "first_response"  # created -> first public agent reply (the SLA's response clock)
RESPONSE = "response"  # a customer's message after the first response -> the next public agent reply (next_reply)
FIRST_RESOLUTION = "first_resolution"  # created -> first resolved or closed (the resolution clock, then)
FULL_RESOLUTION = "full_resolution"  # created -> the last resolution: a reopen extends it (the resolution clock)
WAITING_ON_CUSTOMER = "waiting_on_customer"  # a span in status pending
ON_HOLD = "on_hold"  # a span in status on_hold
# A histogram's bins or counts (services.metrics.histograms): an integer array on PostgreSQL, which merges them in SQL
# (unnest), a JSON list elsewhere.
INT_LIST = JSON().with_variant(ARRAY(Integer), "postgresql")
# The columns the dashboard reads, carried in the (entity_id, end_at) index on PostgreSQL.
COVERED = ("metric_type", "within_sla", "priority", "agent_id", "business_minutes", "duration_minutes")
METRIC_TYPES = (FIRST_RESPONSE, RESPONSE, FIRST_RESOLUTION, FULL_RESOLUTION, WAITING_ON_CUSTOMER, ON_HOLD)


class ResponseMetric(db.Model):
    __tablename__ = "response_metrics"
    __table_args__ = (
        # Also the (ticket_id, metric_type) index: a ticket's rows of one type, in order; a row is never written twice.
        UniqueConstraint("ticket_id", "metric_type", "seq"),
        # Covering on PostgreSQL (migration 0019): every dashboard figure of an entity is an index-only scan.
        Index("ix_response_metrics_entity_end", "entity_id", "end_at", postgresql_include=list(COVERED)),
        # Every entity's rows completed since an instant (migration 0023): the summary's raw part, today, for all
        # entities, which the (entity_id, end_at) index cannot serve without reading all of it.
        Index("ix_response_metrics_end", "end_at", postgresql_include=["entity_id", *COVERED]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    metric_type: Mapped[str] = mapped_column(String(30))
    seq: Mapped[int] = mapped_column(Integer, default=1)  # 1, 2, ...: the ticket's rows of this type, in order
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while the span lasts
    duration_minutes: Mapped[float | None] = mapped_column(Float)  # calendar (wall-clock) minutes, exact
    business_minutes: Mapped[float | None] = mapped_column(Float)  # in the entity's hours, minus the SLA's pauses
    sla_target_minutes: Mapped[int | None] = mapped_column(Integer)  # the clock's target (+ extension); None: none
    within_sla: Mapped[bool | None] = mapped_column(Boolean)  # None: no target
    # Denormalised as they were when the span ended, for per-entity, per-agent and per-priority figures.
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    priority: Mapped[str] = mapped_column(String(20))
    reopens: Mapped[int] = mapped_column(Integer, default=0)  # full resolution: how many reopens extended it
    reopened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # full resolution: the latest reopen
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    ticket = relationship("Ticket")

    def __repr__(self):
        return f"<ResponseMetric {self.metric_type}#{self.seq} of ticket {self.ticket_id}>"


class MetricRollup(db.Model):
    """One UTC day's completed rows of one entity, metric type, priority and agent (services.metrics.rollups):
    how many, the sums and counts of their minutes, how many met or missed their target, and a histogram of each
    measure's minutes (migration 0023). Kept for ever; the dashboard reads the days rolled up from here."""

    __tablename__ = "metric_rollups"
    __table_args__ = (Index("ix_metric_rollups_entity_day", "entity_id", "day"),
                      Index("ix_metric_rollups_day", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)  # the UTC day of the rows' end_at
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    metric_type: Mapped[str] = mapped_column(String(30))
    priority: Mapped[str] = mapped_column(String(20))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    count: Mapped[int] = mapped_column(Integer, default=0)
    business_count: Mapped[int] = mapped_column(Integer, default=0)  # rows with business minutes
    business_minutes: Mapped[float] = mapped_column(Float, default=0.0)  # their sum
    duration_count: Mapped[int] = mapped_column(Integer, default=0)
    duration_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    within_sla: Mapped[int] = mapped_column(Integer, default=0)  # rows that met their target
    breached: Mapped[int] = mapped_column(Integer, default=0)  # rows that missed it
    # Histograms of the minutes (services.metrics.histograms): the bins present, ascending, and their counts. NULL on
    # rows rolled up before migration 0023 (their percentiles are unknown until the day is rolled up again).
    business_bins: Mapped[list | None] = mapped_column(INT_LIST)
    business_bin_counts: Mapped[list | None] = mapped_column(INT_LIST)
    duration_bins: Mapped[list | None] = mapped_column(INT_LIST)
    duration_bin_counts: Mapped[list | None] = mapped_column(INT_LIST)

    def __repr__(self):
        return f"<MetricRollup {self.day} {self.metric_type} entity {self.entity_id}>"


class _CoarseRollup:
    """The columns of a coarse level of `metric_rollups` (migration 0026): the same sums, counts and histograms,
    summed over the priorities (and the agents), and the running histograms: every day's of the same key up to this
    one, summed (rollups.fill_running). A period's histogram is the running one of its last day minus that of the
    day before it: two rows per key to merge, however long the period."""

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    metric_type: Mapped[str] = mapped_column(String(30))
    count: Mapped[int] = mapped_column(Integer, default=0)
    business_count: Mapped[int] = mapped_column(Integer, default=0)
    business_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    duration_count: Mapped[int] = mapped_column(Integer, default=0)
    duration_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    within_sla: Mapped[int] = mapped_column(Integer, default=0)
    breached: Mapped[int] = mapped_column(Integer, default=0)
    business_bins: Mapped[list | None] = mapped_column(INT_LIST)
    business_bin_counts: Mapped[list | None] = mapped_column(INT_LIST)
    duration_bins: Mapped[list | None] = mapped_column(INT_LIST)
    duration_bin_counts: Mapped[list | None] = mapped_column(INT_LIST)
    business_run_bins: Mapped[list | None] = mapped_column(INT_LIST)
    business_run_counts: Mapped[list | None] = mapped_column(INT_LIST)
    duration_run_bins: Mapped[list | None] = mapped_column(INT_LIST)
    duration_run_counts: Mapped[list | None] = mapped_column(INT_LIST)


_SUM_COLUMNS = ("count", "business_count", "business_minutes", "duration_count", "duration_minutes", "within_sla",
                "breached")


class MetricEntityRollup(_CoarseRollup, db.Model):
    """Per UTC day, entity and metric type (every priority and agent together): what a page without a priority or
    agent filter reads."""

    __tablename__ = "metric_entity_rollups"
    # The day index covers the sums on PostgreSQL (migration 0028): the dashboard's sums skip the wide rows.
    __table_args__ = (Index("ix_metric_entity_rollups_day", "day", "entity_id",
                            postgresql_include=["metric_type", *_SUM_COLUMNS]),
                      Index("ix_metric_entity_rollups_running", "entity_id", "metric_type", "day"))
    KEYS = ("entity_id", "metric_type")

    def __repr__(self):
        return f"<MetricEntityRollup {self.day} {self.metric_type} entity {self.entity_id}>"


class MetricAgentRollup(_CoarseRollup, db.Model):
    """Per UTC day, entity, metric type and agent (every priority together): the per-agent table, and a page
    filtered to one agent, without a priority filter."""

    __tablename__ = "metric_agent_rollups"
    __table_args__ = (Index("ix_metric_agent_rollups_day", "day", "entity_id",
                            postgresql_include=["metric_type", "agent_id", *_SUM_COLUMNS]),
                      Index("ix_metric_agent_rollups_running", "entity_id", "metric_type", "agent_id", "day"))
    KEYS = ("entity_id", "metric_type", "agent_id")

    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    def __repr__(self):
        return f"<MetricAgentRollup {self.day} {self.metric_type} entity {self.entity_id} agent {self.agent_id}>"


class TicketRollup(db.Model):
    """How many tickets created on one UTC day (`created_day`) are now of one status, entity, priority and assignee,
    resolved or closed on `resolved_day` (None: not resolved or closed now), and the oldest one's creation
    (services.metrics.rollups, migration 0026): the dashboard's created and resolved per day, its backlog trend and
    its open tickets per status and assignee (and their clocks due) without reading every ticket. Keyed by the day a
    ticket was created, so re-rolling that day puts back whatever a change did to it (status, resolution, priority,
    assignee, entity)."""

    __tablename__ = "ticket_rollups"
    __table_args__ = (Index("ix_ticket_rollups_created", "created_day", "entity_id"),
                      Index("ix_ticket_rollups_resolved", "resolved_day", "entity_id"),
                      Index("ix_ticket_rollups_status", "status", "entity_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    created_day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    resolved_day: Mapped[date | None] = mapped_column(Date)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    priority: Mapped[str] = mapped_column(String(20))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    count: Mapped[int] = mapped_column(Integer, default=0)
    oldest: Mapped[datetime] = mapped_column(UTCDateTime)  # the first created_at of them
    # Of them, how many had a running SLA clock due at or before the roll-up's mark (`rollups.tickets_rolled_up`;
    # migration 0027): the workload adds those that fell due since from the tickets' own index.
    due_by_mark: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __repr__(self):
        return f"<TicketRollup {self.created_day} {self.status} entity {self.entity_id}>"
