"""The mail channel of the outbox (`email_queue`): queueing a message, the loop guard, the
transports (SMTP, or a Maildir in the embedded run), and sending in batches under rate limits.

The state machine (claim with a token, record only while the claim holds, retry with backoff,
the sweep, cancel, pause) is `core`'s; this module says what mail does at each step:

- queueing refuses invalid addresses and the install's own (a mail loop), and stamps a
  Message-ID that a resend keeps;
- a worker claims a batch (its job's row first, then by priority) within MAIL_RATE_PER_MINUTE
  and MAIL_RATE_PER_RECIPIENT_HOUR (breaches, escalations and test emails exempt), sends it over
  one connection, and records each result the moment the server accepts it.

A message is sent twice only if a worker dies between the SMTP server's acceptance and the
commit that follows it (or PostgreSQL itself crashes within a fraction of a second after that
commit: see `_marks_connection`); the resend then carries the same Message-ID, so clients show one.
"""
import binascii
import logging
import mailbox
import os
import smtplib
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache

from flask import current_app
from sqlalchemy import bindparam, func, select, update

from mets import clock, queueing, transaction
from mets.extensions import mail
from mets.models import NORMAL, PENDING, SENDING, SENT, Entity, QueuedEmail, Ticket
from mets.services.directory import access
from mets.services.outbox import core
from mets.services.outbox.core import worker_name
from mets.services.validation import email_error, normalize_email

log = logging.getLogger("mets.mail")

PAUSED_KEY = "mail_paused"
ACTIONABLE = core.ACTIONABLE  # the states an admin may retry or cancel
_OWN = "outbox.own_addresses"  # transaction.cache


def _enqueue(items):
    return queueing.enqueue_sends(items)


MAIL = core.Channel(
    name="mail", model=QueuedEmail, noun="message", max_attempts_key="MAIL_MAX_ATTEMPTS",
    retry_base_key="MAIL_RETRY_BASE_SECONDS", retry_max_key="MAIL_RETRY_MAX_SECONDS", paused_key=PAUSED_KEY,
    enqueue=_enqueue, item=lambda r: (r.id, r.priority, r.attempts),
    item_columns=lambda: (QueuedEmail.id, QueuedEmail.priority, QueuedEmail.attempts),
    order=lambda: (QueuedEmail.priority, QueuedEmail.next_attempt_at, QueuedEmail.id),
    stale_error=lambda row: (f"The worker {row.claim_token} stopped while sending; "
                             "it may or may not have been delivered."))


# -- addresses and headers ----------------------------------------------------------------------

def sender_domain(config) -> str:
    return _domain_of(config["MAIL_DEFAULT_SENDER"])


@lru_cache(maxsize=16)
def _domain_of(sender: str) -> str:
    # parseaddr costs more than the rest of queueing a row: read once per setting's value.
    address = parseaddr(sender)[1]
    return address.rsplit("@", 1)[-1] if "@" in address else "mets.localhost"


def own_addresses(session, config) -> set[str]:
    """The install's own addresses (default sender, entities' senders, METS_OWN_ADDRESSES).

    Mailing one of them could start a mail loop. Cached for the session's transaction.
    """
    cache = transaction.cache(session)
    if _OWN not in cache:
        own = {normalize_email(parseaddr(config["MAIL_DEFAULT_SENDER"])[1])}
        own.update(normalize_email(a) for a in config.get("METS_OWN_ADDRESSES") or ())
        own.update(normalize_email(a) for a in session.scalars(
            select(Entity.sender_email).where(Entity.sender_email.is_not(None))))
        cache[_OWN] = own - {""}
    return cache[_OWN]


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


# -- queueing (in the caller's transaction) --------------------------------------------------------

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
    core.add(MAIL, session, row)
    return row


# -- the core's verbs, for mail ---------------------------------------------------------------------

def is_paused(session) -> bool:
    """Whether an admin has paused all sending of mail (rows keep queueing)."""
    return core.is_paused(MAIL, session)


def set_paused(session, paused: bool) -> None:
    """Pause or resume mail; resuming hands every due row to the workers after commit."""
    core.set_paused(MAIL, session, paused)


def retry(session, row: QueuedEmail, now: datetime | None = None) -> None:
    """Send a pending or failed message again now; a failed one gets a fresh set of attempts."""
    core.retry(MAIL, session, row, now)


def retry_failed(session, ids: list[int], now: datetime | None = None) -> int:
    """Retry every failed message among `ids`; returns how many."""
    return core.retry_failed(MAIL, session, ids, now)


def cancel(session, row: QueuedEmail) -> None:
    """Never send this message (a pending or failed one)."""
    core.cancel(MAIL, session, row)


def reclaim_stale(session, now: datetime) -> int:
    """Free rows whose worker died mid-send (the claim is older than MAIL_CLAIM_STALE_SECONDS)."""
    return core.reclaim_stale(MAIL, session, now)


def due_rows(session, now: datetime, limit: int) -> list[tuple[int, int, int]]:
    """(id, priority, attempts) of pending rows whose time has come, most urgent first."""
    return core.due_items(MAIL, session, now, limit)


def sweep(session, now: datetime | None = None) -> tuple[int, int]:
    """Reclaim stale claims, then hand due rows to the queue (RQ's unique job ids drop duplicates).

    Returns (reclaimed, enqueued). Idempotent: running it twice enqueues nothing new.
    """
    reclaimed, items = core.sweep(MAIL, session, now)
    if items:
        _enqueue(items)
    return reclaimed, len(items)


# -- transports --------------------------------------------------------------------------------------

def reject_crlf(*values: str | None) -> None:
    """Header values are one line: CR or LF would let data add headers."""
    for value in values:
        if value and ("\r" in value or "\n" in value):
            raise ValueError("header values cannot contain CR or LF")


def display_address(name: str | None, email: str) -> str:
    return formataddr((name, email)) if name else email


def build_message(*, sender: str, to: str, subject: str, text: str, html: str | None, message_id: str,
                  headers: dict[str, str]) -> bytes:
    """The message as sent (CRLF line ends): text and HTML alternatives in quoted-printable UTF-8,
    our Message-ID, Auto-Submitted and friends.

    Written out directly: building it with Flask-Mail's Message (or the email package's
    generator) re-folds every header and cost more than the SMTP exchange itself.
    """
    reject_crlf(sender, to, subject, message_id, *headers, *headers.values())
    head = {"From": _address(sender), "To": _address(to), "Subject": _header_text(subject),
            "Date": formatdate(usegmt=True),
            "Message-ID": message_id, "MIME-Version": "1.0", **headers}
    if html:
        boundary = f"=_mets_{uuid.uuid4().hex}"
        head["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
        body = (f"--{boundary}\r\n{_part_head('plain')}\r\n{_qp(text)}\r\n"
                f"--{boundary}\r\n{_part_head('html')}\r\n{_qp(html)}\r\n--{boundary}--\r\n")
    else:
        body, head = _qp(text), {**head, **_part_headers("plain")}
    lines = "".join(f"{name}: {value}\r\n" for name, value in head.items())
    return f"{lines}\r\n{body}".encode("ascii")


def _address(value: str) -> str:
    """"Name <addr>" with a non-ASCII name encoded (formataddr's RFC 2047 words)."""
    return value if value.isascii() else formataddr(parseaddr(value))


def _header_text(value: str) -> str:
    """ASCII as is; anything else as RFC 2047 encoded words (folded)."""
    return value if value.isascii() else Header(value, "utf-8").encode(linesep="\r\n")


def _part_headers(subtype: str) -> dict[str, str]:
    return {"Content-Type": f"text/{subtype}; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable"}


def _part_head(subtype: str) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in _part_headers(subtype).items())


def _qp(value: str) -> str:
    """Quoted-printable with CRLF line ends: 7-bit, lines under 77 characters."""
    normalized = value.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(normalized, istext=True).decode("ascii").replace("\n", "\r\n")


class SmtpTransport:
    """One Flask-Mail SMTP connection (TLS and login as configured) for a batch of messages."""

    def __init__(self):
        self._connection = mail.connect()
        # Flask-Mail opens smtplib.SMTP without a timeout; the default timeout covers the connect,
        # the greeting and every later read, so a server that never answers cannot hang a worker.
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(current_app.config["MAIL_SMTP_TIMEOUT"])
        try:
            self._connection.__enter__()  # connects (and logs in): refused connections raise here
        finally:
            socket.setdefaulttimeout(previous)

    def send(self, *, to_email: str, message: bytes) -> None:
        # Bounces go to the install's address, whichever entity the message is from.
        envelope_from = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
        if self._connection.host is not None:  # None: Flask-Mail's MAIL_SUPPRESS_SEND
            self._connection.host.sendmail(envelope_from, [to_email], message)

    def close(self) -> None:
        try:
            self._connection.__exit__(None, None, None)
        except Exception:  # QUIT on a dead connection: nothing left to tidy
            pass


class MaildirTransport:
    """The embedded run's "SMTP server": every message lands in instance/maildir."""

    def __init__(self):
        path = current_app.config["MAILDIR"]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._box = mailbox.Maildir(path, create=True)

    def send(self, *, to_email: str, message: bytes) -> None:
        self._box.add(message.replace(b"\r\n", b"\n"))  # a file on this machine: local line ends

    def close(self) -> None:
        pass


def open_transport():
    """SMTP when MAIL_SERVER is set, else the Maildir."""
    return SmtpTransport() if current_app.config.get("MAIL_SERVER") else MaildirTransport()


# -- claiming ----------------------------------------------------------------------------------

# The columns a send needs, read once: rows are updated with Core, so nothing expires between sends.
_COLUMNS = (QueuedEmail.id, QueuedEmail.sender, QueuedEmail.recipient_email, QueuedEmail.recipient_name,
            QueuedEmail.subject, QueuedEmail.body, QueuedEmail.body_html, QueuedEmail.message_id, QueuedEmail.ticket_id,
            QueuedEmail.attempts, QueuedEmail.max_attempts, QueuedEmail.attempt_log, QueuedEmail.claim_token)

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
    candidates = core.candidates(MAIL, session, now, first_id, limit,
                                 (QueuedEmail.id, QueuedEmail.recipient_email, QueuedEmail.event))
    deferred = _over_recipient_limit(session, candidates, now)
    for row_id, until in deferred.items():
        session.execute(update(QueuedEmail).where(QueuedEmail.id == row_id).values(
            next_attempt_at=until, error_message="Deferred: this recipient reached the hourly limit."))
    ids = [c.id for c in candidates if c.id not in deferred]
    rows = core.claim(MAIL, session, ids, core.new_token(worker), now, _COLUMNS)
    return rows, len(deferred)


# -- sending -----------------------------------------------------------------------------------

def _headers(row, numbers: dict[int, str]) -> dict[str, str]:
    headers = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
    if row.ticket_id:
        # One thread per ticket in the recipient's mail client.
        thread = f"<mets.ticket.{row.ticket_id}@{sender_domain(current_app.config)}>"
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


def _smtp_answer(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return f"SMTP {code}: {text}"


# "Sent", in one round trip, only while this worker's claim holds (the core's claim guard, as a
# prepared statement: the send loop's hot path).
_T = QueuedEmail.__table__
_MARK_SENT = (update(_T).where(_T.c.id == bindparam("row_id"), _T.c.claim_token == bindparam("token"),
                               _T.c.status == SENDING)
              .values(status=SENT, sent_at=bindparam("sent_at"), error_message=None, attempt_log=bindparam("log"),
                      claim_token=None, claimed_at=None))


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


def _record_sent(marks, row, now: datetime) -> bool:
    """Record "sent" the moment the server accepted it: a worker killed later resends nothing."""
    result = marks.execute(_MARK_SENT, {"row_id": row.id, "token": row.claim_token, "sent_at": now,
                                        "log": [*row.attempt_log, {"at": now.isoformat(), "error": None}]})
    if result.rowcount != 1:
        log.warning("message %s: the claim was taken back; this worker's outcome is dropped", row.id)
        return False
    return True


def _record_failure(session, row, error: str, permanent: bool, now: datetime) -> bool:
    """Schedule a retry with exponential backoff, or fail the row for good. True if it will retry."""
    return core.fail(MAIL, session, row, error, permanent=permanent, now=now)


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
    if is_paused(session):
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
