"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and undo cleanly.

Each test migrates its own empty database with the real command (`flask --app wsgi db upgrade`,
as `make migrate` does): a fresh SQLite file, or a throwaway PostgreSQL database created next
to TEST_DATABASE_URL's and dropped afterwards even when the test fails.
"""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from mets.extensions import db
from mets.models.schema import is_migration_only_table
from tests.conftest import PG_URL, make_app
from tests.factories import make_entity, make_staff, make_ticket

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.committing  # its own databases, and the real `flask db` command on them
MODEL_TABLES = {t.name for t in db.metadata.sorted_tables}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """The URL of an empty database nobody else uses."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    base = make_url(PG_URL)
    name = f"{base.database}_mig"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def flask_db(url: str, tmp_path: Path, *args: str) -> str:
    """Run `flask --app wsgi db ARGS` against `url` like an operator would; return its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "FLASK_APP")}
    env.update(DATABASE_URL=url, METS_INSTANCE_DIR=str(tmp_path / "instance"), SECRET_KEY="migration-test")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"flask db {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def schema_differences(app) -> list:
    """What autogenerate would put in a new migration, with the app's own Alembic settings."""
    opts = dict(app.extensions["migrate"].configure_args)
    with db.engine.connect() as conn, warnings.catch_warnings():
        # SQLite cannot reflect migration 0021's expression indexes, which autogenerate is told to leave alone.
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        context = MigrationContext.configure(conn, opts=opts)
        return compare_metadata(context, db.metadata)


def table_names() -> set[str]:
    names = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    return {n for n in names if not is_migration_only_table(n)}  # SQLite's FTS5 table of ticket search


def current_revision() -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@pytest.fixture
def migrated_app(empty_database, tmp_path):
    """An app on the database after `flask db upgrade`, with its context pushed."""
    output = flask_db(empty_database, tmp_path, "upgrade")
    assert "Running upgrade" in output
    app = make_app(empty_database, tmp_path)
    ctx = app.app_context()
    ctx.push()
    try:
        yield app
    finally:
        db.session.remove()
        db.engine.dispose()
        ctx.pop()


def head_revision(app) -> str:
    from alembic.script import ScriptDirectory
    from flask_migrate import Config

    config = Config(os.path.join(app.extensions["migrate"].directory, "alembic.ini"))
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config).get_current_head()


def test_upgrade_builds_exactly_the_models_schema(migrated_app):
    assert table_names() == MODEL_TABLES
    assert current_revision() == head_revision(migrated_app)
    assert schema_differences(migrated_app) == []


def test_the_comparison_notices_a_schema_that_drifted(migrated_app):
    """Guards the test above: a missing index must show up as a difference."""
    with db.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_tickets_created_at"))
    diffs = schema_differences(migrated_app)
    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_tickets_created_at")]


def test_downgrade_to_base_and_upgrade_again(migrated_app, empty_database, tmp_path):
    # Some data first: downgrading an install that was used must work too.
    entity = make_entity(name="Acme", slug="acme", parent=None)
    make_ticket(entity, actor=make_staff(entity))
    db.session.commit()
    db.session.remove()
    db.engine.dispose()  # the CLI needs the database to itself (SQLite locks, PostgreSQL DDL locks)

    flask_db(empty_database, tmp_path, "downgrade", "base")
    assert table_names() == set()
    assert current_revision() is None
    db.engine.dispose()

    flask_db(empty_database, tmp_path, "upgrade")
    assert table_names() == MODEL_TABLES
    assert schema_differences(migrated_app) == []
    # The re-created schema works: numbering starts afresh.
    entity = make_entity(name="Acme", slug="acme")
    assert make_ticket(entity, actor=make_staff(entity)).number == "ACME-1001"
    db.session.commit()


def test_an_sla_rules_escalation_target_becomes_a_one_level_policy(migrated_app, empty_database, tmp_path):
    """0016: an install whose SLA rule escalates after 4h keeps escalating, through a policy, exactly once. The
    target and its clock exist only below 0022, so the install is taken down there and given them by hand, as
    the SLA tick of the time left them (a point fired for the ticket opened earliest)."""
    from datetime import datetime, timezone

    import sqlalchemy as sa
    from sqlalchemy import select

    from mets import clock
    from mets.models import EscalationEvent, EscalationPolicy, QueuedEmail, Ticket
    from mets.models.types import UTCDateTime
    from mets.services import escalation
    from tests.factories import make_customer, make_rule

    def utc(hour):
        return datetime(2026, 11, 10, hour, tzinfo=timezone.utc)

    acme = make_entity(name="Acme", slug="acme")
    make_staff(acme, role="manager", email="lee@acme.example")
    rule = make_rule(acme, "Standard", resolution_minutes=8 * 60, business_hours_only=False)
    customer = make_customer()
    with clock.freeze(utc(9)):
        waiting = make_ticket(acme, customer=customer)
        escalated = make_ticket(acme, customer=customer)
    with clock.freeze(utc(6)):
        late = make_ticket(acme, customer=customer)  # created earlier: its escalation fired before the upgrade
    db.session.commit()
    ids, rule_id, acme_id = (waiting.id, escalated.id, late.id), rule.id, acme.id
    db.session.remove()
    db.engine.dispose()
    flask_db(empty_database, tmp_path, "downgrade", "0013")  # as the install stood before escalation policies
    db.engine.dispose()
    tickets_table = sa.table("tickets", sa.column("id", sa.Integer), sa.column("sla_escalation_due", UTCDateTime()))
    firings = sa.table("sla_firings", sa.column("ticket_id", sa.Integer), sa.column("clock", sa.String),
                       sa.column("point", sa.String), sa.column("cycle", sa.Integer),
                       sa.column("due_at", UTCDateTime()), sa.column("fired_at", UTCDateTime()),
                       sa.column("suppressed", sa.Boolean))
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE sla_rules SET escalation_minutes = 240 WHERE id = :id"), {"id": rule_id})
        for ticket_id, due in ((ids[0], utc(13)), (ids[1], utc(13)), (ids[2], utc(10))):
            conn.execute(tickets_table.update().where(tickets_table.c.id == ticket_id).values(sla_escalation_due=due))
        conn.execute(firings.insert(), {"ticket_id": ids[2], "clock": "escalation", "point": "escalation", "cycle": 0,
                                        "due_at": utc(10), "fired_at": utc(11), "suppressed": False})
    db.engine.dispose()
    flask_db(empty_database, tmp_path, "upgrade")
    db.engine.dispose()

    policy = db.session.scalars(select(EscalationPolicy)).one()
    assert (policy.entity_id, policy.clock, policy.business_time) == (acme_id, "since_created", False)
    assert policy.conditions == {"all": [{"field": "sla.rule_id", "op": "is", "value": rule_id}]}
    assert [(lv.trigger, lv.value) for lv in policy.levels] == [("after_duration", 240)]
    waiting = db.session.get(Ticket, ids[0])
    assert waiting.escalation_due_at == utc(13)
    late_event = db.session.scalars(select(EscalationEvent).where(EscalationEvent.ticket_id == ids[2])).one()
    assert late_event.level_number == 1  # recorded as reached: never fired a second time

    assert sorted(t for t, _ in escalation.tick(db.session, utc(13))) == [ids[0], ids[1]]
    assert escalation.tick(db.session, utc(14)) == []
    db.session.remove()
    assert db.session.get(Ticket, ids[0]).escalation_level == 1
    told = db.session.scalars(select(QueuedEmail.recipient_email).where(QueuedEmail.ticket_id == ids[0],
                                                                        QueuedEmail.event == "escalation")).all()
    assert told == ["lee@acme.example"]  # the manager, once (settings and the level's managers are one person)
    db.session.remove()
    db.engine.dispose()

    flask_db(empty_database, tmp_path, "downgrade", "0013")  # and back: the rule gets its target again
    db.engine.dispose()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT escalation_minutes FROM sla_rules")).scalar() == 240


def test_rule_webhook_secrets_become_whsec_secrets_with_the_same_key(migrated_app, empty_database, tmp_path):
    """0025: a rule's (and a level's) old secret S becomes "whsec_" + base64(S), so the receiver's key is the
    same bytes; a queued delivery's too, and it gets a webhook-id. Downgrading gives S back."""
    import base64
    import json

    db.session.remove()
    db.engine.dispose()
    flask_db(empty_database, tmp_path, "downgrade", "0024_api_tokens")  # as the install stood before 0025
    db.engine.dispose()
    old = [{"type": "webhook", "url": "https://hooks.example/in", "secret": "s3cret"},
           {"type": "webhook", "url": "https://hooks.example/unsigned"}, {"type": "set_priority", "priority": "high"}]
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO automation_rules (name, trigger_event, actions, is_active, stop_processing, "
                          "execution_order, created_at, updated_at) VALUES ('Hook', 'ticket_created', :actions, "
                          "false, false, 0, '2026-01-01 00:00:00+00', '2026-01-01 00:00:00+00')"),
                     {"actions": json.dumps(old)})
        conn.execute(text("INSERT INTO webhook_deliveries (kind, url, body, secret, status, attempts, max_attempts, "
                          "attempt_log, created_at) VALUES ('webhook', 'https://hooks.example/in', '{}', 's3cret', "
                          "'pending', 0, 6, '[]', '2026-01-01 00:00:00+00')"))
    flask_db(empty_database, tmp_path, "upgrade")
    db.engine.dispose()
    converted = "whsec_" + base64.b64encode(b"s3cret").decode()
    with db.engine.connect() as conn:
        actions = conn.execute(text("SELECT actions FROM automation_rules")).scalar()
        actions = json.loads(actions) if isinstance(actions, str) else actions
        assert actions == [{**old[0], "secret": converted}, old[1], old[2]]
        secret, message_id = conn.execute(text("SELECT secret, message_id FROM webhook_deliveries")).one()
        assert secret == converted and message_id.startswith("msg_")
    import standardwebhooks

    assert standardwebhooks.Webhook(converted)._whsecret == b"s3cret"  # the very key the receiver holds

    flask_db(empty_database, tmp_path, "downgrade", "0024_api_tokens")
    db.engine.dispose()
    with db.engine.connect() as conn:
        actions = conn.execute(text("SELECT actions FROM automation_rules")).scalar()
        assert (json.loads(actions) if isinstance(actions, str) else actions) == old


def test_the_coarse_rollup_levels_are_filled_from_the_fine_rows(migrated_app, empty_database, tmp_path):
    """0026: the entity and agent levels of the days already rolled up are the fine rows summed, with their running
    histograms; the ticket rollups stay empty (the tickets are read raw until a roll-up)."""
    db.session.remove()
    db.engine.dispose()
    flask_db(empty_database, tmp_path, "downgrade", "0025_webhook_endpoints")
    db.engine.dispose()
    pg = db.engine.dialect.name == "postgresql"

    def ints(values):
        return "{" + ",".join(map(str, values)) + "}" if pg else "[" + ",".join(map(str, values)) + "]"

    entity = make_entity("Acme", "acme")
    agent = make_staff(entity)
    db.session.commit()
    rows = [("2026-11-10", "normal", agent.id, 2, [5, 9], [1, 1]), ("2026-11-10", "high", None, 1, [9], [1]),
            ("2026-11-11", "normal", agent.id, 1, [7], [1])]
    with db.engine.begin() as conn:
        for day, priority, agent_id, n, bins, counts in rows:
            conn.execute(text(
                "INSERT INTO metric_rollups (day, entity_id, metric_type, priority, agent_id, count, business_count, "
                "business_minutes, duration_count, duration_minutes, within_sla, breached, business_bins, "
                "business_bin_counts, duration_bins, duration_bin_counts) VALUES (:day, :entity, 'first_response', "
                ":priority, :agent, :n, :n, 10.0, :n, 20.0, 1, 0, :bins, :counts, :bins, :counts)"),
                {"day": day, "entity": entity.id, "priority": priority, "agent": agent_id, "n": n,
                 "bins": ints(bins), "counts": ints(counts)})
    flask_db(empty_database, tmp_path, "upgrade")
    db.engine.dispose()

    def listed(value):
        import json
        return json.loads(value) if isinstance(value, str) else list(value)

    with db.engine.connect() as conn:
        found = conn.execute(text("SELECT day, count, within_sla, business_bins, business_bin_counts, "
                                  "business_run_bins, business_run_counts FROM metric_entity_rollups "
                                  "ORDER BY day")).all()
        assert [(str(r[0]), r[1], r[2], *map(listed, r[3:])) for r in found] == [
            ("2026-11-10", 3, 2, [5, 9], [1, 2], [5, 9], [1, 2]),
            ("2026-11-11", 1, 1, [7], [1], [5, 7, 9], [1, 1, 2])]
        agents = conn.execute(text("SELECT day, agent_id, count, business_run_bins, business_run_counts "
                                   "FROM metric_agent_rollups ORDER BY day, agent_id")).all()
        assert sorted((str(r[0]), r[1] or 0, r[2], listed(r[3]), listed(r[4])) for r in agents) == [
            ("2026-11-10", 0, 1, [9], [1]), ("2026-11-10", agent.id, 2, [5, 9], [1, 1]),
            ("2026-11-11", agent.id, 1, [5, 7, 9], [1, 1, 1])]
        assert conn.execute(text("SELECT count(*) FROM ticket_rollups")).scalar() == 0
