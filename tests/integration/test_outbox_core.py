"""The outbox's core (services/outbox/core.py) against both of its channels: mail (`smtp`, to the
Maildir) and webhooks (`http`, to a real HTTP receiver on 127.0.0.1). Every test runs for each
channel, on SQLite and PostgreSQL: queue -> claim -> send -> sent; failure -> retry with backoff
-> failed after max attempts -> retry; a stale claim reclaimed by the sweep; the claim guard (a
worker whose claim was taken back cannot overwrite the row); cancel; pause and resume.
"""
import smtplib
from datetime import datetime, timedelta, timezone

import pytest

from mets import clock, queueing
from mets.models import CANCELLED, FAILED, PENDING, SENDING, SENT, QueuedEmail
from mets.models.automation import WebhookDelivery
from mets.services.errors import DomainError
from mets.services.outbox import core, http, smtp
from tests.servers import Receiver  # noqa: F401

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
BASE = 60
STALE = 300


@pytest.fixture
def app_overrides():
    return {"REDIS_URL": None, "MAIL_SERVER": None, "MAIL_RETRY_BASE_SECONDS": BASE, "MAIL_RETRY_MAX_SECONDS": 3600,
            "MAIL_MAX_ATTEMPTS": 5, "MAIL_CLAIM_STALE_SECONDS": STALE, "MAIL_RATE_PER_RECIPIENT_HOUR": 0,
            "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_BASE_SECONDS": BASE, "WEBHOOK_RETRY_MAX_SECONDS": 3600,
            "WEBHOOK_MAX_ATTEMPTS": 6, "WEBHOOK_TIMEOUT": 5}


@pytest.fixture(autouse=True)
def frozen(app):
    clock.set_now(T0)


@pytest.fixture
def enqueued(monkeypatch) -> list:
    """What each channel handed to the workers (its RQ enqueue, recorded instead)."""
    calls = []
    monkeypatch.setattr(queueing, "enqueue_sends", lambda items: calls.append(("mail", list(items))) or len(items))
    monkeypatch.setattr(queueing, "enqueue_webhooks",
                        lambda items: calls.append(("webhooks", list(items))) or len(items))
    return calls


class MailCase:
    """The mail channel: sends go to the Maildir; `fail_next` makes the next sends answer 451."""
    channel = smtp.MAIL
    module = smtp
    model = QueuedEmail
    max_key = "MAIL_MAX_ATTEMPTS"

    def __init__(self, monkeypatch):
        self.failures = 0
        self.sends = 0
        real = smtp.open_transport

        case = self

        class Flaky:
            def __init__(self):
                self.inner = real()

            def send(self, **kw):
                case.sends += 1
                if case.failures:
                    case.failures -= 1
                    raise smtplib.SMTPResponseException(451, b"try again later")
                self.inner.send(**kw)

            def close(self):
                self.inner.close()

        monkeypatch.setattr(smtp, "open_transport", Flaky)

    def queue(self, session) -> int:
        row = smtp.queue_message(session, to="bob@example.com", subject="Hello", text="Hi", now=clock.now())
        session.commit()
        return row.id

    def fail_next(self, n: int) -> None:
        self.failures = n

    def deliver(self, session) -> None:
        smtp.deliver(session)

    def item(self, row) -> tuple:
        return (row.id, row.priority, row.attempts)


class HookCase:
    """The HTTP channel: POSTs go to a receiver; `fail_next` makes it answer 500."""
    channel = http.HOOKS
    module = http
    model = WebhookDelivery
    max_key = "WEBHOOK_MAX_ATTEMPTS"

    def __init__(self, receiver):
        self.receiver = receiver

    @property
    def sends(self) -> int:
        return len(self.receiver.received())

    def queue(self, session) -> int:
        row = http.queue_webhook(session, url=self.receiver.url(), payload={"n": 1}, event="test",
                                 secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        session.commit()
        return row.id

    def fail_next(self, n: int) -> None:
        for _ in range(n):
            self.receiver.answer(500, "boom")

    def deliver(self, session) -> None:
        http.deliver(session)

    def item(self, row) -> tuple:
        return (row.id, row.attempts)


@pytest.fixture(params=["mail", "webhooks"])
def case(request, monkeypatch):
    if request.param == "mail":
        return MailCase(monkeypatch)
    receiver = Receiver().start()
    request.addfinalizer(receiver.stop)
    return HookCase(receiver)


def row_of(session, case, row_id):
    session.expire_all()
    return session.get(case.model, row_id)


def claim_as(case, session, worker: str, now: datetime):
    """What a worker's claim gets, through the core (the channel's own claim adds rate limits, etc.)."""
    model = case.model
    columns = (model.id, model.attempts, model.max_attempts, model.attempt_log, model.claim_token)
    ids = [c.id for c in core.candidates(case.channel, session, now, None, 10, (model.id,))]
    return core.claim(case.channel, session, ids, core.new_token(worker), now, columns)


def test_queued_in_the_transaction_enqueued_after_commit_claimed_and_sent(session, case, enqueued):
    model = case.model
    if case.channel is smtp.MAIL:
        row = smtp.queue_message(session, to="ann@example.com", subject="Hi", text="Hi")
    else:
        row = http.queue_webhook(session, url=case.receiver.url(), payload={}, secret=None)
    session.flush()
    assert enqueued == []  # flushed in the change's transaction: no worker may see it yet
    session.commit()
    assert enqueued == [(case.channel.name, [case.item(row)])]

    session.rollback()
    if case.channel is smtp.MAIL:
        smtp.queue_message(session, to="rolled@example.com", subject="Hi", text="Hi")
    else:
        http.queue_webhook(session, url=case.receiver.url(), payload={}, secret=None)
    session.rollback()
    session.commit()
    assert len(enqueued) == 1  # a rolled-back change hands nothing on

    case.deliver(session)
    row = row_of(session, case, row.id)
    assert (row.status, row.attempts, row.claim_token, row.claimed_at, row.sent_at) == (SENT, 1, None, None, T0)
    assert row.max_attempts == (5 if model is QueuedEmail else 6)  # the channel's setting, kept on the row
    assert case.sends == 1


def test_failures_back_off_then_fail_and_a_retry_gives_fresh_attempts(app, session, case):
    app.config[case.max_key] = 3
    row_id = case.queue(session)
    case.fail_next(3)
    delays = []
    for _ in range(3):
        case.deliver(session)
        row = row_of(session, case, row_id)
        delays.append((row.next_attempt_at - clock.now()).total_seconds())
        clock.set_now(row.next_attempt_at)
    assert delays == [BASE, 2 * BASE, 0]  # exponential backoff; the last failure is final
    row = row_of(session, case, row_id)
    assert (row.status, row.attempts, row.max_attempts, len(row.attempt_log)) == (FAILED, 3, 3, 3)
    case.deliver(session)
    assert case.sends == 3  # a failed row is not tried again by itself

    case.module.retry(session, row)
    session.commit()
    row = row_of(session, case, row_id)
    assert (row.status, row.attempts, row.max_attempts) == (PENDING, 3, 6)  # the count and log are kept
    case.deliver(session)
    row = row_of(session, case, row_id)
    assert (row.status, row.attempts, len(row.attempt_log)) == (SENT, 4, 4)
    with pytest.raises(DomainError, match=f"A sent {case.channel.noun} cannot be retried"):
        case.module.retry(session, row)


def test_the_sweep_reclaims_a_stale_claim_and_the_row_is_sent(session, case):
    row_id = case.queue(session)
    [claimed] = claim_as(case, session, "dead-host:1", T0)
    assert claimed.claim_token.startswith("dead-host:1/")
    assert row_of(session, case, row_id).status == SENDING

    clock.set_now(T0 + timedelta(seconds=STALE - 1))
    assert case.module.reclaim_stale(session, clock.now()) == 0  # still within its claim
    session.commit()
    clock.set_now(T0 + timedelta(seconds=STALE + 1))
    reclaimed, _ = case.module.sweep(session)
    assert reclaimed == 1
    row = row_of(session, case, row_id)
    assert "stopped while sending" in row.attempt_log[0]["error"]
    if row.status == PENDING:  # mail: the sweep enqueued it (no Redis here: a worker sends it next)
        case.deliver(session)
    row = row_of(session, case, row_id)
    assert (row.status, row.attempts, row.claim_token) == (SENT, 2, None)
    assert case.sends == 1


def test_a_worker_whose_claim_was_taken_back_cannot_overwrite_the_row(session, case):
    row_id = case.queue(session)
    [late] = claim_as(case, session, "slow-host:1", T0)
    clock.set_now(T0 + timedelta(seconds=STALE + 1))
    case.module.sweep(session)  # the slow worker looked dead
    case.deliver(session)  # another worker sends it
    assert row_of(session, case, row_id).status == SENT

    # The slow worker wakes up and writes its outcome: refused, whatever it was.
    assert not core.record(case.channel, session, late, {"status": FAILED, "error_message": "late"})
    core.fail(case.channel, session, late, "late failure", permanent=True, now=clock.now())
    row = row_of(session, case, row_id)
    assert (row.status, row.error_message, row.attempts) == (SENT, None, 2)
    if case.channel is smtp.MAIL:  # mail's own hot path ("sent" on an autocommit connection) too
        marks = smtp._marks_connection(session)
        try:
            assert not smtp._record_sent(marks, late, clock.now())
        finally:
            smtp._close_marks(marks)
    assert row_of(session, case, row_id).sent_at == T0 + timedelta(seconds=STALE + 1)


def test_a_cancelled_row_is_never_sent(session, case):
    row_id = case.queue(session)
    case.module.cancel(session, row_of(session, case, row_id))
    session.commit()
    case.module.sweep(session)
    case.deliver(session)
    assert row_of(session, case, row_id).status == CANCELLED and case.sends == 0
    with pytest.raises(DomainError, match=f"A cancelled {case.channel.noun} cannot be cancelled"):
        case.module.cancel(session, row_of(session, case, row_id))


def test_pause_holds_rows_and_resume_releases_them(session, case, enqueued):
    case.module.set_paused(session, True)
    session.commit()
    other = smtp.MAIL if case.channel is http.HOOKS else http.HOOKS
    assert case.module.is_paused(session) and not core.is_paused(other, session)  # per channel
    row_id = case.queue(session)
    enqueued.clear()

    case.deliver(session)
    assert case.module.sweep(session) == (0, 0)  # nothing handed on (nor, for webhooks, sent) while paused
    assert row_of(session, case, row_id).status == PENDING and case.sends == 0 and enqueued == []

    case.module.set_paused(session, False)
    assert enqueued == []  # resuming hands due rows on once it commits
    session.commit()
    assert enqueued == [(case.channel.name, [case.item(row_of(session, case, row_id))])]
    case.deliver(session)
    assert row_of(session, case, row_id).status == SENT and case.sends == 1
