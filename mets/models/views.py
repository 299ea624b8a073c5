"""Saved views of the staff ticket list: a named filter combination, personal or shared with an entity."""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime


class SavedView(db.Model):
    """`filters` holds the list's query-string arguments (services.tickets.search.TicketFilters.as_args); they are
    read back through TicketFilters and the list's access scoping every time, so a view never widens what its user
    may see. `entity_id` None: the owner's own view; else shared with the people who work in that entity."""

    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"), index=True)
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
