"""Test mode for automation rules: what a rule, as the form stands, would do to real tickets — writing nothing.

The conditions are explained (each one's result and the actual value it compared) against the
ticket and the changes of its latest recorded event of the chosen kind; each action's effect is
the very `plan` the engine would apply ("assign to Dana (4 open)"), without applying it.
"""
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mets import clock
from mets.models import Entity, Reply, Ticket, TicketEvent, User
from mets.services import automation, rules
from mets.services.directory import access
from mets.services.automation import actions
from mets.services.automation.conditions import AUTOMATION
from mets.services.errors import DomainError


@dataclass
class ActionPreview:
    label: str
    text: str
    ok: bool = True
    skipped: bool = False


@dataclass
class RuleTest:
    """One ticket's answer: in scope, the conditions explained, matched, the actions' effects."""

    ticket: Ticket
    event: str
    event_note: str = ""
    in_scope: bool = True
    explain: dict | None = None
    matched: bool = False
    actions: list[ActionPreview] = field(default_factory=list)
    errors: dict = field(default_factory=dict)


def test_rule(session, draft: dict, ticket: Ticket, event: str | None = None, now: datetime | None = None) -> RuleTest:
    """Explain `draft` ({entity_id, trigger_event, conditions, actions}) on `ticket` for `event`; writes nothing."""
    now = now or clock.now()
    event = event or draft.get("trigger_event") or "ticket_created"
    result = RuleTest(ticket=ticket, event=event)
    with session.no_autoflush:
        entity = session.get(Entity, draft["entity_id"]) if draft.get("entity_id") else None
        chain = {e.id for e in access.lineage(session, ticket.entity)}
        result.in_scope = draft.get("entity_id") is None or draft["entity_id"] in chain
        context, result.event_note = _event_context(session, ticket, event, now)
        conditions = draft.get("conditions")
        found = rules.problems(conditions, AUTOMATION)
        if found:
            result.errors["conditions"] = str(found[0])
        elif not rules.is_empty(conditions):
            result.explain = rules.explain(conditions, context, AUTOMATION)
        conditions_hold = not found and (result.explain is None or result.explain["result"])
        result.matched = result.in_scope and conditions_hold
        result.actions = _previews(session, entity, draft.get("actions") or [], ticket, event, context, now, result)
    return result


def test_recent(session, draft: dict, limit: int = 50, now: datetime | None = None,
                event: str | None = None) -> list[RuleTest]:
    """The draft against the newest `limit` tickets of its entity (and below it), or of every entity."""
    query = (select(Ticket).order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
             .options(selectinload(Ticket.entity), selectinload(Ticket.customer), selectinload(Ticket.assignee)))
    if draft.get("entity_id"):
        query = query.where(Ticket.entity_id.in_(access.with_descendants(session, [draft["entity_id"]])))
    with session.no_autoflush:
        found = session.scalars(query).all()
    return [test_rule(session, draft, ticket, event, now) for ticket in found]


def _event_context(session, ticket: Ticket, event: str, now: datetime):
    """The context of the ticket's latest `event` (its changes, actor, reply), or of none with a note saying so."""
    row = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.event == event)
                          .order_by(TicketEvent.at.desc(), TicketEvent.id.desc()).limit(1)).first()
    if row is None:
        note = f"{ticket.number} has no {event} event yet: tested with no changes, acted by the system."
        return automation.context_for_event(session, ticket, event, {}, actor=None, kind="system", reply=None,
                                            now=now), note
    actor = session.get(User, row.actor_id) if row.actor_id else None
    reply_id = (row.changes or {}).get("reply_id")
    reply = session.get(Reply, reply_id) if isinstance(reply_id, int) else None
    kind = automation.actor_kind(actor, row.rule_id)
    note = f"Using {ticket.number}'s {event} of {row.at:%Y-%m-%d %H:%M} UTC by {actor.name if actor else kind}."
    return automation.context_for_event(session, ticket, event, row.changes or {}, actor=actor, kind=kind,
                                        reply=reply, now=now), note


def _previews(session, entity, raw_actions, ticket, event, context, now, result: RuleTest) -> list[ActionPreview]:
    """Each action's planned effect; one whose parameters are wrong shows why instead."""
    out = []
    run = actions.Run(session, ticket, None, "this rule", event, None, context.changes, now)
    for index, raw in enumerate(raw_actions if isinstance(raw_actions, list) else []):
        kind = actions.ACTIONS.get(raw.get("type")) if isinstance(raw, dict) else None
        label = kind.label if kind else "Unknown action"
        try:
            (params,) = actions.validate(session, entity, [raw])
        except DomainError as exc:  # the draft's own problem: saving would refuse it
            for key, message in exc.errors.items():
                result.errors[key.replace("actions[0]", f"actions[{index}]", 1)] = message
            out.append(ActionPreview(label, exc.summary, ok=False))
            continue
        run.index = index
        try:
            plan = kind.plan(run, params)
            out.append(ActionPreview(label, plan.text, skipped=plan.skipped))
        except DomainError as exc:  # this ticket's problem (nobody to assign): the run would record it
            out.append(ActionPreview(label, "would fail: " + exc.summary, ok=False))
    return out
