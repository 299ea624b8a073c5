"""Webhook endpoints: an entity's receivers of its events, delivered as Standard Webhooks.

Each endpoint names a URL, the event types it wants (`event_types`: "ticket.created", "sla.breach_occurred", ...)
and the `whsec_` secret its deliveries are signed with. Deliveries are `webhook_deliveries` rows (the outbox's HTTP
channel) with `endpoint_id` set; they are signed at send time with the endpoint's current secret, so a retry after
a rotation carries the new signature (and, during `ROTATION_GRACE`, the previous one as well).
"""
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime


class WebhookEndpoint(db.Model):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_entity", "entity_id", "active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list] = mapped_column(JSON, default=list)  # ["ticket.created", ...]
    secret: Mapped[str] = mapped_column(String(200))  # "whsec_<base64>"; never shown again after creation
    previous_secret: Mapped[str | None] = mapped_column(String(200))  # also signs until previous_secret_until
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first failure since the last success
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    entity = relationship("Entity")
