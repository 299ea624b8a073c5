"""api_tokens: personal tokens for /api/v1 (the SHA-256 of the token, a lookup prefix, revocation)

Revision ID: 0024_api_tokens
Revises: 0023_metric_histograms
Create Date: 2026-12-01 19:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0024_api_tokens'
down_revision = '0023_metric_histograms'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_tokens_prefix'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))
    op.drop_table('api_tokens')
