"""Real parts for the mail tests and the mail benchmark: an SMTP sink that can be stopped and started
on a fixed port, a private redis-server, and `python worker.py` processes.

Every part is started and stopped by the code that owns it (a fixture's teardown, the benchmark's
`finally`), so a failing test never leaves a server or a worker behind.
"""
import asyncio
import email
import email.policy
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from mets.models import QueuedEmail

ROOT = Path(__file__).resolve().parents[2]
SENDER = "METS Support <support@mets.example>"


def free_port() -> int:
    """A TCP port nobody listens on right now (bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float = 30.0, interval: float = 0.1, what: str = "the condition", state=None):
    """Poll `condition()` until it is truthy (returned) or `timeout` seconds pass (AssertionError).

    `state()`, if given, describes what was seen instead, for the failure message.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; last seen: {state()}" if state else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
        time.sleep(interval)


# -- SMTP --------------------------------------------------------------------------------------

class Sink:
    """aiosmtpd handler that keeps (or only counts) what it is handed.

    A message counts as delivered when its data has arrived, before the optional `delay`: a
    client killed while waiting for the final 250 has still handed its message over, as with a
    real server. `replies` maps a recipient address to the answer its RCPT gets ("550 ...").
    """

    def __init__(self, delay: float = 0.0, replies: dict[str, str] | None = None, keep: bool = True):
        self.delay = delay
        self.replies = {k.lower(): v for k, v in (replies or {}).items()}
        self.keep = keep
        self.count = 0
        self.first_at = self.last_at = None  # time.time() of the first and last delivery
        self._envelopes = []
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if reply := self.replies.get(address.lower()):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.count += 1
            self.last_at = time.time()
            self.first_at = self.first_at or self.last_at
            if self.keep:
                self._envelopes.append(envelope)
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"

    @property
    def envelopes(self) -> list:
        with self._lock:
            return list(self._envelopes)

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.original_content or e.content, policy=email.policy.default)
                for e in self.envelopes]

    def message_ids(self) -> Counter:
        """Deliveries per Message-ID."""
        return Counter(m["Message-ID"] for m in self.messages)

    def recipients(self) -> list[str]:
        return [r for e in self.envelopes for r in e.rcpt_tos]


class SmtpServer:
    """A real SMTP server on 127.0.0.1:`port`; `start()`/`stop()` any number of times on the same port."""

    def __init__(self, handler: Sink | None = None, port: int | None = None):
        self.handler = handler or Sink()
        self.port = port or free_port()
        self.hostname = "127.0.0.1"
        self._controller = None

    def start(self) -> "SmtpServer":
        self._controller = Controller(self.handler, hostname=self.hostname, port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# -- Redis -------------------------------------------------------------------------------------

class RedisServer:
    """A private redis-server (no persistence) on a spare port; stop and start it to simulate an outage."""

    def __init__(self, directory: Path, port: int | None = None):
        self.port = port or free_port()
        self.directory = Path(directory)
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            wait_until(lambda: self._pings(client), timeout=10, interval=0.02, what=f"redis-server on {self.port}")
        finally:
            client.close()
        return self

    def _pings(self, client) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.directory}/redis.log")
        try:
            return client.ping()
        except RedisError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        _end(self.process, group=False)
        self.process = None


# -- workers -----------------------------------------------------------------------------------

def mail_settings(redis_url: str | None, smtp_port: int, **extra) -> dict:
    """The settings the test app and its workers share (fast retries, sweeps and reclaims)."""
    return {
        "REDIS_URL": redis_url,
        "RQ_QUEUE_PREFIX": f"mets-test-{uuid.uuid4().hex[:12]}",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_port,
        "MAIL_DEFAULT_SENDER": SENDER,
        "MAIL_SUPPRESS_SEND": False,  # Flask-Mail suppresses sending under TESTING otherwise
        "MAIL_RETRY_BASE_SECONDS": 1,
        "MAIL_SWEEP_SECONDS": 1,
        "MAIL_CLAIM_STALE_SECONDS": 2,
        "MAIL_RATE_PER_RECIPIENT_HOUR": 0,
        "MAIL_SMTP_TIMEOUT": 5,
        **extra,
    }


def worker_env(app_config, settings: dict, instance_dir: Path) -> dict:
    """The environment of a worker process: the app's database, secret and base URL, plus `settings`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MAIL_", "RQ_", "METS_", "PORTAL_", "SLA_"))
           and k not in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY")}
    env["SLA_TICK_SECONDS"] = "3600"  # the tests drive the SLA tick themselves, unless `settings` says otherwise
    env.update({k: str(v) for k, v in settings.items() if v is not None and k != "MAIL_SUPPRESS_SEND"})
    env.update({
        "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": app_config["SECRET_KEY"],
        "METS_BASE_URL": app_config["METS_BASE_URL"],
        "METS_INSTANCE_DIR": str(instance_dir),
        "PYTHONUNBUFFERED": "1",
    })
    return env


class WorkerProcess:
    """`python worker.py` in its own process group (the worker and its rq cron child)."""

    def __init__(self, env: dict, log_path: Path, cron: bool = True, args=()):
        self.env = env
        self.log_path = Path(log_path)
        self.args = [*args, *([] if cron else ["--no-cron"])]
        self.process = None

    def start(self) -> "WorkerProcess":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "worker.py", *self.args], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost machine would: no cleanup runs, claims stay behind."""
        _signal_group(self.process, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            _end(self.process, group=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _signal_group(process, sig) -> None:
    try:
        os.killpg(process.pid, sig)  # the group this process leads (start_new_session): it and its children
    except (ProcessLookupError, PermissionError):
        pass


def _end(process, group: bool, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; always reaps."""
    if group:
        _signal_group(process, signal.SIGTERM)
    elif process.poll() is None:
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    if group:
        _signal_group(process, signal.SIGKILL)  # also a scheduler child that outlived its parent
    if process.poll() is None:
        process.kill()
    process.wait(10)


# -- fixtures (the test modules import them by name) ------------------------------------------


@pytest.fixture
def smtp_server():
    """A real SMTP server on a fixed local port, started; a test may stop and restart it."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sink(smtp_server):
    return smtp_server.handler


@pytest.fixture
def redis_server(tmp_path):
    """A private redis-server on a spare port (the machine's shared one is never touched or stopped)."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mail_config(redis_server, smtp_server) -> dict:
    return mail_settings(redis_server.url, smtp_server.port)


@pytest.fixture
def app_overrides(mail_config) -> dict:
    """The web side enqueues on the same Redis and queues the workers listen to."""
    return dict(mail_config)


@pytest.fixture
def start_worker(app, tmp_path, mail_config):
    """Start `python worker.py` processes: start_worker(cron=True, **settings); all stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(cron: bool = True, **settings) -> WorkerProcess:
        env = worker_env(app.config, {**mail_config, **settings}, tmp_path / "instance")
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started) + 1}.log", cron=cron)
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        for worker in started:  # shown by pytest when the test failed
            print(f"--- {worker.log_path.name} (last lines) ---\n{worker.log_tail()}")


@dataclass(frozen=True)
class Row:
    id: int
    recipient_email: str
    subject: str
    status: str
    priority: int
    attempts: int
    error_message: str | None
    attempt_log: list
    next_attempt_at: datetime
    message_id: str


def outbox_rows(session) -> list[Row]:
    """The outbox as the workers left it (a fresh read; the test's transaction is ended at once)."""
    rows = session.execute(select(*(getattr(QueuedEmail, f) for f in Row.__dataclass_fields__))
                           .order_by(QueuedEmail.id)).all()
    session.rollback()
    return [Row(*r) for r in rows]


def statuses(session) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in outbox_rows(session):
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def all_sent(session, expected: int | None = None) -> bool:
    rows = outbox_rows(session)
    return bool(rows) and all(r.status == "sent" for r in rows) and (expected is None or len(rows) == expected)
