"""SLA clocks (clocks, re-exported here), the minute tick (tick), the rules' admin side (admin) and
test mode (test_mode).

May import: hours, rules, directory, models, mets.events (the tick emits its points there).
"""
# The package's API is its main module's: `from mets.services import sla; sla.<name>`.
from mets.services.sla.clocks import (  # noqa: F401
    CLOCK_LABELS,
    ALWAYS_OPEN, STOPPED_STATUSES, BREACH, Point, ClockState, choose_rule, rule_matches,
    calendar_for_rule, due_after, used_between, clocks, points, fired_keys, refresh, assign_rule, pin_rule, pausing,
    status_changed, reply_added, retime, retime_entities, Summary, summary,
)
