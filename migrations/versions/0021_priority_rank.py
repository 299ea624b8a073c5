"""priority rank indexes: the ticket list's sort by priority walks an index instead of sorting every match

Revision ID: 0021_priority_rank
Revises: 0020_metric_rollups
Create Date: 2026-12-01 17:55:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0021_priority_rank'
down_revision = '0020_metric_rollups'
branch_labels = None
depends_on = None

# Exactly the ORDER BY the list writes (models/tickets.py PRIORITY_RANK), or PostgreSQL would not match it.
RANK = "(CASE priority WHEN 'low' THEN 0 WHEN 'normal' THEN 1 WHEN 'high' THEN 2 WHEN 'urgent' THEN 3 END)"


def upgrade():
    # Most urgent first (rank DESC, id DESC: this index walked backwards), and least urgent first (rank ASC, id DESC).
    op.execute(f"CREATE INDEX ix_tickets_priority_rank ON tickets ({RANK}, id)")
    op.execute(f"CREATE INDEX ix_tickets_priority_rank_asc ON tickets ({RANK}, id DESC)")


def downgrade():
    op.execute("DROP INDEX ix_tickets_priority_rank_asc")
    op.execute("DROP INDEX ix_tickets_priority_rank")
