"""Liveness of the background side: the periodic jobs' last runs (`job_runs`) and Redis.

`record_*` are called by `mets.jobs.periodic` around every run of a periodic job, however it runs
(an RQ worker, `rq cron`, worker.py's embedded loop); `report` is what `flask --app wsgi mets
health` and the admin overview show. The SLA tick and the outbox sweep are the jobs an install
cannot do without (no breach is noticed, no mail sent or reclaimed): either of them not having
succeeded within STALE_FACTOR periods, or never, makes the install unhealthy.
"""
import logging
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from mets.models import JobRun

log = logging.getLogger("mets.health")

STALE_FACTOR = 3
CRITICAL_JOBS = ("sla_tick", "outbox_sweep")
LABELS = {"sla_tick": "SLA tick", "outbox_sweep": "Outbox sweep", "webhook_sweep": "Webhook sweep",
          "automation_log_prune": "Automation log prune", "presence_prune": "Presence prune",
          "metrics_rollup": "Metrics rollup"}
ERROR_LIMIT = 2000


# -- recording (one short transaction of its own per write) -------------------------------------

def _upsert(engine, name: str, values: dict) -> None:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(JobRun.__table__).values(name=name, **values)
                 .on_conflict_do_update(index_elements=["name"], set_=values))
    try:
        # Its own connection and transaction: whatever the job's session does (or fails to do),
        # the record lands, and it never commits the job's half-done work.
        with engine.begin() as connection:
            connection.execute(statement)
    except SQLAlchemyError as exc:  # liveness bookkeeping must never be what makes a job fail
        log.warning("could not record the run of %s: %s", name, exc)


def record_start(engine, name: str, now: datetime) -> None:
    """Note that periodic job `name` started at `now`."""
    _upsert(engine, name, {"last_started_at": now})


def record_success(engine, name: str, now: datetime) -> None:
    """Note that periodic job `name` finished without error at `now`."""
    _upsert(engine, name, {"last_succeeded_at": now})


def record_failure(engine, name: str, now: datetime, error: str) -> None:
    """Note that periodic job `name` failed at `now` with `error` (kept after later successes)."""
    _upsert(engine, name, {"last_failed_at": now, "last_error": error[:ERROR_LIMIT]})


# -- the report ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobHealth:
    name: str
    label: str
    period: int  # seconds
    critical: bool
    started_at: datetime | None
    succeeded_at: datetime | None
    failed_at: datetime | None
    error: str | None
    age: float | None  # seconds since the last success; None: never succeeded
    ran_age: float | None  # seconds since the last start; None: never started

    @property
    def never_ran(self) -> bool:
        return self.succeeded_at is None

    @property
    def stale(self) -> bool:
        """No success within STALE_FACTOR periods (or ever)."""
        return self.age is None or self.age > STALE_FACTOR * self.period

    @property
    def failing(self) -> bool:
        """The last run that ended, ended in an error."""
        return self.failed_at is not None and (self.succeeded_at is None or self.failed_at > self.succeeded_at)


@dataclass(frozen=True)
class HealthReport:
    jobs: list[JobHealth]
    redis_configured: bool
    redis_ok: bool | None  # None: no REDIS_URL (the embedded loop needs none)
    redis_error: str | None

    @property
    def problems(self) -> list[str]:
        """What makes the install unhealthy, in words (empty: healthy)."""
        found = []
        for job in self.jobs:
            if job.critical and job.never_ran:
                found.append(f"{job.label} never ran")
            elif job.critical and job.stale:
                found.append(f"{job.label} has not succeeded for {format_age(job.age)} "
                             f"(expected every {format_age(job.period)})")
        if self.redis_configured and not self.redis_ok:
            found.append(f"Redis is unreachable ({self.redis_error})")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems


def redis_reachable(url: str, timeout: float = 1.0) -> tuple[bool, str | None]:
    """(whether Redis at `url` answers PING within `timeout` seconds, the error if not)."""
    client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
        return True, None
    except RedisError as exc:
        return False, str(exc) or type(exc).__name__
    finally:
        client.close()


def report(session, now: datetime, periods: dict[str, int], redis_url: str | None = None) -> HealthReport:
    """The state of every periodic job in `periods` (name -> seconds) at `now`, and of Redis if `redis_url`."""
    rows = {r.name: r for r in session.scalars(select(JobRun).where(JobRun.name.in_(list(periods))))}
    jobs = []
    for name, period in periods.items():
        row = rows.get(name)
        succeeded = row.last_succeeded_at if row else None
        jobs.append(JobHealth(
            name=name, label=LABELS.get(name, name.replace("_", " ").capitalize()), period=int(period),
            critical=name in CRITICAL_JOBS, started_at=row.last_started_at if row else None,
            succeeded_at=succeeded, failed_at=row.last_failed_at if row else None,
            error=row.last_error if row else None,
            age=_seconds_since(now, succeeded), ran_age=_seconds_since(now, row.last_started_at if row else None)))
    redis_ok, redis_error = redis_reachable(redis_url) if redis_url else (None, None)
    return HealthReport(jobs=jobs, redis_configured=bool(redis_url), redis_ok=redis_ok, redis_error=redis_error)


def _seconds_since(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def format_age(seconds: float | None) -> str:
    """A duration as people say it: "40 s", "3 min", "2 h 5 min", "3 d"; "" for None."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds // 86400} d"
