"""staying current: tickets.version (bumped by every change), ticket_events.version, ticket_viewers (presence)

An open ticket page polls the ticket's version and shows what changed; a reply form carries the version
it was loaded at, and the events after it say what the agent has not seen. Existing tickets start at 0
and their events have no version (nothing written before this counts as unseen).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=True))
    op.create_table('ticket_viewers',
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('last_seen', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_viewers_ticket_id_tickets'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ticket_viewers_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ticket_id', 'user_id', name=op.f('pk_ticket_viewers'))
    )
    with op.batch_alter_table('ticket_viewers', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_viewers_last_seen', ['last_seen'], unique=False)


def downgrade():
    with op.batch_alter_table('ticket_viewers', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_viewers_last_seen')
    op.drop_table('ticket_viewers')
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.drop_column('version')
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops the column in place: a batch copy of `tickets` would break the full-text search
        # triggers (migration 0010) on the tables that refer to it.
        op.execute("ALTER TABLE tickets DROP COLUMN version")
    else:
        with op.batch_alter_table('tickets', schema=None) as batch_op:
            batch_op.drop_column('version')
