"""The outbox's state machine, the same for every channel (mail, webhooks/SMS).

A row is written in the caller's transaction (`add`); once that transaction commits its id is
handed to the channel's queue (`hand_over`: RQ jobs, see `mets.queueing`). A worker `claim`s due
rows with a token (a conditional UPDATE: still pending; FOR UPDATE SKIP LOCKED on PostgreSQL),
sends them through the channel, and writes each outcome with `record` - only while its claim
holds, so a row the sweep took back from a slow worker is not overwritten by it. A failure is
retried with exponential backoff (`fail`) until the row's `max_attempts`; the periodic `sweep`
frees stale claims (`reclaim_stale`) and hands due rows on again. Admins `retry` (a failed row
gets a fresh set of attempts: its max is raised, the count and log are kept), `cancel`, and
pause/resume a whole channel (`set_paused`).

    pending --claim--> sending --sent--> sent
       ^                  |--failure, attempts left--> pending (next_attempt_at = now + backoff)
       |                  |--permanent, or out of attempts--> failed --retry--> pending
       +--stale claim-----+                     pending/failed --cancel--> cancelled

A Channel describes what differs: the model, its config keys and queue, its claim order, and the
texts shown; sending lives in the channel's module (`smtp`, `http`).
"""
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from flask import current_app
from sqlalchemy import inspect, select, update

from mets import clock, transaction
from mets.models import CANCELLED, FAILED, PENDING, SENDING, AppSetting
from mets.services import bulk_ids
from mets.services.errors import DomainError

log = logging.getLogger("mets.outbox")

ACTIONABLE = (PENDING, FAILED)  # the states an admin may retry or cancel
SWEEP_LIMIT = 5000
STALE_KEY = "MAIL_CLAIM_STALE_SECONDS"  # one setting for every channel: a killed worker's claim


@dataclass(frozen=True)
class Channel:
    name: str  # "mail", "webhooks"
    model: Any  # QueuedEmail, WebhookDelivery
    noun: str  # "message", "delivery": what refusals call a row
    max_attempts_key: str
    retry_base_key: str
    retry_max_key: str
    paused_key: str  # the AppSetting switch
    enqueue: Callable[[list], int]  # hands (id, ...) items to the workers; returns how many jobs were new
    item: Callable[[Any], tuple]  # a row (or a row of columns) -> the item `enqueue` takes
    item_columns: Callable[[], tuple]  # the columns `item` reads, for the sweep
    order: Callable[[], tuple]  # the claim order (most urgent first)
    stale_error: Callable[[Any], str] = lambda row: "The worker stopped while sending."
    extra: dict = field(default_factory=dict)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def max_attempts(channel: Channel) -> int:
    return current_app.config[channel.max_attempts_key]


# -- queueing (in the caller's transaction) -------------------------------------------------------

def add(channel: Channel, session, row) -> None:
    """Add `row` in the caller's transaction; its id goes to the workers once the commit lands."""
    session.add(row)
    transaction.state(session).setdefault(f"outbox.{channel.name}.new", []).append(row)
    transaction.before_flush(session, f"outbox.{channel.name}.number", lambda s: _number(channel, s))
    transaction.after_flush(session, f"outbox.{channel.name}.flush", lambda s: _collect(channel, s))


def _number(channel: Channel, session) -> None:
    # Before a flush: its new rows' ids in one query (PostgreSQL), so the ORM writes them as one executemany
    # instead of INSERT ... RETURNING id (the ticks queue thousands of mails a flush: about 4x faster a row).
    bulk_ids.number(session, transaction.state(session).get(f"outbox.{channel.name}.new", []))


def _collect(channel: Channel, session) -> None:
    # Rows are flushed together (one executemany, see `_number`); their ids exist from here on. A row a
    # rolled-back savepoint took back before the flush is not in it (and not persistent).
    rows = [r for r in transaction.state(session).pop(f"outbox.{channel.name}.new", ())
            if r.id is not None and inspect(r).persistent]
    hand_over(channel, session, [channel.item(r) for r in rows], rows)


def hand_over(channel: Channel, session, items: list[tuple], rows: list | None = None) -> None:
    """Have these items enqueued once the transaction commits (never if it rolls back).

    `rows` are the items' rows when this transaction wrote them: one that a rolled-back savepoint
    took back (a failed automation action's) is not handed on with the rest.
    """
    if not items:
        return
    pending = transaction.state(session).setdefault(f"outbox.{channel.name}.enqueue", [])
    pending.extend(zip(items, rows or [None] * len(items)))
    transaction.after_commit(session, f"outbox.{channel.name}.commit", lambda: channel.enqueue(_kept(pending)))


def _kept(pending: list[tuple]) -> list[tuple]:
    # A row inserted in a savepoint that rolled back is transient again; a committed one is persistent.
    return [item for item, row in pending if row is None or not inspect(row).transient]


# -- claiming and recording -------------------------------------------------------------------------

def new_token(worker: str | None = None) -> str:
    """A claim's token: the worker's name and a nonce that tells this claim's rows from its others."""
    return f"{worker or worker_name()}/{uuid.uuid4().hex[:8]}"


def candidates(channel: Channel, session, now: datetime, first_id: int | None, limit: int, columns: tuple) -> list:
    """Due pending rows, locked on PostgreSQL (skipping rows another claim holds): `first_id` first,
    then in the channel's order."""
    model = channel.model
    due = select(*columns).where(model.status == PENDING, model.next_attempt_at <= now)
    lock = session.get_bind().dialect.name == "postgresql"
    first = []
    if first_id:
        own = due.where(model.id == first_id)
        first = session.execute(own.with_for_update(skip_locked=True) if lock else own).all()
    if limit <= len(first):
        return first
    rest = due.where(model.id != (first_id or 0)).order_by(*channel.order()).limit(limit - len(first))
    return first + session.execute(rest.with_for_update(skip_locked=True) if lock else rest).all()


def claim(channel: Channel, session, ids: list[int], token: str, now: datetime, columns: tuple) -> list:
    """Mark `ids` as sending under `token` (those still pending: the conditional UPDATE decides
    between racing workers), count the attempt, commit; return the rows this claim got."""
    model = channel.model
    if ids:
        session.execute(update(model).where(model.id.in_(ids), model.status == PENDING)
                        .values(status=SENDING, claim_token=token, claimed_at=now, attempts=model.attempts + 1)
                        .execution_options(synchronize_session=False))
    session.commit()
    if not ids:
        return []
    return session.execute(select(*columns).where(model.id.in_(ids), model.claim_token == token,
                                                  model.status == SENDING).order_by(*channel.order())).all()


def record(channel: Channel, session, row, values: dict, *, commit: bool = True) -> bool:
    """Write an outcome on a claimed row, only while `row.claim_token` still holds it; frees the claim.

    False (nothing written) when the claim was taken back: the sweep reclaimed it (the worker
    looked dead), so the row's state belongs to whoever holds it now.
    """
    model = channel.model
    result = session.execute(update(model).where(model.id == row.id, model.claim_token == row.claim_token,
                                                 model.status == SENDING)
                             .values(claim_token=None, claimed_at=None, **values)
                             .execution_options(synchronize_session=False))
    if commit:
        session.commit()
    if result.rowcount != 1:
        log.warning("%s %s: the claim was taken back; this worker's outcome is dropped", channel.noun, row.id)
        return False
    return True


def will_retry(row, permanent: bool) -> bool:
    """Whether a failure is tried again: not permanent and attempts left on the row."""
    return not permanent and row.attempts < row.max_attempts


def backoff(channel: Channel, attempts: int, at_least: int = 0) -> int:
    """Seconds before the next try: base doubling per attempt, at least `at_least` (Retry-After), capped."""
    config = current_app.config
    delay = max(config[channel.retry_base_key] * 2 ** (max(attempts, 1) - 1), at_least)
    return min(delay, config[channel.retry_max_key])


def fail(channel: Channel, session, row, error: str, *, permanent: bool, now: datetime, entry: dict | None = None,
         at_least: int = 0, **values) -> bool:
    """Schedule a retry with backoff, or fail the row for good (while the claim holds). True if it will retry."""
    retrying = will_retry(row, permanent)
    record(channel, session, row, {
        "status": PENDING if retrying else FAILED, "error_message": error,
        "next_attempt_at": now + timedelta(seconds=backoff(channel, row.attempts, at_least)) if retrying else now,
        "attempt_log": [*row.attempt_log, entry or {"at": now.isoformat(), "error": error}], **values})
    return retrying


# -- the admin's verbs --------------------------------------------------------------------------------

def is_paused(channel: Channel, session) -> bool:
    """Whether an admin paused this channel's sending (rows keep queueing)."""
    setting = session.get(AppSetting, channel.paused_key)
    return bool(setting and setting.value)


def paused_since(channel: Channel, session) -> datetime | None:
    setting = session.get(AppSetting, channel.paused_key)
    return setting.updated_at if setting and setting.value else None


def set_paused(channel: Channel, session, paused: bool) -> None:
    """Pause or resume the channel; resuming hands every due row to the workers after commit."""
    setting = session.get(AppSetting, channel.paused_key) or AppSetting(key=channel.paused_key)
    setting.value = bool(paused)
    setting.updated_at = clock.now()
    session.add(setting)
    session.flush()
    if not paused:
        hand_over(channel, session, due_items(channel, session, clock.now()))


def retry(channel: Channel, session, row, now: datetime | None = None) -> None:
    """Send a pending or failed row again now; a failed one gets a fresh set of attempts (its max is
    raised: the count and the log keep the earlier tries)."""
    if row.status not in ACTIONABLE:
        raise DomainError(f"A {row.status} {channel.noun} cannot be retried.")
    if row.status == FAILED:
        row.max_attempts = row.attempts + max_attempts(channel)
    row.status, row.next_attempt_at = PENDING, now or clock.now()
    session.flush()
    hand_over(channel, session, [channel.item(row)])


def retry_failed(channel: Channel, session, ids: list[int], now: datetime | None = None) -> int:
    """Retry every failed row among `ids`; returns how many."""
    model = channel.model
    rows = session.scalars(select(model).where(model.id.in_(ids), model.status == FAILED)).all()
    for row in rows:
        retry(channel, session, row, now)
    return len(rows)


def cancel(channel: Channel, session, row) -> None:
    """Never send this row (a pending or failed one)."""
    if row.status not in ACTIONABLE:
        raise DomainError(f"A {row.status} {channel.noun} cannot be cancelled.")
    row.status = CANCELLED
    session.flush()


# -- the periodic sweep ---------------------------------------------------------------------------------

def reclaim_stale(channel: Channel, session, now: datetime) -> int:
    """Free rows whose worker died mid-send (claim older than MAIL_CLAIM_STALE_SECONDS).

    The attempt they were on counts; a row out of attempts fails instead of looping forever. The
    token is cleared, so the old worker, should it wake up, can no longer write the row.
    """
    model = channel.model
    stale_before = now - timedelta(seconds=current_app.config[STALE_KEY])
    rows = session.scalars(select(model).where(model.status == SENDING, model.claimed_at < stale_before)
                           .with_for_update(skip_locked=True)).all()
    for row in rows:
        error = channel.stale_error(row)
        row.attempt_log = [*row.attempt_log, {"at": now.isoformat(), "error": error}]
        row.error_message = error
        row.claim_token = row.claimed_at = None
        row.status = FAILED if row.attempts >= row.max_attempts else PENDING
        row.next_attempt_at = now
    session.flush()
    return len(rows)


def due_items(channel: Channel, session, now: datetime, limit: int = SWEEP_LIMIT) -> list[tuple]:
    """The items of pending rows whose time has come, most urgent first."""
    model = channel.model
    return [tuple(r) for r in session.execute(
        select(*channel.item_columns()).where(model.status == PENDING, model.next_attempt_at <= now)
        .order_by(*channel.order()).limit(limit))]


def sweep(channel: Channel, session, now: datetime | None = None) -> tuple[int, list[tuple]]:
    """Reclaim stale claims and list what is due (nothing while paused); commits.

    Returns (reclaimed, due items). Handing the items on is the caller's (the channel's) choice.
    """
    now = now or clock.now()
    reclaimed = reclaim_stale(channel, session, now)
    items = [] if is_paused(channel, session) else due_items(channel, session, now)
    session.commit()
    return reclaimed, items
