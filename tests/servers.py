"""Real local servers for the tests (a pytest plugin, loaded by tests/conftest.py): free ports, an SMTP
sink, a private redis-server and an HTTP receiver, with one fixture each.

Every server listens on 127.0.0.1 only and is stopped by the code that started it (a fixture's
teardown, the benchmark's `finally`), so a failing test never leaves one behind. The mail benchmark
(bench/mail_throughput.py) uses the same redis-server, ports and waits; its SMTP sink is postfix's
smtp-sink (a Python sink would saturate before METS does).
"""
import asyncio
import email
import email.policy
import hmac
import json
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import standardwebhooks
from aiosmtpd.controller import Controller
from redis import Redis
from redis.exceptions import RedisError


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
    real server. The test chooses answers per recipient address: `replies` (also called `rcpt`)
    for its RCPT ("550 ..."), `data` for the DATA of a message to it; refused messages are not kept.
    """

    def __init__(self, delay: float = 0.0, replies: dict[str, str] | None = None, keep: bool = True):
        self.delay = delay
        self.replies = self.rcpt = {k.lower(): v for k, v in (replies or {}).items()}
        self.data: dict[str, str] = {}
        self.keep = keep
        self.count = 0
        self.first_at = self.last_at = None  # time.time() of the first and last delivery
        self.envelopes = []  # what was accepted, in order (a test may clear it)
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if reply := self.replies.get(address.lower()):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            if reply := self.data.get(address.lower()):
                return reply
        with self._lock:
            self.count += 1
            self.last_at = time.time()
            self.first_at = self.first_at or self.last_at
            if self.keep:
                self.envelopes.append(envelope)
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"

    def _kept(self) -> list:
        with self._lock:
            return list(self.envelopes)

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.original_content or e.content, policy=email.policy.default)
                for e in self._kept()]

    def message_ids(self) -> Counter:
        """Deliveries per Message-ID."""
        return Counter(m["Message-ID"] for m in self.messages)

    def recipients(self) -> list[str]:
        return [r for e in self._kept() for r in e.rcpt_tos]


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
        end_process(self.process, group=False)
        self.process = None


def end_process(process, group: bool, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; always reaps. `group`: the process group it leads."""
    import os
    import signal

    def signal_group(sig):
        try:
            os.killpg(process.pid, sig)  # the group this process leads (start_new_session): it and its children
        except (ProcessLookupError, PermissionError):
            pass

    if group:
        signal_group(signal.SIGTERM)
    elif process.poll() is None:
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    if group:
        signal_group(signal.SIGKILL)  # also a scheduler child that outlived its parent
    if process.poll() is None:
        process.kill()
    process.wait(10)


# -- HTTP (webhooks and the SMS gateway) --------------------------------------------------------

@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))


class Receiver:
    """A real HTTP receiver: http.server in a thread on 127.0.0.1.

    It answers with the (status, body, headers) the test scripts, in order, then 200; it keeps every
    request it got. `stop()` and `start()` again on the same port simulate a receiver outage.
    """

    def __init__(self, port: int = 0):
        self.port = port
        self.answers: list[tuple[int, str, dict]] = []
        self.requests: list[Received] = []
        self._server = None
        self._lock = threading.Lock()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, status: int, body: str = "", headers: dict | None = None) -> "Receiver":
        """Script the next answer (answers are used in order; then 200 "ok")."""
        self.answers.append((status, body, headers or {}))
        return self

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                    status, text, headers = receiver.answers.pop(0) if receiver.answers else (200, "ok", {})
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """What a receiver does with webhook-id, webhook-timestamp and webhook-signature, with the `standardwebhooks`
    package, but at the try's own instant: the tests' frozen clock signs in the past, which the package's own
    `verify` (five minutes' tolerance of the real time) would refuse. `verify_now` is the receiver's real check."""
    headers = {k.lower(): v for k, v in headers.items()}
    at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), timezone.utc)
    expected = standardwebhooks.Webhook(secret).sign(headers["webhook-id"], at, body.decode("utf-8"))
    return any(hmac.compare_digest(expected, passed) for passed in headers["webhook-signature"].split(" "))


def verify_now(secret: str, headers: dict, body: bytes):
    """The receiver's check as the README writes it: `standardwebhooks.Webhook(secret).verify(body, headers)`
    (signature and timestamp within five minutes of now); the parsed payload, or WebhookVerificationError."""
    return standardwebhooks.Webhook(secret).verify(body, headers)


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture
def smtp_server():
    """A real SMTP server on a free local port, started; a test may stop and restart it."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sink(smtp_server) -> Sink:
    """What the SMTP server received (and the answers it gives)."""
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
def receiver():
    """A started HTTP Receiver, stopped after the test whatever happens."""
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
