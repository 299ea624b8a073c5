"""Every app-wide Jinja filter, global and context processor, registered in one place (`init_app`).

They only format what the route handed over; none queries the database, but for the two that say so below.
"""
from zoneinfo import ZoneInfo

from flask import has_request_context
from flask_login import current_user
from jinja2 import Undefined

from mets import clock
from mets.forms.rules import builder_view
from mets.extensions import db
from mets.forms import entity_label
from mets.models import STATUSES
from mets.models.tickets import STATUS_LABELS
from mets.services.automation import admin as automation_admin
from mets.services.durations import format_minutes
from mets.services.escalation import admin as escalation_admin
from mets.services.html import message_html
from mets.services.outbox import admin as outbox_admin
from mets.services.outbox.smtp import MAIL
from mets.services.sla import admin as sla_admin
from mets.web import is_htmx


def local(value, tz: str = "UTC", fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant in a time zone ("2026-03-09 12:55")."""
    return "" if value is None else value.astimezone(ZoneInfo(tz)).strftime(fmt)


def ago(value) -> str:
    if value is None:
        return ""
    seconds = int((clock.now() - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


def duration(value) -> str:
    """A timedelta as "1h 20m" (whole minutes, rounded down)."""
    return "" if value is None else format_minutes(int(value.total_seconds() // 60))


def minutes(value) -> str:
    """A number of minutes as "1h 20m"."""
    return "" if value is None else format_minutes(value)


def body_html(message) -> str:
    """A ticket's or reply's body as safe HTML (typed text escaped, old HTML sanitised again)."""
    return message_html(message.body, message.body_format)


def rule_builder(conditions=None, name: str = "conditions", registry: str = "ticket", error=None):
    """`rule_builder(conditions, ...)` -> the condition builder's view (rules/_macros.html draws it). Host forms
    embed the builder by including rules/_builder.html, so it is built here; a free-text field's suggestions
    (the entities the user may see) are read once per request."""
    conditions = None if isinstance(conditions, Undefined) else conditions
    error = None if isinstance(error, Undefined) else error
    if isinstance(error, (list, tuple)):
        error = error[0] if error else None
    return builder_view(conditions, name=name, registry=registry, error=error)


def mail_badge() -> dict:
    """The failed-mail count in the admin's nav: a callable, so the COUNT runs only when base.html draws the nav
    (not for every htmx partial)."""
    if has_request_context() and current_user.is_authenticated and current_user.is_staff and current_user.is_admin:
        return {"mail_failed_count": lambda: outbox_admin.failed_count(MAIL, db.session)}
    return {}


def init_app(app) -> None:
    """(The `int` route converter is set in create_app, before any route.)"""
    app.jinja_env.filters.update(message_html=body_html, local=local, ago=ago, duration=duration,
                                 format_minutes=minutes, mail_due=outbox_admin.due_in)
    app.jinja_env.globals.update(STATUSES=STATUSES, STATUS_LABELS=STATUS_LABELS, is_htmx=is_htmx,
                                 entity_label=entity_label, rule_builder=rule_builder,
                                 mail_priority=outbox_admin.priority_label,
                                 automation_conditions_words=automation_admin.describe_conditions,
                                 sla_describe_conditions=sla_admin.describe_conditions,
                                 escalation_describe_conditions=escalation_admin.describe_conditions,
                                 escalation_clock_labels=escalation_admin.CLOCK_LABELS)
    app.context_processor(mail_badge)
