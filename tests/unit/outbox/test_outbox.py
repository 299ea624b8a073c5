"""The outbox and its delivery: queueing, sending, pause, cancel, retry, backoff, stale claims, concurrency.

These tests send through the Maildir transport (no MAIL_SERVER); the ones over a real SMTP server
are in tests/integration/test_outbox_smtp.py.
"""
import email
import email.policy
import mailbox
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mets import clock, queueing
from mets.extensions import db
from mets.models import CANCELLED, CRITICAL, FAILED, NORMAL, PENDING, SENDING, SENT, QueuedEmail
from mets.services import outbox
from mets.services.outbox import smtp as mail_delivery
from mets.services.errors import DomainError
from tests.conftest import PG_URL, _empty_all_tables, count_rows, make_app
from tests.factories import make_customer, make_entity, make_ticket

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
BASE = 60  # MAIL_RETRY_BASE_SECONDS


# --- helpers -------------------------------------------------------------------------------------

def maildir(app) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(app.config["MAILDIR"], create=True)
    return [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in box.keys()]


def queue(session, to="bob@example.com", subject="Hello", **kw) -> QueuedEmail | None:
    kw.setdefault("now", T0)
    return outbox.queue_message(session, to=to, subject=subject, text=kw.pop("text", "Plain body"),
                                html=kw.pop("html", "<p>HTML body</p>"), **kw)


def reload(session, row: QueuedEmail) -> QueuedEmail:
    session.expire_all()
    return session.get(QueuedEmail, row.id)


def deliver_at(session, at: datetime):
    with clock.freeze(at):
        return mail_delivery.deliver_due(session)


@pytest.fixture
def enqueued(monkeypatch) -> list[list[tuple[int, int, int]]]:
    """What the outbox hands to RQ after each commit (the Redis boundary, recorded instead)."""
    calls = []
    monkeypatch.setattr(queueing, "enqueue_sends", lambda items: calls.append(list(items)) or len(items))
    return calls


# --- queueing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "bob@example.com\r\nBcc: victim@example.com",
    "bob@example.com\nBcc: victim@example.com",
    "bob@example.com\rBcc: victim@example.com",
    "not-an-address",
    "bob@@example.com",
    "",
])
def test_queue_message_refuses_bad_addresses_and_queues_nothing(session, enqueued, address):
    assert queue(session, to=address) is None
    session.commit()
    assert count_rows(session, QueuedEmail) == 0
    assert enqueued == []


def test_the_subject_is_one_line_so_it_cannot_add_a_header(app, session):
    row = queue(session, subject="Hello\r\nBcc: victim@example.com\nX-Injected:  yes")
    session.commit()
    assert reload(session, row).subject == "Hello Bcc: victim@example.com X-Injected: yes"
    deliver_at(session, T0)
    [message] = maildir(app)
    assert message["Subject"] == "Hello Bcc: victim@example.com X-Injected: yes"
    assert message["Bcc"] is None and message["X-Injected"] is None


# --- delivering -----------------------------------------------------------------------------------

def test_deliver_sends_due_mail_marks_it_sent_and_keeps_its_message_id(app, session):
    first = queue(session, to="bob@example.com", name="Bob Builder", subject="First")
    second = queue(session, to="amy@example.com", subject="Second")
    session.commit()
    result = deliver_at(session, T0 + timedelta(seconds=5))
    assert (result.sent, result.failed, result.retrying) == (2, 0, 0)

    by_subject = {m["Subject"]: m for m in maildir(app)}
    assert set(by_subject) == {"First", "Second"}
    assert by_subject["First"]["To"] == "Bob Builder <bob@example.com>"
    assert by_subject["First"].get_body(("plain",)).get_content().strip() == "Plain body"
    assert "<p>HTML body</p>" in by_subject["First"].get_body(("html",)).get_content()
    for row, subject in ((first, "First"), (second, "Second")):
        row = reload(session, row)
        assert (row.status, row.sent_at, row.attempts, row.error_message) == (SENT, T0 + timedelta(seconds=5), 1, None)
        assert by_subject[subject].get_all("Message-ID") == [row.message_id]
        assert row.attempt_log == [{"at": (T0 + timedelta(seconds=5)).isoformat(), "error": None}]

    assert deliver_at(session, T0 + timedelta(minutes=5)).sent == 0  # sent mail is never sent again
    assert len(maildir(app)) == 2


def test_mail_that_is_not_due_yet_waits_for_its_time(app, session):
    row = queue(session, now=T0 + timedelta(hours=1))
    session.commit()
    assert deliver_at(session, T0 + timedelta(minutes=59)).claimed == 0
    assert maildir(app) == [] and reload(session, row).status == PENDING
    assert deliver_at(session, T0 + timedelta(hours=1)).sent == 1
    assert len(maildir(app)) == 1


def test_critical_mail_goes_first(app, session):
    app.config["MAIL_BATCH_SIZE"] = 1
    queue(session, subject="Newsletter-ish", priority=NORMAL)
    queue(session, subject="SLA breached", priority=CRITICAL, now=T0 + timedelta(seconds=1))
    session.commit()
    with clock.freeze(T0 + timedelta(minutes=1)):
        mail_delivery.deliver(session)
    assert [m["Subject"] for m in maildir(app)] == ["SLA breached"]


def test_paused_mail_stays_pending_until_resumed(app, session, enqueued):
    outbox.set_paused(session, True)
    session.commit()
    row = queue(session)
    session.commit()
    assert deliver_at(session, T0).sent == 0
    assert maildir(app) == [] and reload(session, row).status == PENDING
    assert outbox.sweep(session, T0) == (0, 0)  # the sweep hands nothing to the workers either

    enqueued.clear()
    with clock.freeze(T0):
        outbox.set_paused(session, False)
    session.commit()
    assert enqueued == [[(row.id, NORMAL, 0)]]  # resuming hands the waiting mail to the workers
    assert deliver_at(session, T0).sent == 1
    assert reload(session, row).status == SENT


def test_cancelled_mail_is_never_sent(app, session):
    row = queue(session)
    kept = queue(session, to="amy@example.com")
    session.commit()
    outbox.cancel(session, reload(session, row))
    session.commit()
    deliver_at(session, T0 + timedelta(days=1))
    assert [m["To"] for m in maildir(app)] == ["amy@example.com"]
    assert reload(session, row).status == CANCELLED
    with pytest.raises(DomainError):
        outbox.cancel(session, reload(session, kept))  # already sent: too late to cancel
    with pytest.raises(DomainError):
        outbox.retry(session, reload(session, row))  # a cancelled message stays cancelled


# --- stale claims -------------------------------------------------------------------------------

def test_a_dead_workers_claim_is_freed_after_the_stale_period(app, session):
    row = queue(session)
    session.commit()
    claimed, _ = mail_delivery.claim(session, "dead-host:1", T0)
    assert [r.id for r in claimed] == [row.id]
    assert reload(session, row).status == SENDING
    assert deliver_at(session, T0 + timedelta(minutes=1)).claimed == 0  # someone else's claim

    stale = app.config["MAIL_CLAIM_STALE_SECONDS"]
    assert outbox.reclaim_stale(session, T0 + timedelta(seconds=stale - 1)) == 0
    assert outbox.reclaim_stale(session, T0 + timedelta(seconds=stale + 1)) == 1
    session.commit()
    row = reload(session, row)
    assert (row.status, row.claim_token) == (PENDING, None)
    assert "dead-host:1" in row.error_message
    assert deliver_at(session, T0 + timedelta(seconds=stale + 1)).sent == 1
    assert reload(session, row).attempts == 2  # the lost attempt counts
    assert len(maildir(app)) == 1


def test_a_stale_claim_out_of_attempts_fails_instead_of_looping(app, session):
    app.config["MAIL_MAX_ATTEMPTS"] = 1
    row = queue(session)
    session.commit()
    mail_delivery.claim(session, "dead-host:1", T0)
    later = T0 + timedelta(seconds=app.config["MAIL_CLAIM_STALE_SECONDS"] + 1)
    assert outbox.sweep(session, later)[0] == 1
    row = reload(session, row)
    assert (row.status, row.attempts) == (FAILED, 1)
    assert "dead-host:1" in row.error_message
    assert deliver_at(session, later).claimed == 0
    assert maildir(app) == []


# --- concurrent workers (PostgreSQL) --------------------------------------------------------------

@pytest.fixture
def pg_app(database_urls, tmp_path):
    """An app on PostgreSQL only: row locks (FOR UPDATE SKIP LOCKED) are what these tests are about."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    application = make_app(database_urls("postgresql"), tmp_path)
    with application.app_context():
        _empty_all_tables()
        try:
            yield application
        finally:
            db.session.remove()
            _empty_all_tables()  # what it committed is not left for the next test
            db.session.remove()
            db.engine.dispose()


@pytest.mark.postgresql
def test_a_claim_skips_rows_another_worker_has_locked(pg_app):
    session = db.session
    rows = [queue(session, to=f"user{i}@example.com") for i in range(3)]
    session.commit()
    ids = [r.id for r in rows]
    other = Session(db.engine)
    try:
        other.execute(select(QueuedEmail.id).where(QueuedEmail.id == ids[0]).with_for_update())
        session.execute(text("SET lock_timeout = '5s'"))  # a claim that waited would fail, not hang
        claimed, _ = mail_delivery.claim(session, "w", T0)
        assert sorted(r.id for r in claimed) == ids[1:]
    finally:
        other.rollback()
        other.close()
    claimed, _ = mail_delivery.claim(session, "w", T0)
    assert [r.id for r in claimed] == ids[:1]


@pytest.mark.postgresql
def test_two_workers_claiming_at_once_get_disjoint_rows(pg_app):
    app, session = pg_app, db.session
    rows = [queue(session, to=f"user{i}@example.com") for i in range(60)]
    session.commit()
    ids = [r.id for r in rows]
    barrier = threading.Barrier(2)
    claims: list[list[int]] = [[], []]
    errors = []

    def work(n):
        try:
            with app.app_context():
                barrier.wait()
                while True:
                    # The same worker name on purpose: each claim must still get only its own rows.
                    rows, _ = mail_delivery.claim(db.session, "host:1", T0, limit=4)
                    if not rows:
                        break
                    claims[n].extend(r.id for r in rows)
                db.session.remove()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert not set(claims[0]) & set(claims[1])
    assert sorted(claims[0] + claims[1]) == sorted(ids)  # every row claimed exactly once
    assert count_rows(session, QueuedEmail, QueuedEmail.status == SENDING) == len(ids)


# --- after commit --------------------------------------------------------------------------------

def test_only_committed_mail_is_handed_to_the_workers(session, enqueued):
    first, second = queue(session), queue(session, to="amy@example.com", priority=CRITICAL)
    assert enqueued == []  # nothing before the commit
    session.commit()
    assert enqueued == [[(first.id, NORMAL, 0), (second.id, CRITICAL, 0)]]

    enqueued.clear()
    queue(session, to="carl@example.com")
    session.flush()
    session.rollback()
    session.commit()
    assert enqueued == []  # the rolled-back row is forgotten, not handed over with a later commit
    assert count_rows(session, QueuedEmail) == 2

    unflushed = queue(session, to="dora@example.com")
    session.rollback()
    third = queue(session, to="eve@example.com")
    session.commit()
    assert unflushed.id is None
    assert enqueued == [[(third.id, NORMAL, 0)]]


def test_mail_a_rolled_back_savepoint_took_back_is_not_handed_on_with_the_rest(session, enqueued):
    kept = queue(session)
    session.flush()
    with pytest.raises(RuntimeError):
        with session.begin_nested():  # as an automation action runs
            queue(session, to="amy@example.com")
            session.flush()
            raise RuntimeError("the action failed")
    later = queue(session, to="carl@example.com")
    session.commit()
    assert enqueued == [[(kept.id, NORMAL, 0), (later.id, NORMAL, 0)]]
    assert count_rows(session, QueuedEmail) == 2


def test_the_sweep_hands_over_due_mail_once_redis_was_down(session, enqueued):
    row = queue(session)
    later = queue(session, to="amy@example.com", now=T0 + timedelta(hours=1))
    session.commit()
    enqueued.clear()  # as if Redis had been down at the commit
    assert outbox.sweep(session, T0 + timedelta(minutes=1)) == (0, 1)
    assert enqueued == [[(row.id, NORMAL, 0)]]
    assert later.id not in [i for call in enqueued for i, _, _ in call]


# --- what the recipient's mail client sees --------------------------------------------------------

def test_ticket_mail_is_marked_automatic_and_threaded_per_ticket(app, session):
    acme = make_entity(name="Acme", slug="acme")
    carl = make_customer(name="Carl", email="carl@example.com")
    with clock.freeze(T0):
        ticket = make_ticket(acme, customer=carl, subject="Printer on fire")
        other = make_ticket(acme, customer=carl, subject="Scanner too")
    queue(session, to="bob@example.com", subject="Not about a ticket")
    session.commit()
    deliver_at(session, T0)

    by_subject = {m["Subject"]: m for m in maildir(app)}
    assert all(m["Auto-Submitted"] == "auto-generated" for m in by_subject.values())
    about = {m["X-METS-Ticket"]: m for m in by_subject.values() if m["X-METS-Ticket"]}
    assert set(about) == {ticket.number, other.number}
    first, second = about[ticket.number], about[other.number]
    assert first["References"] == first["In-Reply-To"] == f"<mets.ticket.{ticket.id}@mets.localhost>"
    assert second["References"] == f"<mets.ticket.{other.id}@mets.localhost>"
    plain = by_subject["Not about a ticket"]
    assert plain["References"] is None and plain["In-Reply-To"] is None
