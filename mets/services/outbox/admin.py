"""What the admin outbox pages show and do, for either channel: the list with its filters,
status counts and pages, the pause switch, the verbs (retry, retry the failed matches, cancel,
pause/resume), and how times read.

The mail queue (/admin/mail/) and the webhooks list (/admin/webhooks/) are two pages over this
one set; each channel only brings its filters (`MailFilters`: recipient and template;
`HookFilters`: kind) and what its row page shows. Mail's settings, test email and notification
settings live in `services/mail_admin.py`.
"""
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from mets import clock
from mets.models import FAILED, MAIL_STATUSES, PENDING, Entity, QueuedEmail
from mets.models.automation import SMS, WEBHOOK, WebhookDelivery
from mets.services.notifications.settings import EVENTS
from mets.services.outbox import core
from mets.services.outbox import http as hooks
from mets.services.outbox.core import ACTIONABLE, Channel
from mets.services.outbox.http import HOOKS
from mets.services.outbox.smtp import MAIL
from mets.services.validation import parse_id, parse_int

PER_PAGE = 25
STATUSES = MAIL_STATUSES
NO_TEMPLATE = "none"  # the template filter's value for rows written without one (test, sign-in links)
PRIORITY_LABELS = {1: "critical", 3: "warning", 5: "normal"}
KINDS = (WEBHOOK, SMS)
CHANNELS = {MAIL.name: MAIL, HOOKS.name: HOOKS}


def _status_arg(args) -> str:
    return args.get("status", "") if args.get("status", "") in STATUSES else ""


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
        return cls(status=_status_arg(args), entity_id=parse_id(args.get("entity")),
                   recipient=args.get("recipient", "").strip()[:254],
                   template=args.get("template", "").strip()[:80],
                   page=parse_int(args.get("page"), 1))

    def as_args(self, **overrides) -> dict:
        """Query-string arguments for links (tabs, pages, redirects) that keep the other filters."""
        values = {"status": self.status, "entity": self.entity_id or "", "recipient": self.recipient,
                  "template": self.template, "page": self.page if self.page > 1 else ""}
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in ("", None)}

    def apply(self, query, *, with_status: bool = True):
        if with_status and self.status:
            query = query.where(QueuedEmail.status == self.status)
        if self.entity_id:
            query = query.where(QueuedEmail.entity_id == self.entity_id)
        if self.recipient:
            pattern = f"%{_escape_like(self.recipient.lower())}%"
            query = query.where(or_(func.lower(QueuedEmail.recipient_email).like(pattern, escape="\\"),
                                    func.lower(QueuedEmail.recipient_name).like(pattern, escape="\\")))
        if self.template == NO_TEMPLATE:
            query = query.where(QueuedEmail.template_name.is_(None))
        elif self.template:
            query = query.where(QueuedEmail.template_name == self.template)
        return query


@dataclass
class HookFilters:
    status: str = ""  # "" = every status
    kind: str = ""  # "" = both
    entity_id: int | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args) -> "HookFilters":
        """Read query-string arguments, dropping anything unknown instead of failing."""
        return cls(status=_status_arg(args), kind=args.get("kind", "") if args.get("kind", "") in KINDS else "",
                   entity_id=parse_id(args.get("entity")), page=parse_int(args.get("page"), 1))

    def as_args(self, **overrides) -> dict:
        """Query-string arguments for links (tabs, pages) that keep the other filters."""
        values = {"status": self.status, "kind": self.kind, "entity": self.entity_id or "",
                  "page": self.page if self.page > 1 else ""}
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in ("", None)}

    def apply(self, query, *, with_status: bool = True):
        if with_status and self.status:
            query = query.where(WebhookDelivery.status == self.status)
        if self.kind:
            query = query.where(WebhookDelivery.kind == self.kind)
        if self.entity_id:
            query = query.where(WebhookDelivery.entity_id == self.entity_id)
        return query


# -- the list ------------------------------------------------------------------------------------

def page_count(total: int, per_page: int = PER_PAGE) -> int:
    """How many pages `total` rows fill (at least one)."""
    return max(1, -(-total // per_page))


def _eager(channel: Channel):
    model = channel.model
    if channel is MAIL:
        return (selectinload(model.ticket), selectinload(model.entity))
    return (selectinload(model.ticket),)


def search(channel: Channel, session, f, per_page: int = PER_PAGE) -> tuple[list, int]:
    """One page of rows matching the filters, newest first, and how many match in all (f.page is
    brought within the pages)."""
    model = channel.model
    query = f.apply(select(model))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    f.page = min(max(1, f.page), page_count(total, per_page))
    # Newest first by id: the primary key serves the ORDER BY ... LIMIT, created_at has no index.
    rows = session.scalars(query.order_by(model.id.desc()).limit(per_page).offset((f.page - 1) * per_page)
                           .options(*_eager(channel))).all()
    return list(rows), total


def status_counts(channel: Channel, session, f=None) -> dict[str, int]:
    """Rows per status (every status present, zeros included), within the other filters if given."""
    model = channel.model
    query = select(model.status, func.count()).group_by(model.status)
    if f is not None:
        query = f.apply(query, with_status=False)
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: n for status, n in session.execute(query)})
    return counts


def failed_count(channel: Channel, session) -> int:
    """Failed rows in the whole channel (served by the index that leads with status)."""
    model = channel.model
    return session.scalar(select(func.count()).select_from(model).where(model.status == FAILED))


def entity_names(session, rows) -> dict[int, str]:
    """Entity id -> name for the rows shown."""
    ids = {r.entity_id for r in rows if r.entity_id}
    return dict(session.execute(select(Entity.id, Entity.name).where(Entity.id.in_(ids))).all()) if ids else {}


# -- the verbs -----------------------------------------------------------------------------------

def can_act(row) -> bool:
    """Whether the row may still be retried or cancelled."""
    return row.status in ACTIONABLE


def retry(channel: Channel, session, row) -> None:
    core.retry(channel, session, row)


def cancel(channel: Channel, session, row) -> None:
    core.cancel(channel, session, row)


def retry_matching(channel: Channel, session, f) -> int:
    """Retry every failed row that matches the filters (whatever status tab is shown); returns how many."""
    model = channel.model
    ids = list(session.scalars(f.apply(select(model.id), with_status=False).where(model.status == FAILED)))
    return core.retry_failed(channel, session, ids) if ids else 0


@dataclass(frozen=True)
class PauseState:
    paused: bool
    since: datetime | None
    waiting: int  # pending rows


def pause_state(channel: Channel, session) -> PauseState:
    """Whether the channel is paused, since when, and how many rows wait meanwhile."""
    since = core.paused_since(channel, session)
    model = channel.model
    waiting = session.scalar(select(func.count()).select_from(model).where(model.status == PENDING))
    return PauseState(since is not None, since, waiting)


def set_paused(channel: Channel, session, paused: bool) -> None:
    core.set_paused(channel, session, paused)


# -- how things read -------------------------------------------------------------------------------

def template_names() -> list[str]:
    """The templates notifications are written from (the mail template filter's choices)."""
    return sorted({t for e in EVENTS.values() for t in (e.customer_template, e.staff_template) if t})


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


def shown_headers(session, row: WebhookDelivery) -> list[tuple[str, str]]:
    """A delivery's headers of the last try (or of the next one, before any): the signature (with the secret of now),
    never the secret; the SMS gateway's token masked."""
    stamps = [a["timestamp"] for a in row.attempt_log or [] if a.get("timestamp")]
    at = datetime.fromtimestamp(int(stamps[-1]), timezone.utc) if stamps else None
    try:
        headers = hooks.request_headers(row, at, hooks.signing_keys(session, row, at or clock.now()))
    except hooks.BadSecret as exc:
        headers = {**hooks.request_headers(row, None, []), "webhook-signature": f"({exc})"}
    if "Authorization" in headers:
        headers["Authorization"] = "Bearer ***"
    return list(headers.items())


def hook_settings(config) -> list[tuple[str, str]]:
    """How deliveries are worked, as read from the environment (the token only as set / not set)."""
    return [("Timeout", f"{config['WEBHOOK_TIMEOUT']}s"),
            ("Attempts", str(config["WEBHOOK_MAX_ATTEMPTS"])),
            ("Retry backoff", f"{config['WEBHOOK_RETRY_BASE_SECONDS']}s, doubling each attempt"
                              f" (at most {config['WEBHOOK_RETRY_MAX_SECONDS']}s)"),
            ("Endpoint retries", f"at once, then after {config['WEBHOOK_RETRY_SCHEDULE']}"),
            ("Endpoints disabled after", f"{config['WEBHOOK_DISABLE_AFTER_DAYS']} days of failing"),
            ("Private addresses", "allowed" if config.get("WEBHOOK_ALLOW_PRIVATE") else "refused"),
            ("SMS gateway", mask_url(config.get("SMS_GATEWAY_URL")) or "off (no SMS_GATEWAY_URL)"),
            ("SMS token", "set" if config.get("SMS_GATEWAY_TOKEN") else "not set")]
