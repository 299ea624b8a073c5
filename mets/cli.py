"""`flask --app wsgi mets ...` commands."""
import os
from datetime import timedelta, timezone

import click
from flask import current_app
from sqlalchemy import func, select

from mets import clock, jobs
from mets.extensions import db
from mets.models import User
from mets.services import demo, health, metrics
from mets.services.directory import users
from mets.services.errors import DomainError
from mets.services.sla import tick as sla_tick


def init_app(app):
    app.cli.add_command(mets_group)


@click.group("mets")
def mets_group():
    """METS administration commands."""


@mets_group.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) when the database already has users.")
@click.option("--tickets", default=300, show_default=True, help="How many demo tickets to create.")
def seed_demo(if_empty, tickets):
    """Fill an empty database with a realistic demo install."""
    if db.session.scalar(select(func.count()).select_from(User)):
        if if_empty:
            click.echo("Demo data already present; not seeding again.")
            _print_logins()
            return
        raise click.ClickException("The database already has users; seed-demo only fills an empty one.")
    info = demo.seed(db.session, tickets_count=tickets)
    db.session.commit()
    click.echo(f"Seeded {info['tickets']} tickets.")
    _print_logins()


def _print_logins():
    base = current_app.config["METS_BASE_URL"]
    click.echo("")
    click.echo(f"  Staff portal:    {base}/login")
    click.echo(f"    admin:         {demo.ADMIN_EMAIL} / {demo.DEMO_PASSWORD}")
    click.echo(f"    manager:       maria@acme.example / {demo.DEMO_PASSWORD}")
    click.echo(f"    agent:         bill@acme.example / {demo.DEMO_PASSWORD}")
    click.echo(f"  Customer portal: {base}/portal/login  (e.g. alice.smith0@example.com;")
    click.echo("                   the sign-in link is printed here and written to instance/maildir)")
    click.echo("")


@mets_group.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--name", prompt=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_admin(email, name, password):
    """Create the first administrator of a production install."""
    try:
        users.create_user(db.session, {"email": email, "name": name, "kind": "staff", "password": password,
                                       "is_admin": True})
    except DomainError as exc:
        raise click.ClickException(str(exc))
    db.session.commit()
    click.echo(f"Administrator {email} created.")


@mets_group.command("tick")
def tick_command():
    """Run the SLA tick once: act on every warning and breach point now due, then the escalation levels."""
    result = sla_tick.tick(db.session)
    click.echo(f"SLA tick: looked at {result.tickets} tickets, fired {len(result.fired)} points.")


@mets_group.command("metrics-rebuild")
@click.option("--since", "since", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First day (UTC) of the tickets' creation dates, YYYY-MM-DD.")
@click.option("--until", "until", type=click.DateTime(["%Y-%m-%d"]),
              help="Last day (UTC, included) of the tickets' creation dates, YYYY-MM-DD; default: no end.")
@click.option("--batch-size", default=500, show_default=True, help="Tickets per batch (one commit each).")
def metrics_rebuild(since, until, batch_size):
    """Rewrite the response metrics of the tickets created in a date range from their ticket events."""
    start = since.replace(tzinfo=timezone.utc)
    end = until.replace(tzinfo=timezone.utc) + timedelta(days=1) if until else None
    if end is not None and end <= start:
        raise click.ClickException("--until is before --since.")
    if not 1 <= batch_size <= 10_000:
        raise click.ClickException("--batch-size takes 1 to 10000.")
    done = metrics.rebuild(db.session, start, end, batch_size=batch_size, after_batch=lambda _: db.session.commit())
    db.session.commit()
    click.echo(f"Rebuilt the response metrics of {done} tickets.")


@mets_group.command("metrics-rollup")
@click.option("--since", "since", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First UTC day to roll up, YYYY-MM-DD.")
@click.option("--until", "until", type=click.DateTime(["%Y-%m-%d"]),
              help="Last UTC day (included), YYYY-MM-DD; default: today.")
def metrics_rollup(since, until):
    """Rewrite the daily rollups of the response metrics completed in a range of days (archived days are kept), and
    of the tickets created then (the first time: every day; and the days of the tickets changed since the last)."""
    last = until.date() if until else clock.now().date()
    if last < since.date():
        raise click.ClickException("--until is before --since.")
    written = metrics.rollups.roll_up(db.session, since.date(), last + timedelta(days=1))
    db.session.commit()
    click.echo(f"Wrote {written} rollup rows.")


@mets_group.command("metrics-archive")
@click.option("--to", "path", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The gzip CSV file to write (e.g. metrics-2024.csv.gz); it must not exist.")
@click.option("--older-than-days", "days", type=int, default=None,
              help="Archive the rows completed before this many days ago; default METRICS_RAW_RETENTION_DAYS.")
def metrics_archive(path, days):
    """Roll up, write to a gzip CSV and delete the raw response metrics completed before a configured age."""
    days = current_app.config["METRICS_RAW_RETENTION_DAYS"] if days is None else days
    if days < 1:
        raise click.ClickException("--older-than-days takes 1 or more.")
    if os.path.exists(path):
        raise click.ClickException(f"{path} exists: choose a new file.")
    before = clock.now().date() - timedelta(days=days)
    archived = metrics.rollups.archive(db.session, before, path)
    db.session.commit()
    click.echo(f"Archived {archived} response metric rows completed before {before} to {path}.")


@mets_group.command("health")
def health_command():
    """Print each periodic job's last run and Redis's state; exit 1 if the SLA tick or outbox sweep is stale."""
    report = health.report(db.session, clock.now(), jobs.periods(current_app.config),
                           current_app.config.get("REDIS_URL"))
    db.session.rollback()
    age = health.format_age
    for job in report.jobs:
        if job.ran_age is None:
            line = "never ran"
        else:
            line = f"last ran {age(job.ran_age)} ago, "
            line += "never succeeded" if job.never_ran else f"last succeeded {age(job.age)} ago"
        flag = "  STALE" if job.critical and job.stale else ""
        click.echo(f"{job.label:<22} {line} (every {age(job.period)}){flag}")
        if job.failing:
            click.echo(f"{'':<22} last error {age((clock.now() - job.failed_at).total_seconds())} ago: {job.error}")
    if report.redis_configured:
        redis_line = "reachable" if report.redis_ok else f"UNREACHABLE ({report.redis_error})"
    else:
        redis_line = "not configured (REDIS_URL unset: worker.py runs the jobs in its own loop)"
    click.echo(f"{'Redis':<22} {redis_line}")
    if report.ok:
        click.echo("Healthy.")
        return
    click.echo("UNHEALTHY: " + "; ".join(report.problems) + ".")
    click.get_current_context().exit(1)
