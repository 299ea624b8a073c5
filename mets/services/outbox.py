"""The outbox (`email_queue`): messages are queued in the caller's transaction and sent by workers.

Queueing never talks to SMTP. After the transaction commits, each new row gets an RQ send job
(`mets.queueing`); the periodic sweep re-enqueues what is due but unclaimed (Redis was down, a
retry's backoff ended) and frees claims a killed worker left behind. Sending lives in
`services/mail_delivery.py`.
"""
import logging
import uuid
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr

from flask import current_app
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from mets import clock
from mets.models import CANCELLED, FAILED, NORMAL, PENDING, SENDING, AppSetting, Entity, QueuedEmail, Ticket
from mets.services.directory import access
from mets.services.errors import DomainError
from mets.services.validation import email_error, normalize_email

log = logging.getLogger("mets.outbox")

PAUSED_KEY = "mail_paused"
ACTIONABLE = (PENDING, FAILED)  # the states an admin may retry or cancel
_NEW_ROWS = "mets_outbox_new"  # session.info keys: rows added, not yet flushed...
_AFTER_COMMIT = "mets_outbox_enqueue"  # ...and (id, priority, attempts) to enqueue once the commit lands
_OWN = "mets_own_addresses"


def sender_domain(config) -> str:
    address = parseaddr(config["MAIL_DEFAULT_SENDER"])[1]
    return address.rsplit("@", 1)[-1] if "@" in address else "mets.localhost"


def own_addresses(session, config) -> set[str]:
    """The install's own addresses (default sender, entities' senders, METS_OWN_ADDRESSES).

    Mailing one of them could start a mail loop. Cached for the session's transaction.
    """
    if _OWN not in session.info:
        own = {normalize_email(parseaddr(config["MAIL_DEFAULT_SENDER"])[1])}
        own.update(normalize_email(a) for a in config.get("METS_OWN_ADDRESSES") or ())
        own.update(normalize_email(a) for a in session.scalars(
            select(Entity.sender_email).where(Entity.sender_email.is_not(None))))
        session.info[_OWN] = own - {""}
    return session.info[_OWN]


def refusal(session, address: str, config) -> str | None:
    """Why `address` must not be mailed (invalid, or one of ours), or None."""
    if msg := email_error(address):
        return msg
    if normalize_email(address) in own_addresses(session, config):
        return "This is the install's own address; mailing it could loop."
    return None


def sender_for(session, entity: Entity | None) -> str | None:
    """The From of an entity's mail: its own sender or its nearest ancestor's; None: MAIL_DEFAULT_SENDER."""
    for candidate in access.lineage(session, entity) if entity is not None else []:
        if candidate.sender_email:
            return single_line(formataddr((candidate.sender_name or "", candidate.sender_email)), 460)
    return None


def single_line(value: str, limit: int) -> str:
    """Header text on one line: no template or ticket data can add a header."""
    return " ".join((value or "").split())[:limit]


def queue_message(session, *, to: str, subject: str, text: str, html: str | None = None, name: str | None = None,
                  audience: str = "staff", priority: int = NORMAL, entity: Entity | None = None,
                  ticket: Ticket | None = None, event_name: str | None = None, template_name: str | None = None,
                  template_data: dict | None = None, dedupe_key: str | None = None,
                  now: datetime | None = None) -> QueuedEmail | None:
    """Add one message to the outbox in the caller's transaction; None if the address is refused.

    Nothing is sent here: after commit the row is handed to a worker.
    """
    config = current_app.config
    to = normalize_email(to)
    if why := refusal(session, to, config):
        log.warning("not queueing mail to %r: %s", to, why)
        return None
    now = now or clock.now()
    row = QueuedEmail(
        entity=entity, ticket=ticket, event=event_name, sender=sender_for(session, entity), recipient_email=to,
        recipient_name=single_line(name, 200) or None, audience=audience,
        subject=single_line(subject, 500), body=text, body_html=html, template_name=template_name,
        template_data=template_data or {}, priority=priority, attempts=0,
        max_attempts=config["MAIL_MAX_ATTEMPTS"], status=PENDING, scheduled_at=now, next_attempt_at=now,
        attempt_log=[], message_id=f"<mets.{uuid.uuid4().hex}@{sender_domain(config)}>",
        dedupe_key=dedupe_key or f"once:{uuid.uuid4().hex}", created_at=now)
    session.add(row)
    session.info.setdefault(_NEW_ROWS, []).append(row)
    return row


@event.listens_for(Session, "after_flush_postexec")
def _collect_new_ids(session, _flush_context) -> None:
    # Rows are flushed together (one multi-row INSERT); their ids exist from here on.
    rows = session.info.pop(_NEW_ROWS, None)
    if rows:
        _hand_over(session, [(r.id, r.priority, r.attempts) for r in rows if r.id is not None])


def _hand_over(session, items: list[tuple[int, int, int]]) -> None:
    """Have send jobs enqueued for these (id, priority, attempts) once the transaction commits."""
    session.info.setdefault(_AFTER_COMMIT, []).extend(items)


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session) -> None:
    # Only now may a worker see the rows; if Redis is unreachable the sweep enqueues them later.
    session.info.pop(_OWN, None)
    items = session.info.pop(_AFTER_COMMIT, None)
    if items:
        from mets import queueing
        queueing.enqueue_sends(items)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session) -> None:
    for key in (_NEW_ROWS, _AFTER_COMMIT, _OWN):
        session.info.pop(key, None)


# -- the admin's switches and actions ---------------------------------------------------------

def is_paused(session) -> bool:
    """Whether an admin has paused all sending (rows keep queueing)."""
    setting = session.get(AppSetting, PAUSED_KEY)
    return bool(setting and setting.value)


def set_paused(session, paused: bool) -> None:
    """Pause or resume sending; resuming hands every due row to the workers after commit."""
    setting = session.get(AppSetting, PAUSED_KEY) or AppSetting(key=PAUSED_KEY)
    setting.value = bool(paused)
    setting.updated_at = clock.now()
    session.add(setting)
    session.flush()
    if not paused:
        _requeue_due(session, clock.now())


def retry(session, row: QueuedEmail, now: datetime | None = None) -> None:
    """Send a pending or failed message again now; a failed one gets a fresh set of attempts."""
    if row.status not in ACTIONABLE:
        raise DomainError(f"A {row.status} message cannot be retried.")
    now = now or clock.now()
    if row.status == FAILED:
        row.max_attempts = row.attempts + current_app.config["MAIL_MAX_ATTEMPTS"]
    row.status, row.next_attempt_at = PENDING, now
    session.flush()
    _hand_over(session, [(row.id, row.priority, row.attempts)])


def retry_failed(session, ids: list[int], now: datetime | None = None) -> int:
    """Retry every failed message among `ids`; returns how many."""
    rows = session.scalars(select(QueuedEmail).where(QueuedEmail.id.in_(ids), QueuedEmail.status == FAILED)).all()
    for row in rows:
        retry(session, row, now)
    return len(rows)


def cancel(session, row: QueuedEmail) -> None:
    """Never send this message (a pending or failed one)."""
    if row.status not in ACTIONABLE:
        raise DomainError(f"A {row.status} message cannot be cancelled.")
    row.status = CANCELLED
    session.flush()


# -- the periodic sweep -------------------------------------------------------------------------

def reclaim_stale(session, now: datetime) -> int:
    """Free rows whose worker died mid-send (the claim is older than MAIL_CLAIM_STALE_SECONDS).

    The attempt they were on counts; a row out of attempts fails instead of looping forever.
    """
    stale_before = now - timedelta(seconds=current_app.config["MAIL_CLAIM_STALE_SECONDS"])
    rows = session.scalars(select(QueuedEmail).where(QueuedEmail.status == SENDING,
                                                     QueuedEmail.claimed_at < stale_before)
                           .with_for_update(skip_locked=True)).all()
    for row in rows:
        error = f"The worker {row.claimed_by} stopped while sending; it may or may not have been delivered."
        row.attempt_log = [*row.attempt_log, {"at": now.isoformat(), "error": error}]
        row.error_message = error
        row.claimed_by = row.claimed_at = None
        row.status = FAILED if row.attempts >= row.max_attempts else PENDING
        row.next_attempt_at = now
    session.flush()
    return len(rows)


def due_rows(session, now: datetime, limit: int) -> list[tuple[int, int, int]]:
    """(id, priority, attempts) of pending rows whose time has come, most urgent first."""
    return [tuple(r) for r in session.execute(
        select(QueuedEmail.id, QueuedEmail.priority, QueuedEmail.attempts)
        .where(QueuedEmail.status == PENDING, QueuedEmail.next_attempt_at <= now)
        .order_by(QueuedEmail.priority, QueuedEmail.next_attempt_at, QueuedEmail.id).limit(limit))]


def _requeue_due(session, now: datetime, limit: int = 5000) -> int:
    items = due_rows(session, now, limit)
    _hand_over(session, items)
    return len(items)


def sweep(session, now: datetime | None = None) -> tuple[int, int]:
    """Reclaim stale claims, then hand due rows to the queue (RQ's unique job ids drop duplicates).

    Returns (reclaimed, enqueued). Idempotent: running it twice enqueues nothing new.
    """
    now = now or clock.now()
    reclaimed = reclaim_stale(session, now)
    enqueued = 0 if is_paused(session) else _requeue_due(session, now)
    session.commit()
    return reclaimed, enqueued

