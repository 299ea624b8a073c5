"""Real parts for the mail tests and the mail benchmark: `python worker.py` processes and the settings
they share with the test app, and reads of the outbox. The SMTP sink and the private redis-server
are tests/servers.py's (re-exported here for the benchmark).

Every part is started and stopped by the code that owns it (a fixture's teardown, the benchmark's
`finally`), so a failing test never leaves a server or a worker behind.
"""
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from mets.models import QueuedEmail
from tests.servers import RedisServer, Sink, SmtpServer, end_process, free_port, wait_until  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[2]
SENDER = "METS Support <support@mets.example>"


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
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group it leads: it and its rq cron child
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process, group=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- fixtures (the test modules import them by name) ------------------------------------------


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
