"""The HTTP channel of the outbox (`webhook_deliveries`): endpoints' events, automation's webhooks and SMS.

The state machine is `core`'s, as for mail: rows are queued in the caller's transaction, handed
to an RQ job (one per row) after commit, claimed with a token by a worker and POSTed; each
outcome is written only while the claim holds; failures retry with exponential backoff (at least
what a Retry-After asks) and every try is kept in `attempt_log`; the periodic sweep frees stale
claims and re-enqueues what is due (or, without Redis, sends it right there). An admin may
pause the channel (`webhooks_paused`) like mail.

Signing is Standard Webhooks' (https://www.standardwebhooks.com, the `standardwebhooks` package): every webhook
carries `webhook-id` (the row's `msg_` id, the same on every try and replay: receivers dedupe on it) and
`webhook-timestamp` (Unix seconds of this try); a signed one `webhook-signature: v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">`, keyed with the bytes a `whsec_<base64>` secret encodes. An endpoint's rows are signed
with the endpoint's secret of the moment (and, just after a rotation, its previous one too: space-separated);
a rule's webhook with the secret written on the row. Endpoint rows retry on the spec's schedule
(`WEBHOOK_RETRY_SCHEDULE`) instead of the channel's doubling backoff, and each of their tries is told on the
event bus (`webhook_attempted`) in the transaction that records it, so the endpoint's health is kept with it.

SSRF guard: at send time the host is resolved once, every address is checked (loopback,
private, link-local, reserved, multicast and unspecified are refused unless
WEBHOOK_ALLOW_PRIVATE), and the connection goes to the address checked, so a DNS answer that
changes between check and connect (rebinding) cannot reach an internal host. Redirects are
never followed.
"""
import base64
import binascii
import http.client
import ipaddress
import json
import logging
import re
import secrets
import socket
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import standardwebhooks
from flask import current_app
from sqlalchemy import select

from mets import clock, events, queueing
from mets.models import FAILED, PENDING, SENT
from mets.models.automation import SMS, WEBHOOK, WebhookDelivery
from mets.models.webhooks import WebhookEndpoint
from mets.services.errors import DomainError
from mets.services.outbox import core

log = logging.getLogger("mets.webhooks")

PAUSED_KEY = "webhooks_paused"
ACTIONABLE = core.ACTIONABLE  # the states an admin may retry or cancel
MAX_URL = 2000
SMS_MAX_TEXT = 1600
USER_AGENT = "METS-Webhooks/1"
_KEEP_BODY = 500  # characters of a failed answer kept in error_message
_PHONE = re.compile(r"\+[0-9]{8,15}")
SECRET_PREFIX = "whsec_"
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64
_DURATION = re.compile(r"(\d+)\s*([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _enqueue(items):
    return queueing.enqueue_webhooks(items)


HOOKS = core.Channel(
    name="webhooks", model=WebhookDelivery, noun="delivery", max_attempts_key="WEBHOOK_MAX_ATTEMPTS",
    retry_base_key="WEBHOOK_RETRY_BASE_SECONDS", retry_max_key="WEBHOOK_RETRY_MAX_SECONDS", paused_key=PAUSED_KEY,
    enqueue=_enqueue, item=lambda r: (r.id, r.attempts),
    item_columns=lambda: (WebhookDelivery.id, WebhookDelivery.attempts),
    order=lambda: (WebhookDelivery.next_attempt_at, WebhookDelivery.id),
    stale_error=lambda row: "The worker stopped while sending; the receiver may or may not have got it.")


# -- checks --------------------------------------------------------------------------------------

def url_error(url: str) -> str | None:
    """Why `url` cannot be a webhook target (static check, no DNS), or None."""
    url = (url or "").strip()
    if not url:
        return "Enter the URL to call."
    if len(url) > MAX_URL:
        return f"The URL is too long (at most {MAX_URL} characters)."
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "The URL must not contain spaces or control characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme.lower() not in ("http", "https"):
        return "The URL must start with http:// or https://."
    if "@" in parts.netloc or parts.username or parts.password:
        return "The URL must not contain a user name or password: use the signing secret instead."
    if not parts.hostname:
        return "The URL needs a host name."
    return None


def sms_enabled(config) -> bool:
    """Whether an SMS gateway is configured (SMS_GATEWAY_URL)."""
    return bool((config.get("SMS_GATEWAY_URL") or "").strip())


def normalize_phone(number: str) -> str:
    """"+33 6 12-34-56-78" -> "+33612345678" (spaces, dashes, dots and brackets dropped)."""
    return re.sub(r"[\s\-.()]", "", number or "")


def phone_error(number: str) -> str | None:
    """Why `number` is not an international number (+ and 8 to 15 digits), or None."""
    if not _PHONE.fullmatch(normalize_phone(number)):
        return "Enter the number in international form: + then 8 to 15 digits, e.g. +33 6 12 34 56 78."
    return None


def new_secret() -> str:
    """A fresh signing secret: "whsec_" and the base64 of 32 random bytes (Standard Webhooks' form)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_error(secret: str, min_bytes: int = SECRET_MIN_BYTES) -> str | None:
    """Why `secret` is not a whsec_ secret of `min_bytes` to 64 bytes, or None."""
    secret = (secret or "").strip()
    how = ("Enter a Standard Webhooks secret: whsec_ followed by the base64 of 24 to 64 random bytes "
           "(make one with: python -c \"import base64,secrets;print('whsec_'+base64.b64encode(secrets.token_bytes(32))"
           ".decode())\").")
    if not secret.startswith(SECRET_PREFIX):
        return how
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return how
    return None if min_bytes <= len(key) <= SECRET_MAX_BYTES else how


def new_message_id() -> str:
    """A `webhook-id`: "msg_" and 32 hex digits, unique per event and endpoint."""
    return f"msg_{uuid.uuid4().hex}"


def signature(keys: list[str], message_id: str, at: datetime, body: str) -> str:
    """The `webhook-signature` value: "v1,<base64 HMAC-SHA256>" per whsec_ key, space-separated (the package's
    own signer, so what we send is what its verifier checks). Raises BadSecret for a key that is not base64."""
    try:
        return " ".join(standardwebhooks.Webhook(key).sign(message_id, at, body) for key in keys)
    except (binascii.Error, ValueError, standardwebhooks.webhooks.EmptyWebhookSecretError) as exc:
        raise BadSecret("not sent: the signing secret is not a whsec_ secret (base64 after whsec_)") from exc


def parse_schedule(text: str) -> list[int]:
    """"5s,5m,30m,2h" -> [5, 300, 1800, 7200]: the delays before each retry (WEBHOOK_RETRY_SCHEDULE)."""
    delays = []
    for part in (text or "").split(","):
        match = _DURATION.fullmatch(part.strip().lower())
        if not match:
            raise ValueError(f"WEBHOOK_RETRY_SCHEDULE: {part.strip()!r} is not a delay like 30s, 5m, 2h or 1d")
        delays.append(int(match[1]) * _UNIT[match[2]])
    return delays


def retry_schedule() -> list[int]:
    """The delays before an endpoint delivery's retries; its attempts are one more (the first is at once)."""
    return parse_schedule(current_app.config["WEBHOOK_RETRY_SCHEDULE"])


# -- queueing (in the caller's transaction) ------------------------------------------------------

def _json_default(value):
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _add(session, *, kind, url, body, secret=None, recipient=None, entity=None, ticket=None, rule_id=None,
         event_name=None, dedupe_key=None, now=None, endpoint=None, event_type=None,
         message_id=None) -> WebhookDelivery | None:
    if dedupe_key and session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.dedupe_key == dedupe_key)):
        return None  # already queued once (the unique key backs this up against a race)
    now = now or clock.now()
    entity_id = entity.id if entity is not None else ticket.entity_id if ticket is not None else None
    # An endpoint's delivery follows the spec's schedule: the first try at once, then one per delay.
    attempts = len(retry_schedule()) + 1 if endpoint is not None else current_app.config["WEBHOOK_MAX_ATTEMPTS"]
    row = WebhookDelivery(kind=kind, entity_id=entity_id, ticket=ticket, rule_id=rule_id, event=event_name,
                          endpoint=endpoint, event_type=event_type,
                          message_id=(message_id or new_message_id()) if kind == WEBHOOK else None,
                          url=url, body=body, secret=secret or None, recipient=recipient, status=PENDING,
                          attempts=0, max_attempts=attempts, next_attempt_at=now,
                          attempt_log=[], dedupe_key=dedupe_key or None, created_at=now)
    core.add(HOOKS, session, row)
    return row


def encode(payload: dict) -> str:
    """The JSON body as sent and signed: compact, UTF-8 (not \\u escapes), instants as ISO 8601."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=False, default=_json_default)


def queue_webhook(session, *, url, payload: dict | None = None, secret: str | None, entity=None, ticket=None,
                  rule_id=None, event=None, dedupe_key=None, now=None, endpoint: WebhookEndpoint | None = None,
                  event_type: str | None = None, message_id: str | None = None,
                  body: str | None = None) -> WebhookDelivery | None:
    """Queue a POST of `payload` as JSON (or of `body`, already encoded) to `url`; None if `dedupe_key` was queued
    before. An `endpoint`'s row is signed with the endpoint's secret when sent (`secret` is then None).

    Raises DomainError for a URL `url_error` refuses. Nothing is sent here: after commit a worker is told.
    """
    if why := url_error(url):
        raise DomainError({"url": why})
    return _add(session, kind=WEBHOOK, url=url.strip(), body=body if body is not None else encode(payload),
                secret=secret, entity=entity, ticket=ticket, rule_id=rule_id, event_name=event,
                dedupe_key=dedupe_key, now=now, endpoint=endpoint, event_type=event_type, message_id=message_id)


def queue_sms(session, *, to: str, text: str, entity=None, ticket=None, rule_id=None, event=None,
              dedupe_key=None, now=None) -> WebhookDelivery | None:
    """Queue an SMS to `to` through the gateway; None if `dedupe_key` was queued before.

    Raises DomainError when SMS is off or the number is not international.
    """
    config = current_app.config
    if not sms_enabled(config):
        raise DomainError({"": "SMS is off: set SMS_GATEWAY_URL."})
    if why := phone_error(to):
        raise DomainError({"to": why})
    number = normalize_phone(to)
    body = json.dumps({"to": number, "from": config.get("SMS_FROM") or "", "text": (text or "")[:SMS_MAX_TEXT]},
                      separators=(",", ":"), ensure_ascii=False)
    return _add(session, kind=SMS, url=config["SMS_GATEWAY_URL"].strip(), body=body, recipient=number,
                entity=entity, ticket=ticket, rule_id=rule_id, event_name=event, dedupe_key=dedupe_key, now=now)


# -- the core's verbs, for webhooks -----------------------------------------------------------------

def is_paused(session) -> bool:
    """Whether an admin has paused webhooks and SMS (rows keep queueing)."""
    return core.is_paused(HOOKS, session)


def set_paused(session, paused: bool) -> None:
    """Pause or resume webhooks and SMS; resuming hands every due row to the workers after commit."""
    core.set_paused(HOOKS, session, paused)


def retry(session, row: WebhookDelivery, now: datetime | None = None) -> None:
    """Send a pending or failed delivery again now; a failed one gets a fresh set of attempts."""
    core.retry(HOOKS, session, row, now)


def retry_failed(session, ids: list[int], now: datetime | None = None) -> int:
    """Retry every failed delivery among `ids`; returns how many."""
    return core.retry_failed(HOOKS, session, ids, now)


def cancel(session, row: WebhookDelivery) -> None:
    """Never send this delivery (a pending or failed one)."""
    core.cancel(HOOKS, session, row)


def reclaim_stale(session, now: datetime) -> int:
    """Free rows whose worker died mid-send (claim older than MAIL_CLAIM_STALE_SECONDS); the try counts."""
    return core.reclaim_stale(HOOKS, session, now)


# -- claiming ---------------------------------------------------------------------------------------

_COLUMNS = (WebhookDelivery.id, WebhookDelivery.kind, WebhookDelivery.url, WebhookDelivery.body,
            WebhookDelivery.secret, WebhookDelivery.event, WebhookDelivery.attempts, WebhookDelivery.max_attempts,
            WebhookDelivery.attempt_log, WebhookDelivery.claim_token, WebhookDelivery.endpoint_id,
            WebhookDelivery.message_id, WebhookDelivery.event_type)


def _claim(session, now: datetime, first_id: int | None, limit: int, worker: str | None = None) -> list:
    """Take up to `limit` due rows (`first_id` first) under a token of this worker's. Commits."""
    ids = [c.id for c in core.candidates(HOOKS, session, now, first_id, limit, (WebhookDelivery.id,))]
    return core.claim(HOOKS, session, ids, core.new_token(worker), now, _COLUMNS)


# -- sending ----------------------------------------------------------------------------------------

class Refused(Exception):
    """The target may not be called (a private address): retrying will not help."""


class Disabled(Refused):
    """The delivery's endpoint was disabled after it was queued."""


class BadSecret(Refused):
    """The row's secret cannot key an HMAC (not base64): every try would fail the same way."""


def _endpoint_active(session, endpoint_id: int) -> bool:
    return bool(session.scalar(select(WebhookEndpoint.active).where(WebhookEndpoint.id == endpoint_id)))


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified)


def _resolve(host: str, port: int) -> str:
    """The address to connect to, after checking every address `host` resolves to."""
    addresses = [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    if not current_app.config.get("WEBHOOK_ALLOW_PRIVATE"):
        for address in addresses:
            if _is_private(address):
                raise Refused(f"refused: {host} resolves to a private address ({address}); "
                              "set WEBHOOK_ALLOW_PRIVATE to allow it")
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever DNS says now (the Host header keeps the name)."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        # The certificate is checked against the host name, as a browser would.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def signing_keys(session, row, now: datetime) -> list[str]:
    """The whsec_ secrets a try of `row` signs with: its endpoint's (and the previous one during the rotation's
    grace), or the rule's written on the row; none for an SMS or an unsigned webhook."""
    if row.kind != WEBHOOK:
        return []
    if row.endpoint_id is None:
        return [row.secret] if row.secret else []
    endpoint = session.get(WebhookEndpoint, row.endpoint_id)
    if endpoint is None:
        return []
    keep_previous = endpoint.previous_secret and endpoint.previous_secret_until and now < endpoint.previous_secret_until
    return [endpoint.secret, *([endpoint.previous_secret] if keep_previous else [])]


def request_headers(row, at: datetime | None, keys: list[str]) -> dict[str, str]:
    """The headers a try at `at` sends: JSON, our name, the delivery and event, the Standard Webhooks id, timestamp
    and signature (webhooks), or the gateway's bearer token (SMS). `at` None: the headers before any try."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-METS-Delivery": str(row.id),
               "X-METS-Event": row.event_type or row.event or row.kind}
    if row.kind == WEBHOOK:
        headers["webhook-id"] = row.message_id or f"msg_{row.id}"
        headers["webhook-timestamp"] = str(int(at.timestamp())) if at else "<unix time of the try>"
        if keys:
            headers["webhook-signature"] = (signature(keys, headers["webhook-id"], at, row.body) if at
                                            else "v1,<computed at send time>")
    if row.kind == SMS and current_app.config.get("SMS_GATEWAY_TOKEN"):
        headers["Authorization"] = f"Bearer {current_app.config['SMS_GATEWAY_TOKEN']}"
    return headers


def _post(row, headers: dict) -> tuple[int, str, dict]:
    """POST the row once: (HTTP status, the answer's start, its headers). Raises OSError, Refused."""
    parts = urlsplit(row.url)
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    address = _resolve(parts.hostname, port)
    connection = (_PinnedHTTPS if https else _PinnedHTTP)(parts.hostname, port, address,
                                                          current_app.config["WEBHOOK_TIMEOUT"])
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=row.body.encode("utf-8"), headers=headers)
        response = connection.getresponse()
        text = response.read(64 * 1024).decode("utf-8", errors="replace")  # no receiver may fill our memory
        return response.status, text, dict(response.getheaders())
    finally:
        connection.close()


def _retry_delay(row, headers: dict) -> int:
    wanted = {k.lower(): v for k, v in headers.items()}.get("retry-after", "")
    at_least = int(wanted) if wanted.strip().isdigit() else 0
    if row.endpoint_id is not None:
        # The spec's schedule: after try n, the n-th delay; a Retry-After may stretch it up to the longest one.
        schedule = retry_schedule() or [0]
        return min(max(schedule[min(row.attempts, len(schedule)) - 1], at_least), max(schedule))
    # A 429/503 telling us when: wait at least that long (still capped by WEBHOOK_RETRY_MAX_SECONDS).
    return core.backoff(HOOKS, row.attempts, at_least)


def _record(session, row, values: dict, outcome: str, now: datetime) -> bool:
    # Only while our claim holds: a row the sweep took back is no longer ours to write (nor to tell of).
    if not core.record(HOOKS, session, row, values, commit=False):
        session.commit()
        return False
    if row.endpoint_id is not None:
        events.emit(events.WEBHOOK_ATTEMPTED, session, row.endpoint_id, outcome, values.get("response_code"), now)
    session.commit()  # the outcome and what the endpoint's owner keeps about it, together
    return True


def _send_one(session, row) -> bool:
    """One try of one claimed row; the outcome is written to it. True if it was sent."""
    started, now = time.monotonic(), clock.now()
    entry = {"at": now.isoformat()}
    status, text, headers, error, permanent = None, "", {}, None, False
    try:
        if row.endpoint_id is not None and not _endpoint_active(session, row.endpoint_id):
            raise Disabled("not sent: the endpoint is disabled")
        keys = signing_keys(session, row, now)
        if keys:
            entry["timestamp"] = str(int(now.timestamp()))  # shows the page which signature went out, never the secret
        status, text, headers = _post(row, request_headers(row, now, keys))
    except Refused as exc:
        error, permanent = str(exc), True
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, DNS failure
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - any other failure is recorded on the row, not lost
        log.exception("webhook %s: unexpected error", row.id)
        error = f"{type(exc).__name__}: {exc}"
    entry["ms"] = round((time.monotonic() - started) * 1000)
    if status is not None and 200 <= status < 300:
        entry["status"] = status
        if text.strip():
            entry["response"] = text[:_KEEP_BODY]
        _record(session, row, {"status": SENT, "sent_at": now, "response_code": status, "error_message": None,
                               "attempt_log": [*row.attempt_log, entry]}, "sent", now)
        return True
    if status is not None:
        entry["status"] = status
        if 300 <= status < 400:
            location = {k.lower(): v for k, v in headers.items()}.get("location") or "(no Location)"
            error = entry["error"] = f"HTTP {status}: redirect to {location} not followed"
        else:
            error = f"HTTP {status}: {text[:_KEEP_BODY]}" if text.strip() else f"HTTP {status}"
            if text.strip():
                entry["response"] = text[:_KEEP_BODY]
        permanent = status < 500 and status not in (408, 429)  # 3xx and 4xx will not get better by retrying
    else:
        entry["error"] = error
    retrying = core.will_retry(row, permanent)
    if not permanent and not retrying:
        error = f"{error} (gave up after {row.attempts} attempts)"
    _record(session, row, {
        "status": PENDING if retrying else FAILED, "response_code": status, "error_message": error,
        "attempt_log": [*row.attempt_log, entry],
        "next_attempt_at": now + timedelta(seconds=_retry_delay(row, headers)) if retrying else now},
        "retrying" if retrying else "failed", now)
    log.warning("webhook %s to %s: %s%s", row.id, row.url, error, "; will retry" if retrying else "")
    return False


def deliver(session, first_id: int | None = None, limit: int = 20) -> int:
    """Claim due deliveries (`first_id` first) and POST each once; returns how many were sent."""
    return _deliver(session, clock.now(), first_id, limit)[1]


def _deliver(session, now: datetime, first_id: int | None, limit: int) -> tuple[int, int]:
    if is_paused(session):
        session.rollback()
        return 0, 0
    rows = _claim(session, now, first_id, limit)
    return len(rows), sum(_send_one(session, row) for row in rows)


# -- the periodic sweep ------------------------------------------------------------------------------

def sweep(session, now: datetime | None = None) -> tuple[int, int]:
    """Free stale claims, then enqueue due rows (without Redis: send them here). Returns (reclaimed, due)."""
    now = now or clock.now()
    reclaimed, items = core.sweep(HOOKS, session, now)
    if items:
        if queueing.redis_connection() is not None:
            _enqueue(items)
        else:
            # The embedded run: this loop is the only sender. Bounded, so one sweep cannot run forever.
            for _ in range(0, len(items), 20):
                if not _deliver(session, now, None, 20)[0]:
                    break
    return reclaimed, len(items)
