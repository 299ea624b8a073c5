"""worker.py as an operator runs it: a real process that runs the SLA tick against the database."""
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from mets import clock, jobs
from mets.models import JobRun, TicketEvent
from tests.factories import make_customer, make_entity, make_rule, make_ticket

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.committing  # the worker process reads what the test committed


def test_worker_once_fires_due_sla_points(app, session):
    acme = make_entity("Acme", "acme")
    make_rule(acme, "24/7", response_minutes=30, business_hours_only=False, warnings=[])
    with clock.freeze(datetime.now(timezone.utc) - timedelta(hours=2)):
        ticket = make_ticket(acme, customer=make_customer())
    session.commit()
    # As an operator runs it: a server database needs the install's SECRET_KEY in every process.
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": "worker-test-" + "k" * 32}
    done = subprocess.run([sys.executable, "worker.py", "--once"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 points fired" in done.stderr
    session.expire_all()
    events = session.scalars(select(TicketEvent.event).where(TicketEvent.ticket_id == ticket.id)).all()
    assert "sla_breach_occurred" in events
    # The embedded loop records each run, as RQ and rq cron do: `mets health` sees it.
    runs = {r.name: r for r in session.scalars(select(JobRun))}
    assert set(runs) == set(jobs.PERIODIC)
    assert all(r.last_succeeded_at >= r.last_started_at and r.last_error is None for r in runs.values())
