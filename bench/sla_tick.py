"""Benchmark: the SLA tick on PostgreSQL with one million open tickets.

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench python bench/sla_tick.py

Drops and rebuilds the database's public schema by migrations, bulk-loads open tickets with
generate_series (their next SLA check spread over the coming week, from an hour on: the load itself takes
minutes at a million), then measures:
  1. a tick with nothing due (target: under 50 ms),
  2. a tick with 10,000 tickets newly due (target: at least 2,000 tickets a second),
  3. peak Python memory of ticks with 2,000 and 10,000 tickets due (flat: it streams in batches).

With --policies an escalation policy is in place (the entity's own, watching the first response: level 1 at
75% mails the entity's manager, level 2 at the breach raises the priority), every ticket has its next level in
`escalation_due_at` (indexed, in the coming week), and the tickets made due have level 1 due as well: the
tick then fires the SLA points and, through its `tick` event, the levels and the held-notice sender.
"""
import argparse
import contextlib
import os
import statistics
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.ticket_list import fresh_app  # noqa: E402  (the schema rebuilt as every bench does)
from mets import clock, transaction  # noqa: E402
from mets.extensions import db  # noqa: E402
from mets.models import SlaRule  # noqa: E402
from mets.services.directory import users  # noqa: E402
from mets.services import escalation, metrics  # noqa: E402
from mets.services.directory import entities  # noqa: E402
from mets.services.sla import tick as sla_tick  # noqa: E402


def build(url: str, count: int, policies: bool = False):
    app = fresh_app(url)
    with app.app_context():
        s = db.session
        entity = entities.create_entity(s, {"name": "Acme", "slug": "acme", "timezone": "America/New_York"})
        customer = users.get_or_create_customer(s, "customer@bench.example", "Customer")
        # 24/7 so the points below are due whatever the hour the benchmark runs at.
        rule = SlaRule(entity_id=entity.id, name="Standard", response_minutes=240, resolution_minutes=24 * 60,
                       warnings=[{"percent": 80}], business_hours_only=False)
        s.add(rule)
        s.commit()
        if policies:
            manager = users.create_user(s, {"email": "lead@bench.example", "name": "Lee Lead", "kind": "staff",
                                            "password": "bench-password-1"})
            users.set_membership(s, manager, entity, "manager", 1, [])
            escalation.create_policy(s, entity, name="At risk", clock="response", business_time=False, levels=[
                {"trigger": "percent", "value": 75, "actions": [{"type": "notify", "to": ["managers"]}]},
                {"trigger": "percent", "value": 100, "actions": [{"type": "raise_priority"}]}])
            s.commit()
        started = time.perf_counter()
        s.execute(text("""
            INSERT INTO tickets (entity_id, seq, number, subject, body, status, priority, customer_id,
                                 created_at, updated_at, sla_rule_id, sla_response_due, sla_resolution_due,
                                 sla_next_check_at, sla_nearest_due, escalation_due_at)
            SELECT :entity, 1000 + g, 'ACME-' || (1000 + g), 'Ticket ' || g, 'Body', 'open', 'normal', :customer,
                   now(), now(), :rule, now() + interval '4 hours', now() + interval '3 days',
                   now() + interval '1 hour' + (g % 10000) * interval '1 minute', now() + interval '4 hours',
                   CASE WHEN :policies THEN now() + interval '1 hour' + (g % 10000) * interval '1 minute' END
            FROM generate_series(1, :count) AS g
        """), {"entity": entity.id, "customer": customer.id, "rule": rule.id, "count": count, "policies": policies})
        s.commit()
    with create_engine(url).connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE tickets"))
    print(f"loaded {count} open tickets in {time.perf_counter() - started:.1f}s")
    return app


def make_due(n: int, offset: int, age: str, policies: bool = False) -> None:
    """Turn n tickets into ones opened `age` ago whose check time has just passed.

    200 minutes: only the response warning (80% of 4h) has come due, one point per ticket, as
    in steady state (with policies: and level 1, 75% of the response target). 3 days: a backlog
    after an outage, four points per ticket (and both levels).
    """
    db.session.execute(text("""
        UPDATE tickets SET created_at = now() - CAST(:age AS interval), sla_next_check_at = now() - interval '1 minute',
                           escalation_due_at = CASE WHEN :policies THEN now() - interval '1 minute' END
        WHERE id IN (SELECT id FROM tickets ORDER BY id OFFSET :offset LIMIT :n)
    """), {"n": n, "offset": offset, "age": age, "policies": policies})
    db.session.commit()


def _levels_fired() -> int:
    return db.session.scalar(text("SELECT count(*) FROM escalation_events"))


def timed_tick(label: str):
    before = _levels_fired()
    started = time.perf_counter()
    result = sla_tick.tick(db.session, now=clock.now() + timedelta(seconds=1))
    elapsed = time.perf_counter() - started
    rate = result.tickets / elapsed
    levels = _levels_fired() - before
    print(f"{label}: {result.tickets} tickets in {elapsed:.2f}s, {rate:.0f} tickets/s, "
          f"{len(result.fired)} points fired" + (f", {levels} escalation levels fired" if levels else ""))
    return rate


@contextlib.contextmanager
def _metrics_off():
    """The metrics package out of the tick: its change subscribers muted (`metrics.MUTED`, the demo's switch) and the
    survey sender (`csat.tick`, on the `tick` event) replaced by nothing for the block."""
    sender = metrics.csat.tick
    metrics.csat.tick = lambda session, now=None, batch_size=200: []
    try:
        with transaction.muted(db.session, metrics.MUTED):
            yield
    finally:
        metrics.csat.tick = sender


def metrics_overhead(args, first_rate: float) -> None:
    """What the metrics package adds to the tick's rate: pairs of newly due ticks (fresh tickets each time), one with
    metrics off (`_metrics_off`) and one not, in alternating order; the median over the pairs of
    (rate off / rate on) - 1."""
    ratios, offset = [], args.due
    for i in range(args.metrics_pairs):
        rates = {}
        for muted in ((True, False) if i % 2 == 0 else (False, True)):
            make_due(args.due, offset, "200 minutes", args.policies)
            offset += args.due
            with _metrics_off() if muted else contextlib.nullcontext():
                rates[muted] = timed_tick(f"newly due, metrics {'muted' if muted else 'on'}")
        ratios.append(rates[True] / rates[False])
    overhead = (statistics.median(ratios) - 1) * 100
    print(f"bench sla_tick metrics: {overhead:+.1f}% tick rate lost to metrics at event time (median of "
          f"{len(ratios)} pairs: {', '.join(f'{r:.2f}' for r in ratios)}; first tick {first_rate:.0f}/s; "
          f"target < 10%)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--policies", action="store_true", help="with an escalation policy and levels due")
    parser.add_argument("--newly-due-only", action="store_true",
                        help="measure the idle tick and the newly due tick only (no backlog or memory runs)")
    parser.add_argument("--metrics-pairs", type=int, default=0,
                        help="then N pairs of newly due ticks with the metrics package muted and not (issue 14)")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench")
    app = build(url, args.tickets, args.policies)
    with app.app_context():
        idle = []
        for _ in range(15):
            started = time.perf_counter()
            result = sla_tick.tick(db.session, now=clock.now())
            idle.append((time.perf_counter() - started) * 1000)
            assert result.tickets == 0
        idle_ms = statistics.median(idle)
        print(f"tick with nothing due: {idle_ms:.1f} ms (median of 15; target < 50 ms)")

        make_due(args.due, 0, "200 minutes", args.policies)
        rate = timed_tick("newly due (one point each)" + (" and level 1" if args.policies else ""))
        if args.metrics_pairs:
            metrics_overhead(args, rate)
        if args.newly_due_only:
            print(f"bench sla_tick: {rate:.0f} tickets/s with {args.due} due among {args.tickets}"
                  f"{' with escalation policies' if args.policies else ''} "
                  f"(target >= 2000 tickets/s; idle tick {idle_ms:.1f} ms, target < 50 ms)")
            return 0
        make_due(args.due, args.due, "3 days", args.policies)
        timed_tick("backlog after an outage (four points each)")
        # Memory on separate runs (tracemalloc slows the code it watches).
        for n, offset in ((2_000, 2 * args.due), (args.due, 2 * args.due + 2_000)):
            make_due(n, offset, "200 minutes", args.policies)
            tracemalloc.start()
            result = sla_tick.tick(db.session, now=clock.now() + timedelta(seconds=1))
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(f"peak Python memory of a tick with {result.tickets} due: {peak:.1f} MiB")
    mode = " with escalation policies" if args.policies else ""
    print(f"bench sla_tick: {rate:.0f} tickets/s with {args.due} due among {args.tickets}{mode} "
          f"(target >= 2000 tickets/s; idle tick {idle_ms:.1f} ms, target < 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
