"""ticket search: trigram indexes on PostgreSQL

The staff list searches `lower(subject)` and `number` with LIKE '%text%'. On PostgreSQL,
pg_trgm GIN indexes turn that from a scan of every ticket into an index lookup (about
650 ms -> 15 ms at a million tickets, see docs/benchmarks.md). pg_trgm is a trusted
extension (PostgreSQL 13+), so a database owner may create it; where that is refused the
indexes are skipped with a warning and search still works, only slower. SQLite: nothing to do.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
import logging

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        log.warning("pg_trgm unavailable (%s); ticket search will not use trigram indexes", exc.orig)
        return
    op.execute("CREATE INDEX ix_tickets_subject_trgm ON tickets USING gin (lower(subject) gin_trgm_ops)")
    op.execute("CREATE INDEX ix_tickets_number_trgm ON tickets USING gin (number gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_tickets_number_trgm")
    op.execute("DROP INDEX IF EXISTS ix_tickets_subject_trgm")
