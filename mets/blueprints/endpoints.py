"""Webhook endpoint pages (/admin/endpoints/): each entity's receivers of its events, for admins and the entity's
managers (`web.load_webhook_endpoint`: another entity's endpoint, or one of its deliveries, is a 404).

The list by entity; creating an endpoint (its secret is shown on the answer to that POST, and never again; "Rotate"
shows the new one the same way); its page edits it and lists its deliveries; a delivery's page shows every try.
Verbs are POSTs (CSRF) that redirect (303) with what they did: enable, disable, send a test event, replay a
delivery, delete.
"""
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from mets.extensions import db
from mets.forms import status_for
from mets.forms.webhooks import EndpointForm
from mets.services import webhooks
from mets.services.outbox import admin as outbox_admin
from mets.services.webhooks.types import EVENT_TYPES
from mets.web import (
    commit, load_endpoint_delivery, load_managed_entity, load_webhook_endpoint, staff_required,
)

bp = Blueprint("endpoints", __name__, url_prefix="/admin/endpoints")


@bp.get("/")
@staff_required
def index():
    managed = webhooks.managed_entities(db.session, current_user)
    if not managed:
        abort(404)
    return render_template("endpoints/index.html", managed=managed,
                           endpoints=webhooks.endpoints_by_entity(db.session, managed))


@bp.route("/entity/<int:entity_id>/new", methods=["GET", "POST"])
@staff_required
def new(entity_id):
    entity = load_managed_entity(entity_id)
    form = EndpointForm()
    saved = commit(lambda: webhooks.create_endpoint(db.session, entity, form.data_for_service()), form)
    if saved:
        return render_template("endpoints/secret.html", endpoint=saved.result, secret=saved.result.secret,
                               created=True), 201
    return render_template("endpoints/form.html", entity=entity, form=form, endpoint=None,
                           types=EVENT_TYPES), status_for(form)


def _page(endpoint, form, status=200, error=None):
    return render_template("endpoints/show.html", endpoint=endpoint, form=form, error=error, types=EVENT_TYPES,
                           deliveries=webhooks.deliveries_of(db.session, endpoint),
                           due_in=outbox_admin.due_in), status


@bp.route("/<int:endpoint_id>", methods=["GET", "POST"])
@staff_required
def show(endpoint_id):
    endpoint = load_webhook_endpoint(endpoint_id)
    form = EndpointForm(obj=endpoint)
    if commit(lambda: webhooks.update_endpoint(db.session, endpoint, form.data_for_service()), form):
        flash("Endpoint saved.")
        return redirect(url_for("endpoints.show", endpoint_id=endpoint.id), 303)
    return _page(endpoint, form, status_for(form))


def _verb(endpoint, action, done: str):
    """Run one verb: back to the endpoint's page (303) with what it did, or with the refusal (422)."""
    saved = commit(action)
    if not saved:
        return _page(endpoint, EndpointForm(obj=endpoint), 422, error=saved.summary)
    flash(done)
    return redirect(url_for("endpoints.show", endpoint_id=endpoint.id), 303)


@bp.post("/<int:endpoint_id>/disable")
@staff_required
def disable(endpoint_id):
    endpoint = load_webhook_endpoint(endpoint_id)
    reason = f"Disabled by {current_user.name or current_user.email}."
    return _verb(endpoint, lambda: webhooks.disable(db.session, endpoint, reason=reason),
                 "Endpoint disabled: nothing is sent to it until it is enabled.")


@bp.post("/<int:endpoint_id>/enable")
@staff_required
def enable(endpoint_id):
    endpoint = load_webhook_endpoint(endpoint_id)
    return _verb(endpoint, lambda: webhooks.enable(db.session, endpoint), "Endpoint enabled.")


@bp.post("/<int:endpoint_id>/test")
@staff_required
def test(endpoint_id):
    endpoint = load_webhook_endpoint(endpoint_id)
    return _verb(endpoint, lambda: webhooks.send_test(db.session, endpoint, current_user),
                 "A test event (webhook.test) is on its way: its delivery is listed below.")


@bp.post("/<int:endpoint_id>/rotate")
@staff_required
def rotate(endpoint_id):
    endpoint = load_webhook_endpoint(endpoint_id)
    saved = commit(lambda: webhooks.rotate_secret(db.session, endpoint))
    return render_template("endpoints/secret.html", endpoint=endpoint, secret=saved.result, created=False)


@bp.post("/<int:endpoint_id>/delete")
@staff_required
def delete(endpoint_id):
    endpoint = load_webhook_endpoint(endpoint_id)
    commit(lambda: webhooks.delete_endpoint(db.session, endpoint))
    flash("Endpoint deleted, with its deliveries.")
    return redirect(url_for("endpoints.index"), 303)


@bp.get("/<int:endpoint_id>/deliveries/<int:delivery_id>")
@staff_required
def delivery(endpoint_id, delivery_id):
    endpoint = load_webhook_endpoint(endpoint_id)
    row = load_endpoint_delivery(endpoint, delivery_id)
    return render_template("endpoints/delivery.html", endpoint=endpoint, row=row,
                           headers=outbox_admin.shown_headers(db.session, row))


@bp.post("/<int:endpoint_id>/deliveries/<int:delivery_id>/replay")
@staff_required
def replay(endpoint_id, delivery_id):
    endpoint = load_webhook_endpoint(endpoint_id)
    row = load_endpoint_delivery(endpoint, delivery_id)
    saved = commit(lambda: webhooks.replay(db.session, endpoint, row))
    if not saved:
        return _page(endpoint, EndpointForm(obj=endpoint), 422, error=saved.summary)
    flash(f"Replayed as delivery {saved.result.id} (same webhook-id, {saved.result.message_id}).")
    return redirect(url_for("endpoints.delivery", endpoint_id=endpoint.id, delivery_id=saved.result.id), 303)
