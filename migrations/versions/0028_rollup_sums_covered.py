"""rollup sums covered: the coarse rollup levels' day indexes include the type, agent and sums on PostgreSQL, so the
dashboard's sums are index-only scans instead of reading rows that carry four histograms each

Revision ID: 0028_rollup_sums_covered
Revises: 0027_ticket_rollups_due
Create Date: 2026-12-01 23:15:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0028_rollup_sums_covered'
down_revision = '0027_ticket_rollups_due'
branch_labels = None
depends_on = None

SUMS = ["count", "business_count", "business_minutes", "duration_count", "duration_minutes", "within_sla", "breached"]
LEVELS = {"metric_entity_rollups": ["metric_type"], "metric_agent_rollups": ["metric_type", "agent_id"]}


def upgrade():
    for table, keys in LEVELS.items():
        op.drop_index(f"ix_{table}_day", table_name=table)
        op.create_index(f"ix_{table}_day", table, ["day", "entity_id"], unique=False,
                        postgresql_include=[*keys, *SUMS])


def downgrade():
    for table in LEVELS:
        op.drop_index(f"ix_{table}_day", table_name=table)
        op.create_index(f"ix_{table}_day", table, ["day", "entity_id"], unique=False)
