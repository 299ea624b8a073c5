"""ticket rollups with due clocks: how many of each group's tickets had a running SLA clock due by the roll-up's
instant, so the dashboard's workload counts the breached tickets from the rollups plus the few that fell due since

The rows written before this have no such count: they are removed with the roll-up's mark, so the dashboard reads
every ticket raw (as before any roll-up) until the next roll-up (`flask mets metrics-rollup` or the hourly job)
writes them again.

Revision ID: 0027_ticket_rollups_due
Revises: 0026_dashboard_rollups
Create Date: 2026-12-01 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0027_ticket_rollups_due'
down_revision = '0026_dashboard_rollups'
branch_labels = None
depends_on = None

TICKETS_KEY = "tickets_rolled_up"  # services.metrics.rollups.TICKETS_KEY


def upgrade():
    op.execute("DELETE FROM ticket_rollups")
    op.execute(sa.text("DELETE FROM app_settings WHERE key = :key").bindparams(key=TICKETS_KEY))
    with op.batch_alter_table('ticket_rollups') as batch:
        batch.add_column(sa.Column('due_by_mark', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('ticket_rollups') as batch:
        batch.drop_column('due_by_mark')
