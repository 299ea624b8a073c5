"""drop the SLA rule's escalation target: sla_rules.escalation_minutes and tickets.sla_escalation_due

Migration 0016 turned each rule's escalation target into a one-level escalation policy and emptied both
columns; escalation policies are the one mechanism since, so the old clock's columns go.

Revision ID: 0022_drop_sla_escalation
Revises: 0021_priority_rank
Create Date: 2026-12-01 19:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022_drop_sla_escalation'
down_revision = '0021_priority_rank'
branch_labels = None
depends_on = None


def upgrade():
    # ALTER TABLE ... DROP COLUMN, on SQLite too (3.35+; neither column is indexed): a batch rebuild of tickets
    # would drop and re-create the table under the search triggers of migration 0010, which SQLite refuses.
    op.execute("ALTER TABLE tickets DROP COLUMN sla_escalation_due")
    op.execute("ALTER TABLE sla_rules DROP COLUMN escalation_minutes")


def downgrade():
    # The columns come back empty (nullable): the targets live on as the policies 0016 made of them.
    op.add_column('sla_rules', sa.Column('escalation_minutes', sa.Integer(), nullable=True))
    op.add_column('tickets', sa.Column('sla_escalation_due', sa.DateTime(timezone=True), nullable=True))
