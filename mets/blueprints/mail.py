"""Admin mail pages: the outbox queue, each message, pause/resume, SMTP settings, notification settings.

The queue list is filtered with htmx like the ticket list (`mail/_queue.html` is both the htmx
answer and part of the page). The list, a message's status box (`outbox/_status.html`, which owns
its verbs and refreshes itself while the message is on its way) and the pause switch are the
outbox pages' shared ones (`blueprints/outbox_pages.py`), as on the webhooks page. Each notification event is a row
box (`mail/_notification_row.html`) that saves and resets in place.
"""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from mets.extensions import db
from mets.security import allows_inline_styles
from mets.forms import status_for
from mets.forms.mail import NotificationForm, TestEmailForm
from mets.blueprints import outbox_pages
from mets.models import Entity
from mets.services import mail_admin
from mets.services.directory import entities
from mets.services.notifications import settings as notification_settings
from mets.services.outbox import admin as outbox_admin
from mets.services.outbox.admin import MailFilters
from mets.services.outbox.smtp import MAIL
from mets.web import admin_required, arg_int, commit, is_htmx, load_entity, load_outbox_row

bp = Blueprint("mail", __name__, url_prefix="/admin/mail")
PAGES = outbox_pages.Pages(MAIL, "mail", show="mail.message", id_arg="message_id", box_id="mail-status",
                           noun="message", plural="messages")


# --- the queue --------------------------------------------------------------------------------

@bp.get("/")
@admin_required
def index():
    return outbox_pages.list_page(PAGES, MailFilters.from_args(request.args), "mail/index.html", "mail/_queue.html",
                                  entity_tree=entities.entity_tree(db.session),
                                  templates=outbox_admin.template_names(), no_template=outbox_admin.NO_TEMPLATE)


@bp.post("/retry-failed")
@admin_required
def retry_failed():
    f = MailFilters.from_args(request.form)
    count = commit(lambda: outbox_admin.retry_matching(MAIL, db.session, f)).result
    flash(f"{count} message{'' if count == 1 else 's'} will be retried.")
    return redirect(url_for("mail.index", **f.as_args(page="")), 303)


@bp.post("/pause")
@admin_required
def pause():
    return outbox_pages.pause(PAGES, "Sending")


# --- one message --------------------------------------------------------------------------------

def _message_page(row, status: int = 200, error: str | None = None, notice: str | None = None):
    return outbox_pages.row_page(PAGES, "mail/message.html", "outbox/_status.html", row, status, error, notice)


@bp.get("/<int:message_id>")
@admin_required
@allows_inline_styles  # the message's HTML part, in a sandboxed iframe
def message(message_id):
    return _message_page(load_outbox_row(MAIL, message_id))


@bp.post("/<int:message_id>/retry")
@admin_required
def retry(message_id):
    return outbox_pages.act(PAGES, message_id, outbox_admin.retry, "The message will be sent again now.",
                            _message_page)


@bp.post("/<int:message_id>/cancel")
@admin_required
def cancel(message_id):
    return outbox_pages.act(PAGES, message_id, outbox_admin.cancel, "The message was cancelled: it will not be sent.",
                            _message_page)


# --- settings and the test email ------------------------------------------------------------------

def _settings_page(form: TestEmailForm, status: int = 200):
    config = current_app.config
    return render_template("mail/settings.html", form=form, smtp=mail_admin.smtp_settings(config),
                           sender=mail_admin.sender_settings(db.session, config),
                           queue=mail_admin.queue_settings(config)), status


@bp.get("/settings")
@admin_required
def settings():
    return _settings_page(TestEmailForm(formdata=None))


@bp.post("/test")
@admin_required
def send_test():
    form = TestEmailForm()
    saved = commit(lambda: mail_admin.send_test(db.session, form.address.data or "", actor_name=current_user.name),
                   form)
    if not saved:
        return _settings_page(form, status_for(form))
    flash(f"Test email queued for {saved.result.recipient_email}. Watch it go out below.")
    return redirect(url_for("mail.message", message_id=saved.result.id), 303)


# --- notification settings ----------------------------------------------------------------------

def _notification_form(row: mail_admin.NotificationRow, submitted: bool = False) -> NotificationForm:
    """The row's form: what was posted (to show it again with errors), or the setting in force."""
    key = row.spec.key
    if submitted:
        form = NotificationForm(prefix=key)
    else:
        s = row.setting
        form = NotificationForm(formdata=None, prefix=key, enabled=s.enabled, recipients=list(s.recipients),
                                extra_addresses="\n".join(s.extra_addresses))
    form.recipients.choices = list(row.spec.recipient_choices.items())
    return form


def _notifications_page(entity: Entity | None, forms: dict | None = None, status: int = 200):
    rows = mail_admin.notification_rows(db.session, entity) if entity else []
    forms = {r.spec.key: (forms or {}).get(r.spec.key) or _notification_form(r) for r in rows}
    return render_template("mail/notifications.html", entity=entity, rows=rows, forms=forms,
                           entity_tree=entities.entity_tree(db.session)), status


def _row_answer(entity: Entity, row, form, status: int = 200):
    """The htmx answer of every verb on a row: the row itself."""
    return render_template("mail/_notification_row.html", entity=entity, row=row, form=form), status


@bp.get("/notifications")
@admin_required
def notifications():
    entity_id = arg_int("entity_id")
    tree = entities.entity_tree(db.session)
    entity = load_entity(entity_id) if entity_id else (tree[0][0] if tree else None)
    return _notifications_page(entity)


def _notification_target(entity_id: int, event: str):
    if event not in notification_settings.EVENTS:
        abort(404)
    entity = load_entity(entity_id)
    return entity, mail_admin.notification_row(db.session, entity, event)


@bp.post("/notifications/<int:entity_id>/<event>")
@admin_required
def save_notification(entity_id, event):
    entity, row = _notification_target(entity_id, event)
    form = _notification_form(row, submitted=True)
    saved = commit(lambda: notification_settings.save(
        db.session, entity, event, enabled=form.enabled.data, recipients=form.recipients.data or [],
        extra_addresses=notification_settings.parse_addresses(form.extra_addresses.data or "")), form)
    if not saved:
        if is_htmx():
            return _row_answer(entity, row, form, 422)
        return _notifications_page(entity, {event: form}, 422)
    return _notification_done(entity, event, "Saved")


@bp.post("/notifications/<int:entity_id>/<event>/reset")
@admin_required
def reset_notification(entity_id, event):
    entity, _ = _notification_target(entity_id, event)
    commit(lambda: notification_settings.reset(db.session, entity, event))
    return _notification_done(entity, event, "Reset to the inherited setting")


def _notification_done(entity: Entity, event: str, what: str):
    if not is_htmx():
        flash(f"{what}: {notification_settings.EVENTS[event].label} for {entity.name}.")
        return redirect(url_for("mail.notifications", entity_id=entity.id, _anchor=f"notify-{event}"), 303)
    row = mail_admin.notification_row(db.session, entity, event)
    return _row_answer(entity, row, _notification_form(row))
