"""Benchmark: the outbox end to end — PostgreSQL, Redis, two `python worker.py --no-cron` RQ workers
and a local SMTP sink (aiosmtpd, a handler that only counts).

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_mail \\
        .venv/bin/python bench/mail_throughput.py

The database (created if missing) has its public schema dropped and rebuilt by migrations; Redis
is a private redis-server on a spare port (needs `redis-server` on PATH). Measures:
  1. throughput: 10,000 emails queued with outbox.queue_message in four transactions of 2,500,
     written first and then committed back to back (each enqueues its send jobs after its
     commit), from the first commit to the last row marked sent (target: at least 500 a second);
  2. latency: with the queue idle, from the commit that queues a critical (priority 1) email to
     its acceptance by the SMTP server, median of 20 (target: under one second).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import Worker  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from mets import create_app  # noqa: E402
from mets.extensions import db  # noqa: E402
from mets.models import CRITICAL, SENT, QueuedEmail  # noqa: E402
from mets.queueing import redis_connection  # noqa: E402
from mets.services import outbox  # noqa: E402
from tests.integration.mail_helpers import (RedisServer, Sink, SmtpServer, WorkerProcess, mail_settings,  # noqa: E402
                                            wait_until, worker_env)

THROUGHPUT_TARGET = 500  # emails a second
LATENCY_TARGET_MS = 1000


def fresh_database(url: str) -> None:
    """Create the database if missing, then an empty schema built by the migrations."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}):
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def sent_count() -> int:
    count = db.session.scalar(select(func.count()).select_from(QueuedEmail).where(QueuedEmail.status == SENT))
    db.session.rollback()
    return count


def throughput(app, sink, emails: int, transactions: int) -> float:
    """Build `transactions` open transactions of queued rows, then commit them back to back."""
    per = emails // transactions
    total = per * transactions
    with app.app_context():
        building = time.perf_counter()
        sessions = [Session(db.engine) for _ in range(transactions)]
        for t, session in enumerate(sessions):
            for i in range(t * per, (t + 1) * per):
                outbox.queue_message(session, to=f"reader{i}@bench.example", name=f"Reader {i}",
                                     subject=f"[ACME-{1000 + i}] New reply to your request: Printer {i}",
                                     text=f"Hello Reader {i},\n\nWe replied to your request.\n" * 5,
                                     html=f"<p>Hello Reader {i},</p><p>We replied to your request.</p>" * 5)
            session.flush()
        print(f"  {total} rows written in {transactions} open transactions in {time.perf_counter() - building:.1f}s")
        started = datetime.now(timezone.utc)
        for session in sessions:
            session.commit()  # the rows become visible and their send jobs are enqueued
            session.close()
        print(f"  committed and enqueued in {(datetime.now(timezone.utc) - started).total_seconds():.2f}s")
        wait_until(lambda: sent_count() >= total, timeout=900, interval=0.25, what=f"{total} emails sent",
                   state=lambda: f"{sent_count()} sent")
        last = db.session.scalar(select(func.max(QueuedEmail.sent_at)))
        db.session.rollback()
    seconds = (last - started).total_seconds()
    rate = total / seconds
    print(f"throughput: {total} emails in {seconds:.2f}s from the first commit to the last row marked sent: "
          f"{rate:.0f} emails/s ({sink.count} accepted by the SMTP sink)")
    return rate


def latency(app, sink, samples: int) -> float:
    times = []
    with app.app_context():
        for n in range(samples):
            before = sink.count
            outbox.queue_message(db.session, to=f"manager{n}@bench.example", priority=CRITICAL,
                                 subject=f"[ACME-{n}] SLA breached: resolution target missed",
                                 text="The resolution target was missed.")
            committed = time.time()
            db.session.commit()
            wait_until(lambda: sink.count > before, timeout=30, interval=0.002, what="the critical email")
            times.append((sink.last_at - committed) * 1000)
            time.sleep(0.2)  # idle again
    median = statistics.median(times)
    print(f"latency: commit to SMTP acceptance of a critical email, median of {samples}: {median:.0f} ms "
          f"(min {min(times):.0f}, max {max(times):.0f})")
    return median


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--transactions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_mail")
    fresh_database(url)

    work = Path(tempfile.mkdtemp(prefix="mets-bench-mail-"))
    sink = Sink(keep=False)
    smtp = SmtpServer(sink).start()
    redis = RedisServer(work / "redis").start()
    workers = []
    try:
        settings = mail_settings(redis.url, smtp.port, RQ_QUEUE_PREFIX="mets-bench",
                                 MAIL_RATE_PER_RECIPIENT_HOUR=30)  # the default limit, checked as in production
        config = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-secret", "METS_BASE_URL": "http://mets.bench",
                  "METS_INSTANCE_DIR": str(work / "instance"), **settings}
        app = create_app(config)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            connection = redis_connection()
        env = worker_env(config, settings, work / "instance")
        workers = [WorkerProcess(env, work / f"worker-{i + 1}.log", cron=False).start() for i in range(args.workers)]
        wait_until(lambda: len(Worker.all(connection=connection)) >= args.workers, timeout=60,
                   what=f"{args.workers} workers listening")
        print(f"{args.workers} workers listening on a private redis-server; SMTP sink on port {smtp.port}; "
              f"logs in {work}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

        rate = throughput(app, sink, args.emails, args.transactions)
        median_ms = latency(app, sink, args.samples)
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine skews the figures)")
    finally:
        for worker in workers:
            worker.stop()
        redis.stop()
        smtp.stop()
    print(f"bench mail_throughput: {rate:.0f} emails/s (target >= {THROUGHPUT_TARGET})")
    print(f"bench mail_latency: {median_ms:.0f} ms median commit to SMTP (target < {LATENCY_TARGET_MS})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
