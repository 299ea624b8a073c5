"""What every app gets for its safety: the signing key, the response headers, and the proxy in front.

The secret key signs sessions, remember cookies, CSRF tokens and portal links, so whoever knows it
can sign in as anyone. The rule: SECRET_KEY from the environment when set (never a published or
guessable value); unset, the embedded run (SQLite) makes a random key once and keeps it in
`<instance>/secret_key` (mode 0600), which the web process and worker.py both read; unset with a
server database (anything but SQLite, i.e. a production install), the app refuses to start.
"""
import os
import secrets
import time
from functools import wraps
from pathlib import Path

from flask import Flask, g
from werkzeug.middleware.proxy_fix import ProxyFix

KEY_FILE = "secret_key"
# The old shipped default (sessions were forged with it) and the values anyone tries first.
WEAK_KEYS = frozenset({"dev-only-change-me", "dev", "development", "secret", "secret-key", "secret_key",
                       "changeme", "change-me", "change_me", "please-change-me", "mets", "test"})
HOW_TO_SET = ("Generate one with `python -c 'import secrets; print(secrets.token_hex(32))'` and set it as "
              "SECRET_KEY in the environment of the web server and of every worker (the same value everywhere).")

# 'self' only: no inline script anywhere (templates use static files), no plugins, no framing.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'{styles}; img-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def resolve_secret_key(config) -> str:
    """The key this app signs with, following the rule in the module docstring; RuntimeError when refused."""
    key = config.get("SECRET_KEY")
    if key:
        _refuse_weak(key, "SECRET_KEY")
        return key
    if not config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:"):
        raise RuntimeError("SECRET_KEY is not set. A server database means a production install, where every "
                           "process must sign with one real secret. " + HOW_TO_SET)
    path = Path(config["METS_INSTANCE_DIR"]) / KEY_FILE
    key = _instance_key(path)
    _refuse_weak(key, str(path))
    return key


def _refuse_weak(key: str, where: str) -> None:
    if key.strip().lower() in WEAK_KEYS:
        raise RuntimeError(f"The secret key in {where} is a known, published value: anyone could sign in as "
                           f"any user with it. {HOW_TO_SET}")


def _instance_key(path: Path) -> str:
    """The key in `path`, created once with a fresh random value (only its owner may read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        try:
            # O_EXCL: when the web process and the worker start together, exactly one creates the file.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)  # the other process created it a moment ago and is still writing
            continue
        key = secrets.token_hex(32)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key
    raise RuntimeError(f"{path} is empty. Delete it to have a new key made (everyone is signed out), "
                       f"or set SECRET_KEY. {HOW_TO_SET}")


def allows_inline_styles(view):
    """For pages that show an email's HTML in a sandboxed `srcdoc` iframe.

    A srcdoc document inherits its page's CSP, and email HTML is styled inline (style attributes
    are all mail clients honour), so these pages alone allow inline styles. Scripts stay refused,
    and the empty sandbox runs none anyway.
    """
    @wraps(view)
    def wrapped(*args, **kwargs):
        g.csp_inline_styles = True
        return view(*args, **kwargs)
    return wrapped


def _headers(response):
    styles = " 'unsafe-inline'" if g.get("csp_inline_styles") else ""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP.format(styles=styles))
    headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for browsers that predate it
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # Ticket URLs carry numbers and searches: other sites never see them, the app's own pages do.
    headers.setdefault("Referrer-Policy", "same-origin")
    return response


def init_app(app: Flask) -> None:
    """Headers on every response, and client addresses from the trusted proxies (TRUSTED_PROXY_COUNT)."""
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config["SESSION_COOKIE_SECURE"])
    app.after_request(_headers)
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        # Only as many X-Forwarded-* hops as there are proxies we run: a client cannot pick its own address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
