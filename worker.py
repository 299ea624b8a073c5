"""Background worker: runs the periodic jobs (today the SLA tick, every minute).

    python worker.py            # until stopped
    python worker.py --once     # each periodic job once, then exit

The notifications issue moves this onto RQ workers on REDIS_URL with `rq cron` as the one
scheduler; without REDIS_URL (the embedded default) it keeps this in-process loop, which is
what `make run` starts beside the web server.
"""
import argparse
import logging
import signal
import sys
import time

from mets import create_app
from mets.extensions import db
from mets.jobs import PERIODIC

log = logging.getLogger("mets.worker")


def run(once: bool = False) -> int:
    app = create_app()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    next_run = {name: 0.0 for name in PERIODIC}
    log.info("METS worker: periodic jobs %s", ", ".join(f"{n} every {s}s" for n, (_, s) in PERIODIC.items()))
    while not stopping:
        for name, (job, every) in PERIODIC.items():
            if time.monotonic() < next_run[name]:
                continue
            next_run[name] = time.monotonic() + every
            with app.app_context():
                try:
                    log.info(job())
                except Exception:  # a failing run is logged and retried next period, never fatal
                    db.session.rollback()
                    log.exception("job %s failed", name)
                finally:
                    db.session.remove()
        if once:
            return 0
        time.sleep(1)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run each periodic job once and exit")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sys.exit(run(parser.parse_args().once))
