"""job_runs: when each periodic job last started, succeeded and failed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('job_runs',
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('last_started_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_succeeded_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_failed_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_runs'))
    )


def downgrade():
    op.drop_table('job_runs')
