"""outbox core: email_queue and webhook_deliveries share their claim and attempt columns

email_queue.claimed_by becomes claim_token (as webhook_deliveries names it); webhook_deliveries'
claim_token widens to 120 characters (the token is "<worker>/<nonce>" for both) and it keeps
its max_attempts per row, like mail (existing rows get WEBHOOK_MAX_ATTEMPTS' default, 6).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_queue', schema=None) as batch_op:
        batch_op.alter_column('claimed_by', new_column_name='claim_token', existing_type=sa.String(length=120),
                              existing_nullable=True)

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_attempts', sa.Integer(), nullable=False, server_default='6'))
        batch_op.alter_column('claim_token', existing_type=sa.String(length=40), type_=sa.String(length=120),
                              existing_nullable=True)

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.alter_column('max_attempts', server_default=None, existing_type=sa.Integer(),
                              existing_nullable=False)


def downgrade():
    # A token longer than the old column is a claim in flight: free it (the sweep would anyway).
    op.execute("UPDATE webhook_deliveries SET claim_token = NULL, claimed_at = NULL, status = 'pending' "
               "WHERE length(claim_token) > 40")
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.alter_column('claim_token', existing_type=sa.String(length=120), type_=sa.String(length=40),
                              existing_nullable=True)
        batch_op.drop_column('max_attempts')

    with op.batch_alter_table('email_queue', schema=None) as batch_op:
        batch_op.alter_column('claim_token', new_column_name='claimed_by', existing_type=sa.String(length=120),
                              existing_nullable=True)
