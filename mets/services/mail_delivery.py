"""Sending the outbox: claim a batch atomically, send it over one connection, record each result
the moment the server accepts it.

A message is sent twice only if a worker dies between the SMTP server's acceptance and the
commit that follows it (or PostgreSQL itself crashes within a fraction of a second after that
commit: see `_marks_connection`); the resend then carries the same Message-ID, so clients show one.
"""
import logging
import os
import smtplib
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, func, select, update

from mets import clock
from mets.models import FAILED, PENDING, SENDING, SENT, QueuedEmail, Ticket
from mets.services import outbox
from mets.services.mailer import build_message, display_address, open_transport

log = logging.getLogger("mets.mail")

# The columns a send needs, read once: rows are updated with Core, so nothing expires between sends.
_COLUMNS = (QueuedEmail.id, QueuedEmail.sender, QueuedEmail.recipient_email, QueuedEmail.recipient_name,
            QueuedEmail.subject, QueuedEmail.body, QueuedEmail.body_html, QueuedEmail.message_id, QueuedEmail.ticket_id,
            QueuedEmail.attempts, QueuedEmail.max_attempts, QueuedEmail.attempt_log)


# Mail a recipient must get however much else they got this hour.
UNLIMITED_EVENTS = frozenset({"sla_breach", "escalation", "test"})


@dataclass
class DeliveryResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0

    def __str__(self):
        return (f"mail: {self.sent} sent, {self.retrying} to retry, {self.failed} failed, "
                f"{self.deferred} deferred by rate limits")


class ConnectionLost(Exception):
    """The SMTP connection failed: every message still in the batch is retried later."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- claiming ----------------------------------------------------------------------------------

def _global_allowance(session, now: datetime, wanted: int) -> int:
    cap = current_app.config["MAIL_RATE_PER_MINUTE"]
    if not cap:
        return wanted
    sent = session.scalar(select(func.count()).select_from(QueuedEmail)
                          .where(QueuedEmail.status == SENT, QueuedEmail.sent_at > now - timedelta(minutes=1)))
    return max(0, min(wanted, cap - sent))


def _over_recipient_limit(session, candidates, now: datetime) -> dict[int, datetime]:
    """Rows whose recipient already had their hourly share -> when to try them again.

    Breaches, escalations and admins' test emails are never held back; sign-in links are (they
    are critical for speed, but anyone can ask for one to any address).
    """
    cap = current_app.config["MAIL_RATE_PER_RECIPIENT_HOUR"]
    capped = [c for c in candidates if c.event not in UNLIMITED_EVENTS]
    if not cap or not capped:
        return {}
    hour_ago = now - timedelta(hours=1)
    rows = session.execute(
        select(QueuedEmail.recipient_email, func.count(), func.min(QueuedEmail.sent_at))
        .where(QueuedEmail.recipient_email.in_({c.recipient_email for c in capped}),
               QueuedEmail.status == SENT, QueuedEmail.sent_at > hour_ago)
        .group_by(QueuedEmail.recipient_email))
    used = {r: (n, oldest) for r, n, oldest in rows}
    deferred = {}
    for c in capped:
        n, oldest = used.get(c.recipient_email, (0, now))
        if n >= cap:
            deferred[c.id] = oldest + timedelta(hours=1)
        else:
            used[c.recipient_email] = (n + 1, oldest)
    return deferred


def _candidates(session, now: datetime, first_id: int | None, limit: int) -> list:
    """Due pending rows, locked on PostgreSQL (skipping rows another claim holds): the job's own
    row first, then the most urgent in index order (ix_email_queue_claim)."""
    due = (select(QueuedEmail.id, QueuedEmail.recipient_email, QueuedEmail.event)
           .where(QueuedEmail.status == PENDING, QueuedEmail.next_attempt_at <= now))
    lock = session.get_bind().dialect.name == "postgresql"
    first = []
    if first_id:
        own = due.where(QueuedEmail.id == first_id)
        first = session.execute(own.with_for_update(skip_locked=True) if lock else own).all()
    rest = (due.where(QueuedEmail.id != (first_id or 0))
            .order_by(QueuedEmail.priority, QueuedEmail.next_attempt_at, QueuedEmail.id).limit(limit - len(first)))
    return first + session.execute(rest.with_for_update(skip_locked=True) if lock else rest).all()


def claim(session, worker: str, now: datetime, first_id: int | None = None,
          limit: int | None = None) -> tuple[list, int]:
    """Take up to `limit` due rows for `worker` (row `first_id` first, then by priority).

    PostgreSQL locks the candidates with FOR UPDATE SKIP LOCKED, so concurrent workers take
    different rows; elsewhere the conditional UPDATE (status still pending) decides. Returns the
    claimed rows and how many were deferred by the rate limits. Commits.
    """
    limit = _global_allowance(session, now, limit or current_app.config["MAIL_BATCH_SIZE"])
    if limit <= 0:
        return [], 0
    candidates = _candidates(session, now, first_id, limit)
    deferred = _over_recipient_limit(session, candidates, now)
    for row_id, until in deferred.items():
        session.execute(update(QueuedEmail).where(QueuedEmail.id == row_id).values(
            next_attempt_at=until, error_message="Deferred: this recipient reached the hourly limit."))
    ids = [c.id for c in candidates if c.id not in deferred]
    token = f"{worker}/{uuid.uuid4().hex[:8]}"  # tells this claim's rows from the same worker's others
    if ids:
        session.execute(update(QueuedEmail)
                        .where(QueuedEmail.id.in_(ids), QueuedEmail.status == PENDING)  # still pending: ours
                        .values(status=SENDING, claimed_by=token, claimed_at=now,
                                attempts=QueuedEmail.attempts + 1)
                        .execution_options(synchronize_session=False))
    session.commit()
    if not ids:
        return [], len(deferred)
    rows = session.execute(select(*_COLUMNS).where(QueuedEmail.id.in_(ids), QueuedEmail.claimed_by == token,
                                                   QueuedEmail.status == SENDING)
                           .order_by(QueuedEmail.priority, QueuedEmail.id)).all()
    return rows, len(deferred)


# -- sending -----------------------------------------------------------------------------------

def _headers(row, numbers: dict[int, str]) -> dict[str, str]:
    headers = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
    if row.ticket_id:
        # One thread per ticket in the recipient's mail client.
        thread = f"<mets.ticket.{row.ticket_id}@{outbox.sender_domain(current_app.config)}>"
        headers.update({"References": thread, "In-Reply-To": thread, "X-METS-Ticket": numbers[row.ticket_id]})
    return headers


def _message(row, numbers: dict[int, str]):
    return build_message(sender=row.sender or current_app.config["MAIL_DEFAULT_SENDER"],
                         to=display_address(row.recipient_name, row.recipient_email), subject=row.subject,
                         text=row.body, html=row.body_html, message_id=row.message_id,
                         headers=_headers(row, numbers))


def _is_permanent(exc: Exception) -> bool:
    """5xx answers and bad data will not get better by retrying."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return isinstance(exc, ValueError)


def _is_connection_error(exc: Exception) -> bool:
    # smtplib's errors are OSErrors too: a refused recipient is that row's answer, not a lost connection.
    return isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)) or \
        (isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException))


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(_smtp_answer(code, message) for code, message in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return _smtp_answer(exc.smtp_code, exc.smtp_error)
    return f"{type(exc).__name__}: {exc}"


_MARK_SENT = (update(QueuedEmail.__table__).where(QueuedEmail.__table__.c.id == bindparam("row_id"))
              .values(status=SENT, sent_at=bindparam("sent_at"), error_message=None, attempt_log=bindparam("log")))


def _marks_connection(session):
    """A connection on which "sent" is recorded in one round trip: each UPDATE commits at once.

    On PostgreSQL it also skips waiting for the WAL flush (~4 ms, most of a send): other workers
    see the mark at once and a killed worker loses nothing; only a database crash in the next
    ~0.2 s could forget it, and the resend keeps its Message-ID.
    """
    connection = session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT")
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET synchronous_commit TO OFF")
    return connection


def _close_marks(connection) -> None:
    try:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("RESET synchronous_commit")  # the pool hands it on as it was
    finally:
        connection.close()


def _smtp_answer(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return f"SMTP {code}: {text}"


def _record_sent(marks, row, now: datetime) -> None:
    """Record "sent" the moment the server accepted it: a worker killed later resends nothing."""
    marks.execute(_MARK_SENT, {"row_id": row.id, "sent_at": now,
                               "log": [*row.attempt_log, {"at": now.isoformat(), "error": None}]})


def _record_failure(session, row, error: str, permanent: bool, now: datetime) -> bool:
    """Schedule a retry with exponential backoff, or fail the row for good. True if it will retry."""
    config = current_app.config
    retry = not permanent and row.attempts < row.max_attempts
    delay = min(config["MAIL_RETRY_BASE_SECONDS"] * 2 ** (row.attempts - 1), config["MAIL_RETRY_MAX_SECONDS"])
    session.execute(update(QueuedEmail).where(QueuedEmail.id == row.id).values(
        status=PENDING if retry else FAILED, error_message=error, claimed_by=None, claimed_at=None,
        next_attempt_at=now + timedelta(seconds=delay) if retry else now,
        attempt_log=[*row.attempt_log, {"at": now.isoformat(), "error": error}]))
    session.commit()
    return retry


def _send_all(session, rows, result: DeliveryResult) -> None:
    numbers = dict(session.execute(select(Ticket.id, Ticket.number)
                                   .where(Ticket.id.in_({r.ticket_id for r in rows if r.ticket_id}))).all())
    transport = open_transport()
    marks = _marks_connection(session)
    try:
        for index, row in enumerate(rows):
            try:
                transport.send(to_email=row.recipient_email, message=_message(row, numbers))
            except Exception as exc:  # noqa: BLE001 - every failure is recorded on its row
                if _is_connection_error(exc):
                    raise ConnectionLost(_describe(exc)) from exc
                _count(result, _record_failure(session, row, _describe(exc), _is_permanent(exc), clock.now()))
                log.warning("mail %s to %s failed: %s", row.id, row.recipient_email, _describe(exc))
            else:
                _record_sent(marks, row, clock.now())
                result.sent += 1
            rows[index] = None  # done: a lost connection below retries only what is left
    finally:
        transport.close()
        _close_marks(marks)


def _count(result: DeliveryResult, retrying: bool) -> None:
    if retrying:
        result.retrying += 1
    else:
        result.failed += 1


def deliver(session, *, worker: str | None = None, first_id: int | None = None,
            limit: int | None = None) -> DeliveryResult:
    """Claim one batch of due messages and send it; every outcome is written to its row."""
    result = DeliveryResult()
    if outbox.is_paused(session):
        session.rollback()
        return result
    rows, result.deferred = claim(session, worker or worker_name(), clock.now(), first_id, limit)
    result.claimed = len(rows)
    if not rows:
        return result
    try:
        _send_all(session, rows, result)
    except Exception as exc:  # noqa: BLE001 - connection refused or lost: retry the rest later
        error = str(exc) if isinstance(exc, ConnectionLost) else _describe(exc)
        log.warning("SMTP connection failed (%s): %d message(s) will be retried", error,
                    sum(r is not None for r in rows))
        session.rollback()
        for row in rows:
            if row is not None:
                _count(result, _record_failure(session, row, error, False, clock.now()))
    return result


def deliver_due(session, *, worker: str | None = None, max_batches: int = 1000) -> DeliveryResult:
    """Send batches until nothing due is left (the embedded loop and the tests use this)."""
    total = DeliveryResult()
    for _ in range(max_batches):
        result = deliver(session, worker=worker)
        for name in ("claimed", "sent", "retrying", "failed", "deferred"):
            setattr(total, name, getattr(total, name) + getattr(result, name))
        if not result.claimed:
            break
    return total
