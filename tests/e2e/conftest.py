"""Browser fixtures: the real app served on a free local port, and Chromium driven by Playwright.

The server runs in a background thread of the test process (werkzeug, threaded) on a fresh SQLite
file built by the Alembic migrations, with CSRF on exactly as in production, and `worker.py` runs
beside it as a process of its own (the embedded loop, as `make run` starts it): mail reaches the
Maildir only the way it does for a user. Chromium is the
system's (CHROMIUM_PATH, default /usr/bin/chromium); Playwright cannot download its own here.
"""
import mailbox
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from email import message_from_binary_file, policy
from pathlib import Path

import pytest
from flask import Flask, got_request_exception
from werkzeug.serving import make_server

from mets.extensions import db
from tests.conftest import _migrated_url, make_app
from tests.e2e.helpers import Accessibility

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
# Root needs --no-sandbox; the rest keep Chromium from calling out to a network it cannot reach.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    """The running app: its URL, its Maildir, and any exception a request raised."""

    app: Flask
    url: str
    maildir: Path
    errors: list = field(default_factory=list)

    def app_context(self):
        """An app context for building data with tests/factories.py (commit before the browser looks)."""
        return self.app.app_context()

    def messages_to(self, address: str, count: int = 1, timeout: float = 15) -> list:
        """Messages in the Maildir addressed to `address` (EmailMessage), once the worker has sent `count`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._read(address)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def _read(self, address: str) -> list:
        if not self.maildir.exists():
            return []
        box = mailbox.Maildir(self.maildir, factory=lambda f: message_from_binary_file(f, policy=policy.default),
                              create=False)
        return [m for m in box if address in m["To"]]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's report on the item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def live_server(request, tmp_path_factory, tmp_path):
    """The app on a fresh migrated SQLite file, served on 127.0.0.1:<free port> until the test ends."""
    url = _migrated_url("sqlite", tmp_path_factory)
    maildir = tmp_path / "maildir"
    app = make_app(url, tmp_path, TESTING=False, WTF_CSRF_ENABLED=True, SECRET_KEY=secrets.token_hex(16),
                   MAILDIR=str(maildir))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    live = LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}", maildir=maildir)
    app.config["METS_BASE_URL"] = live.url  # links in emails must point at this server

    def record(sender, exception, **extra):
        live.errors.append(exception)

    got_request_exception.connect(record, app, weak=False)
    thread = threading.Thread(target=server.serve_forever, name="mets-e2e-server", daemon=True)
    thread.start()
    worker = _start_worker(app, tmp_path)

    def stop():
        worker.terminate()
        worker.wait(timeout=10)
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        got_request_exception.disconnect(record, app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    request.addfinalizer(stop)  # registered before anything else can fail
    yield live
    # A 500 the page happened to survive is still a bug.
    assert not live.errors, f"the server raised: {live.errors!r}"


def _start_worker(app: Flask, tmp_path: Path) -> subprocess.Popen:
    """worker.py in its embedded loop on the same database, Maildir and links as the server."""
    config = app.config
    env = {**os.environ, "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"], "METS_MAILDIR": config["MAILDIR"],
           "METS_BASE_URL": config["METS_BASE_URL"], "SECRET_KEY": config["SECRET_KEY"],
           "METS_INSTANCE_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    env.pop("MAIL_SERVER", None)
    log = open(tmp_path / "worker.log", "w")
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the session."""
    if not os.path.exists(CHROMIUM_PATH):
        pytest.skip(f"no Chromium at {CHROMIUM_PATH} (set CHROMIUM_PATH)")  # a failure in CI
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture
def page(request, browser, live_server, tmp_path):
    """A fresh browser context (no cookies) on the live server; fails the test on any JavaScript error (but those
    a test expects: `request.node.console_expected`, regular expressions)."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    request.addfinalizer(context.close)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def on_console(msg):
        # The app ships no favicon; the browser's 404 for it is not a page problem. Nor are the answers base.html
        # tells htmx to swap in place (422: field errors, 409: a reply held because the ticket changed), which
        # Chromium logs as failed loads all the same.
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico") \
                and not re.search(r"Failed to load resource: .* status of (409|422) ", msg.text) \
                and not any(re.search(p, f"{msg.text} ({msg.location.get('url')})")
                            for p in getattr(request.node, "console_expected", ())):
            problems.append(f"console error: {msg.text} ({msg.location.get('url')})")

    tab.on("console", on_console)
    tab.accessibility_check = Accessibility()  # every page loaded, and every state `settled` waits for
    tab.on("load", tab.accessibility_check.check)
    yield tab
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed and not tab.is_closed():
        tab.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
    if not tab.is_closed():
        tab.accessibility_check.check(tab)
    assert not problems, "\n".join(problems)
    found = tab.accessibility_check.problems
    assert not found, "axe found serious or critical violations:\n" + "\n".join(dict.fromkeys(found))
