"""Background worker.

With REDIS_URL (production):
    python worker.py               # an RQ worker on the critical then the default queue,
                                   # plus the one periodic scheduler (rq cron) in a child process
    python worker.py --no-cron     # more workers: run as many as you like, without the scheduler
    python worker.py --burst       # work until the queues are empty, then exit
Several workers in one command: `rq worker-pool` (see the README).

Without REDIS_URL (the embedded default, what `make run` starts):
    python worker.py               # a loop: the outbox and webhooks every 2 s, the SLA tick every minute
    python worker.py --once        # each periodic job once, then exit
"""
import argparse
import logging
import multiprocessing
import signal
import sys
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


def run_cron(redis_url: str) -> None:
    """The one periodic scheduler (rq cron), loading mets.cron_config."""
    from redis import Redis
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    scheduler.load_config_from_file("mets.cron_config")
    scheduler.start()


def run_rq(app, with_cron: bool, burst: bool) -> int:
    """An RQ worker on the critical queue first, then the default one."""
    from rq.worker import SimpleWorker

    from mets.queueing import queues, redis_connection

    url, prefix = app.config["REDIS_URL"], app.config["RQ_QUEUE_PREFIX"]
    scheduler = None
    if with_cron:
        scheduler = multiprocessing.get_context("spawn").Process(target=run_cron, args=(url,), daemon=True)
        scheduler.start()
    with app.app_context():
        connection = redis_connection(url)
    # SimpleWorker runs jobs in this process: no fork per job, and the database pool is reused.
    worker = SimpleWorker(queues(connection, prefix), connection=connection)
    try:
        worker.work(burst=burst, logging_level="INFO")
    finally:
        if scheduler is not None:
            scheduler.terminate()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="embedded: run each periodic job once and exit")
    parser.add_argument("--no-cron", action="store_true", help="RQ: do not start the periodic scheduler")
    parser.add_argument("--burst", action="store_true", help="RQ: exit when the queues are empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app()
    jobs.use_app(app)
    if app.config.get("REDIS_URL") and not args.once:
        return run_rq(app, with_cron=not args.no_cron, burst=args.burst)
    return run_embedded(app, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
