"""Workflow automation: the engine and its rule index (engine, re-exported here), conditions, actions
(assignment in assign, communication in messages), test mode, and the admin side (admin, builder).

May import: tickets, sla, rules, notifications, directory, outbox modules, models. Subscribes to
mets.events in init_app.
"""
# The package's API is its main module's: `from mets.services import automation; automation.<name>`.
from mets.services.automation.engine import (  # noqa: F401
    log, CompiledRule, compile_rule, RuleIndex, actor_kind, context_for_event, ticket_changed, init_app, run_event,
    prune_log, MUTED,
)
