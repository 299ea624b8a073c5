"""What automation conditions can test beyond SLA rules': the event's changes, who acted, the reply,
the SLA state, reply times, the assignee's tier.

The vocabulary is `AUTOMATION`, a child of the ticket registry (SLA rules keep theirs). A rule's
context carries `session`, `actor`, `actor_kind`, `reply` and `event` besides the ticket.
"""
from sqlalchemy import select

from mets.models import Membership
from mets.services import rules, sla
from mets.services.directory import access
from mets.services.html import message_text
from mets.services.rules import TICKET, VALUE_NONE, VALUE_ONE

AUTOMATION = TICKET.extend("automation")

ACTOR_KINDS = (("agent", "An agent"), ("customer", "The customer"), ("automation", "An automation rule"),
               ("system", "The system (SLA clock, jobs)"))
VISIBILITIES = (("public", "Public reply"), ("internal", "Internal note"), ("none", "No reply in this event"))


class _NotChanged:
    """What `changed from/to` read when the event did not change the field: equal to nothing."""

    def __repr__(self):
        return "(not changed)"

    def __str__(self):
        return "(not changed)"


NOT_CHANGED = _NotChanged()


def _change(ctx, key):
    pair = ctx.changes.get(key)
    return pair if isinstance(pair, (list, tuple)) and len(pair) == 2 else None


def _changed_reader(field):
    return lambda ctx: _change(ctx, field.change_key) is not None


def _side_reader(index):
    def reader(field):
        normalize = AUTOMATION.type(field.type).normalize

        def read(ctx):
            pair = _change(ctx, field.change_key)
            return NOT_CHANGED if pair is None else normalize(pair[index])
        return read
    return reader


def _truth(_):
    return lambda actual: bool(actual)


def _equals(expected):
    return lambda actual: actual is not NOT_CHANGED and actual == expected


_CHANGEABLE = ("text", "choice", "number")
AUTOMATION.register_operator("changed", "changed", VALUE_NONE, {t: _truth for t in _CHANGEABLE},
                             reader=_changed_reader, needs_change=True)
AUTOMATION.register_operator("changed_from", "changed from", VALUE_ONE, {t: _equals for t in _CHANGEABLE},
                             reader=_side_reader(0), needs_change=True)
AUTOMATION.register_operator("changed_to", "changed to", VALUE_ONE, {t: _equals for t in _CHANGEABLE},
                             reader=_side_reader(1), needs_change=True)


# --- derived values ---------------------------------------------------------------------------

def _sla_states(ctx):
    session = getattr(ctx, "session", None)
    if session is None or ctx.ticket.sla_rule is None:
        return []
    return sla.clocks(session, ctx.ticket, ctx.now)


def _running(ctx):
    return [s for s in ctx.sla_states if s.running]


def _percent_used(ctx):
    running = _running(ctx)
    return round(max(s.percent_used for s in running), 1) if running else None


def _minutes_left(ctx):
    running = _running(ctx)
    return round(min(s.remaining.total_seconds() for s in running) / 60, 1) if running else None


def _last_reply_at(ctx) -> dict:
    """The latest public customer reply and the latest agent reply (notes count: work was done)."""
    latest = {"customer": None, "agent": None}
    for reply in ctx.ticket.replies:
        author = reply.author
        if author is None:
            continue
        kind = "agent" if author.is_staff else "customer"
        if kind == "customer" and reply.internal:
            continue
        if latest[kind] is None or reply.created_at > latest[kind]:
            latest[kind] = reply.created_at
    return latest


def _hours_since_reply(kind):
    def get(ctx):
        at = ctx.last_reply_at[kind]
        return None if at is None else (ctx.now - at).total_seconds() / 3600
    return get


def _assignee_tier(ctx):
    """The assignee's tier in the ticket's entity (or the nearest entity above where they are a member)."""
    session, assignee = getattr(ctx, "session", None), ctx.ticket.assignee
    if session is None or assignee is None:
        return None
    chain = [e.id for e in access.lineage(session, ctx.ticket.entity)]
    tiers = dict(session.execute(select(Membership.entity_id, Membership.tier)
                                 .where(Membership.user_id == assignee.id, Membership.entity_id.in_(chain))).all())
    return next((tiers[i] for i in chain if i in tiers), None)


def _visibility(ctx):
    reply = getattr(ctx, "reply", None)
    return "none" if reply is None else ("internal" if reply.internal else "public")


rules.register_context_value("sla_states", _sla_states)
rules.register_context_value("last_reply_at", _last_reply_at)
rules.register_context_value("assignee_tier", _assignee_tier)


def _reply_text(ctx):
    reply = getattr(ctx, "reply", None)
    return message_text(reply.body, reply.body_format) if reply is not None else ""


def _assignee_email(ctx):
    return ctx.ticket.assignee.email if ctx.ticket.assignee is not None else None


field = AUTOMATION.register_field
field("actor.kind", "Who acted", "choice", lambda c: getattr(c, "actor_kind", "system"), choices=ACTOR_KINDS,
      group="Event", help="Agent, customer, an automation rule, or the system (the SLA clock).")
field("reply.visibility", "Reply visibility", "choice", _visibility, choices=VISIBILITIES, group="Event",
      help="For reply events: a public reply or an internal note.")
field("reply.body", "Reply text", "text", _reply_text, group="Event")
field("assignee.email", "Assignee email", "text", _assignee_email, group="Assignee", change_key="assignee_email",
      help="Empty when nobody is assigned; 'changed' sees reassignments.")
field("assignee.tier", "Assignee's tier", "number", lambda c: c.assignee_tier, group="Assignee",
      help="1 is first line; empty when nobody is assigned.")
field("escalation_level", "Escalation level", "number", lambda c: c.ticket.escalation_level,
      change_key="escalation_level")
field("sla.breached", "SLA breached", "boolean",
      lambda c: bool(c.ticket.sla_response_breached or c.ticket.sla_next_reply_breached
                     or c.ticket.sla_resolution_breached), group="SLA")
field("sla.percent_used", "SLA target used (%)", "number", _percent_used, group="SLA",
      help="The most used running clock; empty when no clock runs.")
field("sla.minutes_left", "SLA business minutes left", "number", _minutes_left, group="SLA",
      help="On the nearest running clock; negative once breached.")
field("hours_since_customer_reply", "Hours since the customer's last reply", "number",
      _hours_since_reply("customer"))
field("hours_since_agent_reply", "Hours since an agent's last reply", "number", _hours_since_reply("agent"))
del field
