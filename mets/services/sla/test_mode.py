"""Test mode for SLA rules: what a rule, saved or as a form stands, would do to one ticket now.

`sla_rules.test_against_ticket` (the same function) answers the rule page's "test against ticket"
box: which rule applies now, whether the tested rule matches (priority, and `rules.explain` per
condition), which rule would apply if the form were saved, and the due time of every clock the
rule defines, computed as `sla.clocks` does, from the ticket's recorded pauses.
"""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from mets import clock
from mets.models import CLOCKS, Entity, SlaPause, SlaRule, Ticket
from mets.services import rules, sla
from mets.services.directory import access
from mets.services.errors import DomainError
from mets.services.sla.admin import end_position, validate_rule
from mets.services.validation import parse_id


@dataclass
class ClockTest:
    """What one clock of the tested rule would give the ticket."""

    name: str
    target_minutes: int
    state: str  # "due", "breached", "met", "late", "paused" or "waiting" (next reply: no message to answer)
    due: datetime | None = None
    stopped_at: datetime | None = None
    left: timedelta | None = None  # while paused: business time left when the clock resumes

    @property
    def label(self) -> str:
        return sla.CLOCK_LABELS[self.name]


@dataclass
class TicketTest:
    """`test_against_ticket`'s answer: which rule applies, whether the tested rule matches and why, its due times."""

    ticket: Ticket
    rule: SlaRule | None  # the rule tested: the saved one, or a draft of the form's values (not in the session)
    draft: bool
    applies: SlaRule | None  # chosen now, from the saved rules
    would_apply: SlaRule | None = None  # chosen if the tested rule were saved as it is
    in_scope: bool = True  # the ticket is in the rule's entity or below it
    priority_matches: bool = False
    conditions_match: bool = False
    explain: dict | None = None  # rules.explain output; None when the rule has no conditions
    clocks: list[ClockTest] = field(default_factory=list)
    errors: dict = field(default_factory=dict)  # the form's problems (then the saved rule is tested)
    timezone: str = "UTC"

    @property
    def matches(self) -> bool:
        return self.priority_matches and self.conditions_match


def draft_rule(session, data: dict, editing: SlaRule | None = None) -> SlaRule:
    """A transient SlaRule from form values (never added to the session), in place of `editing` if given."""
    values = validate_rule(data)
    entity_id = parse_id(data.get("entity_id") or (editing.entity_id if editing else 0)) or 0
    entity = session.get(Entity, entity_id) if entity_id else None
    if entity is None:
        raise DomainError({"entity_id": "Choose an entity."})
    same_place = editing is not None and editing.entity_id == entity_id
    position = editing.position if same_place else end_position(session, entity_id)
    active = editing.is_active if editing is not None else True
    # Linking the (persistent) entity does not put the draft in the session: nothing cascades that way.
    return SlaRule(entity=entity, entity_id=entity_id, position=position, is_active=active, **values)


def test_against_ticket(session, rule_or_form_data, ticket: Ticket, now: datetime | None = None,
                        editing: SlaRule | None = None) -> TicketTest:
    """Test a saved rule, or form values (a dict; `editing` is the rule they would replace), on a ticket now."""
    now = now or clock.now()
    if now.tzinfo is None:
        raise ValueError("test_against_ticket needs an aware `now`")
    rule, errors, draft = rule_or_form_data, {}, False
    if not isinstance(rule, SlaRule):
        try:
            rule, draft = draft_rule(session, rule_or_form_data, editing), True
        except DomainError as exc:
            rule, errors = editing, exc.errors
    result = TicketTest(ticket=ticket, rule=rule, draft=draft,
                        applies=sla.choose_rule(session, ticket, now), errors=errors,
                        timezone=ticket.entity.timezone)
    if rule is None:
        return result
    chain = access.lineage(session, ticket.entity)
    result.in_scope = rule.entity_id in {e.id for e in chain}
    context = rules.context_for(ticket, now=now)
    result.priority_matches = rule.priority in (None, "", ticket.priority)
    try:
        result.explain = None if rules.is_empty(rule.conditions) else rules.explain(rule.conditions, context)
        result.conditions_match = result.explain is None or result.explain["result"]
    except DomainError as exc:  # a rule saved before a field was removed from the registry
        result.errors = {**result.errors, **exc.errors}
    result.would_apply = (_choose_with(session, chain, rule, editing, ticket, context) if result.draft
                          else result.applies)
    try:
        result.clocks = _clock_tests(session, rule, ticket, now)
    except ValueError:
        result.errors = {**result.errors, "": "These business hours have no open time: nothing would fall due."}
    return result


def _choose_with(session, chain, draft: SlaRule, editing: SlaRule | None, ticket: Ticket, context):
    """sla.choose_rule's order (own entity, then ancestors; position; id) with the draft saved in place."""
    candidates = [r for r in session.scalars(
        select(SlaRule).where(SlaRule.entity_id.in_([e.id for e in chain]), SlaRule.is_active.is_(True)))
        if editing is None or r.id != editing.id]
    draft_id = editing.id if editing is not None else float("inf")
    keyed = [((r.position, r.id), r) for r in candidates]
    if draft.is_active:
        keyed.append(((draft.position, draft_id), draft))
    keyed.sort(key=lambda pair: pair[0])
    for entity in chain:
        for _, rule in keyed:
            if rule.entity_id == entity.id and sla.rule_matches(rule, ticket, context):
                return rule
    return None


def _clock_tests(session, rule: SlaRule, ticket: Ticket, now: datetime) -> list[ClockTest]:
    """Each clock the rule defines, computed as sla.clocks does, with the ticket's recorded pauses."""
    cal = sla.calendar_for_rule(session, rule, ticket)
    pauses = [(a, b) for a, b in session.execute(
        select(SlaPause.started_at, SlaPause.ended_at).where(SlaPause.ticket_id == ticket.id)
        .order_by(SlaPause.started_at))]
    resolved_at = ticket.resolved_at if ticket.status in sla.STOPPED_STATUSES else None
    spans = {"response": (ticket.created_at, ticket.first_response_at),
             "next_reply": (ticket.sla_next_reply_since, None),
             "resolution": (ticket.created_at, resolved_at)}
    out = []
    for name in CLOCKS:
        minutes = rule.target_minutes(name)
        if minutes is None:
            continue
        start, stopped = spans[name]
        if start is None:
            out.append(ClockTest(name, minutes, "waiting"))
            continue
        until = stopped or now
        relevant = [p for p in pauses if p[0] <= until]
        if stopped is not None:
            relevant = [(a, b if b is not None and b <= stopped else stopped) for a, b in relevant]
        target = timedelta(minutes=minutes)
        due = sla.due_after(cal, start, target, relevant)
        if due is None:
            left = target - sla.used_between(cal, start, now, relevant)
            out.append(ClockTest(name, minutes, "paused", left=left))
        elif stopped is not None:
            out.append(ClockTest(name, minutes, "met" if stopped <= due else "late", due, stopped))
        else:
            out.append(ClockTest(name, minutes, "breached" if now >= due else "due", due))
    return out
