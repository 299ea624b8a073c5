"""worker.py as an operator runs it: a real process that runs the SLA tick against the database."""
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from mets import clock
from mets.models import TicketEvent
from tests.factories import make_customer, make_entity, make_rule, make_ticket

ROOT = Path(__file__).resolve().parents[2]


def test_worker_once_fires_due_sla_points(app, session):
    acme = make_entity("Acme", "acme")
    make_rule(acme, "24/7", response_minutes=30, business_hours_only=False, warnings=[])
    with clock.freeze(datetime.now(timezone.utc) - timedelta(hours=2)):
        ticket = make_ticket(acme, customer=make_customer())
    session.commit()
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"]}
    done = subprocess.run([sys.executable, "worker.py", "--once"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 points fired" in done.stderr
    session.expire_all()
    events = session.scalars(select(TicketEvent.event).where(TicketEvent.ticket_id == ticket.id)).all()
    assert "sla_breach_occurred" in events
