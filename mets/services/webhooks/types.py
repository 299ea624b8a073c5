"""The event types an endpoint subscribes to, as Standard Webhooks names them (`<group>.<event>`), and which bus
event each comes from."""

# type -> what the picker says; in the picker's order.
EVENT_TYPES = {
    "ticket.created": "A ticket was created",
    "ticket.updated": "A ticket's subject, category, entity or SLA was changed",
    "ticket.reply_added": "A reply or internal note was added",
    "ticket.status_changed": "A ticket's status changed",
    "ticket.priority_changed": "A ticket's priority changed",
    "ticket.assigned": "A ticket was assigned or unassigned",
    "ticket.escalated": "A ticket was escalated (a policy's level fired, or someone escalated it by hand)",
    "sla.breach_warning": "An SLA target is about to be breached",
    "sla.breach_occurred": "An SLA target was breached",
    "csat.answered": "A customer answered a satisfaction survey",
}
TEST_TYPE = "webhook.test"  # "Send a test event": never subscribed to, sent to one endpoint on request

# The ticket_events kind (ticket_changed's events and the SLA tick's points) -> its type.
FROM_TICKET_EVENT = {
    "ticket_created": "ticket.created",
    "ticket_updated": "ticket.updated",
    "reply_added": "ticket.reply_added",
    "status_changed": "ticket.status_changed",
    "priority_changed": "ticket.priority_changed",
    "assigned_to_changed": "ticket.assigned",
    "escalation_due": "ticket.escalated",
    "sla_breach_warning": "sla.breach_warning",
    "sla_breach_occurred": "sla.breach_occurred",
}
CSAT_ANSWERED = "csat.answered"
