"""What the admin mail pages show and do: the outbox list, its counts, the pause state, the SMTP
settings as read from the environment, the test email, and the notification settings table.

Sending itself lives in `services/outbox.py` and `services/mail_delivery.py`; this module only
reads their rows and calls their verbs.
"""
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from flask import current_app
from markupsafe import escape
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from mets import clock
from mets.models import CRITICAL, FAILED, MAIL_STATUSES, PENDING, AppSetting, Entity, QueuedEmail
from mets.services import outbox
from mets.services.errors import DomainError
from mets.services.validation import parse_id, parse_int
from mets.services.notifications.settings import EVENTS, Effective, NotifyEvent, effective_all

PER_PAGE = 25
NO_TEMPLATE = "none"  # the template filter's value for rows written without one (test, sign-in links)
PRIORITY_LABELS = {1: "critical", 3: "warning", 5: "normal"}


@dataclass
class MailFilters:
    status: str = ""  # "" = every status
    entity_id: int | None = None
    recipient: str = ""
    template: str = ""  # a template name, NO_TEMPLATE, or "" = any
    page: int = 1

    @classmethod
    def from_args(cls, args) -> "MailFilters":
        """Read query-string (or form) arguments, dropping anything unknown instead of failing."""
        return cls(status=args.get("status", "") if args.get("status", "") in MAIL_STATUSES else "",
                   entity_id=parse_id(args.get("entity")),
                   recipient=args.get("recipient", "").strip()[:254],
                   template=args.get("template", "").strip()[:80],
                   page=parse_int(args.get("page"), 1))

    def as_args(self, **overrides) -> dict:
        """Query-string arguments for links (tabs, pages, redirects) that keep the other filters."""
        values = {"status": self.status, "entity": self.entity_id or "", "recipient": self.recipient,
                  "template": self.template, "page": self.page if self.page > 1 else ""}
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in ("", None)}


def template_names() -> list[str]:
    """The templates notifications are written from (the template filter's choices)."""
    return sorted({t for e in EVENTS.values() for t in (e.customer_template, e.staff_template) if t})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query, f: MailFilters, *, with_status: bool = True):
    if with_status and f.status:
        query = query.where(QueuedEmail.status == f.status)
    if f.entity_id:
        query = query.where(QueuedEmail.entity_id == f.entity_id)
    if f.recipient:
        pattern = f"%{_escape_like(f.recipient.lower())}%"
        query = query.where(or_(func.lower(QueuedEmail.recipient_email).like(pattern, escape="\\"),
                                func.lower(QueuedEmail.recipient_name).like(pattern, escape="\\")))
    if f.template == NO_TEMPLATE:
        query = query.where(QueuedEmail.template_name.is_(None))
    elif f.template:
        query = query.where(QueuedEmail.template_name == f.template)
    return query


def page_count(total: int, per_page: int = PER_PAGE) -> int:
    """How many pages `total` rows fill (at least one)."""
    return max(1, -(-total // per_page))


def search(session, f: MailFilters, page: int, per_page: int = PER_PAGE) -> tuple[list[QueuedEmail], int]:
    """One page of messages matching the filters, newest first, and how many match in all."""
    query = _filtered(select(QueuedEmail), f)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page = min(max(1, page), page_count(total, per_page))
    # Newest first by id: the primary key serves the ORDER BY ... LIMIT, created_at has no index.
    rows = session.scalars(query.order_by(QueuedEmail.id.desc()).limit(per_page).offset((page - 1) * per_page)
                           .options(selectinload(QueuedEmail.entity), selectinload(QueuedEmail.ticket))).all()
    return list(rows), total


def status_counts(session, f: MailFilters | None = None) -> dict[str, int]:
    """Messages per status (every status present, zeros included), within the other filters if given."""
    query = select(QueuedEmail.status, func.count()).group_by(QueuedEmail.status)
    if f is not None:
        query = _filtered(query, f, with_status=False)
    counts = dict.fromkeys(MAIL_STATUSES, 0)
    counts.update({status: n for status, n in session.execute(query)})
    return counts


def failed_count(session) -> int:
    """Failed messages in the whole outbox (served by the index that leads with status)."""
    return session.scalar(select(func.count()).select_from(QueuedEmail).where(QueuedEmail.status == FAILED))


def retry_matching(session, f: MailFilters) -> int:
    """Retry every failed message that matches the filters (whatever status tab is shown); returns how many."""
    ids = list(session.scalars(_filtered(select(QueuedEmail.id), f, with_status=False)
                               .where(QueuedEmail.status == FAILED)))
    return outbox.retry_failed(session, ids) if ids else 0


@dataclass(frozen=True)
class PauseState:
    paused: bool
    since: datetime | None
    waiting: int  # pending messages


def pause_state(session) -> PauseState:
    """Whether sending is paused, since when, and how many messages wait meanwhile."""
    setting = session.get(AppSetting, outbox.PAUSED_KEY)
    paused = bool(setting and setting.value)
    waiting = session.scalar(select(func.count()).select_from(QueuedEmail).where(QueuedEmail.status == PENDING))
    return PauseState(paused, setting.updated_at if paused else None, waiting)


def can_act(row: QueuedEmail) -> bool:
    """Whether the message may still be retried or cancelled."""
    return row.status in outbox.ACTIONABLE


def priority_label(priority: int) -> str:
    """1 → "1 (critical)"; the levels in between show as numbers."""
    label = PRIORITY_LABELS.get(priority)
    return f"{priority} ({label})" if label else str(priority)


def due_in(at: datetime | None, now: datetime | None = None) -> str:
    """A next-attempt time as people read it: "now" or "in 4m"."""
    if at is None:
        return ""
    seconds = int((at - (now or clock.now())).total_seconds())
    if seconds <= 0:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return f"in {seconds}s"


# -- settings ------------------------------------------------------------------------------------

def mask_url(url: str | None) -> str | None:
    """A URL with its password replaced by *** (redis://:secret@host → redis://:***@host)."""
    if not url:
        return url
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


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
