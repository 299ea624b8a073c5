"""Counting attempts at the sign-in doors, in Flask-Limiter's storage (Redis with REDIS_URL, else memory).

Staff sign-in counts failures only: per address tried and per client. Portal link requests count
every request (each one mails someone): per address asked for and per client. Known and unknown
addresses count alike, so being throttled reveals nothing about who has an account.

Limits are checked before the work and counted after it, as Flask-Limiter's `deduct_when` does: a
burst of requests already in flight when the limit is reached can still pass, at most one per
server worker.
"""
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache

from flask import current_app
from limits import RateLimitItem, parse

from mets.extensions import limiter

log = logging.getLogger(__name__)


@lru_cache(maxsize=32)
def _parse(text: str) -> RateLimitItem:
    return parse(text)


def check_settings(config) -> None:
    """Fail at start-up, not at the first sign-in, on a limit that does not parse."""
    for throttle in ALL:
        text = (config.get(throttle.setting) or "").strip()
        if text:
            try:
                _parse(text)
            except ValueError as exc:
                raise RuntimeError(f"{throttle.setting}={text!r} is not a limit such as \"5 per 15 minutes\"") from exc


@dataclass(frozen=True)
class Throttle:
    """One limit from the config (`setting`, "N per M minutes"; empty: off), counted per key within `scope`."""

    scope: str
    setting: str

    def _limit(self) -> RateLimitItem | None:
        text = (current_app.config.get(self.setting) or "").strip()
        return _parse(text) if text else None

    def _ids(self, key: str) -> tuple[str, str, str]:
        # Hashed: the store never holds the addresses people typed. The prefix keeps installs sharing a Redis apart.
        return (current_app.config["RQ_QUEUE_PREFIX"], self.scope, hashlib.sha256(key.encode()).hexdigest()[:32])

    def _call(self, method: str, key: str, default):
        limit = self._limit()
        if limit is None:
            return default
        try:
            return getattr(limiter.limiter, method)(limit, *self._ids(key))
        except Exception as exc:  # the store is down: sign-in keeps working unthrottled rather than not at all
            log.warning("throttle %s not applied, the rate limit storage failed: %s", self.scope, exc)
            return default

    def allows(self, key: str) -> bool:
        """Whether one more attempt for `key` is within the limit; counts nothing."""
        return self._call("test", key, True)

    def hit(self, key: str) -> bool:
        """Count one attempt for `key`; False when it is over the limit (the attempt is refused)."""
        return self._call("hit", key, True)

    def clear(self, key: str) -> None:
        """Forget the attempts counted for `key`."""
        self._call("clear", key, None)

    def retry_after(self, key: str) -> int:
        """Seconds until the next attempt for `key` is allowed again (at least 1)."""
        stats = self._call("get_window_stats", key, None)
        return max(1, math.ceil(stats.reset_time - time.time())) if stats else 60


LOGIN_ACCOUNT = Throttle("login-account", "LOGIN_RATE_LIMIT_ACCOUNT")
LOGIN_CLIENT = Throttle("login-client", "LOGIN_RATE_LIMIT_CLIENT")
LINK_ADDRESS = Throttle("portal-link-address", "PORTAL_LINK_RATE_LIMIT_ADDRESS")
LINK_CLIENT = Throttle("portal-link-client", "PORTAL_LINK_RATE_LIMIT_CLIENT")
ALL = (LOGIN_ACCOUNT, LOGIN_CLIENT, LINK_ADDRESS, LINK_CLIENT)


def login_wait(email: str, client: str) -> int:
    """0 when this sign-in may be tried, else the seconds to wait (too many failures for the address or client)."""
    waits = [t.retry_after(k) for t, k in ((LOGIN_ACCOUNT, email), (LOGIN_CLIENT, client)) if not t.allows(k)]
    return max(waits, default=0)


def login_failed(email: str, client: str) -> None:
    """Count a failed sign-in against the address and the client."""
    LOGIN_ACCOUNT.hit(email)
    LOGIN_CLIENT.hit(client)


def login_succeeded(email: str) -> None:
    """The password was right: the address starts afresh (the client's count stays, it may be guessing others)."""
    LOGIN_ACCOUNT.clear(email)


def wait_phrase(seconds: int) -> str:
    """"14 minutes", "1 minute", "30 seconds": how long to wait, as the pages say it."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
