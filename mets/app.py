"""`create_app(config)`: the Flask app with its extensions, event subscriptions, blueprints and CLI."""
import os

from flask import Flask, has_request_context
from sqlalchemy import event

from mets import auth_setup, cli, errors, security, templating, throttle
from mets.blueprints import admin, auth, catalog, hours, mail_templates, portal, rules, sla_rules, tickets, webhooks
from mets.blueprints import api
from mets.blueprints import automation as automation_pages
from mets.blueprints import endpoints as endpoint_pages
from mets.blueprints import escalation as escalation_pages
from mets.blueprints import mail as mail_pages
from mets.blueprints import metrics as metrics_pages
from mets.extensions import csrf, db, limiter, login_manager, mail, migrate
from mets.models.schema import include_object
from mets.services import automation, escalation, metrics
from mets.services import webhooks as webhook_endpoints
from mets.services.notifications import notify
from mets.web import IdConverter

BLUEPRINTS = (auth, tickets, admin, hours, sla_rules, mail_pages, mail_templates, portal, rules, webhooks,
              automation_pages, catalog, escalation_pages, metrics_pages, endpoint_pages, api)


def create_app(config: dict | None = None) -> Flask:
    """Build the app; `config` overrides settings (tests pass their database here)."""
    app = Flask("mets", instance_path=os.environ.get("METS_INSTANCE_DIR") or None)
    app.url_map.converters["int"] = IdConverter  # before any route is added: every <int:...> is bounded
    app.config.from_object("mets.config.Config")
    if config:
        app.config.update(config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:"):
        os.makedirs(app.config["METS_INSTANCE_DIR"], exist_ok=True)
        # SQLite has no server-side pool; keep its defaults.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}

    app.config["SECRET_KEY"] = security.resolve_secret_key(app.config)
    throttle.check_settings(app.config)
    # Throttle counts live beside the job queues when there is a Redis, so every web process shares them.
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"),
                     render_as_batch=True, include_object=include_object, compare_type=True)
    csrf.init_app(app)
    mail.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    security.init_app(app)

    # Ticket changes, SLA points and CSAT answers reach their subscribers through mets.events, in this order:
    # a change's own notifications are queued and its metrics written before the rules it triggers act
    # (a rule's changes are changes of their own, heard inside automation's turn: after their cause).
    notify.init_app(app)
    metrics.init_app(app)
    webhook_endpoints.init_app(app)  # before automation: a change's event is queued before those of its rules' changes
    automation.init_app(app)
    escalation.init_app(app)  # after automation: it re-times a ticket once the rules have changed it
    auth_setup.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:"):
        _sqlite_pragmas(app)
    return app


def _sqlite_pragmas(app: Flask) -> None:
    """Foreign keys on, WAL so the web server and the worker can share the file, and requests' transactions that
    take the write lock when they begin."""
    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            if ":memory:" not in app.config["SQLALCHEMY_DATABASE_URI"]:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        # SQLite has one writer. A transaction that has read and then writes cannot wait for the write lock: if
        # the worker committed in between, SQLite refuses it at once ("database is locked"), and requests failed
        # that way in the embedded run. A request's transaction takes the lock when it begins, so it waits its turn
        # (busy_timeout) instead; pysqlite then begins nothing itself, and COMMIT or ROLLBACK end it as usual.
        # The worker's jobs begin as pysqlite does (at their first write): a job records its run
        # (services.health) and its mail on a second connection while its own transaction is open, which would
        # then wait on itself.
        @event.listens_for(engine, "begin")
        def _on_begin(connection):
            autocommit = connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
            if has_request_context() and not autocommit:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
