"""Canned replies (macros): per entity, inherited by its departments.

A macro is a name, a reply text written with the email templates' variables (checked and rendered in the same
bounded sandbox: `notifications.templates.check_snippet` / `render_snippet`, values from
`notifications.variables.ticket_values`) and optional field changes (status, priority, assignee, category) that are
applied, through `services.tickets`, when the reply it filled in is sent: audited, notified and automated as if
made one by one.
"""
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from mets import clock
from mets.models import PRIORITIES, STATUSES, Entity, Macro, Ticket, User
from mets.models.tickets import STATUS_LABELS
from mets.services import tickets
from mets.services.directory import access, portal_mail
from mets.services.directory.categories import check_category
from mets.services.errors import DomainError, check
from mets.services.notifications import sandbox
from mets.services.notifications import templates as mail_templates
from mets.services.notifications import variables as mail_variables
from mets.services.tickets import live
from mets.services.validation import parse_id, text_error

MAX_MACROS = 500  # per entity
MACRO_STATUSES = tuple(s for s in STATUSES if s != "new")  # a ticket never goes back to New


def manages(session, user: User, entity: Entity) -> bool:
    """Admins, and managers of the entity or of one above it: who may edit its macros."""
    if not user.is_staff or not user.active:
        return False
    if user.is_admin:
        return True
    covering = {e.id for e in access.lineage(session, entity)}
    return any(m.entity_id in covering and m.role == "manager" for m in user.memberships)


def own_macros(session, entity: Entity) -> list[Macro]:
    """The entity's own macros, by name (its admin page)."""
    return list(session.scalars(select(Macro).where(Macro.entity_id == entity.id).order_by(Macro.name, Macro.id)))


def macros_for(session, entity: Entity) -> list[Macro]:
    """The macros an agent may use on a ticket of `entity`: its own and its ancestors', by name."""
    lineage = [e.id for e in access.lineage(session, entity)]
    return list(session.scalars(select(Macro).where(Macro.entity_id.in_(lineage)).order_by(Macro.name, Macro.id)))


def available(session, ticket: Ticket, macro_id) -> Macro | None:
    """The macro with this id if it belongs to the ticket's entity or one above it, else None."""
    macro_id = parse_id(macro_id)
    macro = session.get(Macro, macro_id) if macro_id is not None else None
    if macro is None or macro.entity_id not in {e.id for e in access.lineage(session, ticket.entity)}:
        return None
    return macro


# --- editing ----------------------------------------------------------------------------------

def _clean(session, entity: Entity, data: dict) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    name, body = data.get("name") or "", data.get("body") or ""
    if msg := text_error(name, "Name", 120):
        errors["name"] = msg
    if msg := mail_templates.check_snippet(body):  # compiled and test-rendered in the sandbox, on its budget
        errors["body"] = msg
    status = data.get("status") or None
    if status is not None and status not in MACRO_STATUSES:
        errors["status"] = f"Unknown status '{status}'."
    priority = data.get("priority") or None
    if priority is not None and priority not in PRIORITIES:
        errors["priority"] = f"Unknown priority '{priority}'."
    assignee = None
    if data.get("assignee_id"):
        assignee = next((u for u in access.members_of(session, entity) if u.id == data["assignee_id"]), None)
        if assignee is None:
            errors["assignee_id"] = tickets.NOT_ASSIGNABLE
    category = None
    try:
        category = check_category(session, entity, data.get("category"))
    except DomainError as exc:
        errors.update(exc.errors)
    clean = {"name": name.strip(), "body": body, "status": status, "priority": priority,
             "assignee_id": assignee.id if assignee else None, "category": category}
    return clean, errors


def create_macro(session, entity: Entity, data: dict) -> Macro:
    """Validate and add a macro. `data`: name, body, status, priority, assignee_id, category (the last four
    optional)."""
    clean, errors = _clean(session, entity, data)
    if len(own_macros(session, entity)) >= MAX_MACROS:
        errors[""] = f"An entity has at most {MAX_MACROS} macros."
    check(errors)
    macro = Macro(entity_id=entity.id, **clean)
    session.add(macro)
    session.flush()
    return macro


def update_macro(session, macro: Macro, data: dict) -> Macro:
    clean, errors = _clean(session, macro.entity, data)
    check(errors)
    for name, value in clean.items():
        setattr(macro, name, value)
    session.flush()
    return macro


def delete_macro(session, macro: Macro) -> None:
    session.delete(macro)
    session.flush()


# --- using one --------------------------------------------------------------------------------

def render(session, macro: Macro, ticket: Ticket, actor: User | None, now: datetime | None = None) -> str:
    """The macro's text for this ticket (plain text, as the agent will edit and send it).

    The links are the ticket's plain portal page: a signed sign-in link would end up in the conversation."""
    values = mail_variables.ticket_values(ticket, actor=actor, now=now or clock.now())
    page = portal_mail.absolute_url("portal.show", number=ticket.number)
    values.update(ticket_url=page, portal_url=page, recipient_name=ticket.customer.name if ticket.customer else "")
    try:
        return mail_templates.render_snippet(macro.body, values)
    except sandbox.TemplateBudgetError as exc:
        raise DomainError({"macro_id": f"{macro.name}: {exc}."}) from None
    except Exception as exc:  # it rendered on sample data when saved; real data can still fail (e.g. a division)
        raise DomainError({"macro_id": f"{macro.name}: {mail_templates.runtime_message(exc)}."}) from None


@dataclass(frozen=True)
class Pending:
    """A field change a macro makes when its reply is sent: `label` → `value` for people."""

    field: str
    label: str
    value: str


def pending(session, macro: Macro, ticket: Ticket) -> list[Pending]:
    """The macro's field changes that would change this ticket."""
    out = []
    if macro.status and macro.status != ticket.status:
        out.append(Pending("status", "Status", STATUS_LABELS[macro.status]))
    if macro.priority and macro.priority != ticket.priority:
        out.append(Pending("priority", "Priority", macro.priority.capitalize()))
    if macro.assignee_id and macro.assignee_id != ticket.assignee_id:
        out.append(Pending("assignee_id", "Assignee", macro.assignee.name if macro.assignee else "?"))
    if macro.category and macro.category != ticket.category:
        out.append(Pending("category", "Category", macro.category))
    return out


@dataclass
class SentReply:
    """What the reply box's send did: the changes made, or, held, what others did since the form was loaded."""

    changes: list[tickets.Change] = field(default_factory=list)
    held: list[live.Unseen] = field(default_factory=list)


def send_reply(session, ticket: Ticket, macro: Macro | None, *, actor: User, body: str, internal: bool = False,
               seen_version: int | None = None, now: datetime | None = None) -> SentReply:
    """The reply box's send: a public reply on a ticket others changed since `seen_version` (the form's) is held,
    nothing written; otherwise `reply_with`. The check and the reply are made under the ticket row's lock
    (`live.held_reply`), so two agents sending on one version at the same instant cannot both pass."""
    held = live.held_reply(session, ticket, actor, seen_version, internal)
    if held:
        return SentReply(held=held)
    return SentReply(changes=reply_with(session, ticket, macro, actor=actor, body=body, internal=internal, now=now))


def reply_with(session, ticket: Ticket, macro: Macro | None, *, actor: User, body: str, internal: bool = False,
               now: datetime | None = None) -> list[tickets.Change]:
    """Send the reply (`tickets.add_reply`), then make the macro's field changes through `services.tickets`,
    each its own audited change. Any refusal refuses the whole (the caller rolls back)."""
    now = now or clock.now()
    changes = [tickets.add_reply(session, ticket, actor=actor, body=body, internal=internal, now=now)]
    if macro is None:
        return changes
    if macro.status and macro.status != ticket.status:
        changes.append(tickets.change_status(session, ticket, macro.status, actor=actor, now=now))
    fields = {k: v for k, v in (("priority", macro.priority), ("category", macro.category)) if v}
    if fields:
        changes.append(tickets.update_fields(session, ticket, fields, actor=actor, now=now))
    if macro.assignee_id and macro.assignee_id != ticket.assignee_id:
        assignee = session.get(User, macro.assignee_id)
        changes.append(tickets.assign(session, ticket, assignee, actor=actor, now=now))
    return changes
