"""dashboard rollups: the tickets per created day (and resolved day, entity, priority, assignee), and a coarse level
of the metric rollups (per day, entity and type: every priority and agent together)

`ticket_rollups` lets the dashboard count the tickets created and resolved per day, and so the backlog trend,
without counting every ticket of the range (at all entities: a million); it stays empty, and the dashboard reads
the tickets raw, until a roll-up (`flask mets metrics-rollup` or the hourly job) writes it.
`metric_entity_rollups` is what a page without a priority or agent filter merges: far fewer histogram bins. It is
filled here from `metric_rollups` (the days already rolled up), so the covered days read the same from either level.

Revision ID: 0026_dashboard_rollups
Revises: 0025_webhook_endpoints
Create Date: 2026-12-01 20:15:00.000000

"""
from collections import Counter

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0026_dashboard_rollups'
down_revision = '0025_webhook_endpoints'
branch_labels = None
depends_on = None

SUMS = ("count", "business_count", "business_minutes", "duration_count", "duration_minutes", "within_sla", "breached")
MEASURES = ("business", "duration")
DUE_COVERED = ("status", "assignee_id", "entity_id", "priority")


def upgrade():
    int_list = sa.JSON().with_variant(postgresql.ARRAY(sa.Integer()), "postgresql")
    op.create_table('metric_entity_rollups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('metric_type', sa.String(length=30), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('business_count', sa.Integer(), nullable=False),
    sa.Column('business_minutes', sa.Float(), nullable=False),
    sa.Column('duration_count', sa.Integer(), nullable=False),
    sa.Column('duration_minutes', sa.Float(), nullable=False),
    sa.Column('within_sla', sa.Integer(), nullable=False),
    sa.Column('breached', sa.Integer(), nullable=False),
    sa.Column('business_bins', int_list, nullable=True),
    sa.Column('business_bin_counts', int_list, nullable=True),
    sa.Column('duration_bins', int_list, nullable=True),
    sa.Column('duration_bin_counts', int_list, nullable=True),
    sa.Column('business_run_bins', int_list, nullable=True),
    sa.Column('business_run_counts', int_list, nullable=True),
    sa.Column('duration_run_bins', int_list, nullable=True),
    sa.Column('duration_run_counts', int_list, nullable=True),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_metric_entity_rollups_entity_id_entities'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_entity_rollups'))
    )
    op.create_index('ix_metric_entity_rollups_day', 'metric_entity_rollups', ['day', 'entity_id'], unique=False)
    op.create_index('ix_metric_entity_rollups_running', 'metric_entity_rollups', ['entity_id', 'metric_type', 'day'],
                    unique=False)
    op.create_table('ticket_rollups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('resolved_day', sa.Date(), nullable=True),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('priority', sa.String(length=20), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('oldest', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_ticket_rollups_assignee_id_users'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_ticket_rollups_entity_id_entities'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_rollups'))
    )
    op.create_index('ix_ticket_rollups_created', 'ticket_rollups', ['created_day', 'entity_id'], unique=False)
    op.create_index('ix_ticket_rollups_resolved', 'ticket_rollups', ['resolved_day', 'entity_id'], unique=False)
    op.create_index('ix_ticket_rollups_status', 'ticket_rollups', ['status', 'entity_id'], unique=False)
    # The workload's running clocks due soon or past due, per assignee: an index-only range scan on PostgreSQL.
    op.drop_index('ix_tickets_sla_nearest_due', table_name='tickets')
    op.create_index('ix_tickets_sla_nearest_due', 'tickets', ['sla_nearest_due'], unique=False,
                    postgresql_include=list(DUE_COVERED))
    _fill_entity_level(int_list)


def _fill_entity_level(int_list):
    """The coarse rows of every day already rolled up: the fine rows' sums and histograms, summed per day, entity
    and type (in Python: the same on PostgreSQL and SQLite; ~40 thousand rows at a million tickets)."""
    histogram_columns = [sa.column(f"{m}_{part}", int_list) for m in MEASURES for part in ("bins", "bin_counts")]
    fine = sa.table("metric_rollups", sa.column("day"), sa.column("entity_id"), sa.column("metric_type"),
                    *(sa.column(name) for name in SUMS), *histogram_columns)
    coarse = sa.table("metric_entity_rollups", sa.column("day"), sa.column("entity_id"), sa.column("metric_type"),
                      *(sa.column(name) for name in SUMS),
                      *(sa.column(f"{m}_{part}", int_list) for m in MEASURES
                        for part in ("bins", "bin_counts", "run_bins", "run_counts")))
    bind = op.get_bind()
    found: dict = {}
    for row in bind.execute(sa.select(fine)).mappings():
        key = (row["day"], row["entity_id"], row["metric_type"])
        sums, bins = found.setdefault(key, ([0] * len(SUMS), {m: Counter() for m in MEASURES}))
        for i, name in enumerate(SUMS):
            sums[i] += row[name] or 0
        for m in MEASURES:
            for b, n in zip(row[f"{m}_bins"] or (), row[f"{m}_bin_counts"] or ()):
                bins[m][b] += n
    rows, running, last = [], {}, None
    for (day, entity_id, metric_type), (sums, bins) in sorted(found.items(), key=lambda kv: (kv[0][1], kv[0][2],
                                                                                            kv[0][0])):
        if (entity_id, metric_type) != last:
            running, last = {m: Counter() for m in MEASURES}, (entity_id, metric_type)
        row = {"day": day, "entity_id": entity_id, "metric_type": metric_type, **dict(zip(SUMS, sums))}
        for m in MEASURES:
            keys = sorted(b for b, n in bins[m].items() if n)
            row[f"{m}_bins"], row[f"{m}_bin_counts"] = keys, [bins[m][b] for b in keys]
            running[m].update(bins[m])
            keys = sorted(b for b, n in running[m].items() if n)
            row[f"{m}_run_bins"], row[f"{m}_run_counts"] = keys, [running[m][b] for b in keys]
        rows.append(row)
    for start in range(0, len(rows), 5000):
        bind.execute(sa.insert(coarse), rows[start:start + 5000])


def downgrade():
    op.drop_index('ix_tickets_sla_nearest_due', table_name='tickets')
    op.create_index('ix_tickets_sla_nearest_due', 'tickets', ['sla_nearest_due'], unique=False)
    op.drop_index('ix_ticket_rollups_status', table_name='ticket_rollups')
    op.drop_index('ix_ticket_rollups_resolved', table_name='ticket_rollups')
    op.drop_index('ix_ticket_rollups_created', table_name='ticket_rollups')
    op.drop_table('ticket_rollups')
    op.drop_index('ix_metric_entity_rollups_running', table_name='metric_entity_rollups')
    op.drop_index('ix_metric_entity_rollups_day', table_name='metric_entity_rollups')
    op.drop_table('metric_entity_rollups')
