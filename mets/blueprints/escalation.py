"""Admin pages for escalation policies: the list by entity (reorder, activate), the policy editor (its levels
edited in place, reordered by drag and drop or up/down buttons), and the preview for one ticket.

The list is one box per entity (`escalation/_entity_policies.html`); moving or (de)activating a policy answers
htmx with that box and redirects otherwise. The editor posts its level rows in page order (forms.escalation);
new level and action rows are drawn by htmx; the preview posts the whole form as it stands and writes nothing.
"""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from mets.extensions import db
from mets.forms import entity_choices, status_for
from mets.forms.escalation import TRIGGER_CHOICES, PolicyForm, levels_from_form
from mets.models import Entity, EscalationPolicy
from mets.services.automation import builder
from mets.services.directory import access, entities
from mets.services.escalation import admin as service
from mets.web import (
    admin_required, arg_int, commit, is_htmx, load_entity, load_escalation_policy, render, show_errors,
)

bp = Blueprint("escalation_policies", __name__, url_prefix="/admin/escalation")


def _form(policy: EscalationPolicy | None = None, **defaults) -> tuple[PolicyForm, list[dict]]:
    """The policy form and its level rows: the request's, or (a first view) the policy's or the defaults."""
    if request.method == "GET":
        if policy is not None:
            data, levels = service.form_values(policy)
        else:
            data, levels = defaults, [service.new_level("percent", "75"), service.new_level("after_breach", "0")]
        form = PolicyForm(formdata=None, data=data)
    else:
        form, levels = PolicyForm(), levels_from_form(request.form)
    form.entity_id.choices = entity_choices(entities.entity_tree(db.session))
    return form, levels


def _page(form: PolicyForm, policy: EscalationPolicy | None, levels: list[dict], level_errors: dict, status: int):
    entity = load_entity(form.entity_id.data, optional=True)
    return render("escalation/form.html", form=form, policy=policy, status=status,
                  levels=service.level_views(db.session, entity, levels, level_errors),
                  levels_error=level_errors.get("levels"), **_editor_context())


def _editor_context() -> dict:
    return {"trigger_choices": TRIGGER_CHOICES, "type_groups": service.type_groups(),
            "action_row_url": url_for("escalation_policies.action_row")}


def _save(form: PolicyForm, policy: EscalationPolicy | None, levels: list[dict], action):
    """Validate, run the service and commit: the saved policy, or the page again with every error in place."""
    if not form.validate_on_submit():
        return None, _page(form, policy, levels, {}, status_for(form))
    saved = commit(action)
    if saved:
        return saved.result, None
    own, level_errors = service.split_errors(saved.errors)
    show_errors(form, own)
    return None, _page(form, policy, levels, level_errors, 422)


def _entity_box(entity: Entity):
    depth = len(access.ancestors(db.session, entity))
    groups = service.policies_by_entity(db.session)
    return render("escalation/index.html", "escalation/_entity_policies.html", entity=entity, depth=depth,
                  policies=service.policies_of(db.session, entity), groups=groups,
                  level_words=service.level_words(db.session, groups))


# --- the list ---------------------------------------------------------------------------------

@bp.get("/")
@admin_required
def index():
    groups = service.policies_by_entity(db.session)
    return render("escalation/index.html", groups=groups, level_words=service.level_words(db.session, groups))


@bp.post("/<int:policy_id>/active")
@admin_required
def set_active(policy_id):
    policy = load_escalation_policy(policy_id)
    commit(lambda: service.set_active(db.session, policy, request.form.get("active") == "1"))
    if is_htmx():
        return _entity_box(policy.entity)
    return redirect(url_for("escalation_policies.index", _anchor=f"esc-entity-{policy.entity_id}"), 303)


@bp.post("/<int:policy_id>/move")
@admin_required
def move(policy_id):
    policy = load_escalation_policy(policy_id)
    offset = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    if offset is None:
        abort(400)
    commit(lambda: service.move(db.session, policy, offset))
    if is_htmx():
        return _entity_box(policy.entity)
    return redirect(url_for("escalation_policies.index", _anchor=f"esc-entity-{policy.entity_id}"), 303)


@bp.post("/<int:policy_id>/delete")
@admin_required
def delete(policy_id):
    policy = load_escalation_policy(policy_id)
    name = policy.name
    commit(lambda: service.delete_policy(db.session, policy))
    flash(f"Deleted “{name}”.")
    return redirect(url_for("escalation_policies.index"), 303)


# --- the editor -------------------------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    form, levels = _form(entity_id=arg_int("entity_id"), clock="resolution", business_time=True, is_active=True)
    policy, page = _save(form, None, levels, lambda: service.create_policy(
        db.session, load_entity(form.entity_id.data, optional=True), form.data_for_service(), levels))
    if policy is None:
        return page
    flash(f"Created “{policy.name}”. Preview it against a ticket below.")
    return redirect(url_for("escalation_policies.edit", policy_id=policy.id), 303)


@bp.route("/<int:policy_id>", methods=["GET", "POST"])
@admin_required
def edit(policy_id):
    policy = load_escalation_policy(policy_id)
    form, levels = _form(policy)
    saved, page = _save(form, policy, levels, lambda: service.update_policy(
        db.session, policy, load_entity(form.entity_id.data, optional=True), form.data_for_service(), levels))
    if saved is None:
        return page
    flash(f"Saved “{policy.name}”.")
    return redirect(url_for("escalation_policies.edit", policy_id=policy.id), 303)


@bp.post("/level-row")
@admin_required
def level_row():
    """A new level row (htmx appends it to the levels)."""
    entity = load_entity(request.form.get("entity_id"), optional=True)
    level = service.level_views(db.session, entity, [service.new_level("after_breach", "")])[0]
    return render_template("escalation/_level_row.html", level=level, **_editor_context())


@bp.post("/action-row")
@admin_required
def action_row():
    """A new action row of a level (no `row`), or a row drawn again for its newly chosen type (values kept)."""
    row_id = request.form.get("row", "")
    if row_id and not builder.ROW_ID.match(row_id):
        abort(400)
    type_name = request.form.get(f"ac-{row_id}-type" if row_id else "type", "")
    entity = load_entity(request.form.get("entity_id"), optional=True)
    row = service.action_row(db.session, entity, request.form, row_id or None, type_name)
    return render_template("automation/_action_row.html", row=row, **_editor_context())


@bp.post("/preview")
@admin_required
def preview():
    """The preview: the form as it stands (or the saved policy) against one ticket now. Writes nothing."""
    policy = load_escalation_policy(request.form.get("policy_id"), optional=True)
    number = (request.form.get("preview_ticket") or "").strip()[:60]
    ticket = access.find_ticket(db.session, current_user, number) if number else None
    result = None
    if ticket is not None:
        form = PolicyForm()
        entity = load_entity(request.form.get("entity_id"), optional=True)
        with_form = "name" in request.form
        result = service.preview(db.session, ticket, entity, form.data_for_service() if with_form else None,
                                 levels_from_form(request.form) if with_form else None, editing=policy)
    response = render_template("escalation/_preview.html", number=number, preview=result, editing=policy)
    db.session.rollback()  # the preview never writes; nothing it touched may reach a later commit
    return response
