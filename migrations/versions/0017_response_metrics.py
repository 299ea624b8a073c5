"""response metrics: the response_metrics table and the tickets' reopen and public reply counters

Each row is one measured span of a ticket (first response, each response, first and full resolution, a
pending or on-hold span), written by services.metrics when it happens; `flask mets metrics-rebuild` fills the
rows (and the counters) of tickets created before this migration from their ticket_events.

Revision ID: 0017_response_metrics
Revises: 0016_escalation
Create Date: 2026-12-01 16:15:00.000000

"""
from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0017_response_metrics'
down_revision = '0016_escalation'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('response_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('metric_type', sa.String(length=30), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('start_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duration_minutes', sa.Float(), nullable=True),
    sa.Column('business_minutes', sa.Float(), nullable=True),
    sa.Column('sla_target_minutes', sa.Integer(), nullable=True),
    sa.Column('within_sla', sa.Boolean(), nullable=True),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('priority', sa.String(length=20), nullable=False),
    sa.Column('reopens', sa.Integer(), nullable=False),
    sa.Column('reopened_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_response_metrics_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_response_metrics_entity_id_entities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_response_metrics_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_response_metrics')),
    sa.UniqueConstraint('ticket_id', 'metric_type', 'seq', name=op.f('uq_response_metrics_ticket_id'))
    )
    with op.batch_alter_table('response_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_response_metrics_entity_end', ['entity_id', 'end_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_response_metrics_agent_id'), ['agent_id'], unique=False)

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reopen_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('public_reply_count', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops the columns in place: a batch copy of `tickets` would break the full-text search
        # triggers (migration 0010) on the tables that refer to it.
        op.execute("ALTER TABLE tickets DROP COLUMN public_reply_count")
        op.execute("ALTER TABLE tickets DROP COLUMN reopen_count")
    else:
        with op.batch_alter_table('tickets', schema=None) as batch_op:
            batch_op.drop_column('public_reply_count')
            batch_op.drop_column('reopen_count')

    with op.batch_alter_table('response_metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_response_metrics_agent_id'))
        batch_op.drop_index('ix_response_metrics_entity_end')

    op.drop_table('response_metrics')
