"""escalation: policies with levels, the record of levels fired, tickets.escalation_due_at

Every SLA rule's single escalation target becomes a one-level policy of the rule's entity (conditions:
the ticket is under that SLA rule; after that many minutes since created, in the rule's business or
calendar time; action: notify whom the escalation notification settings name, and the
entity's managers) and the rule's target is cleared, so nothing that
escalated before stops and nothing escalates twice. Open tickets whose escalation point had not fired
yet keep their due instant; those whose point fired are recorded as having reached that level.

Revision ID: 0016_escalation
Revises: 0013
Create Date: 2026-12-01 16:00:00.000000

"""
import json

from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0016_escalation'
down_revision = '0013'
branch_labels = None
depends_on = None

# What escalation_due did before (the notification settings' recipients for escalations, by default the
# managers and admins), and the entity's own managers.
MIGRATED_ACTIONS = [{"type": "notify", "to": ["settings", "managers"]}]


def _rule_condition(rule_id):
    return {"all": [{"field": "sla.rule_id", "op": "is", "value": rule_id}]}


def upgrade():
    op.create_table('escalation_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=True),
    sa.Column('clock', sa.String(length=30), nullable=False),
    sa.Column('business_time', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_escalation_policies_entity_id_entities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_policies'))
    )
    with op.batch_alter_table('escalation_policies', schema=None) as batch_op:
        batch_op.create_index('ix_escalation_policies_entity_position', ['entity_id', 'position'], unique=False)

    op.create_table('escalation_levels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['escalation_policies.id'], name=op.f('fk_escalation_levels_policy_id_escalation_policies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_levels'))
    )
    with op.batch_alter_table('escalation_levels', schema=None) as batch_op:
        batch_op.create_index('ix_escalation_levels_policy_position', ['policy_id', 'position'], unique=False)

    op.create_table('escalation_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=True),
    sa.Column('level_id', sa.Integer(), nullable=True),
    sa.Column('level_number', sa.Integer(), nullable=False),
    sa.Column('policy_name', sa.String(length=200), nullable=False),
    sa.Column('clock', sa.String(length=30), nullable=False),
    sa.Column('cycle', sa.String(length=40), nullable=False),
    sa.Column('due_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fired_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('ticket_event_id', sa.Integer(), nullable=True),
    sa.Column('outcomes', sa.JSON(), nullable=False),
    sa.Column('suppressed', sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_escalation_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['level_id'], ['escalation_levels.id'], name=op.f('fk_escalation_events_level_id_escalation_levels'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['policy_id'], ['escalation_policies.id'], name=op.f('fk_escalation_events_policy_id_escalation_policies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_event_id'], ['ticket_events.id'], name=op.f('fk_escalation_events_ticket_event_id_ticket_events'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_escalation_events_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_events')),
    sa.UniqueConstraint('ticket_id', 'level_id', 'cycle', name=op.f('uq_escalation_events_ticket_id'))
    )
    with op.batch_alter_table('escalation_events', schema=None) as batch_op:
        batch_op.create_index('ix_escalation_events_ticket_fired', ['ticket_id', 'fired_at'], unique=False)

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalation_due_at', mets.models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_tickets_escalation_due_at'), ['escalation_due_at'], unique=False)

    _migrate_sla_escalations()


def _migrate_sla_escalations():
    bind = op.get_bind()
    utc = mets.models.types.UTCDateTime()
    policies = sa.table('escalation_policies', sa.column('id', sa.Integer), sa.column('entity_id', sa.Integer),
                        sa.column('name', sa.String), sa.column('conditions', sa.JSON), sa.column('clock', sa.String),
                        sa.column('business_time', sa.Boolean), sa.column('is_active', sa.Boolean),
                        sa.column('position', sa.Integer), sa.column('created_at', utc), sa.column('updated_at', utc))
    levels = sa.table('escalation_levels', sa.column('id', sa.Integer), sa.column('policy_id', sa.Integer),
                      sa.column('position', sa.Integer), sa.column('trigger', sa.String),
                      sa.column('value', sa.Integer), sa.column('actions', sa.JSON))
    esc_events = sa.table('escalation_events', sa.column('ticket_id', sa.Integer), sa.column('policy_id', sa.Integer),
                          sa.column('level_id', sa.Integer), sa.column('level_number', sa.Integer),
                          sa.column('policy_name', sa.String), sa.column('clock', sa.String),
                          sa.column('cycle', sa.String), sa.column('due_at', utc), sa.column('fired_at', utc),
                          sa.column('reason', sa.Text), sa.column('outcomes', sa.JSON))
    rules = bind.execute(sa.text(
        "SELECT id, entity_id, name, escalation_minutes, business_hours_only, is_active, position, created_at "
        "FROM sla_rules WHERE escalation_minutes IS NOT NULL ORDER BY id")).all()
    for rule in rules:
        created = _aware(rule.created_at)
        policy_id = bind.execute(policies.insert().returning(policies.c.id), {
            "entity_id": rule.entity_id, "name": f"{rule.name}: escalation", "conditions": _rule_condition(rule.id),
            "clock": "since_created", "business_time": bool(rule.business_hours_only),
            "is_active": bool(rule.is_active), "position": rule.position, "created_at": created,
            "updated_at": created}).scalar_one()
        level_id = bind.execute(levels.insert().returning(levels.c.id), {
            "policy_id": policy_id, "position": 0, "trigger": "after_duration", "value": rule.escalation_minutes,
            "actions": MIGRATED_ACTIONS}).scalar_one()
        # Open tickets under the rule: an escalation point not fired yet stays due; one fired is the level reached.
        fired = bind.execute(sa.text(
            "SELECT t.id AS ticket_id, f.due_at, f.fired_at FROM tickets t JOIN sla_firings f ON f.ticket_id = t.id "
            "WHERE t.sla_rule_id = :rule AND f.point = 'escalation'"), {"rule": rule.id}).all()
        for row in fired:
            bind.execute(esc_events.insert(), {
                "ticket_id": row.ticket_id, "policy_id": policy_id, "level_id": level_id, "level_number": 1,
                "policy_name": f"{rule.name}: escalation", "clock": "since_created", "cycle": "0",
                "due_at": _aware(row.due_at), "fired_at": _aware(row.fired_at),
                "reason": "Escalated by the SLA rule's escalation target (before escalation policies)",
                "outcomes": []})
        bind.execute(sa.text(
            "UPDATE tickets SET escalation_due_at = sla_escalation_due WHERE sla_rule_id = :rule "
            "AND sla_escalation_due IS NOT NULL AND status NOT IN ('resolved', 'closed') AND id NOT IN "
            "(SELECT ticket_id FROM sla_firings WHERE point = 'escalation')"), {"rule": rule.id})
    bind.execute(sa.text("UPDATE tickets SET sla_escalation_due = NULL"))
    bind.execute(sa.text("UPDATE sla_rules SET escalation_minutes = NULL"))


def _aware(value):
    """A timestamp read back raw (SQLite: a naive UTC string or datetime), as an aware UTC datetime."""
    from datetime import datetime, timezone

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def downgrade():
    # Each one-level policy this migration made gives its minutes back to its SLA rule.
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT p.conditions, l.value FROM escalation_policies p JOIN escalation_levels l ON l.policy_id = p.id "
        "WHERE p.clock = 'since_created' AND l.trigger = 'after_duration'")).all()
    for conditions, minutes in rows:
        if isinstance(conditions, str):
            conditions = json.loads(conditions)
        items = (conditions or {}).get("all") or []
        if len(items) == 1 and items[0].get("field") == "sla.rule_id" and items[0].get("op") == "is":
            bind.execute(sa.text("UPDATE sla_rules SET escalation_minutes = :m WHERE id = :id"),
                         {"m": minutes, "id": items[0]["value"]})
    op.drop_index('ix_tickets_escalation_due_at', table_name='tickets')
    if bind.dialect.name == "sqlite":
        # In place, as 0012 does: a batch copy of `tickets` would break the search triggers of 0010.
        op.execute("ALTER TABLE tickets DROP COLUMN escalation_due_at")
    else:
        with op.batch_alter_table('tickets', schema=None) as batch_op:
            batch_op.drop_column('escalation_due_at')
    with op.batch_alter_table('escalation_events', schema=None) as batch_op:
        batch_op.drop_index('ix_escalation_events_ticket_fired')
    op.drop_table('escalation_events')
    with op.batch_alter_table('escalation_levels', schema=None) as batch_op:
        batch_op.drop_index('ix_escalation_levels_policy_position')
    op.drop_table('escalation_levels')
    with op.batch_alter_table('escalation_policies', schema=None) as batch_op:
        batch_op.drop_index('ix_escalation_policies_entity_position')
    op.drop_table('escalation_policies')
