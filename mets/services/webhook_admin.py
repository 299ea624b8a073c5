"""What the admin webhook pages show: the deliveries list with its filters and counts, and what a
delivery sends (its headers, with the signature but never the secret).

Sending lives in `services/webhooks.py`; this module only reads its rows.
"""
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from mets.models import MAIL_STATUSES, Entity
from mets.models.automation import SMS, WEBHOOK, WebhookDelivery
from mets.services import webhooks
from mets.services.mail_admin import PER_PAGE, mask_url, page_count
from mets.services.validation import parse_id, parse_int

KINDS = (WEBHOOK, SMS)


@dataclass
class HookFilters:
    status: str = ""  # "" = every status
    kind: str = ""  # "" = both
    entity_id: int | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args) -> "HookFilters":
        """Read query-string arguments, dropping anything unknown instead of failing."""
        return cls(status=args.get("status", "") if args.get("status", "") in MAIL_STATUSES else "",
                   kind=args.get("kind", "") if args.get("kind", "") in KINDS else "",
                   entity_id=parse_id(args.get("entity")),
                   page=parse_int(args.get("page"), 1))

    def as_args(self, **overrides) -> dict:
        """Query-string arguments for links (tabs, pages) that keep the other filters."""
        values = {"status": self.status, "kind": self.kind, "entity": self.entity_id or "",
                  "page": self.page if self.page > 1 else ""}
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in ("", None)}


def _filtered(query, f: HookFilters, *, with_status: bool = True):
    if with_status and f.status:
        query = query.where(WebhookDelivery.status == f.status)
    if f.kind:
        query = query.where(WebhookDelivery.kind == f.kind)
    if f.entity_id:
        query = query.where(WebhookDelivery.entity_id == f.entity_id)
    return query


def search(session, f: HookFilters, per_page: int = PER_PAGE) -> tuple[list[WebhookDelivery], int]:
    """One page of deliveries matching the filters, newest first, and how many match in all."""
    query = _filtered(select(WebhookDelivery), f)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    f.page = min(f.page, page_count(total, per_page))
    rows = session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(per_page)
                           .offset((f.page - 1) * per_page).options(selectinload(WebhookDelivery.ticket))).all()
    return list(rows), total


def entity_names(session, rows) -> dict[int, str]:
    """Entity id -> name for the rows shown (the model has no entity relationship)."""
    ids = {r.entity_id for r in rows if r.entity_id}
    return dict(session.execute(select(Entity.id, Entity.name).where(Entity.id.in_(ids))).all()) if ids else {}


def status_counts(session, f: HookFilters) -> dict[str, int]:
    """Deliveries per status (zeros included) within the other filters."""
    query = _filtered(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status), f,
                      with_status=False)
    counts = dict.fromkeys(MAIL_STATUSES, 0)
    counts.update({status: n for status, n in session.execute(query)})
    return counts


def can_act(row: WebhookDelivery) -> bool:
    """Whether the delivery may still be retried or cancelled."""
    return row.status in webhooks.ACTIONABLE


def shown_headers(row: WebhookDelivery) -> list[tuple[str, str]]:
    """The headers of the last try (or of the next one, before any): the signature, never the secret;
    the SMS gateway's token masked."""
    stamps = [a["timestamp"] for a in row.attempt_log or [] if a.get("timestamp")]
    headers = webhooks.request_headers(row, stamps[-1] if stamps else "<unix time of the try>")
    if not stamps and "X-METS-Signature" in headers:
        headers["X-METS-Signature"] = "sha256=<computed at send time>"
    if "Authorization" in headers:
        headers["Authorization"] = "Bearer ***"
    return list(headers.items())


def settings(config) -> list[tuple[str, str]]:
    """How deliveries are worked, as read from the environment (the token only as set / not set)."""
    return [("Timeout", f"{config['WEBHOOK_TIMEOUT']}s"),
            ("Attempts", str(config["WEBHOOK_MAX_ATTEMPTS"])),
            ("Retry backoff", f"{config['WEBHOOK_RETRY_BASE_SECONDS']}s, doubling each attempt"
                              f" (at most {config['WEBHOOK_RETRY_MAX_SECONDS']}s)"),
            ("Private addresses", "allowed" if config.get("WEBHOOK_ALLOW_PRIVATE") else "refused"),
            ("SMS gateway", mask_url(config.get("SMS_GATEWAY_URL")) or "off (no SMS_GATEWAY_URL)"),
            ("SMS token", "set" if config.get("SMS_GATEWAY_TOKEN") else "not set")]
