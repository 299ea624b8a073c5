"""Customer satisfaction: one survey per resolution of a ticket, and the customer's answer on the same row.

The minute tick writes the row when it sends the survey mail (`sent_at`), so the rows are the surveys sent; the
customer's answer fills `score` (1-5), `comment` and `answered_at`, and a later answer through the same link
updates them until `expires_at`. (ticket, resolved_at) is unique: one survey, and one answer, per resolution; a
reopen and a new resolution make a new one. The assignee at rating time is kept with the answer.
"""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets.extensions import db
from mets.models.types import UTCDateTime

SCORES = (1, 2, 3, 4, 5)
MAX_COMMENT = 2000


class CsatResponse(db.Model):
    __tablename__ = "csat_responses"
    __table_args__ = (
        UniqueConstraint("ticket_id", "resolved_at"),  # one survey and one answer per resolution cycle
        Index("ix_csat_responses_entity_sent", "entity_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the resolution this survey is about
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    priority: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    score: Mapped[int | None] = mapped_column(Integer)  # None: not answered (yet)
    comment: Mapped[str] = mapped_column(Text, default="")  # as typed
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The assignee when the customer rated (kept with each answer): per-agent satisfaction without history lookups.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    ticket = relationship("Ticket")
    customer = relationship("User", foreign_keys=[customer_id])

    def __repr__(self):
        return f"<CsatResponse ticket {self.ticket_id} resolved {self.resolved_at} score {self.score}>"
