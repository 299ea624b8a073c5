"""Primary keys taken ahead of a bulk insert (PostgreSQL): one query for a whole batch's ids.

A batch whose ids are known goes out as one executemany of a small INSERT, which psycopg pipelines. Without them,
SQLAlchemy learns the ids by INSERT ... VALUES (...), (...) ... RETURNING id ("insertmanyvalues", for the ORM and
for Core alike): pages of thousands of placeholders that psycopg re-parses on every page and PostgreSQL plans anew,
about four times slower a row (the SLA and escalation ticks write thousands of audit rows and mails a run).
"""
from sqlalchemy import inspect, text


def take(session, table, count: int) -> list[int] | None:
    """`count` fresh ids from the sequence of `table`'s serial `id`, or None: not PostgreSQL, or under two rows
    (one INSERT ... RETURNING is then a single round trip, not two)."""
    if count < 2 or session.get_bind().dialect.name != "postgresql":
        return None
    return session.connection().execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
        {"table": table.name, "n": count}).scalars().all()


def number(session, rows: list) -> None:
    """Give the ORM rows about to be inserted (pending, no id yet) their ids, so the next flush writes them as one
    executemany; rows of one model."""
    rows = [r for r in rows if r.id is None and inspect(r).pending]
    if rows and (ids := take(session, type(rows[0]).__table__, len(rows))):
        for row, row_id in zip(rows, ids):
            row.id = row_id
