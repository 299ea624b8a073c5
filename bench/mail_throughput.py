"""Benchmark: the outbox end to end — PostgreSQL, Redis, two `python worker.py --no-cron` RQ workers
and postfix's `smtp-sink` (C, accepts and discards), next to the raw SMTP ceiling on the same sink.

    apt-get install postfix   # for /usr/sbin/smtp-sink only: no mail daemon needs to run
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_mail \\
        .venv/bin/python bench/mail_throughput.py

The database (created if missing) has its public schema dropped and rebuilt by migrations; Redis
is a private redis-server on a spare port (needs `redis-server` on PATH); `smtp-sink -c` runs on
another spare port for the whole run and is stopped at the end. Its counters (`-c`: sessions,
QUITs and messages whose final "." it has received, rewritten on stdout after each event) are
read by a thread that timestamps every change, so the bench knows how many messages the sink
accepted and when. An earlier version used a Python (aiosmtpd) sink, which saturated before METS
did (about 1.2 ms of CPU a message) and so measured the sink, not METS. Measures:
  1. raw ceiling: as many plain `smtplib` sender processes as there are workers, each on one
     SMTP connection sending its share of the same number of messages (one message as METS builds
     it for the throughput run, to distinct recipients) as fast as it can; from the moment all
     are connected to the last acceptance. What any sender written in Python can reach on this
     machine against this sink, with no database and no queue;
  2. throughput: 10,000 emails queued with outbox.queue_message in four transactions of 2,500,
     written first and then committed back to back (each enqueues its send jobs after its
     commit), from the first commit to the last row marked sent — METS marks a row sent only
     once the server has accepted the message, and the sink's own count is checked against the
     rows (target: at least 500 a second); printed with its ratio to the raw ceiling and the CPU
     time the workers, their PostgreSQL backends, Redis, smtp-sink and this process used meanwhile;
  3. latency: with the queue idle, from the commit that queues a critical (priority 1) email to
     the sink's counter showing one more message, median of 20 (target: under one second). The
     worker's `sent_at` for the row (its clock, read when the server's 250 arrived) is printed
     next to it as a cross-check; both clocks are this machine's.
"""
import argparse
import multiprocessing
import os
import re
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from functools import partial
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
from mets.services.outbox.smtp import build_message  # noqa: E402
from tests.integration.mail_helpers import (SENDER, RedisServer, WorkerProcess, end_process, free_port,  # noqa: E402
                                            mail_settings, wait_until, worker_env)

THROUGHPUT_TARGET = 500  # emails a second
LATENCY_TARGET_MS = 1000
SMTP_SINK = "/usr/sbin/smtp-sink"


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


# -- the SMTP sink -----------------------------------------------------------------------------

class SmtpSink:
    """postfix's `smtp-sink -c` on a spare port; `count` is its message counter, `last_at` when it last grew.

    smtp-sink rewrites "sess=N quit=N mesg=N" followed by a carriage return on stdout whenever a session
    ends, a QUIT arrives or a message's final "." is received. A thread reads the pipe as it is
    written (blocking reads, so it wakes the moment a counter line arrives) and stamps each change.
    """

    COUNTERS = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)\r")

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self.count = 0
        self.last_at: float | None = None  # time.time() when `count` last grew
        self.process = None
        self._reader = None

    def start(self) -> "SmtpSink":
        binary = shutil.which("smtp-sink") or (SMTP_SINK if os.access(SMTP_SINK, os.X_OK) else None)
        if binary is None:
            raise SystemExit(f"bench mail_throughput: postfix's smtp-sink is not installed ({SMTP_SINK}); "
                             "apt-get install postfix (only the binary is used, no mail daemon needs to run)")
        # As root it must drop privileges after binding; -c: counters; backlog 1000: no connection waits on listen.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([binary, "-c", *user, f"127.0.0.1:{self.port}", "1000"],
                                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, name="smtp-sink counters", daemon=True)
        self._reader.start()
        wait_until(self._listening, timeout=10, interval=0.02, what=f"smtp-sink on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"smtp-sink exited with {self.process.returncode}; see {self.log_path}")
        try:
            smtplib.SMTP("127.0.0.1", self.port, timeout=1).quit()
            return True
        except OSError:
            return False

    def _read(self) -> None:
        pending = b""
        fd = self.process.stdout.fileno()
        while chunk := os.read(fd, 65536):
            now = time.time()
            pending += chunk
            records = self.COUNTERS.findall(pending)
            if records:
                pending = pending[pending.rfind(b"\r") + 1:]
                count = int(records[-1][2])
                if count > self.count:
                    self.last_at = now  # before the count: whoever sees the new count sees its time
                    self.count = count

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process, group=False)
            self._reader.join(5)
            self.process.stdout.close()
            self.process = None


# -- where the CPU goes ---------------------------------------------------------------------------

class CpuMeter:
    """CPU seconds (user + system, reaped children included) of named groups of processes, from /proc.

    A group is a callable returning its pids now; a pid first seen at the end counts from zero, one
    that ended during the run is missed (the database backends of a pool that persists do not end).
    """

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, **groups):
        self.groups = groups
        self.started_at = self.start = None

    @classmethod
    def cpu(cls, pid: int) -> float:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
        except OSError:
            return 0.0
        return sum(int(f) for f in fields[11:15]) / cls.TICK  # utime, stime, cutime, cstime

    def _snapshot(self) -> dict[str, dict[int, float]]:
        return {name: {pid: self.cpu(pid) for pid in pids()} for name, pids in self.groups.items()}

    def begin(self) -> None:
        self.started_at, self.start = time.monotonic(), self._snapshot()

    def report(self) -> str:
        wall = time.monotonic() - self.started_at
        parts = []
        for name, now in self._snapshot().items():
            used = sum(cpu - self.start[name].get(pid, 0.0) for pid, cpu in now.items())
            parts.append(f"{name} {used:.1f}s ({used / wall:.0%})")
        return f"CPU over {wall:.1f}s, as a share of one core: " + ", ".join(parts)


def database_backends(database: str):
    """The PostgreSQL backends connected to `database` (their titles name it)."""
    def pids() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                        title = cmdline.read()
                except OSError:
                    continue
                if title.startswith(b"postgres:") and f" {database} ".encode() in title:
                    found.append(int(entry))
        return found
    return pids


# -- 1. the raw ceiling --------------------------------------------------------------------------

def _blast(port: int, message: bytes, first: int, count: int, ready, go, results) -> None:
    """One sender process: connect, wait for the others, send `count` messages on that one connection."""
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
    smtp.ehlo()
    ready.put(os.getpid())
    go.wait()
    for i in range(first, first + count):
        smtp.sendmail("support@mets.example", [f"reader{i}@bench.example"], message)
    results.put(time.time())
    smtp.quit()


def raw_ceiling(sink: SmtpSink, message: bytes, emails: int, senders: int) -> float:
    """`senders` smtplib processes sharing `emails` messages; from "go" to the sink's last acceptance."""
    spawn = multiprocessing.get_context("spawn")  # no forked copy of the bench's threads and connections
    ready, results, go = spawn.Queue(), spawn.Queue(), spawn.Event()
    per = emails // senders
    processes = [spawn.Process(target=_blast, args=(sink.port, message, n * per, per, ready, go, results))
                 for n in range(senders)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=60)
    before = sink.count
    started = time.time()
    go.set()
    finished = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(30)
    total = per * senders
    wait_until(lambda: sink.count >= before + total, timeout=10, interval=0.01, what="the sink's count",
               state=lambda: f"{sink.count - before} of {total}")
    seconds = sink.last_at - started
    rate = total / seconds
    print(f"raw ceiling: {senders} smtplib processes, one connection each, {total} messages of {len(message)} bytes "
          f"in {seconds:.2f}s: {rate:.0f} messages/s (senders done after {max(finished) - started:.2f}s)")
    return rate


# -- 2. throughput -------------------------------------------------------------------------------

def sample_text(i: int) -> tuple[str, str, str]:
    """Subject, text and HTML of the throughput run's email number `i`."""
    return (f"[ACME-{1000 + i}] New reply to your request: Printer {i}",
            f"Hello Reader {i},\n\nWe replied to your request.\n" * 5,
            f"<p>Hello Reader {i},</p><p>We replied to your request.</p>" * 5)


def sent_count() -> int:
    count = db.session.scalar(select(func.count()).select_from(QueuedEmail).where(QueuedEmail.status == SENT))
    db.session.rollback()
    return count


def throughput(app, sink: SmtpSink, emails: int, transactions: int, meter: CpuMeter) -> float:
    """Build `transactions` open transactions of queued rows, then commit them back to back."""
    per = emails // transactions
    total = per * transactions
    with app.app_context():
        building = time.perf_counter()
        sessions = [Session(db.engine) for _ in range(transactions)]
        for t, session in enumerate(sessions):
            for i in range(t * per, (t + 1) * per):
                subject, body, html = sample_text(i)
                outbox.queue_message(session, to=f"reader{i}@bench.example", name=f"Reader {i}",
                                     subject=subject, text=body, html=html)
            session.flush()
        print(f"  {total} rows written in {transactions} open transactions in {time.perf_counter() - building:.1f}s")
        accepted_before = sink.count
        meter.begin()
        started = datetime.now(timezone.utc)
        for session in sessions:
            session.commit()  # the rows become visible and their send jobs are enqueued
            session.close()
        print(f"  committed and enqueued in {(datetime.now(timezone.utc) - started).total_seconds():.2f}s")
        wait_until(lambda: sent_count() >= total, timeout=900, interval=0.25, what=f"{total} emails sent",
                   state=lambda: f"{sent_count()} sent")
        cpu = meter.report()
        last = db.session.scalar(select(func.max(QueuedEmail.sent_at)))
        db.session.rollback()
    wait_until(lambda: sink.count - accepted_before >= total, timeout=10, interval=0.01,
               what="the sink's count to catch up", state=lambda: f"{sink.count - accepted_before} accepted")
    accepted = sink.count - accepted_before
    seconds = (last - started).total_seconds()
    rate = total / seconds
    print(f"throughput: {total} emails in {seconds:.2f}s from the first commit to the last row marked sent: "
          f"{rate:.0f} emails/s (smtp-sink counted {accepted}, the last {sink.last_at - started.timestamp():.2f}s "
          f"after the first commit)")
    print(f"  {cpu}")
    if accepted != total:
        print(f"  WARNING: the sink counted {accepted} messages for {total} rows marked sent")
    return rate


# -- 3. latency ----------------------------------------------------------------------------------

def sent_at(message_id: str) -> datetime | None:
    value = db.session.scalar(select(QueuedEmail.sent_at).where(QueuedEmail.message_id == message_id,
                                                                QueuedEmail.status == SENT))
    db.session.rollback()
    return value


def latency(app, sink: SmtpSink, samples: int) -> tuple[float, list[float]]:
    times, marked = [], []
    with app.app_context():
        for n in range(samples):
            before = sink.count
            row = outbox.queue_message(db.session, to=f"manager{n}@bench.example", priority=CRITICAL,
                                       subject=f"[ACME-{n}] SLA breached: resolution target missed",
                                       text="The resolution target was missed.")
            message_id = row.message_id  # set in Python: reading it after the commit would reload the row
            committed = time.time()
            db.session.commit()
            wait_until(lambda: sink.count > before, timeout=30, interval=0.002, what="the critical email")
            times.append((sink.last_at - committed) * 1000)
            sent = wait_until(partial(sent_at, message_id), timeout=30, interval=0.005, what="the row marked sent")
            marked.append((sent.timestamp() - committed) * 1000)
            time.sleep(0.2)  # idle again
    median = statistics.median(times)
    print(f"latency: commit to smtp-sink's count of a critical email, median of {samples}: {median:.0f} ms "
          f"(min {min(times):.0f}, max {max(times):.0f}); to the row's sent_at: "
          f"{statistics.median(marked):.0f} ms (min {min(marked):.0f}, max {max(marked):.0f})")
    return median, times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--transactions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="METS workers, and raw smtplib senders")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_mail")

    work = Path(tempfile.mkdtemp(prefix="mets-bench-mail-"))
    sink = SmtpSink(work / "smtp-sink.log").start()  # first: without smtp-sink nothing else is worth starting
    redis = None
    workers = []
    try:
        print(f"smtp-sink on port {sink.port}; logs in {work}; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs")
        subject, body, html = sample_text(0)
        message = build_message(sender=SENDER, to="Reader 0 <reader0@bench.example>", subject=subject, text=body,
                                html=html, message_id="<bench.raw@mets.example>", headers={})
        ceiling = raw_ceiling(sink, message, args.emails, args.workers)

        fresh_database(url)
        redis = RedisServer(work / "redis").start()
        settings = mail_settings(redis.url, sink.port, RQ_QUEUE_PREFIX="mets-bench",
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
        print(f"{args.workers} workers listening on a private redis-server; load average {os.getloadavg()[0]:.1f}")

        meter = CpuMeter(workers=lambda: [w.process.pid for w in workers],
                         postgres=database_backends(make_url(url).database),
                         redis=lambda: [redis.process.pid], smtp_sink=lambda: [sink.process.pid],
                         bench=lambda: [os.getpid()])
        rate = throughput(app, sink, args.emails, args.transactions, meter)
        median_ms, _ = latency(app, sink, args.samples)
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine skews the figures)")
    finally:
        for worker in workers:
            worker.stop()
        if redis is not None:
            redis.stop()
        sink.stop()
    print(f"bench mail_throughput: {rate:.0f} emails/s (target >= {THROUGHPUT_TARGET}; "
          f"{rate / ceiling:.2f} of the raw smtplib ceiling, {ceiling:.0f} messages/s)")
    print(f"bench mail_latency: {median_ms:.0f} ms median commit to SMTP (target < {LATENCY_TARGET_MS})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
