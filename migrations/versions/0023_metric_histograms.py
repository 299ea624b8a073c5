"""metric histograms: each daily rollup row keeps a histogram of its business and calendar minutes

The dashboard's medians and 90th percentiles over the rolled-up days come from these (fixed log-spaced bins 2% wide,
services.metrics.histograms), merged by adding counts, instead of sorting every raw value: the all-entities
dashboard sorted ~1.8 million values twice. Integer arrays on PostgreSQL (merged in SQL with unnest), JSON lists on
SQLite. Rows rolled up before this migration have none: `flask mets metrics-rollup --since D` fills the days whose
raw rows are still there, and until a range is rolled up the dashboard reads its raw rows (exact).

`ix_response_metrics_end` (end_at, covering on PostgreSQL like ix_response_metrics_entity_end): the raw part of a
summary (today) for every entity, which the (entity_id, end_at) index served only by reading all of it.

Revision ID: 0023_metric_histograms
Revises: 0022_drop_sla_escalation
Create Date: 2026-12-01 19:15:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0023_metric_histograms'
down_revision = '0022_drop_sla_escalation'
branch_labels = None
depends_on = None

COLUMNS = ("business_bins", "business_bin_counts", "duration_bins", "duration_bin_counts")
COVERED = ("entity_id", "metric_type", "within_sla", "priority", "agent_id", "business_minutes", "duration_minutes")


def upgrade():
    int_list = sa.JSON().with_variant(postgresql.ARRAY(sa.Integer()), "postgresql")
    with op.batch_alter_table('metric_rollups', schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, int_list, nullable=True))
    op.create_index('ix_response_metrics_end', 'response_metrics', ['end_at'], unique=False,
                    postgresql_include=list(COVERED))


def downgrade():
    op.drop_index('ix_response_metrics_end', table_name='response_metrics')
    with op.batch_alter_table('metric_rollups', schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
