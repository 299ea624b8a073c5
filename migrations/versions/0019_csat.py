"""csat: the csat_responses table (one survey and its answer per resolution) and tickets.csat_due_at

Revision ID: 0019_csat
Revises: 0018_escalation_notices
Create Date: 2026-12-01 17:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0019_csat'
down_revision = '0018_escalation_notices'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('csat_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('resolved_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('priority', sa.String(length=20), nullable=False),
    sa.Column('sent_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('answered_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_csat_responses_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_csat_responses_customer_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_csat_responses_entity_id_entities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_csat_responses_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_csat_responses')),
    sa.UniqueConstraint('ticket_id', 'resolved_at', name=op.f('uq_csat_responses_ticket_id'))
    )
    with op.batch_alter_table('csat_responses', schema=None) as batch_op:
        batch_op.create_index('ix_csat_responses_entity_sent', ['entity_id', 'sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_csat_responses_agent_id'), ['agent_id'], unique=False)

    # In place on both backends (ADD COLUMN needs no table copy, which would break the search triggers of 0010).
    op.add_column('tickets', sa.Column('csat_due_at', mets.models.types.UTCDateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_tickets_csat_due_at'), 'tickets', ['csat_due_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_tickets_csat_due_at'), table_name='tickets')
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE tickets DROP COLUMN csat_due_at")
    else:
        op.drop_column('tickets', 'csat_due_at')
    with op.batch_alter_table('csat_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_csat_responses_agent_id'))
        batch_op.drop_index('ix_csat_responses_entity_sent')
    op.drop_table('csat_responses')
