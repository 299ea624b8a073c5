"""Webhook endpoints: each entity's receivers of its events, delivered as Standard Webhooks through the outbox's
HTTP channel (`services/outbox/http.py`: signing, the SSRF guard, retries, every try kept).

`types` names the event types an endpoint may subscribe to; `subscriber` hears the event bus (ticket changes, the
SLA tick's points, CSAT answers) and writes one delivery per subscribed endpoint in the event's own transaction
(never sending anything), and hears each try of a delivery (`webhook_attempted`) to keep the endpoint's health:
a 410 Gone, or failing for WEBHOOK_DISABLE_AFTER_DAYS, disables it and mails its entity's managers; `endpoints`
is what the admin pages do (create, edit, rotate the secret, enable/disable, delete, send a test event, replay).

Which endpoints hear a ticket's event: those of the ticket's entity and of every entity above it, as automation
rules and managers of a company cover its departments.

May import: outbox, notifications, directory, tickets (its payload), models. Nothing imports it but the web layer:
it subscribes in init_app.
"""
from mets.services.webhooks.endpoints import (  # noqa: F401 - the package's public face
    create_endpoint, delete_endpoint, deliveries_of, disable, enable, endpoints_by_entity, managed_entities,
    replay, rotate_secret, send_test, update_endpoint,
)
from mets.services.webhooks.subscriber import init_app  # noqa: F401
from mets.services.webhooks.types import EVENT_TYPES  # noqa: F401
