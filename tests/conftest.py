"""Fixtures shared by every test: an app on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.

The schema is built once per backend by running the Alembic migrations (so the migrations are
tested too). The app is built once per backend (and per set of `app_overrides`) and each test runs
in a transaction rolled back at its end (tests/database.py), its settings restored afterwards.
Tests marked `committing` (all that use worker processes, threads or other connections) get a new
app each and really commit, on a database emptied before and after them; `fresh_app` tests get a
new app (they add routes to it) but still roll back.
"""
import os
import re
import shutil
from collections import OrderedDict
from pathlib import Path

import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from mets import clock, create_app
from mets.extensions import db, limiter
from tests.database import PG_URL, Pinned, empty_all_tables, reset_postgres
from tests.factories import PASSWORD

pytest_plugins = ["tests.servers"]

BACKENDS = ["sqlite", "postgresql"]
_empty_all_tables = empty_all_tables  # the name the test modules import


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI every service exists, so a skipped test is a failure, never a silent pass."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI: {report.longrepr}"


def _migrate(url: str) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "SECRET_KEY": "test-secret"})
    with app.app_context():
        upgrade()
        db.engine.dispose()


_sqlite_template: list[Path] = []  # this process's migrated SQLite file, copied for each new database


def _migrated_url(backend: str, tmp_path_factory) -> str:
    if backend == "postgresql":
        if not PG_URL:
            pytest.skip("TEST_DATABASE_URL is not set")
        reset_postgres(PG_URL)
        _migrate(PG_URL)
        return PG_URL
    if not _sqlite_template:
        template = tmp_path_factory.mktemp("template") / "mets.db"
        _migrate(f"sqlite:///{template}")
        _sqlite_template.append(template)
    path = tmp_path_factory.mktemp("db") / "mets.db"
    shutil.copyfile(_sqlite_template[0], path)  # the migrations once, not once per browser test
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory):
    """Migrated databases, built lazily once per backend."""
    cache: dict[str, str] = {}

    def get(backend: str) -> str:
        if backend not in cache:
            cache[backend] = _migrated_url(backend, tmp_path_factory)
        return cache[backend]

    return get


def make_app(url: str, tmp_path: Path, **overrides):
    config = {
        "SQLALCHEMY_DATABASE_URI": url,
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "METS_BASE_URL": "http://mets.test",
        "MAILDIR": str(tmp_path / "maildir"),
        "MAIL_SERVER": None,
        "SERVER_NAME": None,
        # Real hashing and checking, with a work factor that lets the suite sign in hundreds of times.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def app_overrides() -> dict:
    """Extra settings for the `app` fixture; a test module overrides this fixture to change them."""
    return {}


class _Apps:
    """The apps the suite keeps, by backend and settings (a few: most tests share one per backend)."""

    SIZE = 8

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.apps: OrderedDict = OrderedDict()
        self.pinned: Pinned | None = None  # a transaction kept with a module's snapshot (the `snapshot` fixture)

    def take_pinned(self, key) -> "Pinned | None":
        """The kept transaction if it is `key`'s; any other is rolled back first (on SQLite it holds the lock)."""
        pinned, self.pinned = self.pinned, None
        if pinned is not None and (key is None or pinned.key != key):
            pinned.release()
            pinned = None
        return pinned

    def keep_pinned(self, pinned: "Pinned") -> None:
        if pinned.rewind():
            self.pinned = pinned
        else:
            pinned.release()

    def get(self, url: str, overrides: dict):
        key = (url, repr(sorted(overrides.items())))
        if key in self.apps:
            self.apps.move_to_end(key)
            return self.apps[key]
        application = make_app(url, self.tmp_path, **overrides)
        self.apps[key] = application
        if len(self.apps) > self.SIZE:
            _, old = self.apps.popitem(last=False)
            _dispose(old)
        return application

    def close(self) -> None:
        self.take_pinned(None)
        while self.apps:
            _dispose(self.apps.popitem()[1])


def _dispose(application) -> None:
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def _kept_apps(tmp_path_factory):
    apps = _Apps(tmp_path_factory.mktemp("kept-app"))
    yield apps
    apps.close()


def _forget_process_caches() -> None:
    """What a new app and an emptied database gave each test before: no memory of earlier tests' rows."""
    from mets.services import hours
    from mets.services.automation import engine as automation_engine
    from mets.services.notifications import templates as mail_templates

    automation_engine._PROCESS_CACHE.update(version=None, index=None)
    hours.clear_cache()
    mail_templates._override_cache.clear()
    mail_templates._over_budget.clear()


@pytest.fixture
def app(request, backend, database_urls, tmp_path, app_overrides, _kept_apps):
    """An app on a migrated, empty database, with its app context pushed."""
    url = database_urls(backend)
    fresh = request.node.get_closest_marker("fresh_app") is not None
    committing = request.node.get_closest_marker("committing") is not None
    # A test that reuses its module's snapshot continues the transaction the previous one left, if it was its.
    key = None if fresh or committing or "snapshot" not in request.fixturenames else \
        (url, repr(sorted(app_overrides.items())), request.module.__name__)
    pinned = _kept_apps.take_pinned(key)
    if committing:
        yield from _committing_app(url, tmp_path, app_overrides)
        return
    application = make_app(url, tmp_path, **app_overrides) if fresh else _kept_apps.get(url, app_overrides)
    saved = application.config.copy()
    application.config["MAILDIR"] = str(tmp_path / "maildir")
    limiter.init_app(application)  # fresh throttle counts (the hooks are added once per app)
    _forget_process_caches()
    ctx = application.app_context()
    ctx.push()
    try:
        if pinned is None:
            pinned = Pinned(application)
        request.node.stash[PINNED] = pinned, key
        yield application
    finally:
        try:
            db.session.remove()
        finally:
            if pinned is not None and pinned.key is not None and pinned.key == key:
                _kept_apps.keep_pinned(pinned)
            elif pinned is not None:
                pinned.release()
            ctx.pop()
            application.config.clear()
            application.config.update(saved)
            clock.set_now(None)
            if fresh:
                _dispose(application)


def _committing_app(url, tmp_path, overrides):
    """A new app whose commits are real, on a database emptied before and after the test."""
    application = make_app(url, tmp_path, **overrides)
    ctx = application.app_context()
    ctx.push()
    _empty_all_tables()
    try:
        yield application
    finally:
        try:
            db.session.remove()
            _empty_all_tables()  # the next test may be one that only rolls back
            db.session.remove()
        finally:
            db.engine.dispose()
            ctx.pop()
            clock.set_now(None)


@pytest.fixture
def session(app):
    return db.session


PINNED = pytest.StashKey()


@pytest.fixture
def snapshot(request, app):
    """Rows every test of a module starts from, built once: `snapshot(build)` runs `build()` (which writes them
    and returns plain values: ids, numbers, addresses) for the module's first test and returns what it returned.

    The rows are kept in the transaction the module's tests share; each test runs in a SAVEPOINT after them and
    is rolled back to it, so a test sees exactly the rows it would have seen had it built them itself. A test of
    another module, another app or a committing one rolls the whole transaction back. What `build` returns must
    not hold ORM objects (they belong to the first test's session): tests load what they need by id.
    """
    pinned, key = request.node.stash[PINNED]

    def take(build):
        if pinned.snapshot is None:
            values = build()
            db.session.commit()
            db.session.remove()  # every test, the first too, starts with an empty identity map
            pinned.keep(key, (build.__qualname__, values))
        name, values = pinned.snapshot
        assert name == build.__qualname__, f"one snapshot per module: {name} is kept, {build.__qualname__} asked"
        return values

    return take


CSRF_RAW = "test-csrf-raw-token"


class CSRFClient(FlaskClient):
    """A test client that sends a valid CSRF token with every unsafe request, like base.html does.

    Pass `csrf=False` to send none (to test that the app refuses it).
    """

    def open(self, *args, csrf: bool = True, **kwargs):
        # Every request reuses the test's app context, and with it `g`, which in production is new per
        # request: Flask-Login keeps the loaded user there (a request would see whoever the previous one,
        # of any client, was), the CSP its per-page exceptions. Start each request with an empty one.
        if has_app_context():
            for name in list(g):
                g.pop(name)
        method = (kwargs.get("method") or "GET").upper()
        if csrf and method not in ("GET", "HEAD", "OPTIONS"):
            with self.session_transaction() as sess:
                sess["csrf_token"] = CSRF_RAW
            token = URLSafeTimedSerializer(self.application.secret_key, salt="wtf-csrf-token").dumps(CSRF_RAW)
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", token)
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = CSRFClient
    return app.test_client()


HTMX = {"HX-Request": "true"}


def login(client, user, password: str = PASSWORD):
    """Sign a staff user (or the staff user of an address) in through the real form."""
    response = client.post("/login", data={"email": getattr(user, "email", user), "password": password})
    assert response.status_code == 302, response.data[:500]
    return response


def login_customer(client, customer):
    """Sign a customer (or the customer of an address) in through a real portal link."""
    from mets.services.directory import portal_auth

    token = portal_auth.make_token(client.application.secret_key, getattr(customer, "email", customer))
    response = client.get(f"/portal/auth/{token}")
    assert response.status_code == 302
    return response


def text_of(response) -> str:
    """The response body as text with tags removed and whitespace collapsed, for user-visible asserts."""
    body = response.get_data(as_text=True)
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def count_rows(session, model, *where) -> int:
    """Rows of `model` in the database (matching `where`); loaded objects are expired first, so the
    test reads afterwards what the app wrote."""
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))
