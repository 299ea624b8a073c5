"""The RQ side of `worker.py`, built to ride out Redis outages of any length.

RQ 2.12 survives an outage only while a worker sits in BLPOP (`dequeue_job_and_maintain_ttl`
retries); anywhere else a Redis error ends `SimpleWorker.work()` (its catch-all "unhandled
exception, quitting", then `teardown` raising again), and `CronScheduler.start()` has no retry at
all: its process dies in `enqueue_jobs`. So, without touching RQ's internals:

- `ResilientWorker` (a SimpleWorker) waits for Redis when a heartbeat finds it gone (the first
  call of every idle loop and of every job boundary), and records a stop signal;
- `run_worker` starts a new worker whenever the last one's loop ended without being asked to stop,
  waiting for Redis first (also when Redis is down at start);
- `ResilientCronScheduler` restarts its `start()` loop after Redis is back, keeping each job's
  schedule (an overdue job is enqueued at once);
- `SchedulerSupervisor` runs that scheduler in a child process and reaps and restarts it,
  with backoff, whenever it exits, until the worker stops.

Every wait backs off from FIRST_DELAY doubling to MAX_DELAY and logs one line when Redis goes
and one when it is back.
"""
import logging
import multiprocessing
import os
import signal
import threading
import time

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.worker import SimpleWorker

log = logging.getLogger("mets.worker")

LOG_FORMAT = "%(asctime)s %(name)s %(message)s"
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
FIRST_DELAY, MAX_DELAY = 0.5, 10.0
# A process that ran this long was not crash-looping: its next restart starts from FIRST_DELAY.
STABLE_AFTER = 60.0


class Backoff:
    """Delays doubling from `first` to at most `cap`."""

    def __init__(self, first: float = FIRST_DELAY, cap: float = MAX_DELAY):
        self.first, self.cap = first, cap
        self.reset()

    def reset(self) -> None:
        """Start again from the first delay."""
        self._next = self.first

    def next(self) -> float:
        """The delay to wait now (the following one doubles)."""
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay


def _probe(url: str) -> Redis:
    # Short timeouts of its own: the worker's client has RQ's ~7-minute socket timeout (for BLPOP).
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


def redis_answers(url: str) -> bool:
    """Whether Redis at `url` answers a PING now."""
    client = _probe(url)
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()


def wait_for_redis(url: str, who: str, error, stop: threading.Event | None = None) -> bool:
    """Block until Redis at `url` answers PING, backing off; False if `stop` was set first.

    Logs one line as the wait starts and one when Redis is back, however long it takes. Without
    `stop` it sleeps, so a signal handler that raises (RQ's StopRequested) ends the wait.
    """
    backoff, started = Backoff(), time.monotonic()
    delay = backoff.next()
    log.warning("%s: Redis unavailable (%s), retrying in %.1f s (backing off to every %.0f s)",
                who, error, delay, MAX_DELAY)
    client = _probe(url)
    try:
        while True:
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                return False
            try:
                client.ping()
            except RedisError:
                delay = backoff.next()
                continue
            log.warning("%s: Redis back after %.1f s", who, time.monotonic() - started)
            return True
    finally:
        client.close()


class _RedisOutageWithoutTraceback(logging.Filter):
    """On RQ's "unhandled exception, quitting" for a Redis that went away: the reason, not 60 lines of
    traceback (run_worker then says "Redis unavailable" and starts a new worker once it is back)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], REDIS_DOWN):
            record.msg, record.args = f"{record.getMessage()} ({record.exc_info[1]})", None
            record.exc_info = record.exc_text = None
        return True


_OUTAGE_FILTER = _RedisOutageWithoutTraceback()


class ResilientWorker(SimpleWorker):
    """A SimpleWorker (jobs run in this process) that waits out a Redis outage at its heartbeats."""

    # RQ's own retry around BLPOP backs off to 60 s; keep it to our cap, so mail resumes promptly.
    max_connection_wait_time = MAX_DELAY

    def __init__(self, *args, redis_url: str, stopping: threading.Event | None = None, **kwargs):
        self.redis_url = redis_url
        self.stopping = stopping or threading.Event()
        super().__init__(*args, **kwargs)
        if _OUTAGE_FILTER not in self.log.filters:
            self.log.addFilter(_OUTAGE_FILTER)

    def request_stop(self, signum, frame):
        """SIGTERM/SIGINT: remember it (run_worker must not start a new worker), then RQ's warm shutdown."""
        self.stopping.set()
        super().request_stop(signum, frame)

    def teardown(self) -> None:
        """RQ's teardown; when Redis is gone it raises before stopping the command-channel thread, so stop it here."""
        try:
            super().teardown()
        except REDIS_DOWN:
            if self.pubsub_thread is not None:
                self.pubsub_thread.stop()  # else every outage would leave one more thread behind
            raise

    def _pubsub_exception_handler(self, exc, pubsub, pubsub_thread) -> None:
        # RQ's handler for its command channel's thread logs an error every 2 s of an outage; the
        # outage is already told once by the work loop, so retry quietly, at the same pace.
        if isinstance(exc, RedisConnectionError):
            time.sleep(2.0)
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def heartbeat(self, timeout: int | None = None, pipeline=None):
        """RQ's heartbeat; if Redis is gone, wait until it is back instead of ending the work loop."""
        if pipeline is not None:  # only queued on the caller's pipeline: no round trip here
            return super().heartbeat(timeout, pipeline)
        try:
            return super().heartbeat(timeout)
        except REDIS_DOWN as exc:
            wait_for_redis(self.redis_url, f"worker {self.name}", exc)
        if not self.connection.exists(self.key):
            # Redis came back empty and forgot this worker: register again, so `rq info` lists it.
            self.register_birth()
        return super().heartbeat(timeout)


def _raise_stop(signum, frame):
    raise StopRequested()


def run_worker(url: str, make_worker, burst: bool = False, stopping: threading.Event | None = None) -> int:
    """Run `make_worker()`'s RQ loop until a stop signal (or, with `burst`, empty queues); returns 0.

    A loop that ended any other way (Redis gone at a job boundary, Redis down at start, RQ's
    catch-all) is followed by a new worker once Redis answers, never by an exit.
    """
    stopping = stopping or threading.Event()
    backoff = Backoff()
    try:
        while not stopping.is_set():
            # Ours between workers: RQ's handlers would act on a worker whose loop has ended.
            signal.signal(signal.SIGTERM, _raise_stop)
            signal.signal(signal.SIGINT, _raise_stop)
            worker, error, started = None, None, time.monotonic()
            try:
                worker = make_worker()  # talks to Redis already (CLIENT SETNAME)
                worker.work(burst=burst, logging_level="INFO")
            except REDIS_DOWN as exc:  # from RQ's teardown, or from a worker that could not start
                error = exc
            signal.signal(signal.SIGTERM, _raise_stop)
            signal.signal(signal.SIGINT, _raise_stop)
            if stopping.is_set():
                break
            if burst and error is None:
                try:
                    if not any(queue.count for queue in worker.queues):
                        break
                except REDIS_DOWN as exc:
                    error = exc
            if time.monotonic() - started > STABLE_AFTER:
                backoff.reset()
            if error is not None or not redis_answers(url):
                wait_for_redis(url, "worker", error or "no answer to PING")
            else:
                delay = backoff.next()
                log.warning("worker: the RQ loop ended unexpectedly; starting a new worker in %.1f s", delay)
                time.sleep(delay)
    except (StopRequested, KeyboardInterrupt):
        stopping.set()
    log.info("worker: stopped")
    return 0


class ResilientCronScheduler(CronScheduler):
    """rq cron's scheduler, paused by a Redis outage instead of killed by it."""

    def __init__(self, redis_url: str, **kwargs):
        self.redis_url = redis_url
        super().__init__(connection=Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=5), **kwargs)

    def register_death(self, pipeline=None) -> None:
        """RQ's deregistration, which cannot work while Redis is gone (the registry entry then lapses)."""
        try:
            super().register_death(pipeline)
        except REDIS_DOWN as exc:
            self.log.info("CronScheduler %s: could not deregister (%s)", self.name, exc)

    def run(self) -> None:
        """`start()` until a stop is requested; after a Redis outage, start again where the schedule is."""
        try:
            while True:
                try:
                    self.start()  # returns on SIGTERM/SIGINT (RQ's own handlers, installed by start)
                    return
                except REDIS_DOWN as exc:
                    wait_for_redis(self.redis_url, "scheduler", exc)
        except (StopRequested, KeyboardInterrupt):  # a signal during the wait
            self.log.info("CronScheduler %s: stopped", self.name)


def _stop_when_orphaned(parent_pid: int) -> None:
    # The worker was killed without stopping us (SIGKILL, OOM): a scheduler nobody supervises
    # would run on beside the one a restarted worker starts.
    while os.getppid() == parent_pid:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


def run_scheduler(redis_url: str, parent_pid: int | None = None) -> None:
    """The scheduler process: `rq cron` on mets.cron_config until stopped, or until its parent is gone."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if parent_pid is not None:
        threading.Thread(target=_stop_when_orphaned, args=(parent_pid,), daemon=True).start()
    scheduler = ResilientCronScheduler(redis_url)
    scheduler.load_config_from_file("mets.cron_config")
    scheduler.run()


class SchedulerSupervisor:
    """Keeps the one scheduler running in a child process: reaps it and, with backoff, restarts it
    whenever it exits, until `stop()` (or `stopping`, shared with the worker, is set)."""

    def __init__(self, redis_url: str, stopping: threading.Event | None = None):
        self.redis_url = redis_url
        self.stopping = stopping or threading.Event()
        self._lock = threading.Lock()
        self._process = None
        self._thread = threading.Thread(target=self._supervise, name="mets-scheduler-supervisor", daemon=True)

    def start(self) -> "SchedulerSupervisor":
        """Start the scheduler process and its watch."""
        self._thread.start()
        return self

    def _supervise(self) -> None:
        # Only this thread waits on the child, so its exit status is never raced for.
        context, backoff = multiprocessing.get_context("spawn"), Backoff()
        while True:
            with self._lock:
                if self.stopping.is_set():
                    return
                process = context.Process(target=run_scheduler, args=(self.redis_url, os.getpid()),
                                          name="mets-scheduler", daemon=True)
                process.start()
                self._process = process
            started = time.monotonic()
            log.info("scheduler process %d started", process.pid)
            process.join()  # reaps it: a dead scheduler never lingers as a zombie
            if self.stopping.is_set():
                return
            if time.monotonic() - started > STABLE_AFTER:
                backoff.reset()
            delay = backoff.next()
            log.warning("scheduler process %d exited with code %s; restarting it in %.1f s",
                        process.pid, process.exitcode, delay)
            if self.stopping.wait(delay):
                return

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the scheduler process (SIGTERM, then SIGKILL after `timeout`) and wait for it."""
        self.stopping.set()
        with self._lock:
            process = self._process
        if process is None or not self._thread.is_alive():
            return
        process.terminate()
        self._thread.join(timeout)
        if self._thread.is_alive():
            process.kill()
            self._thread.join(timeout)
