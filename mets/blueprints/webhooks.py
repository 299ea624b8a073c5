"""Admin webhook pages: the outgoing deliveries (webhooks and SMS) and each one's tries.

Like the mail queue: the list is filtered with htmx (`webhooks/_list.html` is both the htmx
answer and part of the page), and a delivery's status box (`webhooks/_status.html`) owns its
verbs (retry, cancel) and refreshes itself while the delivery is on its way.
"""
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for

from mets.extensions import db
from mets.forms import commit_call
from mets.models import MAIL_STATUSES
from mets.models.automation import WebhookDelivery
from mets.services import webhook_admin, webhooks
from mets.services.directory import entities
from mets.services.webhook_admin import HookFilters
from mets.web import admin_required, is_htmx, render

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")


@bp.get("/")
@admin_required
def index():
    f = HookFilters.from_args(request.args)
    rows, total = webhook_admin.search(db.session, f)
    return render("webhooks/index.html", "webhooks/_list.html", f=f, rows=rows, total=total,
                  pages=webhook_admin.page_count(total), counts=webhook_admin.status_counts(db.session, f),
                  statuses=MAIL_STATUSES, kinds=webhook_admin.KINDS, entity_tree=entities.entity_tree(db.session),
                  names=webhook_admin.entity_names(db.session, rows),
                  settings=webhook_admin.settings(current_app.config))


def _delivery(delivery_id: int) -> WebhookDelivery:
    return db.session.get(WebhookDelivery, delivery_id) or abort(404)


def _delivery_page(row: WebhookDelivery, status: int = 200, error: str | None = None, notice: str | None = None):
    return render("webhooks/delivery.html", "webhooks/_status.html", status=status, row=row, error=error,
                  notice=notice, can_act=webhook_admin.can_act(row), headers=webhook_admin.shown_headers(row),
                  entity_name=webhook_admin.entity_names(db.session, [row]).get(row.entity_id))


@bp.get("/<int:delivery_id>")
@admin_required
def delivery(delivery_id):
    return _delivery_page(_delivery(delivery_id))


def _act(delivery_id: int, action, done: str):
    """Run retry or cancel: 303 (or the box) when done, the refusal in place (422) if not."""
    row = _delivery(delivery_id)
    ok, _, refusal = commit_call(lambda: action(db.session, row))
    if not ok:
        return _delivery_page(row, 422, error=refusal.summary)
    if is_htmx():
        return _delivery_page(row, notice=done)
    flash(done)
    return redirect(url_for("webhooks.delivery", delivery_id=row.id), 303)


@bp.post("/<int:delivery_id>/retry")
@admin_required
def retry(delivery_id):
    return _act(delivery_id, webhooks.retry, "The delivery will be tried again now.")


@bp.post("/<int:delivery_id>/cancel")
@admin_required
def cancel(delivery_id):
    return _act(delivery_id, webhooks.cancel, "The delivery was cancelled: it will not be sent.")
