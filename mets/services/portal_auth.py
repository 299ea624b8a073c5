"""Signed, expiring sign-in links for the customer portal (itsdangerous).

Two kinds share one format: sign-in links the customer asks for (short-lived) and ticket links
in notification emails (valid for days, so an email read next week still opens the ticket). The
kind is inside the signed payload, so it cannot be changed without breaking the signature.
"""
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mets.models import User
from mets.services import users
from mets.services.validation import email_error, normalize_email

SALT = "mets-portal-login"
SIGN_IN = "s"
TICKET = "t"


@dataclass
class LinkResult:
    user: User | None = None
    error: str | None = None  # "expired" or "invalid"
    next_path: str | None = None


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, email: str, next_path: str | None = None, kind: str = SIGN_IN) -> str:
    """A token that signs the customer in as `email` (and optionally lands on `next_path`); `kind` sets its lifetime."""
    if kind not in (SIGN_IN, TICKET):
        raise ValueError(f"unknown link kind {kind!r}")
    payload = {"e": normalize_email(email)}
    if next_path:
        payload["n"] = next_path
    if kind != SIGN_IN:
        payload["k"] = kind  # sign-in tokens stay as they were, so links already sent keep working
    return _serializer(secret_key).dumps(payload)


def _load(secret_key: str, token: str, max_age: int, ticket_max_age: int):
    """The payload if the signature holds and the token is younger than its own kind's limit."""
    payload, signed_at = _serializer(secret_key).loads(token, max_age=max(max_age, ticket_max_age),
                                                       return_timestamp=True)
    kind = payload.get("k", SIGN_IN) if isinstance(payload, dict) else SIGN_IN
    limit = ticket_max_age if kind == TICKET else max_age
    if int(time.time()) - int(signed_at.timestamp()) > limit:  # whole seconds, as itsdangerous counts
        raise SignatureExpired("link expired", payload=payload, date_signed=signed_at)
    return payload


def should_send_link(session, email: str, open_signup: bool) -> bool:
    """Whether `email` gets a link: known active customers, and new addresses when sign-up is open.

    The page shown afterwards is the same either way, so it reveals nothing.
    """
    email = normalize_email(email)
    if email_error(email):
        return False
    user = users.find_by_email(session, email)
    if user is None:
        return open_signup
    return user.is_customer and user.active


def redeem(session, secret_key: str, token: str, max_age: int, open_signup: bool,
           ticket_max_age: int) -> LinkResult:
    """Check a token and return the customer it signs in (created on first use when allowed).

    `max_age` limits sign-in links, `ticket_max_age` the ticket links in notification emails.
    """
    try:
        payload = _load(secret_key, token, max_age, ticket_max_age)
    except SignatureExpired:
        return LinkResult(error="expired")
    except BadSignature:
        return LinkResult(error="invalid")
    email = payload.get("e", "") if isinstance(payload, dict) else ""
    next_path = payload.get("n") if isinstance(payload, dict) else None
    if next_path and not (next_path.startswith("/portal/") and "//" not in next_path and next_path.isprintable()):
        next_path = None  # only ever land inside the portal (and no line breaks: it becomes a header)
    user = users.find_by_email(session, email)
    if user is None and open_signup and not email_error(email):
        user = users.get_or_create_customer(session, email)
    if user is None or not user.is_customer or not user.active:
        return LinkResult(error="invalid")
    return LinkResult(user=user, next_path=next_path)
