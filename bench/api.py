"""Benchmark: the REST API under load, served by gunicorn as the README runs it, on PostgreSQL with a million tickets.

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_api .venv/bin/python bench/api.py

The data is bench/ticket_list.py's (its `build`: the schema by migrations, 1,000,000 tickets over 20 entities),
plus one SLA rule on the agent's entity whose tickets then carry it. gunicorn (`-w 4 --threads 4 --timeout 300`,
the README's; the limiter's counts in a private redis-server, as production's REDIS_URL puts them) serves
bench/api_app.py (wsgi:app plus one bare route); wrk (Debian's `wrk`) drives 50 connections against, in one run:
the bare route (the ceiling), the agent's ticket list (`GET /api/v1/tickets`, 25 per page) and one ticket's SLA
status (`GET /api/v1/tickets/<number>/sla`), each for --duration seconds; requests a second and p95 from wrk's own
latency histogram. Then it streams the admin's CSV export of every ticket and reports the serving worker's peak RSS
(VmHWM) before and after: flat memory means the export does not grow it by the size of the data.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import select, text  # noqa: E402

from mets import clock, create_app  # noqa: E402
from mets.extensions import db  # noqa: E402
from mets.models import Entity, SlaRule, Ticket, User  # noqa: E402
from mets.services.directory import api_tokens  # noqa: E402
import ticket_list  # noqa: E402  (its builder: the same million tickets as the list's benchmark)

TARGET_MS = 100
CONNECTIONS = 50
# wrk prints what this script's `done` writes: requests, duration and the latency percentiles, in microseconds.
WRK_SCRIPT = """
wrk.headers["Authorization"] = os.getenv("BENCH_TOKEN") and ("Bearer " .. os.getenv("BENCH_TOKEN")) or nil
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d p50=%d p95=%d p99=%d\\n",
    summary.requests, summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, latency:percentile(50), latency:percentile(95),
    latency:percentile(99)))
end
"""


def prepare(url: str, count: int, reuse: bool):
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-secret"}) if reuse else \
        ticket_list.build(url, count)
    with app.app_context():
        if reuse:
            from flask_migrate import upgrade

            upgrade()  # data built by an older checkout: the schema this code expects
        s = db.session
        # Each run makes two tokens: revoke the earlier runs' (a person has at most api_tokens.MAX_TOKENS).
        s.execute(text("UPDATE api_tokens SET revoked_at = now() WHERE name LIKE 'bench %' AND revoked_at IS NULL"))
        agent = s.scalar(select(User).where(User.email == "agent@bench.example"))
        admin = s.scalar(select(User).where(User.email == "admin@bench.example"))
        home = s.scalar(select(Entity).where(Entity.slug == "e0"))
        rule = s.scalar(select(SlaRule).where(SlaRule.entity_id == home.id))
        if rule is None:
            rule = SlaRule(entity_id=home.id, name="Bench standard", response_minutes=240, resolution_minutes=2880,
                           business_hours_only=True)
            s.add(rule)
            s.flush()
            s.execute(text("UPDATE tickets SET sla_rule_id = :rule WHERE entity_id = :entity"),
                      {"rule": rule.id, "entity": home.id})
        number = s.scalar(select(Ticket.number).where(Ticket.entity_id == home.id, Ticket.status == "open")
                          .order_by(Ticket.id.desc()).limit(1))
        tokens = {"agent": api_tokens.create_token(s, agent, f"bench {time.time()}", clock.now()).token,
                  "admin": api_tokens.create_token(s, admin, f"bench {time.time()}", clock.now()).token}
        s.commit()
    return tokens, number


def wait_up(base: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/bench/bare", timeout=2).read()
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer")


def wrk(url: str, token: str | None, duration: int, script: str) -> dict:
    env = {**os.environ, "BENCH_TOKEN": token or ""}
    out = subprocess.run(["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{duration}s", "--timeout", "10s",
                          "-s", script, url], env=env, capture_output=True, text=True, timeout=duration + 60)
    match = re.search(r"RESULT (.*)", out.stdout)
    if match is None:
        raise RuntimeError(out.stdout + out.stderr)
    values = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    return {"rps": values["requests"] / (values["duration_us"] / 1e6), "p50": values["p50"] / 1000,
            "p95": values["p95"] / 1000, "p99": values["p99"] / 1000, "errors": values["errors"]}


def children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per endpoint")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn -w, as the README's unit runs it")
    parser.add_argument("--threads", type=int, default=4,
                        help="gunicorn --threads, as the README's unit runs it (1: sync workers)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reuse", action="store_true", help="keep the data a previous run built")
    parser.add_argument("--memory-limiter", action="store_true",
                        help="the rate limiter's counts in each worker's memory (no REDIS_URL) instead of Redis")
    parser.add_argument("--no-export", action="store_true", help="skip the CSV export")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_api")
    tokens, number = prepare(url, args.tickets, args.reuse)
    base = f"http://127.0.0.1:{args.port}"
    instance = tempfile.mkdtemp(prefix="mets-bench-api-")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "FLASK_APP")}
    env.update(DATABASE_URL=url, SECRET_KEY="bench-secret-" + "x" * 32, METS_INSTANCE_DIR=instance,
               API_RATE_LIMIT="10000000 per minute", PYTHONPATH=f"{ROOT}:{ROOT / 'bench'}")
    # Production sets REDIS_URL (the README), so the limiter counts in Redis: a private redis-server here, never
    # the machine's own.
    redis = None if args.memory_limiter else start_redis(instance)
    if redis is not None:
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis[1]}/0"
    # The README's unit: -w 4 --threads 4 and --timeout 300 (a million-row export streams for longer than
    # gunicorn's default 30).
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-w", str(args.workers),
                               "--threads", str(args.threads), "-b",
                               f"127.0.0.1:{args.port}", "--timeout", "300", "--log-level", "warning",
                               "api_app:app"],
                              cwd=ROOT, env=env, start_new_session=True)
    script = Path(instance) / "wrk.lua"
    script.write_text(WRK_SCRIPT)
    try:
        wait_up(base)
        for path in ("/bench/bare", "/api/v1/tickets", f"/api/v1/tickets/{number}/sla"):  # warm every worker
            wrk(base + path, tokens["agent"], 2, str(script))
        results = {
            "bare endpoint (ceiling)": wrk(base + "/bench/bare", None, args.duration, str(script)),
            "GET /api/v1/tickets (agent, 25 a page)": wrk(base + "/api/v1/tickets", tokens["agent"], args.duration,
                                                          str(script)),
            "GET /api/v1/tickets/<number>/sla": wrk(base + f"/api/v1/tickets/{number}/sla", tokens["agent"],
                                                    args.duration, str(script)),
        }
        load = os.getloadavg()
        print(f"gunicorn -w {args.workers} --threads {args.threads}, limiter in "
              f"{'memory' if redis is None else 'Redis'}, wrk -c {CONNECTIONS}, {args.duration} s each, "
              f"{args.tickets} tickets; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{'endpoint':44s} {'req/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
        for label, r in results.items():
            print(f"{label:44s} {r['rps']:8.0f} {r['p50']:8.1f} {r['p95']:8.1f} {r['p99']:8.1f} {r['errors']:7d}")
        ceiling = results["bare endpoint (ceiling)"]["rps"]
        listing = results["GET /api/v1/tickets (agent, 25 a page)"]
        sla_status = results["GET /api/v1/tickets/<number>/sla"]

        if not args.no_export:
            export(server.pid, base, tokens["admin"])
        print(f"bench api: {listing['p95']:.1f} ms p95 for the ticket list at {listing['rps']:.0f} req/s "
              f"({listing['rps'] / ceiling:.0%} of the bare endpoint's {ceiling:.0f}), SLA status "
              f"{sla_status['p95']:.1f} ms p95 at {sla_status['rps']:.0f} req/s (target < {TARGET_MS} ms)")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(timeout=30)
    return 0


def start_redis(instance: str) -> tuple[subprocess.Popen, int]:
    """A private redis-server on a spare port, and the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", instance], stdout=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("redis-server did not answer")


def export(server_pid: int, base: str, token: str) -> None:
    """Stream the admin's CSV of every ticket; the serving worker's peak RSS before and after."""
    workers = children(server_pid)
    before = {pid: memory(pid) for pid in workers}
    started = time.perf_counter()
    request = urllib.request.Request(base + "/api/v1/exports/tickets.csv?status=all",
                                     headers={"Authorization": f"Bearer {token}"})
    size = lines = 0
    with urllib.request.urlopen(request, timeout=3600) as response:
        for line in response:
            size += len(line)
            lines += 1
    elapsed = time.perf_counter() - started
    after = {pid: memory(pid) for pid in workers}
    grew = max(workers, key=lambda pid: after[pid][1] - before[pid][1])
    print(f"CSV export of every ticket (admin): {lines - 1} rows, {size / 1e6:.0f} MB in {elapsed:.1f} s; "
          f"serving worker's peak RSS {before[grew][1]} MiB before, {after[grew][1]} MiB after "
          f"(+{after[grew][1] - before[grew][1]} MiB)")


if __name__ == "__main__":
    sys.exit(main())
