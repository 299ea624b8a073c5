"""Benchmark: what writing response metrics at event time adds to ticket changes (PostgreSQL).

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_overhead python bench/metrics_overhead.py

The SLA tick writes no metric rows (its points emit sla_* events, which metrics does not hear; its `tick` event only
runs `csat.tick`, an indexed read of the surveys due), so the cost is measured where the rows are written: every
`services.tickets` change, through `metrics.subscriber.ticket_changed`. Drops and rebuilds the database's public
schema by migrations (its own database: `createdb mets_bench_overhead` first), then runs ticket lives through
`services.tickets` as the web requests do (one commit per change): a customer opens, an agent is assigned and
answers, the customer writes again, the agent answers and resolves: six changes, of which four write or complete
metric rows. Rounds alternate between metrics on and metrics muted (`transaction.muted(session, metrics.MUTED)`: the
subscriber returns at once, as the demo's history is written), so the machine's load falls on both alike; the
overhead is the median over the pairs of neighbouring rounds of (muted rate / rate with metrics) - 1, which a load
that changes during the run shifts far less than the two sides' medians. Also times `csat.tick` with nothing due
(the metrics package's share of an idle SLA tick).
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.ticket_list import fresh_app  # noqa: E402  (the schema rebuilt as every bench does)
from mets import clock, transaction  # noqa: E402
from mets.extensions import db  # noqa: E402
from mets.models import SlaRule  # noqa: E402
from mets.services import metrics, tickets  # noqa: E402
from mets.services.directory import entities, users  # noqa: E402

TARGET_PERCENT = 10
CHANGES_PER_TICKET = 6


def build(url: str):
    app = fresh_app(url)
    with app.app_context():
        s = db.session
        entity = entities.create_entity(s, {"name": "Acme", "slug": "acme", "timezone": "America/New_York"})
        s.add(SlaRule(entity_id=entity.id, name="Standard", response_minutes=240, next_reply_minutes=240,
                      resolution_minutes=24 * 60, warnings=[{"percent": 80}], business_hours_only=False))
        agent = users.create_user(s, {"email": "agent@bench.example", "name": "Agent", "kind": "staff",
                                      "password": "bench-password"})
        users.set_membership(s, agent, entity, "agent", 1, [])
        s.commit()
    return app


def life(session, entity, agent, customer) -> None:
    """One ticket's six changes, each committed as its request would."""
    ticket = tickets.create_ticket(session, actor=customer, entity=entity, customer=customer, subject="Printer",
                                   body="It jams.", via="portal").ticket
    session.commit()
    for change in (lambda: tickets.assign(session, ticket, agent, actor=agent),
                   lambda: tickets.add_reply(session, ticket, actor=agent, body="Try tray 2."),
                   lambda: tickets.add_reply(session, ticket, actor=customer, body="Still jams."),
                   lambda: tickets.add_reply(session, ticket, actor=agent, body="A technician is on the way."),
                   lambda: tickets.change_status(session, ticket, "resolved", actor=agent)):
        change()
        session.commit()


def round_rate(session, entity, agent, customers, per_round: int, muted: bool) -> float:
    """Changes per second over `per_round` ticket lives, metrics on or muted."""
    started = time.perf_counter()
    for i in range(per_round):
        customer = customers[i % len(customers)]
        if muted:
            with transaction.muted(session, metrics.MUTED):
                life(session, entity, agent, customer)
        else:
            life(session, entity, agent, customer)
    return per_round * CHANGES_PER_TICKET / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=150, help="ticket lives per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per side (alternating)")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_overhead")
    app = build(url)
    with app.app_context():
        from mets.models import Entity, MetricRollup, ResponseMetric, User  # noqa: F401
        from sqlalchemy import func, select

        s = db.session
        entity = s.scalar(select(Entity))
        agent = s.scalar(select(User).where(User.email == "agent@bench.example"))
        customers = [users.get_or_create_customer(s, f"c{i}@bench.example", f"Customer {i}") for i in range(50)]
        s.commit()
        round_rate(s, entity, agent, customers, 20, False)  # warm up: caches, prepared plans
        rates = {False: [], True: []}
        for r in range(args.rounds * 2):
            muted = bool(r % 2)
            rates[muted].append(round_rate(s, entity, agent, customers, args.tickets, muted))
        on, off = statistics.median(rates[False]), statistics.median(rates[True])
        rows = s.scalar(select(func.count()).select_from(ResponseMetric))
        print(f"metrics on:    {on:7.1f} changes/s (rounds: {', '.join(f'{x:.0f}' for x in rates[False])})")
        print(f"metrics muted: {off:7.1f} changes/s (rounds: {', '.join(f'{x:.0f}' for x in rates[True])})")
        print(f"{rows} metric rows written by the rounds with metrics on")
        print("pairs (muted / on): " + ", ".join(f"{m / w:.2f}" for w, m in zip(rates[False], rates[True])))
        samples = []
        for _ in range(15):
            started = time.perf_counter()
            metrics.csat.tick(s, clock.now())
            s.rollback()
            samples.append((time.perf_counter() - started) * 1000)
        print(f"csat.tick with nothing due: {statistics.median(samples):.2f} ms (median of 15)")
    ratios = [muted / with_metrics for with_metrics, muted in zip(rates[False], rates[True])]
    overhead = (statistics.median(ratios) - 1) * 100
    print(f"bench metrics_overhead: {overhead:.1f}% slower ticket changes with metrics at event time "
          f"(median of {len(ratios)} pairs of rounds; medians {on:.0f} vs {off:.0f} changes/s; "
          f"target < {TARGET_PERCENT}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
