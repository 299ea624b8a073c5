"""People: staff and customers in one table, staff memberships in entities, and used portal sign-in links."""
import secrets
from datetime import datetime
from functools import lru_cache

from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from werkzeug.security import check_password_hash, generate_password_hash

from mets import clock
from mets.extensions import db
from mets.models.types import UTCDateTime

STAFF = "staff"
CUSTOMER = "customer"
USER_KINDS = (STAFF, CUSTOMER)
ROLES = ("manager", "agent")


def new_session_token() -> str:
    """A fresh random session token (see User.session_token)."""
    return secrets.token_urlsafe(24)


def _hash_method() -> str:
    return current_app.config["PASSWORD_HASH_METHOD"] if has_app_context() else "scrypt"


@lru_cache(maxsize=8)
def _dummy_hash(method: str) -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def check_dummy_password(password: str) -> bool:
    """Check `password` against a throwaway hash made like real ones: the same work as a real check, always False.

    Sign-in calls it for addresses with no password to check, so a wrong address answers no faster
    than a wrong password (which would tell which addresses are staff).
    """
    check_password_hash(_dummy_hash(_hash_method()), password)
    return False


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Always stored lower-cased, so the unique key is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(20), default=CUSTOMER)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a ticket was last given to this agent (round-robin picks who waited longest).
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of the id every session and remember cookie carries (get_id): a new value signs the user
    # out everywhere, since cookies already handed out can be neither recalled nor changed.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)

    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="Membership.entity_id"
    )

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_staff(self) -> bool:
        return self.kind == STAFF

    @property
    def is_customer(self) -> bool:
        return self.kind == CUSTOMER

    @property
    def is_manager(self) -> bool:
        """Staff managing some entity (the nav's Webhooks link; what they manage is access's to say)."""
        return self.kind == STAFF and any(m.role == "manager" for m in self.memberships)

    def get_id(self) -> str:
        """What Flask-Login keeps in the session and the remember cookie: "<id>:<session token>"."""
        return f"{self.id}:{self.session_token}"

    def end_sessions(self) -> None:
        """Sign the user out of every browser and device (the cookies they hold no longer match)."""
        self.session_token = new_session_token()

    @validates("active")
    def _deactivating_ends_sessions(self, _key, value):
        # Without this a session from before a deactivation would work again after a reactivation.
        if not value:
            self.end_sessions()
        return value

    def set_password(self, password: str) -> None:
        """Store a hash of `password`; every session signed in with the old one ends."""
        self.password_hash = generate_password_hash(password, method=_hash_method())
        self.end_sessions()

    def check_password(self, password: str) -> bool:
        """Whether `password` is this user's (with no password set: False, after the same work)."""
        if not self.password_hash:
            return check_dummy_password(password)
        return check_password_hash(self.password_hash, password)

    def __repr__(self):
        return f"<User {self.email}>"


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default="agent")
    tier: Mapped[int] = mapped_column(Integer, default=1)  # escalation tier: 1 first line, 2, 3...
    skills: Mapped[list] = mapped_column(JSON, default=list)  # free tags: ["billing", "hardware"]

    user: Mapped[User] = relationship(back_populates="memberships")
    entity = relationship("Entity")


class RedeemedLink(db.Model):
    """A portal sign-in link that was used: its digest's unique key lets it sign someone in once.

    Rows are pruned once the link would have expired anyway (services/portal_auth.py).
    """

    __tablename__ = "redeemed_links"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the signed part of the token
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, index=True)
