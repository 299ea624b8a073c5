"""escalation notices: a business-time level's mail held while the desk is closed, sent as a digest when it opens

Revision ID: 0018_escalation_notices
Revises: 0017_response_metrics
Create Date: 2026-12-01 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0018_escalation_notices'
down_revision = '0017_response_metrics'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('escalation_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('escalation_event_id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('recipient_email', sa.String(length=254), nullable=False),
    sa.Column('recipient_name', sa.String(length=200), nullable=True),
    sa.Column('level_number', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('template_name', sa.String(length=80), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('held_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('held_until', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('email_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['email_id'], ['email_queue.id'], name=op.f('fk_escalation_notices_email_id_email_queue'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_escalation_notices_entity_id_entities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['escalation_event_id'], ['escalation_events.id'], name=op.f('fk_escalation_notices_escalation_event_id_escalation_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_escalation_notices_ticket_id_tickets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_escalation_notices_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_notices')),
    sa.UniqueConstraint('escalation_event_id', 'recipient_email', name=op.f('uq_escalation_notices_escalation_event_id'))
    )
    with op.batch_alter_table('escalation_notices', schema=None) as batch_op:
        batch_op.create_index('ix_escalation_notices_held', ['held_until'], unique=False,
                              postgresql_where=sa.text('sent_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL'))
        batch_op.create_index('ix_escalation_notices_ticket', ['ticket_id'], unique=False)


def downgrade():
    with op.batch_alter_table('escalation_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_escalation_notices_ticket')
        batch_op.drop_index('ix_escalation_notices_held', postgresql_where=sa.text('sent_at IS NULL'),
                            sqlite_where=sa.text('sent_at IS NULL'))

    op.drop_table('escalation_notices')
