"""Escalation policies: which one a ticket follows, and creating and checking them.

A ticket follows one policy: its entity's active policies are tried first, then its parent's, and so
on up (a department uses its parent's policies until it has its own that match), each entity's in
order; the first whose conditions match wins (like SLA rules). Its levels fire in order.
"""
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mets import transaction
from mets.models import POLICY_CLOCKS, Entity, EscalationLevel, EscalationPolicy, Ticket
from mets.models.escalation import TRIGGERS
from mets.services import automation, rules
from mets.services.automation import actions as automation_actions
from mets.services.directory import access
from mets.services.errors import DomainError, check
from mets.services.escalation.actions import LEVEL_ACTIONS
from mets.services.escalation.conditions import ESCALATION
from mets.services.validation import text_error

SLA_CLOCKS = ("response", "next_reply", "resolution")  # percent and breach offsets need an SLA target
CLOCK_LABELS = {"response": "first response", "next_reply": "next reply", "resolution": "resolution",
                "since_created": "time since created", "since_customer_message": "time since the customer's message"}
TRIGGER_LABELS = {"percent": "At a percent of the SLA target", "before_breach": "Minutes before the breach",
                  "after_breach": "Minutes after the breach", "after_duration": "Minutes after the clock started"}
MAX_MINUTES = 525_600  # a year
MAX_LEVELS = 10


TICK_CACHE = "escalation.tick_cache"  # transaction.scoped by the tick: an entity's candidates, read once per tick


def _candidates(session, entity) -> list[tuple[int, list[EscalationPolicy]]]:
    """The active policies with levels of the entity's lineage, nearest entity first, each entity's in order."""
    chain = access.lineage(session, entity)
    found = session.scalars(
        select(EscalationPolicy).where(EscalationPolicy.entity_id.in_([e.id for e in chain]),
                                       EscalationPolicy.is_active.is_(True))
        .order_by(EscalationPolicy.position, EscalationPolicy.id).options(selectinload(EscalationPolicy.levels))
    ).all()
    return [(e.id, [p for p in found if p.entity_id == e.id and p.levels]) for e in chain]


def policy_for(session, ticket: Ticket, now: datetime) -> EscalationPolicy | None:
    """The ticket's policy now: nearest entity first, in order, first match (None: none applies)."""
    with session.no_autoflush:
        cache = transaction.current(session, TICK_CACHE)
        if cache is None:
            by_entity = _candidates(session, ticket.entity)
        else:  # the tick: policies do not change under it, and thousands of tickets share a few entities
            by_entity = cache.get(ticket.entity_id)
            if by_entity is None:
                by_entity = cache[ticket.entity_id] = _candidates(session, ticket.entity)
        if not any(policies for _, policies in by_entity):
            return None
        context = None
        for _, policies in by_entity:
            for policy in policies:
                if not policy.conditions:
                    return policy
                if context is None:
                    context = automation.context_for_event(session, ticket, "escalation_due", {}, actor=None,
                                                           kind="system", reply=None, now=now)
                if rules.compile(policy.conditions, ESCALATION)(context):
                    return policy
    return None


# --- creating and checking ------------------------------------------------------------------------

def check_level(session, entity: Entity | None, clock: str, raw: dict, where: str) -> dict:
    """One level as stored, or DomainError keyed `<where>.trigger`, `<where>.value`, `<where>.actions...`."""
    errors = {}
    trigger = raw.get("trigger")
    if trigger not in TRIGGERS:
        errors[f"{where}.trigger"] = f"Choose when the level fires ({', '.join(TRIGGERS)})."
    elif trigger != "after_duration" and clock not in SLA_CLOCKS:
        errors[f"{where}.trigger"] = ("Percent and breach offsets need an SLA clock (first response, next reply "
                                      "or resolution); use minutes after the clock started.")
    value = raw.get("value")
    top = 1000 if trigger == "percent" else MAX_MINUTES
    least = 0 if trigger == "after_breach" else 1  # "at the breach" is 0 minutes after it
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= top:
        errors[f"{where}.value"] = ("Enter a percent from 1 to 1000." if trigger == "percent"
                                    else f"Enter whole minutes up to {top:,}.")
    raw_actions = raw.get("actions") or []
    clean_actions = []
    if raw_actions:
        try:
            clean_actions = automation_actions.validate(session, entity, raw_actions, registry=LEVEL_ACTIONS)
        except DomainError as exc:
            errors.update({f"{where}.{k}": v for k, v in exc.errors.items()})
    check(errors)
    return {"trigger": trigger, "value": value, "actions": clean_actions}


def check_policy(session, entity: Entity, *, name: str, clock: str, levels, conditions=None,
                 business_time: bool = True, is_active: bool = True) -> dict:
    """A policy's values as stored, its levels checked ({"trigger", "value", "actions"}), or DomainError keyed
    `name`, `clock`, `conditions...`, `levels` and `levels[i]...`."""
    errors = {}
    if msg := text_error(name, "Name", 200):
        errors["name"] = msg
    if clock not in POLICY_CLOCKS:
        errors["clock"] = f"Choose the clock the policy watches ({', '.join(POLICY_CLOCKS)})."
    if conditions:
        try:
            rules.validate(conditions, ESCALATION)
        except DomainError as exc:
            errors.update(exc.errors)
    levels = list(levels or [])
    if not levels:
        errors["levels"] = "Add at least one level."
    elif len(levels) > MAX_LEVELS:
        errors["levels"] = f"A policy has at most {MAX_LEVELS} levels."
    clean = []
    for index, raw in enumerate(levels):
        try:
            clean.append(check_level(session, entity, clock, raw, f"levels[{index}]"))
        except DomainError as exc:
            errors.update(exc.errors)
    check(errors)
    return {"name": (name or "").strip(), "clock": clock, "conditions": conditions or None,
            "business_time": bool(business_time), "is_active": bool(is_active), "levels": clean}


def build_policy(session, entity: Entity, *, name: str, clock: str, levels, conditions=None,
                 business_time: bool = True, is_active: bool = True, position: int | None = None) -> EscalationPolicy:
    """A policy of `entity` with its ordered levels ({"trigger", "value", "actions"}), checked as a whole
    (`escalation.create_policy` also re-times the open tickets it may apply to)."""
    values = check_policy(session, entity, name=name, clock=clock, levels=levels, conditions=conditions,
                          business_time=business_time, is_active=is_active)
    clean = values.pop("levels")
    if position is None:
        position = len(session.scalars(select(EscalationPolicy.id)
                                       .where(EscalationPolicy.entity_id == entity.id)).all())
    policy = EscalationPolicy(entity_id=entity.id, position=position, **values)
    policy.levels = [EscalationLevel(position=i, **level) for i, level in enumerate(clean)]
    session.add(policy)
    session.flush()
    return policy
