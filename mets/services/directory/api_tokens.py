"""Personal API tokens: made (shown once), listed, revoked, and checked on every API request.

A token reads `mets_<prefix>_<secret>`: the prefix (12 random characters) finds its row, the SHA-256 of the
whole token is compared in constant time. Only staff have tokens (customers have the portal). A token works while
it is not revoked and its user is active and staff: both are read on every request, so revoking or deactivating
takes effect at the very next one.
"""
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, true, update

from mets.models import ApiToken, User
from mets.services.directory import access
from mets.services.errors import DomainError, check
from mets.services.validation import text_error

PREFIX_CHARS = 12
MAX_TOKENS = 20  # per person: enough for every script one has, few enough to read the list
_SHAPE = re.compile(r"mets_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})")
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# last_used_at is written at most this often per token: a script's every call should not write a row.
LAST_USED_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class NewToken:
    """A token just made: the row and the one time its full text is known."""

    row: ApiToken
    token: str


def create_token(session, user: User, name: str, now: datetime) -> NewToken:
    if not user.is_staff or not user.active:
        raise DomainError("Only active staff members have API tokens.")
    name = (name or "").strip()
    errors = {}
    if message := text_error(name, "Name", 80):
        errors["name"] = message
    elif name.lower() in {t.name.lower() for t in tokens_of(session, user)}:
        errors["name"] = "You already have a token with this name."
    elif len(tokens_of(session, user)) >= MAX_TOKENS:
        errors["name"] = f"You have {MAX_TOKENS} tokens already: revoke one you no longer use first."
    check(errors)
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_CHARS))
    token = f"mets_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken(user_id=user.id, name=name, prefix=prefix, secret_hash=_digest(token), created_at=now)
    session.add(row)
    session.flush()
    return NewToken(row, token)


def tokens_of(session, user: User) -> list[ApiToken]:
    """The user's tokens not revoked, newest first (revoked ones are kept for the record, not listed)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def find_own_token(session, user: User, token_id: int | None) -> ApiToken | None:
    """One of `user`'s live tokens (someone else's is None, as a missing one)."""
    row = session.get(ApiToken, token_id) if token_id is not None else None
    return row if row is not None and row.user_id == user.id and row.revoked_at is None else None


def revoke_token(session, token: ApiToken, now: datetime) -> None:
    token.revoked_at = now
    session.flush()


@dataclass
class Presented:
    """What a presented token gave: the user it acts as (None: refused), and whether its row was marked used (the
    caller commits then; most requests write nothing)."""

    user: User | None
    touched: bool = False


def _lookup_statement():
    """The token's columns, its user (the only object built) and its user's scope (`access.worked_in_of`: one row per
    entity, one with None for none), by the token's prefix: one indexed lookup."""
    owner = select(ApiToken.user_id).where(ApiToken.prefix == bindparam("prefix")).scalar_subquery()
    scope = access.worked_in_of(owner).subquery("scope")
    return (select(ApiToken.id, ApiToken.secret_hash, ApiToken.revoked_at, ApiToken.last_used_at, User,
                   scope.c.id.label("scope_id"))
            .join(User, User.id == ApiToken.user_id).outerjoin(scope, true())
            .where(ApiToken.prefix == bindparam("prefix")))


_LOOKUP = _lookup_statement()  # built once: building it cost more than running it


def authenticate(session, token: str | None, now: datetime) -> Presented:
    """The user a presented token acts as, or None: malformed, unknown, revoked, or whose user is no longer active
    staff. Marks the token used (at most once per LAST_USED_EVERY). Its user's scope is read in the same statement
    and is what `access.visible_entity_ids` answers for the rest of the transaction."""
    match = _SHAPE.fullmatch(token or "")
    if match is None:
        return Presented(None)
    rows = session.execute(_LOOKUP, {"prefix": match.group(1)}).all()
    row = rows[0] if rows else None
    if row is None or not hmac.compare_digest(row.secret_hash, _digest(token)) or row.revoked_at is not None:
        return Presented(None)
    user = row.User
    if not user.active or not user.is_staff:
        return Presented(None)
    access.known_entity_ids(session, user, {r.scope_id for r in rows if r.scope_id is not None})
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        # A plain UPDATE, not the ORM: concurrent calls of one token both write, neither conflicts.
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
                        .execution_options(synchronize_session=False))
        return Presented(user, touched=True)
    return Presented(user)
