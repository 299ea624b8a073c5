"""metric rollups: one row per UTC day, entity, metric type, priority and agent of the completed response metrics;
covering indexes for the dashboard

On PostgreSQL `ix_response_metrics_entity_end` carries the columns the dashboard reads (INCLUDE), and tickets get
`(entity_id, created_at)` carrying status, priority, assignee, resolved_at and sla_nearest_due: one entity's
figures are index-only scans instead of reading every heap page (an entity's rows are spread over the whole table).

Kept for ever (services.metrics.rollups); raw response_metrics rows older than a configured age can be archived to
a gzip CSV and deleted (`flask mets metrics-archive`), and the trend charts read those days from here.

Revision ID: 0020_metric_rollups
Revises: 0019_csat
Create Date: 2026-12-01 17:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020_metric_rollups'
down_revision = '0019_csat'
branch_labels = None
depends_on = None

COVERED_METRICS = ("metric_type", "within_sla", "priority", "agent_id", "business_minutes", "duration_minutes")
COVERED_TICKETS = ("status", "priority", "assignee_id", "resolved_at", "sla_nearest_due")


def upgrade():
    op.create_table('metric_rollups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('metric_type', sa.String(length=30), nullable=False),
    sa.Column('priority', sa.String(length=20), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('business_count', sa.Integer(), nullable=False),
    sa.Column('business_minutes', sa.Float(), nullable=False),
    sa.Column('duration_count', sa.Integer(), nullable=False),
    sa.Column('duration_minutes', sa.Float(), nullable=False),
    sa.Column('within_sla', sa.Integer(), nullable=False),
    sa.Column('breached', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_metric_rollups_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_metric_rollups_entity_id_entities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_rollups'))
    )
    with op.batch_alter_table('metric_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_metric_rollups_entity_day', ['entity_id', 'day'], unique=False)
        batch_op.create_index('ix_metric_rollups_day', ['day'], unique=False)

    with op.batch_alter_table('response_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_response_metrics_entity_end')
        batch_op.create_index('ix_response_metrics_entity_end', ['entity_id', 'end_at'], unique=False,
                              postgresql_include=list(COVERED_METRICS))
    op.create_index('ix_tickets_entity_created', 'tickets', ['entity_id', 'created_at'], unique=False,
                    postgresql_include=list(COVERED_TICKETS))


def downgrade():
    op.drop_index('ix_tickets_entity_created', table_name='tickets')
    with op.batch_alter_table('response_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_response_metrics_entity_end')
        batch_op.create_index('ix_response_metrics_entity_end', ['entity_id', 'end_at'], unique=False)
    with op.batch_alter_table('metric_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_metric_rollups_day')
        batch_op.drop_index('ix_metric_rollups_entity_day')
    op.drop_table('metric_rollups')
