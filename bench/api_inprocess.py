"""The API's cost per request in process (Flask's test client, no server, no load generator): less sensitive to a
busy machine than bench/api.py's figures, and what a change to the code moves.

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_api \
        REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/api_inprocess.py   # the limiter's store, else memory

On bench/api.py's data (run it first: it builds the million tickets). Times, one after another, N requests each of
a bare route, the agent's ticket list (25 a page) and one ticket's SLA status, after a warm-up; prints the median
and the mean ms per request (wall clock), this process's CPU per request (the app's own cost: the database's is in
its server's processes) and the statements each ran.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import event  # noqa: E402

import api  # noqa: E402  (bench/api.py: its data and tokens)
from mets import create_app  # noqa: E402
from mets.extensions import db  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300, help="requests per endpoint")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_api")
    tokens, number = api.prepare(url, 0, reuse=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-secret-" + "x" * 32,
                      "API_RATE_LIMIT": "10000000 per minute",
                      "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "memory://"})
    app.add_url_rule("/bench/bare", "bench_bare", lambda: "ok")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {tokens['agent']}"}
    statements = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a, **k: statements.append(1))
    print(f"in process, {args.n} requests each; storage {app.config['RATELIMIT_STORAGE_URI']}")
    for label, path in (("bare route", "/bench/bare"), ("GET /api/v1/tickets", "/api/v1/tickets"),
                        ("GET /api/v1/tickets/<number>/sla", f"/api/v1/tickets/{number}/sla")):
        for _ in range(20):
            assert client.get(path, headers=headers).status_code == 200
        times = []
        statements.clear()
        cpu = time.process_time()
        for _ in range(args.n):
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.data
        cpu = (time.process_time() - cpu) * 1000 / args.n
        print(f"{label:34s} median {statistics.median(times):6.2f} ms  mean {statistics.mean(times):6.2f} ms  "
              f"CPU {cpu:5.2f} ms  {len(statements) / args.n:.1f} statements")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
