"""catalog: portal entities, ticket categories, macros

entities gain portal_enabled (every active entity is enabled, so no install stops taking portal
requests) and portal_default (none chosen: the portal then preselects nothing); ticket_categories
holds each entity's category list (tickets keep storing the name), macros the canned replies.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('portal_enabled', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('portal_default', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(sa.text("UPDATE entities SET portal_enabled = :yes WHERE active = :yes").bindparams(yes=True))
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.alter_column('portal_enabled', server_default=None, existing_type=sa.Boolean(),
                              existing_nullable=False)
        batch_op.alter_column('portal_default', server_default=None, existing_type=sa.Boolean(),
                              existing_nullable=False)

    op.create_table('ticket_categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_ticket_categories_entity_id_entities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_categories')),
    sa.UniqueConstraint('entity_id', 'name', name=op.f('uq_ticket_categories_entity_id'))
    )
    with op.batch_alter_table('ticket_categories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_categories_entity_id'), ['entity_id'], unique=False)

    op.create_table('macros',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('priority', sa.String(length=20), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=80), nullable=True),
    sa.Column('updated_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_macros_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_macros_entity_id_entities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_macros'))
    )
    with op.batch_alter_table('macros', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_macros_entity_id'), ['entity_id'], unique=False)


def downgrade():
    with op.batch_alter_table('macros', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_macros_entity_id'))
    op.drop_table('macros')
    with op.batch_alter_table('ticket_categories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_categories_entity_id'))
    op.drop_table('ticket_categories')
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.drop_column('portal_default')
        batch_op.drop_column('portal_enabled')
