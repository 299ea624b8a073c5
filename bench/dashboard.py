"""Benchmark: the KPI dashboard's server-side work at scale (PostgreSQL, 1,000,000 tickets, 3,000,000 metric rows).

    createdb -h 127.0.0.1 -U postgres mets_bench_dash
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_dash python bench/dashboard.py

The database's public schema is dropped and rebuilt by migrations; tickets and response_metrics rows are
bulk-inserted with generate_series, then VACUUM ANALYZE, and the days before today rolled up with their histograms
(`rollups.roll_up`, as `flask mets metrics-rollup --since` and the hourly job leave them; `--reuse` rolls them up
again). It times everything `GET /metrics/` computes (the route's
own service calls: every table, the charts, the filter choices) for a manager of one entity and for an admin (all
entities), 90 days by day, median of --runs; beside each, the floor: the same aggregates as bare SQL in the same
run: the page's own aggregates (rollups for the days rolled up, raw rows for today), and the exact aggregates over the
raw rows alone (percentile_cont: what the page read before the rollups had histograms). `--reuse` times a database
a previous run built.
"""
import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select, text  # noqa: E402

from bench.ticket_list import DAYS, fresh_app, spread, timed  # noqa: E402  (the dates and the timing ticket_list uses)
from mets import clock, create_app  # noqa: E402
from mets.extensions import db  # noqa: E402
from mets.services.directory import entities, users  # noqa: E402
from mets.services.metrics import charts, dashboard, rollups, tables  # noqa: E402

TARGET_MS = 300


def build(url: str, count: int, metrics: int):
    app = fresh_app(url)
    with app.app_context():
        s = db.session
        ents = [entities.create_entity(s, {"name": f"Entity {i}", "slug": f"e{i}", "timezone": "UTC"})
                for i in range(20)]
        manager = users.create_user(s, {"email": "manager@bench.example", "name": "Manager", "kind": "staff",
                                        "password": "bench-password"})
        users.set_membership(s, manager, ents[0], "manager", 1, [])
        users.create_user(s, {"email": "admin@bench.example", "name": "Admin", "kind": "staff",
                              "password": "bench-password", "is_admin": True})
        agents = []
        for i in range(60):  # three agents per entity
            agent = users.create_user(s, {"email": f"agent{i}@bench.example", "name": f"Agent {i:02d}",
                                          "kind": "staff", "password": "bench-password"})
            users.set_membership(s, agent, ents[i % 20], "agent", 1, [])
            agents.append(agent.id)
        customer = users.get_or_create_customer(s, "customer@bench.example", "Customer")
        s.commit()
        started = time.perf_counter()
        s.execute(text("ALTER TABLE tickets DISABLE TRIGGER tickets_search"))
        # 20 entities, 6 statuses, 4 priorities, a third unassigned, created evenly over 90 days; the resolved and
        # closed ones resolved up to 3 days after creation, the open ones with an SLA due around now.
        s.execute(text("""
            INSERT INTO tickets (entity_id, seq, number, subject, body, status, priority, category,
                                 customer_id, assignee_id, created_at, updated_at, resolved_at, sla_nearest_due,
                                 sla_response_breached, sla_next_reply_breached, sla_resolution_breached,
                                 sla_next_reply_cycle, sla_extension_minutes, sla_rule_pinned, escalation_level,
                                 body_format)
            SELECT e.id, 1000 + g, upper(e.slug) || '-' || (1000 + g), 'Ticket ' || g, 'Body', st.status,
                   (ARRAY['low','normal','high','urgent'])[1 + g % 4], 'general', :customer,
                   CASE WHEN g % 3 = 0 THEN NULL ELSE (:agents)[1 + (e.id * 3 + g % 3) % 60] END,
                   c.at, c.at,
                   CASE WHEN st.status IN ('resolved','closed')
                        THEN least(now(), c.at + (g % 4320) * interval '1 minute') END,
                   CASE WHEN st.status NOT IN ('resolved','closed')
                        THEN now() + ((g % 1440) - 720) * interval '1 minute' END,
                   false, false, false, 0, 0, false, 0, 'text'
            FROM generate_series(1, :per_entity) AS g CROSS JOIN entities e
            CROSS JOIN LATERAL (SELECT {at} AS at) c
            CROSS JOIN LATERAL (SELECT (ARRAY['new','open','pending','on_hold','resolved','closed'])[1 + g % 6]
                                AS status) st
        """.format(at=spread())), {"customer": customer.id, "agents": agents, "per_entity": count // 20})
        s.execute(text("ALTER TABLE tickets ENABLE TRIGGER tickets_search"))
        # Three rows per ticket: first response, one later response (every other ticket) or first resolution,
        # and full resolution; completed except the full resolution of open tickets.
        per_ticket = max(1, metrics // count)
        s.execute(text("""
            INSERT INTO response_metrics (ticket_id, metric_type, seq, start_at, end_at, duration_minutes,
                                          business_minutes, sla_target_minutes, within_sla, entity_id, agent_id,
                                          priority, reopens, recorded_at)
            SELECT t.id, k.kind, 1, t.created_at, e.end_at, m.minutes, m.minutes * 0.4,
                   CASE WHEN t.id % 10 = 0 THEN NULL ELSE 480 END,
                   CASE WHEN t.id % 10 = 0 THEN NULL ELSE m.minutes <= 480 END,
                   t.entity_id, CASE WHEN k.kind = 'full_resolution' THEN t.assignee_id
                                     ELSE (:agents)[1 + (t.entity_id * 3 + t.id % 3) % 60] END,
                   t.priority, 0, t.created_at
            FROM tickets t
            CROSS JOIN LATERAL (SELECT n, CASE n WHEN 1 THEN 'first_response' WHEN 3 THEN 'full_resolution'
                                        ELSE CASE WHEN t.id % 2 = 0 THEN 'response' ELSE 'first_resolution' END
                                        END AS kind FROM generate_series(1, :per_ticket) AS n) k
            CROSS JOIN LATERAL (SELECT CASE WHEN k.kind = 'first_response' THEN 5 + (t.id * 7 % 600)
                                            WHEN k.kind = 'response' THEN 10 + (t.id * 11 % 900)
                                            ELSE 30 + (t.id * 13 % 4320) END::float AS minutes) m
            CROSS JOIN LATERAL (SELECT CASE WHEN k.kind IN ('full_resolution', 'first_resolution')
                                                 AND t.status NOT IN ('resolved', 'closed') THEN NULL
                                            WHEN k.kind IN ('full_resolution', 'first_resolution') THEN t.resolved_at
                                            ELSE least(now(), t.created_at + m.minutes * interval '1 minute')
                                       END AS end_at) e
        """), {"agents": agents, "per_ticket": per_ticket})
        s.commit()
    with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
        for table in ("tickets", "response_metrics", "users", "memberships"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
        rows = conn.execute(text("SELECT count(*) FROM response_metrics")).scalar()
    print(f"inserted {count} tickets and {rows} metric rows, vacuumed, in {time.perf_counter() - started:.1f}s")
    return app


def roll_up(app, url: str) -> None:
    """Roll up the 90 days and today (what the backfill command and the hourly job leave), and vacuum the rollups."""
    with app.app_context():
        today = clock.now().date()
        started = time.perf_counter()
        written = rollups.roll_up(db.session, today - timedelta(days=DAYS), today + timedelta(days=1))
        db.session.commit()
        print(f"rolled up {DAYS + 1} days: {written} rollup rows with histograms "
              f"in {time.perf_counter() - started:.1f}s")
    # Each rollup row is written once (rollups._Row); the rows a --reuse run replaces are dead until this VACUUM, then
    # reused by the next run, as autovacuum does for the hourly job's three days.
    tables_ = ("metric_rollups", "metric_entity_rollups", "metric_agent_rollups", "ticket_rollups")
    with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
        for table in tables_:
            conn.execute(text(f"VACUUM ANALYZE {table}"))
        size = "SELECT pg_size_pretty(sum(pg_total_relation_size(t))) FROM unnest(CAST(:t AS regclass[])) AS t"
        print(f"rollup tables with their indexes: {conn.execute(text(size), {'t': list(tables_)}).scalar()}, "
              f"{conn.execute(text('SELECT count(*) FROM metric_rollups')).scalar()} + "
              f"{conn.execute(text('SELECT count(*) FROM metric_agent_rollups')).scalar()} + "
              f"{conn.execute(text('SELECT count(*) FROM metric_entity_rollups')).scalar()} rows")


def page(session, user, args):
    """What `blueprints.metrics.index` computes for `user` with the query string `args`."""
    allowed = dashboard.dashboard_scope(session, user)
    filters = dashboard.Filters.from_args(args, clock.now().date())
    scope = dashboard.scope_for(session, allowed, filters)
    now = clock.now()
    shown = tables.dashboard_tables(session, user, scope, now)
    charts.dashboard_charts(shown, filters.measure)
    dashboard.entities_for(session, allowed)
    dashboard.agents_for(session, allowed)
    return shown


# The same aggregates as the page reads them now (migration 0026): the rolled-up days [d0, today) from the coarse
# levels (sums; the histograms as the running ones before today minus those before d0, merged with unnest), today
# from the raw rows; the tickets from ticket_rollups (created before today, no ticket changed since) and today's raw;
# the clocks due from the tickets.
R = "day >= :d0 AND day < :today {e}"
RAW_TODAY = "end_at IS NOT NULL AND end_at >= :today_at AND end_at < :until {e}"
KINDS = "metric_type IN ('first_response','response','full_resolution')"
TICKETS_TODAY = "created_at >= :today_at {e}"


def _running(table, keys, measure, kinds, group):
    """The running histograms of `table` before :d0 (sign -1) and before :today (1), merged per `group`."""
    on = " AND ".join(f"r.{k} IS NOT DISTINCT FROM l.{k}" for k in keys.split(", "))
    return " UNION ALL ".join(f"""SELECT r.{group}, h.bin, {sign} * sum(h.n) FROM {table} r
        JOIN (SELECT {keys}, max(day) AS day FROM {table} WHERE day < :{bound} AND {kinds} {{e}} GROUP BY {keys}) l
        ON r.day = l.day AND {on}, unnest(r.{measure}_run_bins, r.{measure}_run_counts) AS h(bin, n) GROUP BY 1, 2"""
                              for bound, sign in (("today", 1), ("d0", -1)))


FLOOR = [
    # summary: one pass over the entity level, today's compliance, then per measure the running bins and today's values
    f"""SELECT metric_type, sum(within_sla), sum(breached), sum(business_count), sum(business_minutes),
              sum(duration_count), sum(duration_minutes) FROM metric_entity_rollups WHERE {R} AND {KINDS} GROUP BY 1""",
    f"""SELECT metric_type, within_sla, count(*) FROM response_metrics WHERE {RAW_TODAY} AND {KINDS}
        AND within_sla IS NOT NULL GROUP BY 1, 2""",
    *[_running("metric_entity_rollups", "entity_id, metric_type", m, KINDS, "metric_type")
      for m in ("business", "duration")],
    *[f"""SELECT metric_type, {m}_minutes, count(*) FROM response_metrics WHERE {RAW_TODAY} AND {KINDS}
          AND {m}_minutes IS NOT NULL GROUP BY 1, 2""" for m in ("business", "duration")],
    # volume and backlog trend: the tickets changed since the roll-up, created and resolved per day (rollups and
    # today), the full resolutions per day (entity level and today)
    "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM tickets WHERE updated_at >= :mark "
    "AND created_at < :today_at",
    "SELECT created_day, sum(count) FROM ticket_rollups WHERE created_day >= :d0 AND created_day < :today {e} "
    "GROUP BY 1",
    "SELECT resolved_day, sum(count) FROM ticket_rollups WHERE status IN ('resolved','closed') "
    "AND resolved_day >= :d0 AND created_day < :today {e} GROUP BY 1",
    f"""SELECT date_trunc('day', created_at AT TIME ZONE 'UTC')::date, count(*) FROM tickets
        WHERE {TICKETS_TODAY} GROUP BY 1""",
    f"""SELECT date_trunc('day', resolved_at AT TIME ZONE 'UTC')::date, count(*) FROM tickets
        WHERE {TICKETS_TODAY} AND status IN ('resolved','closed') AND resolved_at >= :since GROUP BY 1""",
    f"""SELECT day, sum(count) FROM metric_entity_rollups WHERE {R} AND metric_type = 'full_resolution' GROUP BY 1""",
    f"""SELECT date_trunc('day', end_at AT TIME ZONE 'UTC')::date, count(*) FROM response_metrics
        WHERE {RAW_TODAY} AND metric_type = 'full_resolution' GROUP BY 1""",
    # backlog and workload: the open tickets per status and assignee with their clocks due (rollups by the mark, and
    # today), the clocks of the rolled-up tickets that fell due since the mark or fall due within 4 hours
    "SELECT status, assignee_id, sum(count), min(oldest), sum(due_by_mark) FROM ticket_rollups "
    "WHERE created_day < :today AND status NOT IN ('resolved','closed') {e} GROUP BY 1, 2",
    f"""SELECT status, assignee_id, count(*), min(created_at), sum(CASE WHEN sla_nearest_due <= :mark THEN 1 ELSE 0 END)
        FROM tickets WHERE {TICKETS_TODAY} AND status NOT IN ('resolved','closed') GROUP BY 1, 2""",
    """SELECT assignee_id, sum(CASE WHEN sla_nearest_due > now() THEN 1 ELSE 0 END),
              sum(CASE WHEN sla_nearest_due <= now() THEN 1 ELSE 0 END)
       FROM tickets WHERE sla_nearest_due > :mark AND sla_nearest_due <= now() + interval '4 hours'
       AND status NOT IN ('resolved','closed') {e} GROUP BY 1""",
    # per agent: first response and full resolution, business minutes, from the agent level and today
    *[q for k in ("first_response", "full_resolution") for q in (
        f"""SELECT agent_id, sum(within_sla), sum(breached), sum(business_count), sum(business_minutes)
            FROM metric_agent_rollups WHERE {R} AND metric_type = '{k}' GROUP BY 1""",
        f"""SELECT agent_id, within_sla, count(*) FROM response_metrics WHERE {RAW_TODAY} AND metric_type = '{k}'
            AND within_sla IS NOT NULL GROUP BY 1, 2""",
        _running("metric_agent_rollups", "entity_id, metric_type, agent_id", "business", f"metric_type = '{k}'",
                 "agent_id"),
        f"""SELECT agent_id, business_minutes, count(*) FROM response_metrics WHERE {RAW_TODAY}
            AND metric_type = '{k}' AND business_minutes IS NOT NULL GROUP BY 1, 2""")],
]

# The exact aggregates over the raw rows alone (percentile_cont over every value): the floor before the histograms.
FLOOR_EXACT = [
    # summary: compliance counts, and one grouped distribution per measure
    """SELECT metric_type, within_sla, count(*) FROM response_metrics WHERE {rm} AND within_sla IS NOT NULL
       AND metric_type IN ('first_response','response','full_resolution') GROUP BY 1, 2""",
    *["""SELECT metric_type, count({m}), percentile_cont(0.5) WITHIN GROUP (ORDER BY {m}),
                percentile_cont(0.9) WITHIN GROUP (ORDER BY {m}), avg({m}) FROM response_metrics
         WHERE {rm} AND {m} IS NOT NULL AND metric_type IN ('first_response','response','full_resolution')
         GROUP BY 1""".replace("{m}", m) for m in ("business_minutes", "duration_minutes")],
    # volume
    """SELECT date_trunc('day', created_at AT TIME ZONE 'UTC')::date, count(*) FROM tickets
       WHERE created_at >= :since AND created_at < :until {t} GROUP BY 1""",
    """SELECT date_trunc('day', end_at AT TIME ZONE 'UTC')::date, count(*) FROM response_metrics
       WHERE metric_type = 'full_resolution' AND end_at >= :since AND end_at < :until {e} GROUP BY 1""",
    # backlog trend
    """SELECT count(*) FROM tickets WHERE created_at < :since
       AND (status NOT IN ('resolved','closed') OR resolved_at >= :since) {t}""",
    """SELECT date_trunc('day', created_at AT TIME ZONE 'UTC')::date, count(*) FROM tickets
       WHERE created_at >= :since AND created_at < :until {t} GROUP BY 1""",
    """SELECT date_trunc('day', resolved_at AT TIME ZONE 'UTC')::date, count(*) FROM tickets
       WHERE status IN ('resolved','closed') AND resolved_at >= :since AND resolved_at < :until {t} GROUP BY 1""",
    # backlog, workload
    """SELECT status, count(*), min(created_at) FROM tickets WHERE status NOT IN ('resolved','closed') {t}
       GROUP BY 1""",
    """SELECT assignee_id, u.name, count(*), sum(CASE WHEN sla_nearest_due > now()
              AND sla_nearest_due <= now() + interval '4 hours' THEN 1 ELSE 0 END),
              sum(CASE WHEN sla_nearest_due <= now() THEN 1 ELSE 0 END)
       FROM tickets LEFT JOIN users u ON u.id = assignee_id WHERE status NOT IN ('resolved','closed') {t}
       GROUP BY 1, 2""",
    # per agent: first response and full resolution, times and compliance
    *["""SELECT agent_id, count(business_minutes), percentile_cont(0.5) WITHIN GROUP (ORDER BY business_minutes),
                percentile_cont(0.9) WITHIN GROUP (ORDER BY business_minutes), avg(business_minutes)
         FROM response_metrics WHERE {rm} AND metric_type = '%s' AND business_minutes IS NOT NULL GROUP BY 1""" % k
      for k in ("first_response", "full_resolution")],
    *["""SELECT agent_id, within_sla, count(*) FROM response_metrics WHERE {rm} AND metric_type = '%s'
         AND within_sla IS NOT NULL GROUP BY 1, 2""" % k for k in ("first_response", "full_resolution")],
]


def floor(session, entity_id, since, until, today):
    """The page's aggregates as bare SQL (no scope lookups, no Python around them)."""
    only = "" if entity_id is None else f" AND entity_id = {int(entity_id)}"
    params = {"since": since, "until": until, "d0": since.date(), "today": today,
              "today_at": dashboard._instant(today), "mark": rollups.tickets_rolled_up(session)[1]}
    for sql in FLOOR:
        session.execute(text(sql.replace("{e}", only)), params).all()


def floor_exact(session, entity_id, since, until):
    """The exact aggregates over the raw rows as bare SQL: what the page read before the rollups had histograms."""
    only = "" if entity_id is None else f" AND entity_id = {int(entity_id)}"
    rm = "end_at IS NOT NULL AND end_at >= :since AND end_at < :until" + only
    for sql in FLOOR_EXACT:
        session.execute(text(sql.replace("{rm}", rm).replace("{t}", only).replace("{e}", only)),
                        {"since": since, "until": until}).all()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--metrics", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="time the data a previous run built")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench_dash")
    if args.reuse:  # brought up to the newest migration (its indexes), then vacuumed as a steady state has it
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-secret"})
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
        with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
            for table in ("tickets", "response_metrics"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
    else:
        app = build(url, args.tickets, args.metrics)
    roll_up(app, url)
    with app.app_context():
        from mets.models import Entity, User

        s = db.session
        manager = s.scalar(select(User).where(User.email == "manager@bench.example"))
        admin = s.scalar(select(User).where(User.email == "admin@bench.example"))
        first = s.scalar(select(Entity.id).where(Entity.slug == "e0"))
        today = clock.now().date()
        since = today - timedelta(days=DAYS - 1)
        query = {"from": since.isoformat(), "to": today.isoformat(), "period": "day"}
        span = (dashboard._instant(since), dashboard._instant(today + timedelta(days=1)))
        cases = {"manager of one entity": (manager, first), "admin, all entities": (admin, None)}
        worst = 0.0
        for label, (user, entity_id) in cases.items():
            ms = timed(lambda: page(s, user, query), args.runs)
            floor_ms = timed(lambda: floor(s, entity_id, *span, today), args.runs)
            exact_ms = timed(lambda: floor_exact(s, entity_id, *span), args.runs)
            worst = max(worst, ms)
            print(f"{label:28s} dashboard {ms:8.1f} ms   floor (bare SQL) {floor_ms:8.1f} ms   "
                  f"exact raw floor {exact_ms:8.1f} ms (median of {args.runs}, {DAYS} days)")
            s.rollback()
    print(f"bench dashboard: {worst:.0f} ms slower case, {DAYS} days at {args.tickets} tickets "
          f"(target < {TARGET_MS} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
