"""What the admin mail pages show beyond the outbox list: the SMTP settings as read from the
environment, the test email, and the notification settings table.

The queue itself (list, counts, pause, retry, cancel) is `services/outbox/admin.py`'s, shared
with the webhooks page; sending is `services/outbox/smtp.py`'s.
"""
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from markupsafe import escape

from mets import clock
from mets.models import CRITICAL, Entity, QueuedEmail
from mets.services import outbox
from mets.services.errors import DomainError
from mets.services.notifications.settings import EVENTS, Effective, NotifyEvent, effective_all
from mets.services.outbox.admin import mask_url


def smtp_settings(config) -> list[tuple[str, str]]:
    """The SMTP settings from the environment as (label, value); the password only as set / not set."""
    if not config.get("MAIL_SERVER"):
        return [("Mode", "Embedded: no MAIL_SERVER, messages are written to a Maildir"),
                ("Maildir", config.get("MAILDIR") or "")]
    security = "SSL" if config.get("MAIL_USE_SSL") else "STARTTLS" if config.get("MAIL_USE_TLS") else "none"
    return [("Server", config["MAIL_SERVER"]), ("Port", str(config.get("MAIL_PORT"))), ("Security", security),
            ("Username", config.get("MAIL_USERNAME") or "(none)"),
            ("Password", "set" if config.get("MAIL_PASSWORD") else "not set")]


def sender_settings(session, config) -> list[tuple[str, str]]:
    """The sender and the loop guard: addresses that are never mailed (entities' senders included)."""
    return [("Default sender", config.get("MAIL_DEFAULT_SENDER") or ""),
            ("Never mailed (loop guard)", ", ".join(sorted(outbox.own_addresses(session, config))))]


def queue_settings(config) -> list[tuple[str, str]]:
    """How the outbox is worked: attempts, backoff, batches, rate limits, the queue itself."""
    def limit(value, unit):
        return f"{value} {unit}" if value else "no limit"

    return [("Queue", mask_url(config.get("REDIS_URL")) or "No REDIS_URL: the embedded loop polls the outbox"),
            ("Queue prefix", config.get("RQ_QUEUE_PREFIX") or ""),
            ("Attempts per message", str(config["MAIL_MAX_ATTEMPTS"])),
            ("Retry backoff", f"{config['MAIL_RETRY_BASE_SECONDS']}s, doubling each attempt"
                              f" (at most {config['MAIL_RETRY_MAX_SECONDS']}s)"),
            ("Batch size", f"{config['MAIL_BATCH_SIZE']} messages per connection"),
            ("Per recipient", limit(config["MAIL_RATE_PER_RECIPIENT_HOUR"],
                                     "messages an hour (SLA breaches, escalations and test emails exempt)")),
            ("Overall", limit(config["MAIL_RATE_PER_MINUTE"], "messages a minute")),
            ("Stale claim", f"{config['MAIL_CLAIM_STALE_SECONDS']}s: a worker's claim older than this is freed"),
            ("Sweep", f"every {config['MAIL_SWEEP_SECONDS']}s")]


def send_test(session, address: str, *, actor_name: str, now: datetime | None = None) -> QueuedEmail:
    """Queue a critical test message to `address`; DomainError (field "address") if it may not be mailed."""
    if why := outbox.refusal(session, address.strip(), current_app.config):
        raise DomainError({"address": why})
    now = now or clock.now()
    when = now.strftime("%Y-%m-%d %H:%M UTC")
    text = (f"This is a test email from METS, sent by {actor_name} at {when}.\n\n"
            "If you can read it, mail delivery works.\n")
    html = (f"<p>This is a test email from <strong>METS</strong>, sent by {escape(actor_name)} at {when}.</p>"
            "<p>If you can read it, mail delivery works.</p>")
    row = outbox.queue_message(session, to=address, subject="METS test email", text=text, html=html,
                               priority=CRITICAL, event_name="test", now=now)
    if row is None:  # refusal() said yes a moment ago; keep the promise of a field error anyway
        raise DomainError({"address": "This address cannot be mailed."})
    session.flush()
    return row


# -- notification settings ------------------------------------------------------------------------

@dataclass(frozen=True)
class NotificationRow:
    spec: NotifyEvent
    setting: Effective
    inherited: bool

    @property
    def source_label(self) -> str:
        if not self.inherited:
            return "Own setting"
        return f"Inherited from {self.setting.source.name}" if self.setting.source else "Inherited: default"


def notification_rows(session, entity: Entity) -> list[NotificationRow]:
    """Every event's setting for `entity`, in catalogue order, with where it comes from."""
    settings = effective_all(session, entity)
    return [NotificationRow(EVENTS[key], settings[key], settings[key].inherited_for(entity)) for key in EVENTS]


def notification_row(session, entity: Entity, event: str) -> NotificationRow:
    """One event's row (KeyError for an unknown event)."""
    settings = effective_all(session, entity)
    return NotificationRow(EVENTS[event], settings[event], settings[event].inherited_for(entity))
