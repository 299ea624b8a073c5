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
    _coarse_table('metric_entity_rollups', int_list)
    op.create_index('ix_metric_entity_rollups_day', 'metric_entity_rollups', ['day', 'entity_id'], unique=False)
    op.create_index('ix_metric_entity_rollups_running', 'metric_entity_rollups', ['entity_id', 'metric_type', 'day'],
                    unique=False)
    _coarse_table('metric_agent_rollups', int_list, agent=True)
    op.create_index('ix_metric_agent_rollups_day', 'metric_agent_rollups', ['day', 'entity_id'], unique=False)
    op.create_index('ix_metric_agent_rollups_running', 'metric_agent_rollups',
                    ['entity_id', 'metric_type', 'agent_id', 'day'], unique=False)
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
    _fill_level(int_list, 'metric_entity_rollups', ("entity_id", "metric_type"))
    _fill_level(int_list, 'metric_agent_rollups', ("entity_id", "metric_type", "agent_id"))


def _coarse_table(name, int_list, agent=False):
    op.create_table(name,
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('metric_type', sa.String(length=30), nullable=False),
    *([sa.Column('agent_id', sa.Integer(), nullable=True)] if agent else []),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('business_count', sa.Integer(), nullable=False),
    sa.Column('business_minutes', sa.Float(), nullable=False),
    sa.Column('duration_count', sa.Integer(), nullable=False),
    sa.Column('duration_minutes', sa.Float(), nullable=False),
    sa.Column('within_sla', sa.Integer(), nullable=False),
    sa.Column('breached', sa.Integer(), nullable=False),
    *(sa.Column(f"{m}_{part}", int_list, nullable=True) for m in MEASURES
      for part in ("bins", "bin_counts", "run_bins", "run_counts")),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f(f'fk_{name}_entity_id_entities'),
                            ondelete='CASCADE'),
    *([sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f(f'fk_{name}_agent_id_users'),
                               ondelete='SET NULL')] if agent else []),
    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}'))
    )


def _fill_level(int_list, name, keys):
    """The coarse rows of every day already rolled up: the fine rows' sums and histograms, summed per day and `keys`,
    with the running histograms (in Python: the same on PostgreSQL and SQLite; ~40 thousand rows at a million
    tickets)."""
    histogram_columns = [sa.column(f"{m}_{part}", int_list) for m in MEASURES for part in ("bins", "bin_counts")]
    fine = sa.table("metric_rollups", sa.column("day"), sa.column("entity_id"), sa.column("metric_type"),
                    sa.column("agent_id"), *(sa.column(column) for column in SUMS), *histogram_columns)
    coarse = sa.table(name, sa.column("day"), *(sa.column(key) for key in keys),
                      *(sa.column(column) for column in SUMS),
                      *(sa.column(f"{m}_{part}", int_list) for m in MEASURES
                        for part in ("bins", "bin_counts", "run_bins", "run_counts")))
    bind = op.get_bind()
    found: dict = {}
    for row in bind.execute(sa.select(fine)).mappings():
        key = (row["day"], *(row[k] for k in keys))
        sums, bins = found.setdefault(key, ([0] * len(SUMS), {m: Counter() for m in MEASURES}))
        for i, column in enumerate(SUMS):
            sums[i] += row[column] or 0
        for m in MEASURES:
            for b, n in zip(row[f"{m}_bins"] or (), row[f"{m}_bin_counts"] or ()):
                bins[m][b] += n
    rows, running, last = [], {}, None
    for (day, *key), (sums, bins) in sorted(found.items(), key=lambda kv: (*(_sortable(v) for v in kv[0][1:]),
                                                                           kv[0][0])):
        if key != last:
            running, last = {m: Counter() for m in MEASURES}, key
        row = {"day": day, **dict(zip(keys, key)), **dict(zip(SUMS, sums))}
        for m in MEASURES:
            stored = sorted(b for b, n in bins[m].items() if n)
            row[f"{m}_bins"], row[f"{m}_bin_counts"] = stored, [bins[m][b] for b in stored]
            running[m].update(bins[m])
            stored = sorted(b for b, n in running[m].items() if n)
            row[f"{m}_run_bins"], row[f"{m}_run_counts"] = stored, [running[m][b] for b in stored]
        rows.append(row)
    for start in range(0, len(rows), 5000):
        bind.execute(sa.insert(coarse), rows[start:start + 5000])


def _sortable(value):
    return (value is not None, value if value is not None else 0)


def downgrade():
    op.drop_index('ix_tickets_sla_nearest_due', table_name='tickets')
    op.create_index('ix_tickets_sla_nearest_due', 'tickets', ['sla_nearest_due'], unique=False)
    op.drop_index('ix_ticket_rollups_status', table_name='ticket_rollups')
    op.drop_index('ix_ticket_rollups_resolved', table_name='ticket_rollups')
    op.drop_index('ix_ticket_rollups_created', table_name='ticket_rollups')
    op.drop_table('ticket_rollups')
    op.drop_index('ix_metric_agent_rollups_running', table_name='metric_agent_rollups')
    op.drop_index('ix_metric_agent_rollups_day', table_name='metric_agent_rollups')
    op.drop_table('metric_agent_rollups')
    op.drop_index('ix_metric_entity_rollups_running', table_name='metric_entity_rollups')
    op.drop_index('ix_metric_entity_rollups_day', table_name='metric_entity_rollups')
    op.drop_table('metric_entity_rollups')
