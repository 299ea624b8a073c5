"""The values email templates render with: one recipient's view of a ticket, as plain str and bool.

No model object ever reaches a template (the sandbox gets dicts); times are shown in the time
zone of the entity's business hours; ticket and reply HTML (sanitised on the way in) comes
both as HTML and as plain text.
"""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import object_session

from mets import clock
from mets.models import CLOCKS, Ticket, User
from mets.models.tickets import STATUS_LABELS
from mets.services import hours, sla
from mets.services.directory import portal_mail
from mets.services.durations import format_minutes
from mets.services.html import message_html, message_text


def variables_for(ticket: Ticket, *, audience: str, recipient_name: str, recipient_email: str, actor=None,
                  reply=None, changes: dict | None = None, now: datetime | None = None) -> dict:
    """The values one recipient's email renders with (str and bool only); `audience` is "customer" or "staff"."""
    return {**ticket_values(ticket, actor=actor, reply=reply, changes=changes, now=now),
            **recipient_values(ticket, audience=audience, recipient_name=recipient_name,
                               recipient_email=recipient_email)}


def recipient_values(ticket: Ticket, *, audience: str, recipient_name: str, recipient_email: str) -> dict:
    """The values that differ by recipient: the links (a customer's is signed for them) and the name."""
    if audience not in ("customer", "staff"):
        raise ValueError(f"unknown audience {audience!r}")
    if audience == "customer":
        ticket_url = portal_url = portal_mail.ticket_link(recipient_email, ticket.number)
    else:
        ticket_url = portal_mail.absolute_url("tickets.show", number=ticket.number)
        portal_url = portal_mail.absolute_url("portal.index")
    return {"ticket_url": ticket_url, "portal_url": portal_url, "recipient_name": recipient_name}


def ticket_values(ticket: Ticket, *, actor=None, reply=None, changes: dict | None = None,
                  now: datetime | None = None) -> dict:
    """The values every recipient of one event shares (computed once per event: the SLA state is not free)."""
    session = object_session(ticket)
    now = now or clock.now()
    changes = changes or {}
    zone = ZoneInfo(hours.hours_source(session, ticket.entity).timezone)
    old_status = (changes.get("status") or [None])[0]
    due = changes.get("due")
    return {
        "ticket_number": ticket.number, "customer_name": ticket.customer.name if ticket.customer else "",
        "agent_name": ticket.assignee.name if ticket.assignee else "", "entity_name": ticket.entity.name,
        "ticket_subject": ticket.subject, "ticket_content": message_text(ticket.body, ticket.body_format),
        "ticket_content_html": str(message_html(ticket.body, ticket.body_format)),
        "reply_content": message_text(reply.body, reply.body_format) if reply else "",
        "reply_content_html": str(message_html(reply.body, reply.body_format)) if reply else "",
        "due_date": _when(datetime.fromisoformat(due) if due else ticket.sla_nearest_due, zone),
        "priority": ticket.priority.capitalize(), "status": STATUS_LABELS.get(ticket.status, ticket.status),
        "old_status": STATUS_LABELS.get(old_status, old_status or ""),
        "actor_name": actor.name if actor is not None else "METS",
        "sla_rule": ticket.sla_rule.name if ticket.sla_rule else "", "sla_status": sla_status(session, ticket, now),
        "sla_response_due": _when(ticket.sla_response_due, zone),
        "sla_resolution_due": _when(ticket.sla_resolution_due, zone),
        "sla_breached": bool(ticket.sla_response_breached or ticket.sla_next_reply_breached
                             or ticket.sla_resolution_breached),
        "sla_clock": sla.CLOCK_LABELS.get(changes.get("clock"), changes.get("clock") or "").lower(),
        "sla_point": str(changes.get("point") or "").split(":")[0],
        "escalation_level": str(changes.get("level") or ""),
        "escalation_reason": str(changes.get("reason") or ""),
        "escalation_policy": str(changes.get("policy") or ""),
        **dict.fromkeys(SURVEY_KEYS, ""),  # the survey mail's own (services.metrics.csat sets them)
    }


def _when(at: datetime | None, zone: ZoneInfo) -> str:
    return "" if at is None else at.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")


def _nearest_clock(ticket: Ticket) -> str:
    dues = [(getattr(ticket, f"sla_{c}_due"), c) for c in CLOCKS if getattr(ticket, f"sla_{c}_due") is not None]
    return min(dues)[1] if dues else "response"


def sla_status(session, ticket: Ticket, now: datetime) -> str:
    """The ticket's nearest SLA state in words.

    E.g. "Resolution due in 3h 10m (business time)", "Response target breached".
    """
    summary = sla.summary(session, ticket, now)
    label = sla.CLOCK_LABELS[_nearest_clock(ticket)]
    if summary.state == "due":
        minutes = int(summary.business_left / timedelta(minutes=1))
        kind = " (business time)" if ticket.sla_rule.business_hours_only else ""
        return f"{label} due in {format_minutes(max(minutes, 1))}{kind}"
    if summary.state == "breached":
        return f"{label} target breached" if summary.due else "An SLA target was breached"
    return {"paused": f"SLA paused while the ticket is {STATUS_LABELS[ticket.status].lower()}",
            "met": "SLA targets met"}.get(summary.state, "")


def sample_variables() -> dict:
    """Realistic values for every variable: for checking templates and for previews without a ticket."""
    return {
        "ticket_number": "ACME-1042", "customer_name": "Jane Cooper", "agent_name": "Sam Rivera",
        "entity_name": "Acme Support", "ticket_subject": "Cannot download my March invoice",
        "ticket_content": "Hello,\n\nThe download button on the billing page does nothing. Could you send me "
                          "the invoice for March?\n\nThanks, Jane",
        "ticket_content_html": "<p>Hello,</p><p>The download button on the billing page does nothing. Could you "
                               "send me the invoice for March?</p><p>Thanks, Jane</p>",
        "reply_content": "Hi Jane,\n\nI have attached the invoice. The download problem is fixed too.\n\nSam",
        "reply_content_html": "<p>Hi Jane,</p><p>I have attached the invoice. The download problem is fixed "
                              "too.</p><p>Sam</p>",
        "ticket_url": "https://support.example.com/tickets/ACME-1042",
        "portal_url": "https://support.example.com/portal/tickets/ACME-1042",
        "due_date": "Tue 10 Mar 2026 14:30 EST", "priority": "High", "status": "Open", "old_status": "New",
        "actor_name": "Sam Rivera", "recipient_name": "Jane Cooper", "sla_rule": "Standard support",
        "sla_status": "Resolution due in 3h 10m (business time)",
        "sla_response_due": "Mon 09 Mar 2026 13:00 EST", "sla_resolution_due": "Tue 10 Mar 2026 14:30 EST",
        "sla_breached": False, "sla_clock": "resolution", "sla_point": "warning", "escalation_level": "1",
        "escalation_reason": "75% of the resolution target used", "escalation_policy": "Urgent tickets",
        **survey_values("https://support.example.com/portal/survey/sample"),
    }


def digest_sample() -> dict:
    """Realistic values for the escalation digest's variables (`templates.DIGEST_VARIABLES`)."""
    notices = [{"ticket_number": number, "ticket_subject": subject, "escalation_level": level,
                "escalation_reason": reason, "escalation_policy": "Urgent tickets", "escalated_at": at,
                "priority": "Urgent", "ticket_url": f"https://support.example.com/tickets/{number}"}
               for number, subject, level, reason, at in (
                   ("ACME-1042", "Cannot download my March invoice", 1, "75% of the resolution target used",
                    "Tue 2026-03-10 03:00 America/New_York"),
                   ("ACME-1043", "Charged twice in May", 2, "the resolution target was breached",
                    "Tue 2026-03-10 04:00 America/New_York"))]
    return {"recipient_name": "Lee Lead", "count": len(notices), "notices": notices,
            "ticket_numbers": ", ".join(n["ticket_number"] for n in notices)}


SURVEY_KEYS = ("survey_url", *(f"survey_url_{n}" for n in range(1, 6)))


def survey_values(base: str) -> dict:
    """The survey links of the `csat-survey` template: the form, and one link per score (preselected)."""
    return {"survey_url": base, **{f"survey_url_{n}": f"{base}?score={n}" for n in range(1, 6)}}


# --- the editor's preview ---------------------------------------------------------------------

# The audit event each template is about: its latest occurrence gives the preview's actor and changes.
_PREVIEW_EVENTS = {"ticket-status-changed": "status_changed", "ticket-assigned": "assigned_to_changed",
                   "sla-breach-warning": "sla_breach_warning", "sla-breach-notification": "sla_breach_occurred",
                   "escalation-notification": "escalation_due"}
_PREVIEW_CHANGES = {"ticket-status-changed": lambda t: {"status": ["new", t.status]},
                    "sla-breach-warning": lambda t: {"clock": _nearest_clock(t), "point": "warning"},
                    "sla-breach-notification": lambda t: {"clock": _nearest_clock(t), "point": "breach"},
                    "escalation-notification": lambda t: {"level": 1, "reason": "75% of the resolution target used",
                                                         "policy": "Urgent tickets"}}


def preview_variables(session, ticket: Ticket, name: str, audience: str, now: datetime | None = None) -> dict:
    """The values for the template `name` on this ticket as its latest matching event would send it (editor preview)."""
    replies = [r for r in ticket.replies if not (audience == "customer" and r.internal)]
    reply = replies[-1] if replies and "-reply-" in name else None
    event = next((e for e in reversed(ticket.events) if e.event == _PREVIEW_EVENTS.get(name)), None)
    changes = event.changes if event else _PREVIEW_CHANGES.get(name, lambda t: {})(ticket)
    actor = reply.author if reply else (event.actor if event else None)
    recipient = ticket.customer if audience == "customer" else (ticket.assignee or _first_admin(session))
    values = variables_for(ticket, audience=audience, recipient_name=recipient.name if recipient else "",
                           recipient_email=recipient.email if recipient else "", actor=actor, reply=reply,
                           changes=changes, now=now)
    if audience == "customer":
        # The admin sees where the link leads, never a working sign-in link for the customer.
        values["ticket_url"] = values["portal_url"] = portal_mail.absolute_url("portal.show", number=ticket.number)
    if name == "csat-survey":  # where the links lead, never a working survey link
        values.update(survey_values(portal_mail.absolute_url("portal.survey", token="preview")))
    return values


def _first_admin(session) -> User | None:
    return session.scalars(select(User).where(User.is_admin.is_(True), User.active.is_(True))
                           .order_by(User.id)).first()
