"""The one event bus: what happened to tickets, for the packages that react to it.

Six kinds of event, all emitted inside the transaction of what caused them, so whatever a
subscriber writes (mail in the outbox, a rule's changes) commits or rolls back with it:

- `ticket_changed`: every `services.tickets` change, as `handler(session, change, actor, now)`;
  the change's `events` are its `ticket_events` rows (ticket_created, reply_added, status_changed...).
- the SLA tick's points, `sla_breach_warning`, `sla_breach_occurred` and `escalation_due`, as
  `handler(session, ticket, event)` with the `ticket_events` values as a dict (its `id` included).
- `sla_retimed`: an SLA rule or calendar edit re-timed open tickets (`sla.retime`), as
  `handler(session, tickets, now)`: whatever keeps instants derived from their clocks re-times too.
- `tick`: the minute tick ran (after the SLA points), as `handler(session, now)`: packages that keep due
  instants of their own (escalation) act on what is due, through their own index, committing per batch.
- `csat_answered`: a customer answered (or changed the answer to) a satisfaction survey (`metrics.csat.answer`),
  as `handler(session, response, now)`, in the answer's transaction.
- `webhook_attempted`: the HTTP channel tried an endpoint's delivery, as
  `handler(session, endpoint_id, outcome, response_code, now)` (`outcome`: "sent", "retrying", "failed";
  the answer's HTTP status or None), in the worker's transaction that records the try, so whatever the
  endpoint's owner keeps about it (its health, disabling it) commits with the outcome.

Packages subscribe in their `init_app`, never by being imported; subscribers run in the order
they subscribed (create_app subscribes notifications, then metrics, then webhooks, then automation, so a rule's
email and webhook events follow the change's own and a change's metrics are written before those of the changes
its rules make). Subscribing the same handler twice (a second create_app) is a no-op.
"""
from collections import defaultdict
from collections.abc import Callable

TICKET_CHANGED = "ticket_changed"
TICK_EVENTS = ("sla_breach_warning", "sla_breach_occurred")  # what the SLA tick emits per fired point
TICK = "tick"
SLA_RETIMED = "sla_retimed"
CSAT_ANSWERED = "csat_answered"
WEBHOOK_ATTEMPTED = "webhook_attempted"
NAMES = (TICKET_CHANGED, *TICK_EVENTS, TICK, SLA_RETIMED, CSAT_ANSWERED, WEBHOOK_ATTEMPTED)

_subscribers: dict[str, list[Callable]] = defaultdict(list)


def subscribe(name: str, handler: Callable) -> None:
    """Call `handler` for every `name` event from now on (once, however often it subscribes)."""
    if name not in NAMES:
        raise ValueError(f"unknown event {name!r}; known: {', '.join(NAMES)}")
    if handler not in _subscribers[name]:
        _subscribers[name].append(handler)


def emit(name: str, *args) -> None:
    """Call every subscriber of `name` with `args`, in the order they subscribed."""
    for handler in _subscribers.get(name, ()):
        handler(*args)
