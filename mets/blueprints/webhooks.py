"""Admin webhook pages: the outgoing deliveries (webhooks and SMS), each one's tries, and the
pause switch.

Like the mail queue, on the outbox pages' shared parts (`blueprints/outbox_pages.py`): the list
is filtered with htmx (`webhooks/_list.html` is both the htmx answer and part of the page), and a
delivery's status box (`outbox/_status.html`) owns its verbs (retry, cancel) and refreshes itself
while the delivery is on its way.
"""
from flask import Blueprint, current_app, request

from mets.blueprints import outbox_pages
from mets.extensions import db
from mets.services.directory import entities
from mets.services.outbox import admin as outbox_admin
from mets.services.outbox.admin import HookFilters
from mets.services.outbox.http import HOOKS
from mets.web import admin_required, load_outbox_row

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")
PAGES = outbox_pages.Pages(HOOKS, "webhooks", show="webhooks.delivery", id_arg="delivery_id", box_id="hook-status",
                           noun="delivery", plural="deliveries")


@bp.get("/")
@admin_required
def index():
    return outbox_pages.list_page(PAGES, HookFilters.from_args(request.args), "webhooks/index.html",
                                  "webhooks/_list.html", with_names=True, kinds=outbox_admin.KINDS,
                                  entity_tree=entities.entity_tree(db.session),
                                  settings=outbox_admin.hook_settings(current_app.config))


def _delivery_page(row, status: int = 200, error: str | None = None, notice: str | None = None):
    return outbox_pages.row_page(PAGES, "webhooks/delivery.html", "outbox/_status.html", row, status, error, notice,
                                 headers=outbox_admin.shown_headers(db.session, row),
                                 entity_name=outbox_admin.entity_names(db.session, [row]).get(row.entity_id))


@bp.get("/<int:delivery_id>")
@admin_required
def delivery(delivery_id):
    return _delivery_page(load_outbox_row(HOOKS, delivery_id))


@bp.post("/<int:delivery_id>/retry")
@admin_required
def retry(delivery_id):
    return outbox_pages.act(PAGES, delivery_id, outbox_admin.retry, "The delivery will be tried again now.",
                            _delivery_page)


@bp.post("/<int:delivery_id>/cancel")
@admin_required
def cancel(delivery_id):
    return outbox_pages.act(PAGES, delivery_id, outbox_admin.cancel,
                            "The delivery was cancelled: it will not be sent.", _delivery_page)


@bp.post("/pause")
@admin_required
def pause():
    return outbox_pages.pause(PAGES, "Sending")
