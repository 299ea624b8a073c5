"""Background worker.

With REDIS_URL (production):
    python worker.py               # an RQ worker on the critical then the default queue,
                                   # plus the one periodic scheduler (rq cron) in a child process
    python worker.py --no-cron     # more workers: run as many as you like, without the scheduler
    python worker.py --burst       # work until the queues are empty, then exit
Several workers in one command: `rq worker-pool` (see the README).
Workers and their scheduler ride out Redis outages of any length (mets/rq_runtime.py).

Without REDIS_URL (the embedded default, what `make run` starts):
    python worker.py               # a loop: the outbox and webhooks every 2 s, the SLA tick every minute
    python worker.py --once        # each periodic job once, then exit
"""
import argparse
import logging
import signal
import sys
import threading
import time

from mets import create_app, jobs
from mets.extensions import db

log = logging.getLogger("mets.worker")

EMBEDDED_PERIODS = {"outbox_sweep": 2, "webhook_sweep": 2}  # the embedded loop is the only sender: poll often


def run_embedded(app, once: bool = False) -> int:
    """Run every periodic job on its period in this process, until SIGTERM."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    periods = {name: EMBEDDED_PERIODS.get(name, app.config[key]) for name, (_, key) in jobs.PERIODIC.items()}
    next_run = {name: 0.0 for name in jobs.PERIODIC}
    log.info("METS worker (embedded): %s", ", ".join(f"{n} every {s}s" for n, s in periods.items()))
    while not stopping:
        for name, (job, _) in jobs.PERIODIC.items():
            if time.monotonic() < next_run[name]:
                continue
            next_run[name] = time.monotonic() + periods[name]
            with app.app_context():
                try:
                    if summary := job():
                        log.info(summary)
                except Exception:  # a failing run is logged and retried next period, never fatal
                    log.exception("job %s failed", name)
                finally:
                    db.session.remove()
        if once:
            return 0
        time.sleep(0.5)
    return 0


def run_rq(app, with_cron: bool, burst: bool) -> int:
    """An RQ worker on the critical queue first, then the default one, riding out Redis outages.

    With `with_cron`, the one periodic scheduler runs in a child process that is restarted
    whenever it exits and stopped with this worker (mets/rq_runtime.py).
    """
    from mets.queueing import queues, redis_connection
    from mets.rq_runtime import ResilientWorker, SchedulerSupervisor, run_worker

    url, prefix = app.config["REDIS_URL"], app.config["RQ_QUEUE_PREFIX"]
    stopping = threading.Event()
    scheduler = SchedulerSupervisor(url, stopping).start() if with_cron else None
    with app.app_context():
        connection = redis_connection(url)

    def make_worker():
        # SimpleWorker runs jobs in this process: no fork per job, and the database pool is reused.
        return ResilientWorker(queues(connection, prefix), connection=connection, redis_url=url, stopping=stopping)

    try:
        return run_worker(url, make_worker, burst=burst, stopping=stopping)
    finally:
        if scheduler is not None:
            scheduler.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="embedded: run each periodic job once and exit")
    parser.add_argument("--no-cron", action="store_true", help="RQ: do not start the periodic scheduler")
    parser.add_argument("--burst", action="store_true", help="RQ: exit when the queues are empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # as rq_runtime.LOG_FORMAT
    app = create_app()
    jobs.use_app(app)
    if app.config.get("REDIS_URL") and not args.once:
        return run_rq(app, with_cron=not args.no_cron, burst=args.burst)
    return run_embedded(app, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
