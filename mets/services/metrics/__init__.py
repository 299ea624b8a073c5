"""Response metrics: rows written when ticket events happen (recorder, and subscriber: what hears the changes),
rebuilt from ticket_events (rebuild), and read for the dashboard (stats; dashboard: scope, filters, volume, backlog,
workload, trends; tables: each figure's table and CSV; charts: what each chart draws; rollups: the daily
rollups kept for ever, and the archive of old raw rows); csat: the satisfaction survey after each resolution (sent
by the minute tick), its answer and the dashboard's CSAT figures.

May import: sla, hours, directory, notifications and outbox (csat's survey mail), validation, durations, models,
mets.transaction and mets.events. Nothing in tickets or sla imports it: it hears of every change through mets.events
(subscribed in init_app).
"""
from mets import events
from mets.services.metrics.recorder import MUTED, Facts, Recorder  # noqa: F401
from mets.services.metrics.subscriber import ticket_changed  # noqa: F401
from mets.services.metrics import csat  # noqa: F401
from mets.services.metrics.rebuild import rebuild, rebuild_tickets  # noqa: F401
from mets.services.metrics import rollups  # noqa: F401
from mets.services.metrics.stats import (  # noqa: F401
    Compliance, Distribution, Group, Summary, breakdown, distribution, distributions_by, entity_scope, percentile_cont,
    scoped_conditions, summary,
)


def init_app(app) -> None:
    """Write the metric rows of every ticket change, in its transaction; schedule and send satisfaction surveys;
    note the days of tickets an SLA edit retimed (their ticket rollups are read raw until rolled up again)."""
    events.subscribe(events.TICKET_CHANGED, ticket_changed)
    events.subscribe(events.TICKET_CHANGED, csat.ticket_changed)
    events.subscribe(events.TICK, lambda session, now: csat.tick(session, now))
    events.subscribe(events.SLA_RETIMED, rollups.tickets_retimed)
