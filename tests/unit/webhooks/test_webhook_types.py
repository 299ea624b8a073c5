"""Which events an endpoint may subscribe to: every ticket event and SLA point has its type, and the payload is
the Standard Webhooks envelope around tickets.payload's shape."""
from datetime import datetime, timezone

from mets import events
from mets.models.automation import TRIGGERS
from mets.services.webhooks import endpoints
from mets.services.webhooks.types import CSAT_ANSWERED, EVENT_TYPES, FROM_TICKET_EVENT, TEST_TYPE


def test_every_ticket_event_and_sla_point_has_a_subscribable_type():
    assert set(FROM_TICKET_EVENT) == set(TRIGGERS) | set(events.TICK_EVENTS)
    assert set(FROM_TICKET_EVENT.values()) | {CSAT_ANSWERED} == set(EVENT_TYPES)
    assert TEST_TYPE not in EVENT_TYPES  # a test event goes to one endpoint on request, never by subscription
    assert all(name.count(".") == 1 and name == name.lower() for name in EVENT_TYPES)


def test_the_envelope_is_type_timestamp_and_data():
    at = datetime(2026, 3, 10, 9, 0, 5, tzinfo=timezone.utc)
    assert endpoints.envelope("ticket.created", {"ticket": {"number": "ACME-1"}}, at) == {
        "type": "ticket.created", "timestamp": "2026-03-10T09:00:05Z", "data": {"ticket": {"number": "ACME-1"}}}
