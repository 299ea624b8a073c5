"""Redis outages as an operator meets them, with the real parts: `python worker.py` processes (one
with the scheduler, one `--no-cron`, as the README runs them), a private redis-server stopped and
started again on its port, PostgreSQL and an aiosmtpd SMTP server."""
import os
import re
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mets import clock
from mets.models import SENDING, JobRun
from mets.services import outbox
from tests.integration.mail_helpers import (all_sent, app_overrides, mail_config, outbox_rows,  # noqa: F401
                                            start_worker, statuses)
from tests.servers import wait_until

# The workers need a server database: these run on PostgreSQL only (never skipped there).
pytestmark = [pytest.mark.postgresql, pytest.mark.parametrize("backend", ["postgresql"]), pytest.mark.committing]

# Fast periods, so a stalled or resumed scheduler shows within seconds.
FAST = {"SLA_TICK_SECONDS": 2, "MAIL_SWEEP_SECONDS": 1, "MAIL_CLAIM_STALE_SECONDS": 5}


def processes_under(pid: int) -> dict[int, tuple[str, str]]:
    """The child processes of `pid`, as `ps` shows them: {pid: (state, command line)}; "Z" is <defunct>."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended while we looked
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid:
            found[int(entry.name)] = (state, command)
    return found


def schedulers(worker) -> dict[int, str]:
    """The worker's scheduler children (multiprocessing's spawned processes): {pid: state}."""
    return {p: state for p, (state, command) in processes_under(worker.process.pid).items() if "spawn_main" in command}


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def last_success(session, name: str) -> datetime | None:
    row = session.get(JobRun, name)
    at = row.last_succeeded_at if row else None
    session.rollback()
    return at


def succeeded_since(session, since: datetime, *names: str) -> bool:
    return all((at := last_success(session, name)) is not None and at > since for name in names)


def queue_mail(session, count: int, prefix: str) -> None:
    """`count` messages, each committed on its own, as `count` requests would."""
    for i in range(count):
        outbox.queue_message(session, to=f"{prefix.lower()}{i}@example.com", subject=f"{prefix} {i}", text="Hello")
        session.commit()


def leave_claimed(session, minutes_ago: int) -> int:
    """A message as a worker killed mid-send leaves it: `sending`, claimed long ago, one attempt used."""
    row = outbox.queue_message(session, to="orphan@example.com", subject="Orphaned", text="Hello")
    session.flush()
    row.status, row.attempts = SENDING, 1
    row.claim_token, row.claimed_at = "worker-that-was-killed", clock.now() - timedelta(minutes=minutes_ago)
    session.commit()
    return row.id


def test_workers_ride_out_a_redis_outage_and_send_what_was_queued_during_it(app, session, redis_server, sink,
                                                                             start_worker):
    started = datetime.now(timezone.utc)
    with_cron, plain = start_worker(**FAST), start_worker(cron=False, **FAST)
    wait_until(lambda: succeeded_since(session, started, "sla_tick", "outbox_sweep"), timeout=30,
               what="the scheduler's first tick and sweep")

    # A slow SMTP server keeps a worker inside a send job as Redis goes: it ends its job without Redis.
    sink.delay = 0.5
    queue_mail(session, 3, "Before")
    wait_until(lambda: sink.count >= 1, timeout=15, what="a worker in the middle of a batch")
    redis_server.stop()
    down = time.monotonic()
    sink.delay = 0

    queue_mail(session, 20, "During")  # the web side commits them; nothing can be enqueued
    orphan = leave_claimed(session, minutes_ago=10)
    rows = outbox_rows(session)
    assert sum(r.status == "pending" and r.attempts == 0 for r in rows) >= 20
    health = app.test_cli_runner().invoke(args=["mets", "health"])
    assert health.exit_code == 1 and "Redis is unreachable" in health.output

    time.sleep(max(0.0, 6 - (time.monotonic() - down)))
    assert with_cron.running and plain.running, "a worker exited during the outage"
    redis_server.start()  # on the same port, empty: every job queued before the outage is gone
    back, back_clock = time.monotonic(), datetime.now(timezone.utc)

    wait_until(lambda: all_sent(session, 24), timeout=15, what="all 24 messages sent within 15 s of Redis's return",
               state=lambda: statuses(session))
    resumed_in = time.monotonic() - back
    assert sorted(sink.message_ids().values()) == [1] * 24  # each message exactly once
    assert {m["Subject"] for m in sink.messages} == ({f"Before {i}" for i in range(3)} | {f"During {i}" for i in range(20)}
                                                     | {"Orphaned"})
    [reclaimed] = [r for r in outbox_rows(session) if r.id == orphan]
    assert "worker-that-was-killed stopped while sending" in reclaimed.attempt_log[0]["error"]
    assert reclaimed.attempts == 2

    assert with_cron.running and plain.running
    [(_pid, state)] = schedulers(with_cron).items()  # one scheduler, alive, no <defunct> beside it
    assert state != "Z"
    assert not schedulers(plain)
    wait_until(lambda: succeeded_since(session, back_clock, "sla_tick"), timeout=10,
               what="the SLA tick to run again")
    health = app.test_cli_runner().invoke(args=["mets", "health"])
    assert health.exit_code == 0, health.output
    assert "Redis                  reachable" in health.output
    # One line as Redis goes and one as it is back, from each worker and the scheduler.
    for worker, says in ((with_cron, ("worker", "scheduler")), (plain, ("worker",))):
        # The other worker may have sent everything while this one still waits out its backoff (<= 10 s).
        wait_until(lambda: worker.log_path.read_text().count("Redis back after") >= len(says), timeout=15,
                   what="every process to say Redis is back")
        log = worker.log_path.read_text()
        assert log.count("Redis unavailable") == len(says) and log.count("Redis back after") == len(says), log
        # A worker names itself ("worker <rq name>: ...") when the outage meets its heartbeat, and says "worker: ..."
        # when it meets its work loop (which RQ then ends, and run_worker starts again): either is the one line.
        assert all(re.search(rf"mets\.worker {who}( [0-9a-f]{{32}})?: Redis back after", log) for who in says), log
    print(f"sent everything {resumed_in:.1f} s after Redis came back")


def test_a_worker_started_while_redis_is_down_waits_for_it(session, redis_server, sink, start_worker):
    redis_server.stop()
    worker = start_worker(**FAST)
    queue_mail(session, 2, "Waiting")
    wait_until(lambda: "worker: Redis unavailable" in worker.log_path.read_text(), timeout=30,
               what="the worker to say it waits for Redis")
    assert worker.running

    redis_server.start()
    wait_until(lambda: all_sent(session, 2), timeout=20, what="the waiting mail sent", state=lambda: statuses(session))
    assert worker.running
    assert sorted(sink.message_ids().values()) == [1, 1]


def test_the_scheduler_is_restarted_when_it_dies_and_stops_with_its_worker(session, start_worker):
    worker = start_worker(**FAST)
    [first] = wait_until(lambda: list(schedulers(worker)), timeout=30, what="the scheduler process")
    wait_until(lambda: succeeded_since(session, datetime.now(timezone.utc) - timedelta(minutes=1), "sla_tick"),
               timeout=30, what="a first tick")

    os.kill(first, signal.SIGKILL)  # as the OOM killer would
    killed = datetime.now(timezone.utc)
    [second] = wait_until(lambda: [p for p in schedulers(worker) if p != first], timeout=15,
                          what="a new scheduler process")
    assert first not in processes_under(worker.process.pid)  # reaped: no <defunct> left behind
    wait_until(lambda: succeeded_since(session, killed, "sla_tick"), timeout=15, what="the tick to resume")

    os.kill(worker.process.pid, signal.SIGTERM)  # the worker alone, as `kill <pid>` does
    assert worker.process.wait(15) == 0
    wait_until(lambda: not alive(second), timeout=10, what="the scheduler to stop with its worker")
