"""The embedded run's SQLite shared by the web server and the worker: a request never fails on the write lock.

A request's transaction that has read (inside a savepoint: bulk changes make one per ticket) and then writes
cannot upgrade its lock once another connection committed in between: SQLite refuses at once with "database is
locked". So a request's transaction takes the write lock when it begins (mets.app), and the other writer waits.
"""
import threading

import pytest
from sqlalchemy import select, update

from mets.extensions import db
from mets.models import Entity
from tests.factories import make_entity

pytestmark = [pytest.mark.committing, pytest.mark.parametrize("backend", ["sqlite"])]


def test_a_requests_read_then_write_survives_a_worker_committing_in_between(app, session, backend):
    acme = make_entity("Acme", "acme")
    session.commit()
    acme_id = acme.id
    session.remove()
    outcome = {}

    def worker_writes():  # another process's job, on a connection of its own
        with app.app_context():
            try:
                db.session.execute(update(Entity).where(Entity.id == acme_id).values(name="Acme (worker)"))
                db.session.commit()
                outcome["worker"] = "committed"
            except Exception as exc:  # pragma: no cover - reported by the assertion below
                outcome["worker"] = repr(exc)
            finally:
                db.session.remove()

    with app.test_request_context("/tickets/bulk", method="POST"):
        with db.session.begin_nested():  # as the bulk change does, per ticket
            db.session.scalar(select(Entity.name).where(Entity.id == acme_id))
            other = threading.Thread(target=worker_writes)
            other.start()
            other.join(1.0)  # it waits for this request's lock (before the fix it committed here)
            db.session.execute(update(Entity).where(Entity.id == acme_id).values(slug="acme-billing"))
        db.session.commit()
        db.session.remove()
    other.join(10)

    assert outcome == {"worker": "committed"}
    with app.app_context():
        row = db.session.get(Entity, acme_id)
        assert (row.name, row.slug) == ("Acme (worker)", "acme-billing")  # both writes landed, one after the other
