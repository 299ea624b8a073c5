"""The suite's databases: one SQLite file and (with TEST_DATABASE_URL) one PostgreSQL database per
test process, migrated once; and the two ways a test gets a clean one.

- Most tests run inside one transaction on one connection that is rolled back at the end
  (`Pinned`): the app's session joins it with a SAVEPOINT per session transaction, so the app's
  commits and rollbacks behave as usual for everything that reads through that connection, and
  nothing is ever really committed.
- Tests marked `committing` (worker processes, threads, other connections: anything that must see
  real commits) get the database emptied before and after them, with real commits in between.

Under pytest-xdist each worker has its own databases: TEST_DATABASE_URL's database name gets the
worker's id as a suffix (`mets_test_gw0`), and the suite creates those databases when missing.
"""
import os
import threading
import time
from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError

from mets.extensions import db

WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ... in a pytest-xdist worker; None otherwise


def worker_url(url: str | None) -> str | None:
    """This test process's own PostgreSQL database: `url`'s, suffixed with the xdist worker id."""
    if not url or not WORKER:
        return url
    base = make_url(url)
    return base.set(database=f"{base.database}_{WORKER}").render_as_string(hide_password=False)


PG_URL = worker_url(os.environ.get("TEST_DATABASE_URL"))


def ensure_database(url: str) -> None:
    """Create `url`'s PostgreSQL database if it does not exist (connecting to `postgres` on the same server)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(20):
            with admin.connect() as conn:
                if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}):
                    return
                try:
                    conn.execute(text(f'CREATE DATABASE "{target.database}"'))
                    return
                except OperationalError:  # another worker copying template1 at this very moment
                    if attempt == 19:
                        raise
            time.sleep(0.25)
    finally:
        admin.dispose()


def reset_postgres(url: str) -> None:
    ensure_database(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


# -- emptying (the committing tests) -------------------------------------------------------------

def empty_all_tables() -> None:
    """DELETE is far cheaper than TRUNCATE on small PostgreSQL tables; tests never rely on ids."""
    # Departments point at their parent with ON DELETE RESTRICT, which SQLite checks row by row.
    db.session.execute(text("UPDATE entities SET parent_id = NULL WHERE parent_id IS NOT NULL"))
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()


def _filled_tables_query(dialect) -> str:
    quote = dialect.identifier_preparer.quote
    return " UNION ALL ".join(f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM {quote(t.name)})"
                              for t in db.metadata.sorted_tables)


def filled_tables(connection) -> list[str]:
    """Tables with rows in them (one round trip)."""
    return list(connection.execute(text(_filled_tables_query(connection.dialect))).scalars())


# -- one rolled-back transaction per test ---------------------------------------------------------

class TestConnection(Connection):
    """A test's only connection, held in a transaction that is rolled back after the test.

    It stands in for the app's engine (`db.engine`) during the test, so the few places that use the
    engine rather than the session stay inside the test's transaction too: `engine.begin()` is a
    SAVEPOINT, `connect()` hands out this connection again (its `close()` and isolation level are
    ignored). It may only be used from the thread that made it: a test whose other threads use the
    database needs real commits (the `committing` marker) and fails here instead of passing by luck.
    """

    __test__ = False  # not a test class, whatever its name

    def __init__(self, engine):
        super().__init__(engine)
        self._owner = threading.get_ident()
        event.listen(self, "before_cursor_execute", self._same_thread)

    def execution_options(self, **options) -> "TestConnection":
        options.pop("isolation_level", None)  # AUTOCOMMIT (mets.transaction.autocommit) would leave the test's
        return super().execution_options(**options)  # transaction: the request's reads stay inside it

    def _same_thread(self, *_args) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError("this test uses the database from another thread: mark it `committing`")

    @property
    def url(self):
        return self.engine.url

    def connect(self) -> "_Branch":
        return _Branch(self)

    def begin(self):
        if self.in_transaction():  # `with db.engine.begin() as connection:` in the app
            return self._savepoint()
        return super().begin()  # the test's own transaction, or SQLAlchemy's autobegin

    @contextmanager
    def _savepoint(self):
        with self.begin_nested():
            yield self


class _Branch:
    """`connect()` on the test's connection: the same connection, which its user cannot close."""

    def __init__(self, connection: TestConnection):
        self._connection = connection

    def execution_options(self, **_options) -> "_Branch":
        return self  # an AUTOCOMMIT isolation level would leave the test's transaction: it stays inside

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Branch":
        return self

    def __exit__(self, *_exc) -> None:
        pass

    def __getattr__(self, name):
        return getattr(self._connection, name)


class Pinned:
    """The app's session and engine pinned to one connection in a transaction, until `release()`."""

    def __init__(self, app):
        self.engines = db._app_engines[app]  # Flask-SQLAlchemy's engines of this app, by bind key
        self.engine = self.engines[None]
        self.connection = TestConnection(self.engine)
        self.sqlite = self.connection.dialect.name == "sqlite"
        if self.sqlite:
            # pysqlite begins transactions itself and breaks SAVEPOINTs; take over (SQLAlchemy's recipe).
            self.dbapi = self.connection.connection.dbapi_connection
            self.isolation_level = self.dbapi.isolation_level
            self.dbapi.isolation_level = None
        try:
            self._begin()
        except BaseException:
            self._close()
            raise
        self.factory = db.session.session_factory
        self.join_mode = self.factory.kw.get("join_transaction_mode")
        self.factory.kw["join_transaction_mode"] = "create_savepoint"
        self.engines[None] = self.connection  # Session.get_bind and db.engine now give the connection
        self.key = None  # with a snapshot: whose it is (see `keep`)
        self.snapshot = None  # the values its builder returned
        self._savepoint_txn = None

    # A snapshot: rows a module's tests all start from, built by the first of them and kept in this transaction
    # (a SAVEPOINT after them is where each later test starts and is rolled back to).
    def keep(self, key, values) -> None:
        self.key, self.snapshot = key, values
        self._savepoint_txn = self.connection.begin_nested()

    def rewind(self) -> bool:
        """Back to the snapshot for the next test; False if it cannot be (then release it)."""
        try:
            self._savepoint_txn.rollback()
            self._savepoint_txn = self.connection.begin_nested()
            return True
        except Exception:
            return False

    def _begin(self) -> None:
        filled = filled_tables(self.connection)
        self.connection.rollback()
        if filled:  # left by something that committed (committing tests clean up after themselves, but)
            with self.connection.begin():
                if self.sqlite:
                    self.connection.exec_driver_sql("BEGIN")
                self.connection.execute(text("UPDATE entities SET parent_id = NULL WHERE parent_id IS NOT NULL"))
                for table in reversed(db.metadata.sorted_tables):
                    if table.name in filled:
                        self.connection.execute(table.delete())
                if self.sqlite:
                    self.connection.exec_driver_sql("COMMIT")
        self.transaction = self.connection.begin()
        if self.sqlite:
            self.connection.exec_driver_sql("BEGIN")

    def release(self) -> None:
        self.engines[None] = self.engine
        if self.join_mode is None:
            self.factory.kw.pop("join_transaction_mode", None)
        else:
            self.factory.kw["join_transaction_mode"] = self.join_mode
        try:
            if self.transaction.is_active:
                self.transaction.rollback()
        finally:
            self._close()

    def _close(self) -> None:
        try:
            if self.sqlite:
                if self.dbapi.in_transaction:  # never left behind for the next user of the connection
                    self.dbapi.execute("ROLLBACK")
                self.dbapi.isolation_level = self.isolation_level
        finally:
            self.connection.close()
