"""A real HTTP receiver for the webhook and SMS tests: http.server in a thread on 127.0.0.1.

It answers with the (status, body, headers) the test scripts, in order, then 200; it keeps every
request it got. `stop()` and `start()` again on the same port simulate a receiver outage.
"""
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))


class Receiver:
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
    """What a receiver does with X-METS-Timestamp and X-METS-Signature (the README's recipe)."""
    expected = "sha256=" + hmac.new(secret.encode(), headers["X-METS-Timestamp"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-METS-Signature"])


@pytest.fixture
def receiver():
    """A started Receiver, stopped after the test whatever happens."""
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
