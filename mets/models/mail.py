"""Email: admin overrides of the default templates, per-entity notification settings, the outbox,
and the install-wide switches (`app_settings`)."""
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime

# Outbox states. "sending" is the in-flight state: a worker has claimed the row.
PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
MAIL_STATUSES = (PENDING, SENDING, SENT, FAILED, CANCELLED)
# Priority 1 is the most urgent (SLA breach, escalation, sign-in links); 10 the least.
CRITICAL, WARNING, NORMAL = 1, 3, 5


class EmailTemplate(db.Model):
    """An entity's override of one default template (the defaults live in mets/email_templates/)."""

    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("entity_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    entity = relationship("Entity")


class NotificationSetting(db.Model):
    """One entity's choice for one event; entities without a row inherit their parent's."""

    __tablename__ = "notification_settings"
    __table_args__ = (UniqueConstraint("entity_id", "event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Subset of services.notify.RECIPIENTS: "customer", "assignee", "agents", "managers", "admins".
    recipients: Mapped[list] = mapped_column(JSON, default=list)
    extra_addresses: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    entity = relationship("Entity")


class QueuedEmail(db.Model):
    """One message to one recipient: written in the transaction of the change, sent by a worker."""

    __tablename__ = "email_queue"
    __table_args__ = (
        # Claims and the sweep read pending rows in this order (and the admin list by status).
        Index("ix_email_queue_claim", "status", "priority", "next_attempt_at", "id"),
        Index("ix_email_queue_recipient_sent", "recipient_email", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id", ondelete="SET NULL"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    event: Mapped[str | None] = mapped_column(String(40))  # the notification event, "test" or "sign_in"
    sender: Mapped[str | None] = mapped_column(String(460))  # From: the entity's sender, else the install's
    recipient_email: Mapped[str] = mapped_column(String(254))
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    audience: Mapped[str] = mapped_column(String(20), default="staff")  # "customer" or "staff"
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)  # the text part
    body_html: Mapped[str | None] = mapped_column(Text)
    template_name: Mapped[str | None] = mapped_column(String(80))
    template_data: Mapped[dict] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=NORMAL)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    claim_token: Mapped[str | None] = mapped_column(String(120))  # "<worker>/<nonce>" while claimed
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_message: Mapped[str | None] = mapped_column(Text)
    # [{"at": iso, "error": str | None}] one entry per attempt, for the admin's message page.
    attempt_log: Mapped[list] = mapped_column(JSON, default=list)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    dedupe_key: Mapped[str] = mapped_column(String(250), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    entity = relationship("Entity")
    ticket = relationship("Ticket")


class AppSetting(db.Model):
    """Install-wide switches that admins flip in the page (e.g. "mail_paused", "webhooks_paused")."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[dict | list | str | bool | int | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
