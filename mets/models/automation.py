"""Automation: rules (when <event>, if <conditions>, do <actions>), their execution log, and the
outbox of outgoing HTTP calls (webhooks and SMS) that rule actions queue."""
from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime

TRIGGERS = ("ticket_created", "ticket_updated", "reply_added", "status_changed", "priority_changed",
            "assigned_to_changed", "sla_breach_warning", "sla_breach_occurred", "escalation_due")


class AutomationRule(db.Model):
    __tablename__ = "automation_rules"
    __table_args__ = (
        Index("ix_automation_rules_entity_trigger", "entity_id", "trigger_event"),
        Index("ix_automation_rules_active_order", "is_active", "execution_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))  # None: all
    trigger_event: Mapped[str] = mapped_column(String(40))
    conditions: Mapped[dict | None] = mapped_column(JSON)  # the rule language (services/rules)
    actions: Mapped[list] = mapped_column(JSON, default=list)  # [{"type": "assign", ...}, ...] in order
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    stop_processing: Mapped[bool] = mapped_column(Boolean, default=False)
    execution_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    entity = relationship("Entity")

    def __repr__(self):
        return f"<AutomationRule {self.id} {self.name!r}>"


class RuleExecution(db.Model):
    """One evaluation of one rule for one ticket event: matched or not, what its actions did."""

    __tablename__ = "rule_executions"
    __table_args__ = (
        Index("ix_rule_executions_rule_at", "rule_id", "at"),
        Index("ix_rule_executions_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    ticket_event_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_events.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(40))
    matched: Mapped[bool] = mapped_column(Boolean, default=False)
    actions_run: Mapped[int] = mapped_column(Integer, default=0)
    # [{"type": "assign", "result": "Assigned to Dana", "ok": true}, ...]
    outcomes: Mapped[list] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    depth: Mapped[int] = mapped_column(Integer, default=1)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    rule = relationship("AutomationRule")
    ticket = relationship("Ticket")


WEBHOOK = "webhook"
SMS = "sms"


class WebhookDelivery(db.Model):
    """An outgoing HTTP POST (a webhook, or an SMS through the gateway), sent by a worker.

    Queued in the change's transaction like email (the outbox's core works both tables); statuses are the
    outbox's (pending, sending, sent, failed, cancelled); `attempt_log` keeps every try with its HTTP status or error.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_claim", "status", "next_attempt_at", "id"),
                      Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default=WEBHOOK)
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id", ondelete="SET NULL"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("automation_rules.id", ondelete="SET NULL"))
    # An endpoint's delivery (signed with its secret at send time; deleted with it); None: a rule's webhook, an SMS.
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event: Mapped[str | None] = mapped_column(String(40))
    event_type: Mapped[str | None] = mapped_column(String(60))  # the Standard Webhooks type: "ticket.created"
    # The `webhook-id` header: one per event and endpoint, the same on every try and replay (receivers dedupe on it).
    message_id: Mapped[str | None] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2000))
    body: Mapped[str] = mapped_column(Text)  # the exact bytes signed and sent (UTF-8 JSON)
    secret: Mapped[str | None] = mapped_column(String(200))  # a rule's "whsec_" key; None: unsigned or an endpoint's
    recipient: Mapped[str | None] = mapped_column(String(60))  # SMS: the phone number
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=6)  # WEBHOOK_MAX_ATTEMPTS when queued
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(120))  # "<worker>/<nonce>" while claimed
    response_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    attempt_log: Mapped[list] = mapped_column(JSON, default=list)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    rule = relationship("AutomationRule")
    ticket = relationship("Ticket")
    endpoint = relationship("WebhookEndpoint")
