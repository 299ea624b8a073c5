"""Personal API tokens: how a staff member's scripts call /api/v1 as that person."""
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime


class ApiToken(db.Model):
    """A token is `mets_<prefix>_<secret>`, shown once. Only the SHA-256 of the whole token is kept: the secret is
    random (256 bits), so a fast hash is enough and a stolen table gives nothing to sign in with; `prefix` (unique,
    indexed) finds the row in one lookup, and the hash is then compared in constant time. `revoked_at` set: refused
    from the next request on (every request reads the row)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User")

    @property
    def active(self) -> bool:
        return self.revoked_at is None
