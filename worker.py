"""Background worker entry point.

For now METS has no background jobs: the foundation sends its one email (the portal sign-in
link) directly. The notifications issue turns this into RQ workers on REDIS_URL plus the
periodic scheduler (SLA tick, outbox sweep), or an in-process loop without Redis.
"""
import os
import sys


def main() -> int:
    redis_url = os.environ.get("REDIS_URL")
    mode = f"RQ workers on {redis_url}" if redis_url else "an in-process job loop (no REDIS_URL)"
    print(f"METS worker: nothing to run yet. Once mail and SLA jobs exist this will start {mode}.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
