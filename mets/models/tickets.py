"""Tickets, their conversation and their audit trail."""
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint, case, literal_column
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime

STATUSES = ("new", "open", "pending", "on_hold", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
VIAS = ("portal", "agent", "email", "system")
STATUS_LABELS = {"new": "New", "open": "Open", "pending": "Pending", "on_hold": "On hold",
                 "resolved": "Resolved", "closed": "Closed"}


class Ticket(db.Model):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("entity_id", "seq"),
        Index("ix_tickets_entity_status", "entity_id", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        Index("ix_tickets_created_at", "created_at"),
        Index("ix_tickets_updated_at", "updated_at"),
        # The metrics dashboard's counts of one entity's tickets (created, resolved, open per status and assignee)
        # read this index alone on PostgreSQL (an index-only scan; migration 0020).
        Index("ix_tickets_entity_created", "entity_id", "created_at",
              postgresql_include=["status", "priority", "assignee_id", "resolved_at", "sla_nearest_due"]),
        # The ticket list's SLA filters and the dashboard's workload (running clocks due soon or past due, per
        # assignee): covering on PostgreSQL, an index-only range scan (migration 0026).
        Index("ix_tickets_sla_nearest_due", "sla_nearest_due",
              postgresql_include=["status", "assignee_id", "entity_id", "priority"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="RESTRICT"))
    seq: Mapped[int]  # per-entity sequence number
    number: Mapped[str] = mapped_column(String(60), unique=True)  # "ACME-1042"
    subject: Mapped[str] = mapped_column(String(250))
    body: Mapped[str] = mapped_column(Text, default="")  # as typed (body_format "text") or sanitised HTML
    body_format: Mapped[str] = mapped_column(String(10), default="text")  # "html": rows from before 0006
    status: Mapped[str] = mapped_column(String(20), default="new")
    priority: Mapped[str] = mapped_column(String(20), default="normal")
    category: Mapped[str | None] = mapped_column(String(80))
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # Bumped by every change (services/tickets/changes.py, the SLA tick): an open ticket page polls it.
    version: Mapped[int] = mapped_column(default=0, server_default="0")

    # SLA clocks (services/sla.py keeps them; due times are None while a clock is stopped or paused).
    sla_rule_id: Mapped[int | None] = mapped_column(ForeignKey("sla_rules.id", ondelete="SET NULL"))
    sla_response_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_next_reply_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_response_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_next_reply_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_resolution_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The unanswered customer message that started the running next-reply clock, and its round.
    sla_next_reply_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_next_reply_cycle: Mapped[int] = mapped_column(default=0)
    # The earliest instant the tick must look at this ticket (next warning/breach/escalation point).
    sla_next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The nearest running due time, for sorting and filtering the list by SLA state.
    sla_nearest_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Automation: minutes added to every target ("extend the deadlines"), a rule switched to by
    # hand or by a rule (kept when priority or category change), and the escalation level reached.
    sla_extension_minutes: Mapped[int] = mapped_column(default=0)
    sla_rule_pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_level: Mapped[int] = mapped_column(default=0)
    # Counters kept by services.metrics when the event happens (and rebuilt from ticket_events by metrics-rebuild):
    # reopens (resolved or closed -> an active status) and public replies by staff.
    reopen_count: Mapped[int] = mapped_column(default=0, server_default="0")
    public_reply_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # The earliest instant a level of the ticket's escalation policy is due (services/escalation keeps it;
    # the minute tick reads it through its index, like sla_next_check_at).
    escalation_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # When the satisfaction survey of the latest resolution is due (services.metrics.csat sets it on resolving and
    # clears it on reopening; the minute tick reads it through its index and sends the survey once).
    csat_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    entity = relationship("Entity")
    sla_rule = relationship("SlaRule")
    customer = relationship("User", foreign_keys=[customer_id])
    assignee = relationship("User", foreign_keys=[assignee_id])
    replies: Mapped[list["Reply"]] = relationship(
        back_populates="ticket", order_by="Reply.created_at, Reply.id", cascade="all, delete-orphan"
    )
    events: Mapped[list["TicketEvent"]] = relationship(
        back_populates="ticket", order_by="TicketEvent.at, TicketEvent.id", cascade="all, delete-orphan"
    )
    aliases: Mapped[list["TicketAlias"]] = relationship(
        back_populates="ticket", order_by="TicketAlias.id", cascade="all, delete-orphan"
    )

    @property
    def public_replies(self):
        return [r for r in self.replies if not r.internal]

    def __repr__(self):
        return f"<Ticket {self.number}>"


# The list's sort by priority: the priority's rank, written with literals (no bound parameters), so that migration
# 0021's two expression indexes (models/schema.py: kept in the migration only) match the ORDER BY whatever plan
# PostgreSQL picks. With the list's tie-break (id, newest first) one serves "most urgent first" walked backwards,
# the other "least urgent first".
PRIORITY_RANK = case({literal_column(f"'{p}'"): literal_column(str(rank)) for rank, p in enumerate(PRIORITIES)},
                     value=Ticket.priority)


class Reply(db.Model):
    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)  # as typed (body_format "text") or sanitised HTML
    body_format: Mapped[str] = mapped_column(String(10), default="text")
    internal: Mapped[bool] = mapped_column(Boolean, default=False)  # agents' note; customers never see it
    via: Mapped[str] = mapped_column(String(20), default="agent")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    ticket: Mapped[Ticket] = relationship(back_populates="replies")
    author = relationship("User")


class TicketEvent(db.Model):
    """The audit trail: one row per change, `changes` maps field -> [old, new]."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_at", "ticket_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # The automation rule whose action made this change (the actor is then None).
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("automation_rules.id", ondelete="SET NULL"))
    # The ticket's version this change made (None: the SLA tick's rows and rows from before 0012).
    version: Mapped[int | None]

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    actor = relationship("User")
    rule = relationship("AutomationRule")


class TicketAlias(db.Model):
    """A number the ticket had before it moved to another entity: links and searches still reach it."""

    __tablename__ = "ticket_aliases"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(60), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    ticket: Mapped[Ticket] = relationship(back_populates="aliases")


class TicketViewer(db.Model):
    """Presence: a staff member has this ticket's page open (the page's poll refreshes `last_seen`; older rows
    than a minute or so count as gone and are pruned)."""

    __tablename__ = "ticket_viewers"
    __table_args__ = (Index("ix_ticket_viewers_last_seen", "last_seen"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
