"""The `flask --app wsgi mets ...` commands a newcomer and an operator run."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mets import clock, jobs
from mets.models import METRIC_TYPES, CsatResponse, Entity, Membership, Reply, ResponseMetric, Ticket, User
from mets.services import macros
from mets.services.directory import categories, entities, users
from tests.conftest import count_rows
from tests.servers import free_port



def test_seed_demo_builds_a_realistic_install_once(app, session):
    # 60 tickets, not the default 300: the same install at a fifth of the suite's longest test.
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mets", "seed-demo", "--tickets", "60"])
    assert result.exit_code == 0, result.output
    assert "admin@mets.example / demo-password" in result.output

    acme = session.scalar(select(Entity).where(Entity.slug == "acme"))
    assert sorted(child.name for child in acme.children) == ["Acme Billing", "Acme IT"]
    assert count_rows(session, Entity, Entity.parent_id.is_(None)) == 2  # Acme and the unrelated Globex
    assert count_rows(session, Ticket) == 60
    assert count_rows(session, Reply) > 60
    assert count_rows(session, User, User.kind == "customer") >= 30
    assert {m.tier for m in session.scalars(select(Membership))} >= {1, 2, 3}
    assert users.authenticate(session, "admin@mets.example", "demo-password").is_admin
    # SLA clocks run on the demo: most tickets have a rule, and the catch-up tick found breaches.
    assert count_rows(session, Ticket, Ticket.sla_rule_id.is_not(None)) > 50  # 5 in 6, as with 300
    assert count_rows(session, Ticket, Ticket.sla_response_breached.is_(True)) > 0
    # The portal offers Acme's teams (Acme Corp preselected), not the unrelated Globex; each has categories.
    assert [e.name for e in entities.portal_entities(session)] == ["Acme Billing", "Acme Corp", "Acme IT"]
    assert entities.portal_default(session).name == "Acme Corp"
    assert categories.categories_for(session, acme.children[0]).names == ("billing", "refunds")
    assert [m.name for m in macros.macros_for(session, acme.children[0])] == ["Ask for a screenshot", "Refund issued"]
    # Numbers rise with creation time within each entity.
    for entity in session.scalars(select(Entity)):
        rows = session.execute(select(Ticket.seq, Ticket.created_at).where(Ticket.entity_id == entity.id)
                               .order_by(Ticket.seq)).all()
        assert [r.created_at for r in rows] == sorted(r.created_at for r in rows)

    # Its 30 days of history have response metrics, filled from their ticket events by the rebuild.
    completed = {kind: count_rows(session, ResponseMetric, ResponseMetric.metric_type == kind,
                                  ResponseMetric.end_at.is_not(None)) for kind in METRIC_TYPES}
    assert count_rows(session, ResponseMetric, ResponseMetric.metric_type == "first_response") == 60
    assert completed["first_response"] > 10 and completed["full_resolution"] > 5, completed
    assert completed["response"] > 0 and completed["waiting_on_customer"] > 0, completed
    assert count_rows(session, ResponseMetric, ResponseMetric.within_sla.is_(False)) > 0
    assert session.scalar(select(func.sum(Ticket.public_reply_count))) > 0
    # And satisfaction surveys, a day after each resolution, some answered (no mail: history).
    surveys = count_rows(session, CsatResponse)
    assert 0 < count_rows(session, CsatResponse, CsatResponse.score.is_not(None)) < surveys
    assert surveys <= count_rows(session, Ticket, Ticket.status.in_(("resolved", "closed")))
    assert count_rows(session, Ticket, Ticket.csat_due_at.is_not(None)) == 0
    written = sorted(session.execute(select(ResponseMetric.ticket_id, ResponseMetric.metric_type,
                                            ResponseMetric.seq, ResponseMetric.business_minutes)).all())
    rebuilt = runner.invoke(args=["mets", "metrics-rebuild", "--since", "2000-01-01"])
    assert rebuilt.exit_code == 0 and "of 60 tickets" in rebuilt.output
    session.expire_all()
    assert sorted(session.execute(select(ResponseMetric.ticket_id, ResponseMetric.metric_type,
                                         ResponseMetric.seq, ResponseMetric.business_minutes)).all()) == written

    again = runner.invoke(args=["mets", "seed-demo"])
    assert again.exit_code != 0 and "already has users" in again.output
    idempotent = runner.invoke(args=["mets", "seed-demo", "--if-empty"])
    assert idempotent.exit_code == 0 and "not seeding again" in idempotent.output
    assert count_rows(session, Ticket) == 60


def test_create_admin_makes_a_first_administrator(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mets", "create-admin", "--email", "Boss@Example.com", "--name", "Boss",
                                 "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    assert users.authenticate(session, "boss@example.com", "a-long-password").is_admin
    short = runner.invoke(args=["mets", "create-admin", "--email", "x@example.com", "--name", "X",
                                "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output


def test_health_fails_until_the_periodic_jobs_have_run_and_again_when_they_stall(app, session):
    runner = app.test_cli_runner()
    fresh = runner.invoke(args=["mets", "health"])
    assert fresh.exit_code == 1
    assert "SLA tick               never ran (every 60 s)  STALE" in fresh.output
    assert "UNHEALTHY: SLA tick never ran; Outbox sweep never ran." in fresh.output

    now = clock.now()
    with clock.freeze(now):
        for job, _period_key in jobs.PERIODIC.values():  # what a worker runs, in the same way
            job()
        ran = runner.invoke(args=["mets", "health"])
    assert ran.exit_code == 0, ran.output
    assert "SLA tick               last ran 0 s ago, last succeeded 0 s ago (every 60 s)" in ran.output
    assert "Outbox sweep           last ran 0 s ago, last succeeded 0 s ago (every 30 s)" in ran.output
    assert "Healthy." in ran.output

    # Two minutes without a sweep: more than 3 periods of 30 s (the tick, every 60 s, is still in time).
    with clock.freeze(now + timedelta(minutes=2)):
        stalled = runner.invoke(args=["mets", "health"])
    assert stalled.exit_code == 1
    assert "UNHEALTHY: Outbox sweep has not succeeded for 2 min (expected every 30 s)." in stalled.output

    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    no_redis = runner.invoke(args=["mets", "health"])
    assert no_redis.exit_code == 1
    assert "Redis                  UNREACHABLE" in no_redis.output and "Redis is unreachable" in no_redis.output


def test_health_shows_a_failing_jobs_last_error(app, session):
    now = clock.now()
    with clock.freeze(now - timedelta(seconds=10)):
        for job, _period_key in jobs.PERIODIC.values():
            job()
    with clock.freeze(now):
        app.config["AUTOMATION_LOG_DAYS"] = "ninety"  # an operator's typo: the prune job fails on it
        with pytest.raises(TypeError):
            jobs.automation_log_prune()
        result = app.test_cli_runner().invoke(args=["mets", "health"])
    assert result.exit_code == 0, result.output  # pruning the log is not what an install cannot do without
    assert "Automation log prune   last ran 0 s ago, last succeeded 10 s ago (every 1 h)" in result.output
    assert "last error 0 s ago: TypeError: unsupported type for timedelta days component: str" in result.output
