"""Benchmark: the staff ticket list at scale (default one million tickets on PostgreSQL).

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench python bench/ticket_list.py

The database's public schema is dropped and rebuilt by migrations. Tickets are bulk-inserted
with generate_series (PostgreSQL) so the run takes a minute, not an hour. It times
services.ticket_search.search_tickets, which the /tickets page runs, for an agent and an admin.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from mets import create_app  # noqa: E402
from mets.extensions import db  # noqa: E402
from mets.services.directory import users  # noqa: E402
from mets.services.directory import entities
from mets.services.tickets.search import TicketFilters, search_tickets  # noqa: E402

TARGET_MS = 200
DAYS = 90


def spread(index: str = "g", count: str = ":per_entity", days: int = DAYS) -> str:
    """SQL for an instant spread evenly over the last `days` days: the `index`-th of `count` rows generated per entity
    (1..count), newest first. The ticket list's and the dashboard's builds both date their tickets with it."""
    return f"now() - ({index}::bigint * {days * 86400} / {count}) * interval '1 second'"


def fresh_app(url: str):
    """The app on `url` with its public schema dropped and rebuilt by the migrations (every bench's first step)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-secret"})  # a server database needs one
    with app.app_context():
        upgrade()
    return app


def build(url: str, count: int):
    app = fresh_app(url)
    with app.app_context():
        s = db.session
        ents = [entities.create_entity(s, {"name": f"Entity {i}", "slug": f"e{i}", "timezone": "UTC"})
                for i in range(20)]
        agent = users.create_user(s, {"email": "agent@bench.example", "name": "Agent", "kind": "staff",
                                      "password": "bench-password"})
        users.set_membership(s, agent, ents[0], "agent", 1, [])
        users.create_user(s, {"email": "admin@bench.example", "name": "Admin", "kind": "staff",
                                      "password": "bench-password", "is_admin": True})
        users.get_or_create_customer(s, "customer@bench.example", "Customer")
        # 1,000 more customers, 20 first names x 50 last names: "Kemi" is 1 in 20, "Kemi Okafor" 1 in 1,000.
        s.execute(text("""
            INSERT INTO users (email, name, kind, is_admin, active, created_at, session_token)
            SELECT 'c' || g || '@' || (ARRAY['lagos','leeds','lyon','lima'])[1 + g % 4] || '.example',
                   (ARRAY['Kemi','Ade','Bola','Chen','Dara','Eli','Femi','Gus','Hana','Ivo','Jo','Kai','Lea',
                          'Mo','Nia','Oli','Pia','Raj','Sol','Tam'])[1 + g % 20] || ' ' ||
                   CASE WHEN g / 20 = 0 THEN 'Okafor' ELSE 'Surname' || (g / 20) END,
                   'customer', false, true, now(), md5(g::text)
            FROM generate_series(0, 999) AS g
        """))
        s.commit()
        first_customer = s.scalar(text("SELECT min(id) FROM users WHERE email LIKE 'c%@l%.example'"))
        started = time.perf_counter()
        # Bulk load as an existing install has it: the search triggers off, the migration's backfill after.
        s.execute(text("ALTER TABLE tickets DISABLE TRIGGER tickets_search"))
        s.execute(text("ALTER TABLE replies DISABLE TRIGGER replies_search"))
        # Spread tickets over 20 entities, 6 statuses, 4 priorities, a third unassigned, 90 days.
        s.execute(text("""
            INSERT INTO tickets (entity_id, seq, number, subject, body, status, priority, category,
                                 customer_id, assignee_id, created_at, updated_at)
            SELECT e.id, 1000 + g, upper(e.slug) || '-' || (1000 + g),
                   'Ticket ' || g || CASE WHEN g % 97 = 0 THEN ' refund request' ELSE ' printer issue' END,
                   (ARRAY['The invoice shows the wrong VAT rate.', 'My laptop will not boot after the update.',
                          'Please reset my password.', 'The printer on floor 3 jams.', 'VPN drops every hour.',
                          'Where is my refund?', 'Cannot open the shared drive.', 'Email is slow to arrive.'])
                          [1 + (g / 7) % 8],
                   (ARRAY['new','open','pending','on_hold','resolved','closed'])[1 + g % 6],
                   (ARRAY['low','normal','high','urgent'])[1 + g % 4], 'general', :first + g % 1000,
                   CASE WHEN g % 3 = 0 THEN NULL ELSE :agent END,
                   {at}, {at}
            FROM generate_series(1, :per_entity) AS g CROSS JOIN entities e
        """.format(at=spread())), {"first": first_customer, "agent": agent.id, "per_entity": count // 20})
        # One reply on every fifth ticket; a rare word ("quokka") in one reply of 10,000.
        s.execute(text("""
            INSERT INTO replies (ticket_id, author_id, body, body_format, internal, via, created_at)
            SELECT t.id, :agent, CASE WHEN t.id % 10000 = 0 THEN 'The quokka firmware needs a rollback.'
                                      ELSE 'Thanks, we are looking into it and will update you today.' END,
                   'text', t.id % 2 = 0, 'agent', t.created_at FROM tickets t WHERE t.id % 5 = 0
        """), {"agent": agent.id})
        s.commit()
        loaded = time.perf_counter()
        s.execute(text("UPDATE tickets SET search_vector = mets_ticket_vector(id, subject, body, customer_id)"))
        s.execute(text("ALTER TABLE tickets ENABLE TRIGGER tickets_search"))
        s.execute(text("ALTER TABLE replies ENABLE TRIGGER replies_search"))
        s.commit()
        print(f"search index backfill (migration 0010's UPDATE): {time.perf_counter() - loaded:.1f}s")
    with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
        # Steady state, as autovacuum leaves a busy table: visibility map set, statistics fresh.
        for table in ("tickets", "replies", "users"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    print(f"inserted and vacuumed {count} tickets in {time.perf_counter() - started:.1f}s")
    return app


def timed(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reuse", action="store_true", help="time the data a previous run built (--tickets as then)")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mets_bench")
    if args.reuse:  # a server database needs a SECRET_KEY, as build's app has
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-secret"})
    else:
        app = build(url, args.tickets)
    with app.app_context():
        from mets.models import User
        from sqlalchemy import select

        agent = db.session.scalar(select(User).where(User.email == "agent@bench.example"))
        admin = db.session.scalar(select(User).where(User.email == "admin@bench.example"))
        cases = {
            "agent, default view (active, by updated)": (agent, {}),
            "agent, search 'refund'": (agent, {"q": "refund", "status": "all"}),
            "agent, unassigned, sort by priority": (agent, {"assignee": "unassigned", "sort": "priority"}),
            "admin, all entities, page 200": (admin, {"status": "all", "page": "200"}),
            "admin, search a ticket number": (admin, {"q": "E7-1500", "status": "all"}),
            "agent, search a customer's name 'Kemi Okafor'": (agent, {"q": "Kemi Okafor", "status": "all"}),
            "agent, search 'Kemi' (1 in 20 tickets)": (agent, {"q": "Kemi", "status": "all"}),
            "agent, two words any order 'vat invoice'": (agent, {"q": "vat invoice", "status": "all"}),
            "admin, a rare word of a reply 'quokka'": (admin, {"q": "quokka", "status": "all"}),
            "admin, 'vat invoice', active": (admin, {"q": "vat invoice"}),
            "admin, 'vat invoice', active, page 40 (the cap's last)": (admin, {"q": "vat invoice", "page": "40"}),
            "admin, 'vat invoice', active, by priority": (admin, {"q": "vat invoice", "sort": "priority"}),
            "admin, 'printer' (in every subject)": (admin, {"q": "printer", "status": "all"}),
        }
        worst = 0.0
        for label, (user, args_) in cases.items():
            ms = timed(lambda: search_tickets(db.session, user, TicketFilters.from_args(args_)), args.runs)
            worst = max(worst, ms)
            print(f"{label:56s} {ms:8.1f} ms (median of {args.runs})")
    print(f"bench ticket_list: {worst:.0f} ms worst median at {args.tickets} tickets (target <= {TARGET_MS} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
