"""Job functions and the periodic schedule.

Jobs take ids, not objects, and run in an app context of their own (`in_app`), so the same
functions run under an RQ worker (`worker.py`, `rq worker-pool`), under `rq cron`, and in the
embedded loop of `worker.py` without Redis. Every periodic job is idempotent: `rq cron` or a
restart may run one twice, and records its runs in `job_runs` (`mets health`, the admin overview).
"""
import functools
import logging

from flask import current_app, has_app_context

import mets
from mets import clock
from mets.extensions import db
from mets.services import automation, health, metrics
from mets.services.outbox import http as webhooks
from mets.services.outbox import smtp
from mets.services.sla import tick as tick_service
from mets.services.tickets import live

log = logging.getLogger("mets.jobs")

# name -> (function, name of the config key holding its period in seconds)
PERIODIC = {}
_app = None


def use_app(app) -> None:
    """Run jobs in this app (worker.py passes the one it made; otherwise one is made on first use)."""
    global _app
    _app = app


def in_app(fn):
    """Run `fn` in an app context with a fresh session, even when RQ calls it bare."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        global _app
        if has_app_context():
            return fn(*args, **kwargs)
        if _app is None:
            _app = mets.create_app()
        with _app.app_context():
            try:
                return fn(*args, **kwargs)
            except Exception:
                db.session.rollback()
                raise
            finally:
                db.session.remove()
    return run


def periods(config) -> dict[str, int]:
    """Each periodic job's period in seconds, from `config` (the app's settings)."""
    return {name: int(config[key]) for name, (_, key) in PERIODIC.items()}


def periodic(name: str, period_key: str):
    """Register `fn` as periodic job `name` (run every `period_key` seconds), recording its runs.

    The registered (and returned) function runs in an app context (`in_app`) and notes in
    `job_runs` when it started, and when it succeeded or failed with what error, so `mets health`
    and the admin overview see a stalled scheduler whichever way the jobs run: an RQ worker, `rq
    cron`, or the embedded loop all call this same function.
    """
    def register(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            health.record_start(db.engine, name, clock.now())
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                db.session.rollback()  # the failed work first, so nothing of it can hold locks
                health.record_failure(db.engine, name, clock.now(), f"{type(exc).__name__}: {exc}")
                raise
            health.record_success(db.engine, name, clock.now())
            return result

        job = in_app(run)
        PERIODIC[name] = (job, period_key)
        return job
    return register


@in_app
def send_email(row_id: int) -> str:
    """Send outbox row `row_id`, batched with other due rows over one SMTP connection."""
    return str(smtp.deliver(db.session, first_id=row_id))


@periodic("sla_tick", "SLA_TICK_SECONDS")
def sla_tick() -> str:
    """Act on every SLA warning, breach and escalation point now due."""
    result = tick_service.tick(db.session)
    return f"SLA tick: {result.tickets} tickets looked at, {len(result.fired)} points fired"


@periodic("outbox_sweep", "MAIL_SWEEP_SECONDS")
def outbox_sweep() -> str:
    """Free stale claims and hand due mail to the workers; without Redis, send it right here."""
    reclaimed, due = smtp.sweep(db.session)
    if not (reclaimed or due):
        return ""  # nothing to do (the embedded loop runs this every 2 s: an idle one stays quiet)
    summary = f"outbox sweep: {reclaimed} stale claims freed, {due} due"
    if not current_app.config.get("REDIS_URL"):
        summary += f"; {smtp.deliver_due(db.session)}"
    return summary


@in_app
def send_webhook(row_id: int) -> str:
    """POST webhook delivery `row_id` (or, if it is gone or taken, another due one)."""
    sent = webhooks.deliver(db.session, first_id=row_id, limit=1)
    return f"webhook {row_id}: {'sent' if sent else 'not sent'}"


@periodic("webhook_sweep", "MAIL_SWEEP_SECONDS")
def webhook_sweep() -> str:
    """Free stale webhook claims and hand due deliveries to the workers; without Redis, send them here."""
    reclaimed, due = webhooks.sweep(db.session)
    if not (reclaimed or due):
        return ""  # the embedded loop runs this every 2 s: an idle one stays quiet
    return f"webhook sweep: {reclaimed} stale claims freed, {due} due"


@periodic("automation_log_prune", "AUTOMATION_PRUNE_SECONDS")
def automation_log_prune() -> str:
    """Delete rule executions older than AUTOMATION_LOG_DAYS (the rules list counts 7 and 30 days)."""
    removed = automation.prune_log(db.session, clock.now(), current_app.config["AUTOMATION_LOG_DAYS"])
    db.session.commit()
    return f"automation log: {removed} old executions removed" if removed else ""


@periodic("presence_prune", "PRESENCE_PRUNE_SECONDS")
def presence_prune() -> str:
    """Delete ticket viewers nobody refreshed for ten minutes (every read ignores them after the presence window)."""
    window = live.presence_window(current_app.config["TICKET_POLL_SECONDS"])
    removed = live.prune_viewers(db.session, clock.now(), window)
    db.session.commit()
    return f"presence: {removed} stale viewers removed" if removed else ""


@periodic("metrics_rollup", "METRICS_ROLLUP_SECONDS")
def metrics_rollup() -> str:
    """Rewrite the daily rollups of the response metrics of today and the days just before it, and the ticket
    rollups of those days and of the days whose tickets changed since the last run."""
    written = metrics.rollups.roll_up_recent(db.session, clock.now().date())
    db.session.commit()
    return f"metrics rollup: {written} rollup rows written"
