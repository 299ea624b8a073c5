"""Escalation: policies with ordered levels per entity (policies: which one a ticket follows, creating
them), when each level is due (timing), what levels do (actions: notify the hierarchy, reassign to a
higher tier, raise priority, and automation's note, webhook, email), and firing them once, by the
minute tick or by hand (engine, re-exported here); holds: a business-time level's mail held while the desk is
closed, sent as one digest per person when it opens; admin: the policy pages (saving policies with their levels,
order, the editor's rows, the preview of when each level would fire for a ticket).

May import: tickets, sla, hours, automation, notifications, outbox, rules, directory, models. Nothing
it reacts to imports it (only the web layer's policy pages do): it subscribes to `ticket_changed` (re-time)
and `tick` (fire) in init_app.
"""
# The package's API is its main module's: `from mets.services import escalation; escalation.<name>`.
from mets.services.escalation.engine import (  # noqa: F401
    create_policy, escalate, fire, init_app, run_actions, tick, ticket_changed, timeline,
)
from mets.services.escalation.holds import send_due  # noqa: F401
from mets.services.escalation.holds import by_event as held_notices  # noqa: F401
from mets.services.escalation.policies import policy_for  # noqa: F401
from mets.services.escalation.timing import levels_due, pending, retime_entities, schedule  # noqa: F401
