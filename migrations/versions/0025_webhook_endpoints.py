"""webhook endpoints: per-entity receivers of events (Standard Webhooks), the deliveries' endpoint, message id and
type, and the automation webhook action's secrets as whsec_ secrets

Revision ID: 0025_webhook_endpoints
Revises: 0024_api_tokens
Create Date: 2026-12-01 19:30:00.000000

"""
import base64
import json

from alembic import op
import sqlalchemy as sa

import mets.models.types


# revision identifiers, used by Alembic.
revision = '0025_webhook_endpoints'
down_revision = '0024_api_tokens'
branch_labels = None
depends_on = None

PREFIX = "whsec_"


def upgrade():
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('previous_secret', sa.String(length=200), nullable=True),
    sa.Column('previous_secret_until', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('disabled_at', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.Text(), nullable=True),
    sa.Column('failing_since', mets.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mets.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_webhook_endpoints_entity_id_entities'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_endpoints_entity', ['entity_id', 'active'], unique=False)

    # webhook_deliveries has no triggers, so SQLite's table copy (batch mode, for the foreign key) is harmless.
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('endpoint_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('event_type', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('message_id', sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'),
                                    'webhook_endpoints', ['endpoint_id'], ['id'], ondelete='CASCADE')
        batch_op.create_index('ix_webhook_deliveries_endpoint', ['endpoint_id', 'id'], unique=False)
    # Rows queued before this version get a webhook-id too (the id keeps it unique and stable over retries).
    op.execute("UPDATE webhook_deliveries SET message_id = 'msg_' || id WHERE kind = 'webhook'")

    # Rule and level webhooks now sign as Standard Webhooks do, keyed with the bytes after "whsec_" (base64).
    # "whsec_" + base64(old secret) keeps the very key the receiver holds: only the headers' format changes.
    _convert_secrets(_to_whsec)


def downgrade():
    _convert_secrets(_from_whsec)
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_endpoint')
        batch_op.drop_constraint(batch_op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'),
                                 type_='foreignkey')
        batch_op.drop_column('message_id')
        batch_op.drop_column('event_type')
        batch_op.drop_column('endpoint_id')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_endpoints_entity')
    op.drop_table('webhook_endpoints')


def _to_whsec(secret: str) -> str:
    if secret.startswith(PREFIX):
        return secret
    return PREFIX + base64.b64encode(secret.encode("utf-8")).decode("ascii")


def _from_whsec(secret: str) -> str:
    if not secret.startswith(PREFIX):
        return secret
    try:
        return base64.b64decode(secret[len(PREFIX):] + "==").decode("utf-8")
    except ValueError:  # a generated secret's random bytes: no text form; keep it (the old scheme signs with it)
        return secret


def _convert_secrets(convert) -> None:
    bind = op.get_bind()
    for table in ("automation_rules", "escalation_levels"):
        for row_id, actions in bind.execute(sa.text(f"SELECT id, actions FROM {table}")).all():
            actions = json.loads(actions) if isinstance(actions, str) else actions
            changed = False
            for action in actions or []:
                if isinstance(action, dict) and action.get("type") == "webhook" and action.get("secret"):
                    new = convert(action["secret"])
                    changed |= new != action["secret"]
                    action["secret"] = new
            if changed:
                value = "CAST(:actions AS JSON)" if bind.dialect.name == "postgresql" else ":actions"
                bind.execute(sa.text(f"UPDATE {table} SET actions = {value} WHERE id = :id"),
                             {"actions": json.dumps(actions), "id": row_id})
    for row_id, secret in bind.execute(sa.text(
            "SELECT id, secret FROM webhook_deliveries WHERE secret IS NOT NULL AND status IN ('pending', 'sending')")
    ).all():
        bind.execute(sa.text("UPDATE webhook_deliveries SET secret = :secret WHERE id = :id"),
                     {"secret": convert(secret), "id": row_id})
