"""What a level does: the action types escalation levels offer, planned and applied like automation's.

`LEVEL_ACTIONS` holds escalation's own types (notify the hierarchy, reassign to a higher tier, raise the
priority) and the automation types that fit (set priority, internal note, webhook, email, SMS, assign).
They share automation's `ActionType`, `Param`, `Plan` and `Run`, and are validated by
`automation.actions.validate(..., registry=LEVEL_ACTIONS)`; they are not offered to automation rules.
"""
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import select

from mets import transaction
from mets.models import PRIORITIES, Entity, Membership, QueuedEmail, Ticket, User
from mets.services import outbox, tickets
from mets.services.automation import actions as automation_actions
from mets.services.automation import assign as automation_assign
from mets.services.automation.actions import ActionType, Param, Plan, Run, fixed
from mets.services.directory import access
from mets.services.errors import DomainError
from mets.services.escalation import holds
from mets.services.notifications import templates as mail_templates
from mets.services.notifications import variables as mail_variables
from mets.services.notifications import notify
from mets.services.notifications import settings as notification_settings
from mets.services.notifications.settings import EVENTS, parse_addresses
from mets.services.validation import parse_id

TEMPLATE = "escalation-notification"
# Managers: the ticket's entity's own, or (none there) the nearest entity's above it that has some; the
# parent's: the same, starting one level up. Each level of a policy can so go one step up the hierarchy.
NOTIFY_CHOICES = (("assignee", "The assignee"), ("managers", "The entity's managers"),
                  ("parent_managers", "The parent entity's managers"),
                  ("settings", "Whom the entity's notification settings name for escalations"))
TIER_CHOICES = (("next", "The next tier up"), ("2", "Tier 2 or above"), ("3", "Tier 3 or above"),
                ("4", "Tier 4 or above"))
REUSED = ("set_priority", "add_note", "webhook", "send_email", "send_sms", "assign")

LEVEL_ACTIONS: dict[str, ActionType] = {}
ACTOR = "escalation.actor"  # transaction.scoped: who escalated by hand (None: the tick), never told of it
_MANAGERS = "escalation.managers"  # transaction.cache: entity id -> its managers
# transaction.cache: ticket event id -> the addresses told of it so far, for the events the tick wrote in this
# transaction (nothing else can have mailed about an event this new: no query per ticket to find out). Emptied
# with the cache when a savepoint rolls back: those events are then looked up in the outbox again.
TOLD = "escalation.told"
_NEVER = datetime.min.replace(tzinfo=timezone.utc)


def level_action(name: str, label: str, group: str, *params: Param, check=None, words=None):
    """Register a level action type whose planner is the decorated function."""
    def register(plan):
        LEVEL_ACTIONS[name] = ActionType(name, label, group, params, plan, check or (lambda s, e, p: {}), words)
        return plan
    return register


# --- notify -------------------------------------------------------------------------------------

def _user(session, raw) -> User | None:
    user_id = parse_id(raw)
    return session.get(User, user_id) if user_id is not None else None


def _named_user_error(session, user: User | None, entity: Entity) -> str | None:
    """A named recipient must be active staff who works the entity's tickets (never someone else's staff)."""
    if user is None or not user.is_staff or not user.active:
        return "Choose an active member of staff."
    if not access.can_work_entity(session, user, entity):
        return f"{user.name} does not work in {entity.name}."
    return None


def _check_notify(session, entity, params) -> dict:
    if not params.get("to") and not params.get("user_id") and not params.get("extra"):
        return {"to": "Choose who is told."}
    if params.get("user_id") and entity is not None:
        if msg := _named_user_error(session, _user(session, params.get("user_id")), entity):
            return {"user_id": msg}
    for address in parse_addresses(params.get("extra", "")):
        if why := outbox.refusal(session, address, current_app.config):
            return {"extra": f"{address}: {why}"}
    return {}


def _managers_of(session, entity_id: int | None) -> list[User]:
    """The active staff with a manager's membership of exactly this entity (the hierarchy: each level its own)."""
    if entity_id is None:
        return []
    # Once per transaction and entity, as notifications read member lists: the tick notifies a batch at once.
    cache = transaction.cache(session).setdefault(_MANAGERS, {})
    if entity_id not in cache:
        cache[entity_id] = list(session.scalars(
            select(User).join(Membership, Membership.user_id == User.id)
            .where(Membership.entity_id == entity_id, Membership.role == "manager", User.kind == "staff",
                   User.active.is_(True)).order_by(User.id)))
    return cache[entity_id]


def _nearest_managers(session, chain: list[Entity]) -> tuple[Entity | None, list[User]]:
    """The managers of the first entity of `chain` that has any (a department without its own: the company's),
    and that entity (whose hours a held notice to them follows)."""
    for entity in chain:
        if found := _managers_of(session, entity.id):
            return entity, found
    return None, []


def recipients(session, ticket: Ticket, params: dict) -> dict[str, tuple[str | None, str]]:
    """email -> (name, audience) for a notify action on this ticket; a named user of another entity raises."""
    return {email: (r.name, r.audience) for email, r in recipients_at(session, ticket, params).items()}


@dataclass(frozen=True)
class Recipient:
    name: str | None
    audience: str
    entity: Entity  # whose hours a held notice to them follows: the ticket's, or the managed entity's above it
    user_id: int | None = None


def recipients_at(session, ticket: Ticket, params: dict) -> dict[str, Recipient]:
    """email -> Recipient for a notify action on this ticket; a named user of another entity raises."""
    found: dict[str, Recipient] = {}
    chosen = set(params.get("to") or ())

    def add(user: User | None, entity: Entity | None = None) -> None:
        if user is not None and user.active and user.is_staff:
            found.setdefault(user.email, Recipient(user.name, "staff", entity or ticket.entity, user.id))

    if "assignee" in chosen:
        add(ticket.assignee)
    chain = access.lineage(session, ticket.entity)
    if "managers" in chosen:
        managed, people = _nearest_managers(session, chain)
        for user in people:
            add(user, managed)
    if "parent_managers" in chosen:
        managed, people = _nearest_managers(session, chain[1:])
        for user in people:
            add(user, managed)
    if "settings" in chosen:
        setting = notification_settings.effective(session, ticket.entity, "escalation")
        if setting.enabled:
            for person in notify.people(session, ticket, set(setting.recipients) - {"customer"},
                                        setting.extra_addresses).values():
                found.setdefault(person.email, Recipient(person.name, "staff", ticket.entity,
                                                         getattr(person, "user_id", None)))
    if params.get("user_id"):
        user = _user(session, params["user_id"])
        if msg := _named_user_error(session, user, ticket.entity):
            raise DomainError(f"Not notified: {msg}")
        add(user)
    for address in parse_addresses(params.get("extra", "")):
        found.setdefault(address, Recipient(None, "staff", ticket.entity))
    actor = session.get(User, actor_id) if (actor_id := transaction.current(session, ACTOR)) else None
    if actor is not None:
        found.pop(actor.email, None)
    return found


def _notify_words(session, params) -> str:
    who = [dict(NOTIFY_CHOICES).get(t, t).lower() for t in params.get("to") or ()]
    if params.get("user_id"):
        user = _user(session, params["user_id"])
        who.append(user.name if user else "a removed user")
    if params.get("extra"):
        who.append(params["extra"])
    return "Notify " + ", ".join(who)


@level_action("notify", "Notify people", "Communication",
              Param("to", "Who", "multi", required=False, choices=fixed(NOTIFY_CHOICES)),
              Param("user_id", "A named user", "select", required=False, choices=automation_actions._agents,
                    help="Must work in the ticket's entity."),
              Param("extra", "Other addresses", "text", required=False, help="Comma-separated, e.g. a partner."),
              Param("template", "Template", "select", required=False,
                    choices=fixed([(n, n) for n in mail_templates.TICKET_NAMES])),
              check=_check_notify, words=_notify_words)
def _notify(run: Run, p: dict) -> Plan:
    session = run.session
    found = recipients_at(session, run.ticket, p)
    # One mail per person and escalation: whoever the entity's notification settings already mailed for
    # this event (same dedupe key) is not mailed again.
    keys = {email: f"event:{run.event_id}:{email}" for email in found}
    told = transaction.cache(session).get(TOLD, {}).get(run.event_id)
    if told is None:
        done = set(session.scalars(select(QueuedEmail.dedupe_key).where(QueuedEmail.dedupe_key.in_(keys.values()))))
    else:
        done = {keys[email] for email in found if email in told}
    todo = {email: who for email, who in found.items() if keys[email] not in done}
    if not found:
        return Plan("notify: nobody to tell", skipped=True)
    if not todo:
        return Plan(f"notify {', '.join(found)}: already told of this escalation", skipped=True)
    template = p.get("template") or TEMPLATE
    # A business-time level fired by the tick: whoever's desk is closed now hears when it opens (holds).
    hold_event = holds.current_hold(session)
    held: dict[str, datetime] = {}
    if hold_event is not None:
        opening = {}
        for email, who in todo.items():
            if who.entity.id not in opening:
                opening[who.entity.id] = holds.opens_at(session, who.entity, run.now)
            if opening[who.entity.id] is not None:
                held[email] = opening[who.entity.id]
    now_list = [e for e in todo if e not in held]
    words = []
    if now_list:
        words.append(f"notify {', '.join(now_list)}")
    for email, until in held.items():
        words.append(f"hold {email} until {holds.until_words(session, todo[email].entity, until)}, "
                     "when the desk opens")

    def apply():
        shared = mail_variables.ticket_values(run.ticket, actor=None, changes=run.changes, now=run.now)
        if told is not None:
            told.update(todo)
        for email, who in todo.items():
            variables = {**shared, **mail_variables.recipient_values(
                run.ticket, audience=who.audience, recipient_name=who.name or "", recipient_email=email)}
            rendered = mail_templates.render(session, run.ticket.entity, template, variables)
            if email in held:
                holds.hold(session, event_id=hold_event, ticket=run.ticket, entity=who.entity, email=email,
                           name=who.name, user_id=who.user_id, level=int(run.changes.get("level") or 0),
                           reason=str(run.changes.get("reason") or ""), template=template, rendered=rendered,
                           dedupe_key=keys[email], until=held[email], now=run.now)
                continue
            outbox.queue_message(
                session, to=email, name=who.name, subject=rendered.subject, text=rendered.text, html=rendered.html,
                audience=who.audience, priority=EVENTS["escalation"].priority, entity=run.ticket.entity,
                ticket=run.ticket, event_name="escalation", template_name=template, dedupe_key=keys[email],
                now=run.now)
    return Plan("; ".join(words), apply)


# --- reassign to a higher tier -------------------------------------------------------------------

def tier_of(session, user: User | None, ticket: Ticket) -> int:
    """The user's tier for this ticket: their highest membership of its entity or one above (0: nobody)."""
    if user is None:
        return 0
    chain = [e.id for e in access.lineage(session, ticket.entity)]
    tiers = session.scalars(select(Membership.tier).where(Membership.user_id == user.id,
                                                          Membership.entity_id.in_(chain))).all()
    return max(tiers, default=0)


@level_action("reassign_tier", "Reassign to a higher tier", "Assignment",
              Param("tier", "To", "select", choices=fixed(TIER_CHOICES),
                    help="The least loaded active agent of that tier or above who works the ticket's entity (for the "
                         "next tier up: of the nearest tier above the assignee's that has anyone)."),
              words=lambda s, p: "Reassign to " + dict(TIER_CHOICES).get(p.get("tier"), "?").lower())
def _reassign_tier(run: Run, p: dict) -> Plan:
    session, ticket = run.session, run.ticket
    current = tier_of(session, ticket.assignee, ticket)
    wanted = max(current, 1) + 1 if p.get("tier") == "next" else int(p.get("tier") or 2)
    chain = [e.id for e in access.lineage(session, ticket.entity)]
    candidates = [u for u in access.members_of(session, ticket.entity) if u.id != ticket.assignee_id]
    tiers = {}
    for user_id, tier in session.execute(select(Membership.user_id, Membership.tier).where(
            Membership.entity_id.in_(chain), Membership.user_id.in_([u.id for u in candidates]))):
        tiers[user_id] = max(tiers.get(user_id, 0), tier)
    senior = [u for u in candidates if tiers.get(u.id, 0) >= wanted]
    if senior and p.get("tier") == "next":
        # The next tier up that has anyone: a tier-1 ticket goes to tier 2 while tier 2 has agents, not to the
        # tier-3 manager who happens to be less loaded.
        nearest = min(tiers[u.id] for u in senior)
        senior = [u for u in senior if tiers[u.id] == nearest]
    if not senior:
        raise DomainError(f"Nobody to reassign to: no active agent of tier {wanted} or above works in "
                          f"{ticket.entity.name}.")
    load = automation_assign.loads(session, [u.id for u in senior])
    chosen = min(senior, key=lambda u: (load[u.id], u.last_assigned_at or _NEVER, u.id))
    return Plan(f"reassign to {chosen.name} (tier {tiers[chosen.id]}, {load[chosen.id]} open)",
                lambda: tickets.assign(session, ticket, chosen, actor=None, now=run.now))


# --- raise the priority --------------------------------------------------------------------------

@level_action("raise_priority", "Raise the priority one step", "Ticket")
def _raise_priority(run: Run, p: dict) -> Plan:
    index = PRIORITIES.index(run.ticket.priority) if run.ticket.priority in PRIORITIES else 0
    if index + 1 >= len(PRIORITIES):
        return Plan(f"priority is already {run.ticket.priority.capitalize()}", skipped=True)
    new = PRIORITIES[index + 1]
    return Plan(f"raise priority to {new.capitalize()}",
                lambda: tickets.update_fields(run.session, run.ticket, {"priority": new}, actor=None, now=run.now))


for _name in REUSED:
    LEVEL_ACTIONS[_name] = automation_actions.ACTIONS[_name]
