"""`make run` as a developer runs it: on another port its links follow, and Ctrl-C stops it quietly."""
import email
import email.policy
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(instance):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MAIL_SERVER", "METS_BASE_URL", "METS_MAILDIR")}
    env["METS_INSTANCE_DIR"] = str(instance)
    return env


def _opener():
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _csrf(html):
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _mails(instance):
    """The mail the worker wrote to the instance's Maildir: recipient, subject and plain-text body of each."""
    new, texts = instance / "maildir" / "new", []
    for path in sorted(new.iterdir()) if new.is_dir() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        texts.append(f"To: {message['to']}\n{message['subject']}\n{message.get_body(('plain',)).get_content()}")
    return texts


@pytest.fixture
def seeded_instance(tmp_path):
    """An instance of the test's own, already seeded with a few tickets (so `make run` skips the 300-ticket seed)."""
    instance = tmp_path / "instance"
    env = _env(instance)
    flask = str(VENV_BIN / "flask")
    subprocess.run([flask, "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=120)
    subprocess.run([flask, "--app", "wsgi", "mets", "seed-demo", "--tickets", "3"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    return instance


def test_make_run_on_another_port_links_there_and_ctrl_c_stops_both_quietly(seeded_instance):
    instance, port = seeded_instance, _free_port()
    base = f"http://127.0.0.1:{port}"
    # -o: never reinstall the (shared) virtualenv from a test; VENV: the interpreter running the tests.
    proc = subprocess.Popen(["make", "-s", "-o", f"{VENV_BIN.parent}/.installed", "run", f"PORT={port}",
                             f"VENV={VENV_BIN.parent}"],
                            cwd=ROOT, env=_env(instance), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)
    try:
        web = _opener()

        def page(path, data=None):
            try:
                body = urllib.parse.urlencode(data).encode() if data is not None else None
                with web.open(base + path, data=body, timeout=5) as response:
                    return response.read().decode()
            except OSError:
                return None

        login = _wait_for(lambda: page("/portal/login"), 120, "the page to answer")
        sent = page("/portal/login", {"csrf_token": _csrf(login), "email": "kemi.new@example.com"})
        assert sent and "kemi.new@example.com" in sent
        link_mail = _wait_for(lambda: [m for m in _mails(instance) if "sign in" in m.lower()], 30, "the link mail")[0]
        link = re.search(rf"{re.escape(base)}/portal/auth/[\w.\-]+", link_mail)
        assert link, f"the sign-in link does not use {base}: {link_mail[:2000]}"

        # The customer signs in with it and opens a ticket: the receipt links to the same address.
        assert page(link.group(0)[len(base):]) is not None
        form = page("/portal/tickets/new")
        entity = re.search(r'<option[^>]*value="(\d+)"', form).group(1)
        assert page("/portal/tickets/new", {"csrf_token": _csrf(form), "entity_id": entity, "subject": "VAT invoice",
                                            "body": "Please resend it.", "priority": "normal"}) is not None
        # The customer's receipt (the entity's staff are told of the new ticket too, with a staff link).
        receipt = _wait_for(lambda: [m for m in _mails(instance) if "VAT invoice" in m and "kemi.new@example.com" in m],
                            30, "the receipt")[0]
        assert f"{base}/portal/" in receipt
        assert ":5000" not in link_mail + receipt
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: SIGINT to the whole group
        out, err = proc.communicate(timeout=30)

    assert proc.returncode in (0, -signal.SIGINT, 130), (proc.returncode, err)
    assert "Segmentation fault" not in err and "Error" not in err and "make: ***" not in err, err
    assert f"Staff portal:    {base}/login" in out  # the console's links too
    alive = subprocess.run(["ps", "-o", "pid=,cmd=", "-g", str(proc.pid)], capture_output=True, text=True).stdout
    assert not alive.strip(), f"left running: {alive}"
