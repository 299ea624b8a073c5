"""RQ on Redis: the two queues and the enqueueing of send jobs.

Critical mail (SLA breach, escalation, sign-in links) goes to `<prefix>-critical`, which every
worker listens to first, so it never waits behind a batch of ordinary notifications. Without
REDIS_URL (the embedded run) nothing is enqueued: `worker.py`'s loop polls the outbox instead.
"""
import logging

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import DuplicateJobError

from mets.models import CRITICAL

log = logging.getLogger("mets.queueing")

_connections: dict[str, Redis] = {}
# Jobs are enqueued by dotted path: the services that queue them never import mets.jobs (which imports them).
SEND_EMAIL = "mets.jobs.send_email"
SEND_WEBHOOK = "mets.jobs.send_webhook"


def redis_connection(url: str | None = None) -> Redis | None:
    """One client per URL and process; short timeouts, so a Redis outage never stalls a request."""
    url = url or current_app.config.get("REDIS_URL")
    if not url:
        return None
    if url not in _connections:
        _connections[url] = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
    return _connections[url]


def queue_names(prefix: str) -> list[str]:
    """Queue names, most urgent first (the order workers listen in)."""
    return [f"{prefix}-critical", f"{prefix}-default"]


def queues(connection: Redis, prefix: str) -> list[Queue]:
    return [Queue(name, connection=connection) for name in queue_names(prefix)]


def send_job_id(row_id: int, attempts: int) -> str:
    """One job per row and attempt: a duplicate enqueue of the same attempt is refused by RQ."""
    return f"mets-mail-{row_id}-{attempts}"


def enqueue_sends(items: list[tuple[int, int, int]]) -> int:
    """Enqueue send jobs for (row id, priority, attempts) items; returns how many jobs were new.

    One job per MAIL_BATCH_SIZE rows, not per row: each job claims a whole batch of due rows
    (its first row first), so this many jobs send them all, and the rest would only find
    nothing left to claim (RQ's per-job overhead dominated the send rate). Rows a job could not
    take (rate limits, a failed job) wait for the sweep, as before.
    A Redis error is logged, not raised: the rows are safe in the database and the sweep
    enqueues them once Redis is back.
    """
    connection = redis_connection()
    if connection is None or not items:
        return 0
    critical, default = queues(connection, current_app.config["RQ_QUEUE_PREFIX"])
    batch = max(1, current_app.config["MAIL_BATCH_SIZE"])
    groups = {critical: [], default: []}
    for item in sorted(items):
        groups[critical if item[1] <= CRITICAL else default].append(item)
    jobs = [(queue, rows[start]) for queue, rows in groups.items() for start in range(0, len(rows), batch)]
    enqueued = 0
    try:
        for queue, (row_id, _priority, attempts) in jobs:
            try:
                queue.enqueue(SEND_EMAIL, row_id, job_id=send_job_id(row_id, attempts), unique=True,
                              result_ttl=0, failure_ttl=300, job_timeout=600)
                enqueued += 1
            except DuplicateJobError:
                pass  # queued, running, or failed in the last 5 minutes (failure_ttl): the sweep retries
    except RedisError as exc:
        log.warning("Redis unavailable (%s): %d message(s) wait for the sweep", exc, len(items))
    return enqueued


def webhook_job_id(row_id: int, attempts: int) -> str:
    """One job per delivery and attempt: a duplicate enqueue of the same attempt is refused by RQ."""
    return f"mets-hook-{row_id}-{attempts}"


def enqueue_webhooks(ids) -> int:
    """Enqueue a send job per delivery (`ids`: row ids or (id, attempts) pairs) on the default queue.

    One job per row, unlike mail: each call is its own HTTP request, and a slow receiver must
    hold up only its own delivery. A Redis error is logged, not raised: the sweep enqueues later.
    """
    connection = redis_connection()
    if connection is None or not ids:
        return 0
    default = queues(connection, current_app.config["RQ_QUEUE_PREFIX"])[1]
    items = sorted(item if isinstance(item, tuple) else (item, 0) for item in ids)
    enqueued = 0
    try:
        for row_id, attempts in items:
            try:
                default.enqueue(SEND_WEBHOOK, row_id, job_id=webhook_job_id(row_id, attempts), unique=True,
                                result_ttl=0, failure_ttl=300)
                enqueued += 1
            except DuplicateJobError:
                pass  # queued, running, or failed in the last 5 minutes: the sweep retries
    except RedisError as exc:
        log.warning("Redis unavailable (%s): %d webhook(s) wait for the sweep", exc, len(items))
    return enqueued
