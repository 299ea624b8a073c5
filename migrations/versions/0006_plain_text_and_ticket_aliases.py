"""plain-text message bodies; numbers a ticket had before it moved

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:40:00

Bodies were stored as sanitised HTML; from here on what people type is stored as typed
(body_format "text"). Existing rows are marked "html" and stay readable as they were: their
markup is sanitised again whenever it is shown. Nothing is rewritten, because the characters the
old sanitiser dropped cannot be recovered, and the markup it kept is still safe to show.
"""
from alembic import op
import sqlalchemy as sa

import mets.models.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('tickets', 'replies'):
        # Every row written so far holds sanitised HTML; new rows say "text" (the models' default).
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('body_format', sa.String(length=10), nullable=False,
                                          server_default='html'))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('body_format', server_default='text')
    op.create_table('ticket_aliases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=60), nullable=False),
    sa.Column('created_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_aliases_ticket_id_tickets'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_aliases')),
    sa.UniqueConstraint('number', name=op.f('uq_ticket_aliases_number'))
    )
    with op.batch_alter_table('ticket_aliases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_aliases_ticket_id'), ['ticket_id'], unique=False)


def downgrade():
    with op.batch_alter_table('ticket_aliases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_aliases_ticket_id'))
    op.drop_table('ticket_aliases')
    for table in ('replies', 'tickets'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('body_format')
