"""Entities: the organisations and departments that share one install."""
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime


class Entity(db.Model):
    __tablename__ = "entities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Lower-case, also the ticket-number prefix (upper-cased): acme -> ACME-1001.
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id", ondelete="RESTRICT"), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    sender_name: Mapped[str | None] = mapped_column(String(200))
    sender_email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The portal offers only the portal-enabled entities; the one default (at most one per install) is preselected.
    portal_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    portal_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # False: this entity uses its parent's business hours (or the default Mon-Fri 09-17 at the top).
    custom_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on every change to the entity's hours, so cached calendars know they are stale.
    hours_version: Mapped[int] = mapped_column(Integer, default=0)
    # Last ticket number handed out; bumped with UPDATE ... RETURNING so numbers never collide.
    ticket_seq: Mapped[int] = mapped_column(Integer, default=1000)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    parent: Mapped["Entity | None"] = relationship(remote_side="Entity.id", back_populates="children")
    children: Mapped[list["Entity"]] = relationship(back_populates="parent", order_by="Entity.name")

    @property
    def ticket_prefix(self) -> str:
        return self.slug.upper()

    def __repr__(self):
        return f"<Entity {self.slug}>"
