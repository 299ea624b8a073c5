"""What the endpoint pages do: an entity's endpoints (create, edit, rotate the secret, enable, disable, delete),
their deliveries, "Send a test event" and "Replay"; and queueing one endpoint's delivery of an event.

Who may: admins, and managers of the endpoint's entity or of one above it (`macros.manages`, as for the entity's
canned replies); the pages' loaders hold that, these functions take what was loaded.
"""
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from mets import clock
from mets.models import Entity, User
from mets.models.automation import WebhookDelivery
from mets.models.webhooks import WebhookEndpoint
from mets.services.directory import access, entities, portal_mail
from mets.services.errors import DomainError
from mets.services.notifications import notify
from mets.services.outbox import http as hooks
from mets.services.tickets.payload import instant
from mets.services.webhooks.types import EVENT_TYPES, TEST_TYPE

MAX_DESCRIPTION = 500
DELIVERIES_SHOWN = 50


# --- reading ---------------------------------------------------------------------------------------------------

def managed_entities(session, user: User) -> list[Entity]:
    """The entities whose endpoints `user` manages, in the entity tree's order: every one for admins, those of their
    manager memberships and the departments below for managers, none for anyone else."""
    if not user.is_staff or not user.active:
        return []
    tree = [entity for entity, _depth in entities.entity_tree(session)]
    ids = access.managed_entity_ids(session, user)
    return tree if ids is None else [e for e in tree if e.id in ids]


def endpoints_by_entity(session, entity_list: list[Entity]) -> dict[int, list[WebhookEndpoint]]:
    """Entity id -> its own endpoints (oldest first), for the entities given."""
    found: dict[int, list[WebhookEndpoint]] = {e.id: [] for e in entity_list}
    if found:
        for endpoint in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.entity_id.in_(found))
                                        .order_by(WebhookEndpoint.id)):
            found[endpoint.entity_id].append(endpoint)
    return found


def deliveries_of(session, endpoint: WebhookEndpoint, limit: int = DELIVERIES_SHOWN) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, newest first."""
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
                                .order_by(WebhookDelivery.id.desc()).limit(limit)))


def delivery_of(session, endpoint: WebhookEndpoint, delivery_id: int | None) -> WebhookDelivery | None:
    """One of the endpoint's deliveries (another endpoint's is None, as a missing one)."""
    row = session.get(WebhookDelivery, delivery_id) if delivery_id else None
    return row if row is not None and row.endpoint_id == endpoint.id else None


# --- saving ----------------------------------------------------------------------------------------------------

def _checked(data: dict) -> dict:
    url = (data.get("url") or "").strip()
    description = (data.get("description") or "").strip()
    chosen = list(dict.fromkeys(data.get("event_types") or []))
    errors = {}
    if why := hooks.url_error(url):
        errors["url"] = why
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = f"The description is at most {MAX_DESCRIPTION} characters."
    unknown = [t for t in chosen if t not in EVENT_TYPES]
    if unknown:
        errors["event_types"] = f"Unknown event type: {', '.join(unknown)}."
    elif not chosen:
        errors["event_types"] = "Choose at least one event type."
    if errors:
        raise DomainError(errors)
    # Kept in the picker's order, whatever order the form sent them in.
    return {"url": url, "description": description, "event_types": [t for t in EVENT_TYPES if t in chosen]}


def create_endpoint(session, entity: Entity, data: dict, now: datetime | None = None) -> WebhookEndpoint:
    """A new active endpoint of `entity` with a fresh whsec_ secret (the page shows it this once)."""
    now = now or clock.now()
    endpoint = WebhookEndpoint(entity=entity, secret=hooks.new_secret(), active=True, created_at=now, updated_at=now,
                               **_checked(data))
    session.add(endpoint)
    session.flush()
    return endpoint


def update_endpoint(session, endpoint: WebhookEndpoint, data: dict, now: datetime | None = None) -> WebhookEndpoint:
    """Change the URL, description and event types (the secret stays: rotate it on its own)."""
    for name, value in _checked(data).items():
        setattr(endpoint, name, value)
    endpoint.updated_at = now or clock.now()
    session.flush()
    return endpoint


def rotate_secret(session, endpoint: WebhookEndpoint, now: datetime | None = None) -> str:
    """A new secret for the endpoint, returned to be shown once; the old one also signs for
    WEBHOOK_SECRET_GRACE_HOURS, so the receiver can switch to the new one without refusing anything meanwhile."""
    now = now or clock.now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + timedelta(hours=current_app.config["WEBHOOK_SECRET_GRACE_HOURS"])
    endpoint.secret = hooks.new_secret()
    endpoint.updated_at = now
    session.flush()
    return endpoint.secret


def disable(session, endpoint: WebhookEndpoint, *, reason: str, now: datetime | None = None,
            by_system: bool = False) -> None:
    """Stop sending to the endpoint (its queued deliveries fail unsent when their turn comes). METS disabling it
    (`by_system`: a 410, days of failure) mails the entity's managers why; a person disabling it knows."""
    now = now or clock.now()
    if not endpoint.active:
        return
    endpoint.active, endpoint.disabled_at, endpoint.disabled_reason = False, now, reason
    endpoint.updated_at = now
    session.flush()
    if by_system:
        notify.webhook_endpoint_disabled(session, endpoint, reason=reason, now=now,
                                         admin_url=portal_mail.absolute_url("endpoints.show", endpoint_id=endpoint.id))


def enable(session, endpoint: WebhookEndpoint, now: datetime | None = None) -> None:
    """Send to the endpoint again, with a clean record (its failing days count from the next failure)."""
    endpoint.active, endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = True, None, None, None
    endpoint.updated_at = now or clock.now()
    session.flush()


def delete_endpoint(session, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint and its deliveries (queued ones are never sent)."""
    session.delete(endpoint)
    session.flush()


# --- deliveries ------------------------------------------------------------------------------------------------

def envelope(event_type: str, data: dict, now: datetime) -> dict:
    """The payload Standard Webhooks recommends: the type, when it happened, and the event's data."""
    return {"type": event_type, "timestamp": instant(now), "data": data}


def queue_for(session, endpoint: WebhookEndpoint, event_type: str, data: dict, *, now: datetime, ticket=None,
              event_name: str | None = None, dedupe_key: str | None = None) -> WebhookDelivery | None:
    """Queue one delivery of an event to one endpoint, in the caller's transaction (None: queued before)."""
    return hooks.queue_webhook(session, url=endpoint.url, payload=envelope(event_type, data, now), secret=None,
                               endpoint=endpoint, entity=endpoint.entity, ticket=ticket, event=event_name,
                               event_type=event_type, dedupe_key=dedupe_key, now=now)


def _require_active(endpoint: WebhookEndpoint) -> None:
    if not endpoint.active:
        raise DomainError({"": "The endpoint is disabled: enable it first."})


def send_test(session, endpoint: WebhookEndpoint, actor: User, now: datetime | None = None) -> WebhookDelivery:
    """Queue a `webhook.test` event to this endpoint alone (sent by a worker like any delivery)."""
    _require_active(endpoint)
    now = now or clock.now()
    data = {"endpoint": {"url": endpoint.url, "description": endpoint.description,
                         "entity": endpoint.entity.slug}, "requested_by": {"email": actor.email, "name": actor.name},
            "message": "A test event from METS: if you can verify this signature, the endpoint is ready."}
    return queue_for(session, endpoint, TEST_TYPE, data, now=now, event_name="test")


def replay(session, endpoint: WebhookEndpoint, delivery: WebhookDelivery,
           now: datetime | None = None) -> WebhookDelivery:
    """Send a delivery again as a new one: the same body and `webhook-id` (receivers that saw it dedupe it), its own
    tries, signed with the endpoint's secret of now. The original and its tries stay as they were."""
    _require_active(endpoint)
    if delivery.endpoint_id != endpoint.id:
        raise DomainError({"": "This delivery is not this endpoint's."})
    return hooks.queue_webhook(session, url=endpoint.url, body=delivery.body, secret=None, endpoint=endpoint,
                               entity=endpoint.entity, ticket=delivery.ticket, event=delivery.event,
                               event_type=delivery.event_type, message_id=delivery.message_id, now=now or clock.now())
