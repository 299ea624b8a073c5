"""Ticket numbers under concurrency: many workers creating tickets in one entity at once.

Each thread pushes its own app context, so it has its own SQLAlchemy session and its own
database connection, like separate web workers. All threads start together on a barrier.
"""
import threading

import pytest
from sqlalchemy import func, select

from mets.extensions import db
from mets.models import Entity, Ticket, TicketEvent, User
from mets.services import tickets
from tests.factories import make_customer, make_entity, make_staff

pytestmark = pytest.mark.committing  # each thread has its own connection

THREADS = 8
PER_THREAD = 10


def create_concurrently(app, entity_id: int, actor_id: int, customer_id: int) -> list[str]:
    barrier = threading.Barrier(THREADS, timeout=30)
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        try:
            with app.app_context():
                session = db.session
                entity = session.get(Entity, entity_id)
                actor = session.get(User, actor_id)
                customer = session.get(User, customer_id)
                mine = []
                barrier.wait()
                for n in range(PER_THREAD):
                    change = tickets.create_ticket(session, actor=actor, entity=entity, customer=customer,
                                                   subject=f"Thread {index} ticket {n}", body="Concurrent")
                    mine.append(change.ticket.number)
                    session.commit()
                with lock:
                    numbers.extend(mine)
        except BaseException as exc:  # reported below, with the thread's own traceback
            barrier.abort()
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), name=f"creator-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a creator thread hung"
    if errors:
        raise errors[0]
    return numbers


def run_and_check(app, session):
    acme = make_entity(name="Acme", slug="acme")
    agent = make_staff(acme)
    customer = make_customer()
    session.commit()
    ids = acme.id, agent.id, customer.id
    session.close()  # the main thread holds no connection or lock while the workers run

    numbers = create_concurrently(app, *ids)

    total = THREADS * PER_THREAD
    assert len(numbers) == total
    assert len(set(numbers)) == total, "two tickets got the same number"
    assert sorted(numbers, key=lambda n: int(n.rsplit("-", 1)[1])) == [f"ACME-{1000 + i}" for i in range(1, total + 1)]
    stored = session.scalars(select(Ticket.number).order_by(Ticket.seq)).all()
    assert stored == [f"ACME-{1000 + i}" for i in range(1, total + 1)]
    assert session.get(Entity, ids[0]).ticket_seq == 1000 + total
    assert session.scalar(select(func.count()).select_from(TicketEvent)
                          .where(TicketEvent.event == "ticket_created")) == total
    # Each thread's own tickets were numbered in the order it created them.
    for index in range(THREADS):
        mine = session.scalars(select(Ticket.seq).where(Ticket.subject.like(f"Thread {index} ticket %"))
                               .order_by(Ticket.id)).all()
        assert mine == sorted(mine) and len(mine) == PER_THREAD


@pytest.mark.postgresql
@pytest.mark.parametrize("backend", ["postgresql"])
def test_concurrent_creates_get_unique_consecutive_numbers_on_postgresql(app, session, backend):
    """PostgreSQL: the UPDATE ... RETURNING on the entity row serialises number hand-out."""
    assert db.engine.dialect.name == "postgresql"
    run_and_check(app, session)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_concurrent_creates_get_unique_consecutive_numbers_on_sqlite_file(app, session, backend):
    """SQLite (a file, WAL, busy_timeout=5000): writers queue on the database lock."""
    assert db.engine.dialect.name == "sqlite"
    assert ":memory:" not in str(db.engine.url)
    run_and_check(app, session)
