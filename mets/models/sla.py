"""SLA rules, the pauses of a ticket's clocks, and the record of every point that fired."""
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime

CLOCKS = ("response", "next_reply", "resolution")
DEFAULT_WARNINGS = [{"percent": 80}]
DEFAULT_PAUSE_STATUSES = ["pending"]


class SlaRule(db.Model):
    __tablename__ = "sla_rules"
    __table_args__ = (Index("ix_sla_rules_entity_position", "entity_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[str | None] = mapped_column(String(20))  # None: any priority
    # Targets in minutes; None means that clock does not run under this rule.
    response_minutes: Mapped[int | None] = mapped_column(Integer)
    next_reply_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    business_hours_only: Mapped[bool] = mapped_column(Boolean, default=True)
    conditions: Mapped[dict | None] = mapped_column(JSON)  # the rule language (services/rules.py)
    # [{"percent": 80}, {"minutes_before": 30}]: when to warn before each target.
    warnings: Mapped[list] = mapped_column(JSON, default=lambda: list(DEFAULT_WARNINGS))
    pause_statuses: Mapped[list] = mapped_column(JSON, default=lambda: list(DEFAULT_PAUSE_STATUSES))
    position: Mapped[int] = mapped_column(Integer, default=0)  # order within the entity
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    entity = relationship("Entity")

    def target_minutes(self, clock_name: str) -> int | None:
        return getattr(self, f"{clock_name}_minutes")


class SlaPause(db.Model):
    """A span during which a ticket's clocks stood still (pause status, or resolved/closed)."""

    __tablename__ = "sla_pauses"
    __table_args__ = (Index("ix_sla_pauses_ticket", "ticket_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while the pause lasts


class SlaFiring(db.Model):
    """One warning, breach or escalation point acted on; the unique key makes it at most once.

    `cycle` tells apart the next-reply clock's rounds (one per unanswered customer message).
    `suppressed` points passed while a rule or calendar was being edited: recorded, never emitted.
    """

    __tablename__ = "sla_firings"
    __table_args__ = (UniqueConstraint("ticket_id", "clock", "point", "cycle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    clock: Mapped[str] = mapped_column(String(20))
    point: Mapped[str] = mapped_column(String(40))  # "warning:80%", "warning:30m", "breach" ("escalation": old)
    cycle: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
