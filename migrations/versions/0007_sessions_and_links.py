"""sessions and links: users.session_token (sign-out everywhere), redeemed_links (single-use sign-in links)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00.000000

Every existing user gets a random session token. Sessions and remember cookies from before this
migration carry the old id format ("<id>" alone) and are refused: everyone signs in once more.
"""
import secrets

from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=64), nullable=True))

    # One random token per user, made here (no portable SQL random string exists for SQLite and PostgreSQL).
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('session_token', sa.String))
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        connection.execute(users.update().where(users.c.id == user_id)
                           .values(session_token=secrets.token_urlsafe(24)))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('session_token', existing_type=sa.String(length=64), nullable=False)

    op.create_table('redeemed_links',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('redeemed_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_redeemed_links'))
    )
    with op.batch_alter_table('redeemed_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_redeemed_links_redeemed_at'), ['redeemed_at'], unique=False)


def downgrade():
    with op.batch_alter_table('redeemed_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_redeemed_links_redeemed_at'))

    op.drop_table('redeemed_links')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_token')
