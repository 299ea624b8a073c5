"""Job functions (they take ids, not objects, and run in an app context) and the periodic schedule.

The notifications issue runs these on RQ; until then worker.py calls them in a simple loop.
"""
import logging

from mets.extensions import db

log = logging.getLogger("mets.jobs")

# name -> (function, every N seconds). Each periodic job must be idempotent: the SLA tick is
# (the firings' unique key makes every point act at most once).
PERIODIC = {}


def periodic(name: str, seconds: int):
    def register(fn):
        PERIODIC[name] = (fn, seconds)
        return fn
    return register


@periodic("sla_tick", 60)
def sla_tick() -> str:
    """Act on every SLA warning, breach and escalation point now due."""
    from mets.services import sla_tick as tick_service

    result = tick_service.tick(db.session)
    return f"SLA tick: {result.tickets} tickets looked at, {len(result.fired)} points fired"
