"""sla engine: business hours, holidays, exceptions, sla rules, pauses, firings, ticket clocks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('business_hours',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('day_of_week', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_business_hours_entity_id_entities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_business_hours'))
    )
    with op.batch_alter_table('business_hours', schema=None) as batch_op:
        batch_op.create_index('ix_business_hours_entity_day', ['entity_id', 'day_of_week'], unique=False)

    op.create_table('holidays',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_holidays_entity_id_entities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holidays')),
    sa.UniqueConstraint('entity_id', 'date', name=op.f('uq_holidays_entity_id'))
    )
    op.create_table('hours_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=True),
    sa.Column('end_time', sa.Time(), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_hours_exceptions_entity_id_entities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hours_exceptions'))
    )
    with op.batch_alter_table('hours_exceptions', schema=None) as batch_op:
        batch_op.create_index('ix_hours_exceptions_entity_date', ['entity_id', 'date'], unique=False)

    op.create_table('sla_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('priority', sa.String(length=20), nullable=True),
    sa.Column('response_minutes', sa.Integer(), nullable=True),
    sa.Column('next_reply_minutes', sa.Integer(), nullable=True),
    sa.Column('resolution_minutes', sa.Integer(), nullable=True),
    sa.Column('escalation_minutes', sa.Integer(), nullable=True),
    sa.Column('business_hours_only', sa.Boolean(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=True),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('pause_statuses', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_sla_rules_entity_id_entities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_rules'))
    )
    with op.batch_alter_table('sla_rules', schema=None) as batch_op:
        batch_op.create_index('ix_sla_rules_entity_position', ['entity_id', 'position'], unique=False)

    op.create_table('sla_firings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('clock', sa.String(length=20), nullable=False),
    sa.Column('point', sa.String(length=40), nullable=False),
    sa.Column('cycle', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('suppressed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_sla_firings_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_firings')),
    sa.UniqueConstraint('ticket_id', 'clock', 'point', 'cycle', name=op.f('uq_sla_firings_ticket_id'))
    )
    op.create_table('sla_pauses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_sla_pauses_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_pauses'))
    )
    with op.batch_alter_table('sla_pauses', schema=None) as batch_op:
        batch_op.create_index('ix_sla_pauses_ticket', ['ticket_id', 'started_at'], unique=False)

    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('custom_hours', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('hours_version', sa.Integer(), nullable=False, server_default='0'))

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_rule_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sla_response_due', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_next_reply_due', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_resolution_due', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_escalation_due', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_response_breached', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('sla_next_reply_breached', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('sla_resolution_breached', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_next_reply_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_next_reply_cycle', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('sla_next_check_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_nearest_due', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_tickets_sla_nearest_due'), ['sla_nearest_due'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_sla_next_check_at'), ['sla_next_check_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_tickets_sla_rule_id_sla_rules'), 'sla_rules', ['sla_rule_id'], ['id'], ondelete='SET NULL')



def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tickets_sla_rule_id_sla_rules'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_tickets_sla_next_check_at'))
        batch_op.drop_index(batch_op.f('ix_tickets_sla_nearest_due'))
        batch_op.drop_column('sla_nearest_due')
        batch_op.drop_column('sla_next_check_at')
        batch_op.drop_column('sla_next_reply_cycle')
        batch_op.drop_column('sla_next_reply_since')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('first_response_at')
        batch_op.drop_column('sla_resolution_breached')
        batch_op.drop_column('sla_next_reply_breached')
        batch_op.drop_column('sla_response_breached')
        batch_op.drop_column('sla_escalation_due')
        batch_op.drop_column('sla_resolution_due')
        batch_op.drop_column('sla_next_reply_due')
        batch_op.drop_column('sla_response_due')
        batch_op.drop_column('sla_rule_id')

    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.drop_column('hours_version')
        batch_op.drop_column('custom_hours')

    with op.batch_alter_table('sla_pauses', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_pauses_ticket')

    op.drop_table('sla_pauses')
    op.drop_table('sla_firings')
    with op.batch_alter_table('sla_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_rules_entity_position')

    op.drop_table('sla_rules')
    with op.batch_alter_table('hours_exceptions', schema=None) as batch_op:
        batch_op.drop_index('ix_hours_exceptions_entity_date')

    op.drop_table('hours_exceptions')
    op.drop_table('holidays')
    with op.batch_alter_table('business_hours', schema=None) as batch_op:
        batch_op.drop_index('ix_business_hours_entity_day')

    op.drop_table('business_hours')
