"""Signed, expiring sign-in links for the customer portal (itsdangerous).

Two kinds share one format: sign-in links the customer asks for (short-lived) and ticket links
in notification emails (valid for days, so an email read next week still opens the ticket). The
kind is inside the signed payload, so it cannot be changed without breaking the signature.

Sign-in links work once: redeeming one stores its digest under a unique key, so a second use
(a link read from a mailbox, a browser history or a proxy log, or two tabs at the same moment)
is refused. Ticket links stay usable for their whole lifetime, on purpose: customers open the
same notification again days later, and several mails about one ticket would otherwise each
need a fresh sign-in link. They are safe enough to keep: they expire
(PORTAL_TICKET_LINK_MAX_AGE), and they land only on that one ticket of that customer.
"""
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from mets import clock
from mets.models import RedeemedLink, User
from mets.services.directory import users
from mets.services.validation import email_error, normalize_email

SALT = "mets-portal-login"
SIGN_IN = "s"
TICKET = "t"


@dataclass
class LinkResult:
    user: User | None = None
    error: str | None = None  # "expired", "used" or "invalid"
    next_path: str | None = None


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def safe_next(path) -> str | None:
    """`path` if it is a place inside the portal a link may land on, else None.

    Only portal paths, and nothing unprintable: it ends up in a Location header, where CR/LF would
    start a header of its own.
    """
    if not isinstance(path, str) or not path or len(path) > 500:
        return None
    if not path.startswith("/portal/") or "//" in path or "\\" in path or not path.isprintable():
        return None
    return path


def make_token(secret_key: str, email: str, next_path: str | None = None, kind: str = SIGN_IN) -> str:
    """A token that signs the customer in as `email` (and optionally lands on `next_path`); `kind` sets its lifetime."""
    if kind not in (SIGN_IN, TICKET):
        raise ValueError(f"unknown link kind {kind!r}")
    payload = {"e": normalize_email(email)}
    if next_path := safe_next(next_path):
        payload["n"] = next_path
    if kind == SIGN_IN:
        # Each sign-in link is its own, even two asked for in the same second: using one leaves the other usable.
        payload["j"] = secrets.token_urlsafe(9)
    else:
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
    payload = payload if isinstance(payload, dict) else {}
    email = payload.get("e", "") if isinstance(payload.get("e"), str) else ""
    next_path = safe_next(payload.get("n"))  # only ever land inside the portal
    if payload.get("k", SIGN_IN) == SIGN_IN and not _first_use(session, token, max_age):
        return LinkResult(error="used")
    user = users.find_by_email(session, email)
    if user is None and open_signup and not email_error(email):
        user = users.get_or_create_customer(session, email)
    if user is None or not user.is_customer or not user.active:
        return LinkResult(error="invalid")
    return LinkResult(user=user, next_path=next_path)


def _first_use(session, token: str, max_age: int) -> bool:
    """Record this sign-in link as used; False if it already was (by an earlier or a concurrent request).

    The digest covers the signed part of the token (payload and timestamp), not the signature's
    text: base64 has several spellings of the same signature bytes, and every one of them verifies.
    """
    digest = hashlib.sha256(token.rpartition(".")[0].encode()).hexdigest()
    now = clock.now()
    # A link used longer ago than the lifetime has expired by now: its row is no longer needed to refuse it.
    session.execute(delete(RedeemedLink).where(RedeemedLink.redeemed_at < now - timedelta(seconds=max_age)))
    try:
        with session.begin_nested():  # the unique key decides, even between two requests at the same moment
            session.add(RedeemedLink(digest=digest, redeemed_at=now))
    except IntegrityError:
        return False
    return True


# --- satisfaction survey links ---------------------------------------------------------------------
# Their own salt: a survey token is never a sign-in token, nor the reverse. It names one survey row and the
# customer it was sent to; it signs nobody in. Its lifetime is checked against the row's `expires_at` by the caller.
SURVEY_SALT = "mets-csat-survey"


def make_survey_token(secret_key: str, response_id: int, email: str) -> str:
    """A token that opens the survey row `response_id` for the customer `email`."""
    return URLSafeTimedSerializer(secret_key, salt=SURVEY_SALT).dumps({"r": response_id, "e": normalize_email(email)})


def load_survey_token(secret_key: str, token: str, max_age: int) -> tuple[int, str] | str:
    """(response id, email) if the signature holds and the token is younger than `max_age` seconds, else
    "expired" or "invalid"."""
    try:
        payload = URLSafeTimedSerializer(secret_key, salt=SURVEY_SALT).loads(token, max_age=max_age)
    except SignatureExpired:
        return "expired"
    except BadSignature:
        return "invalid"
    if not isinstance(payload, dict) or not isinstance(payload.get("r"), int) or not isinstance(payload.get("e"), str):
        return "invalid"
    return payload["r"], payload["e"]
