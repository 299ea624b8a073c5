"""Admin pages for automation rules: the list (reorder, switch on/off, 7/30-day counts), the builder, test mode,
and a rule's page with its executions.

Every verb on the list answers htmx with the list (`automation/_list.html`, keeping the trigger
filter) and redirects otherwise. The builder keeps conditions and actions in two hidden JSON
fields; test mode posts the whole form as it stands and writes nothing.
"""
import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from mets.extensions import db
from mets.forms import entity_choices
from mets.forms.automation import RuleForm
from mets.models import TRIGGERS, AutomationRule
from mets.services.directory import access
from mets.services.directory import entities
from mets.services.automation import builder
from mets.services.automation import admin as service
from mets.services.automation import test_mode
from mets.services.automation.admin import TRIGGER_LABELS
from mets.services.errors import DomainError
from mets.web import admin_required, arg_int, commit, is_htmx, load_automation_rule, load_entity, render, show_errors

bp = Blueprint("automation", __name__, url_prefix="/admin/automation")
RECENT_LIMIT = 50


def _form(rule: AutomationRule | None = None) -> RuleForm:
    if request.method == "GET":
        data = service.form_values(rule) if rule else {"trigger_event": "ticket_created", "actions": "[]",
                                                       "entity_id": str(arg_int("entity_id") or "")}
        form = RuleForm(formdata=None, data=data)
    else:
        form = RuleForm()
    form.entity_id.choices = [("", "All entities")] + [
        (str(entity_id), label) for entity_id, label in entity_choices(entities.entity_tree(db.session))]
    return form


def _trigger_filter(value) -> str | None:
    return value if value in TRIGGERS else None


def _list(trigger: str | None = None, status: int = 200, error: str | None = None):
    """The rules list (page, or the list partial for htmx), with each rule's counts."""
    groups = service.by_trigger(db.session, trigger)
    found = [r for _, rs in groups for r in rs]
    return render("automation/index.html", "automation/_list.html", status=status, groups=groups, trigger=trigger,
                  error=error, trigger_labels=TRIGGER_LABELS, moved=service.moved,
                  stats=service.stats(db.session, [r.id for r in found]),
                  actions_words={r.id: service.describe_actions(db.session, r.actions) for r in found})


def _back_to_list():
    trigger = _trigger_filter(request.form.get("trigger"))
    if is_htmx():
        return _list(trigger)
    return redirect(url_for("automation.index", trigger=trigger), 303)


def _builder_page(form: RuleForm, rule: AutomationRule | None, action_errors: dict, status: int):
    entity = load_entity(form.entity_id.data, optional=True)
    rows, actions_error = builder.rows_view(db.session, entity, form.actions.data, action_errors)
    return render("automation/form.html", form=form, rule=rule, rows=rows, actions_error=actions_error,
                  type_groups=builder.type_groups(), test=None, status=status)


def _save(form: RuleForm, rule: AutomationRule | None, action):
    """Validate, run the service and commit: the saved rule, or the page again with every error in place."""
    if not form.validate_on_submit():
        return None, _builder_page(form, rule, {}, 422 if form.is_submitted() else 200)
    saved = commit(action)  # the form is checked above: the refusal's messages are shared out below
    if saved:
        return saved.result, None
    own, sequencer = builder.split_errors(saved.errors)
    show_errors(form, own)
    return None, _builder_page(form, rule, sequencer, 422)


# --- the list ---------------------------------------------------------------------------------

@bp.get("/")
@admin_required
def index():
    return _list(_trigger_filter(request.args.get("trigger")))


@bp.post("/reorder")
@admin_required
def reorder():
    """The ids of one list (a trigger's rules) or of all rules, in their new order."""
    saved = commit(lambda: service.reorder(db.session, request.form.getlist("ids")))
    if not saved:
        if is_htmx():
            return _list(_trigger_filter(request.form.get("trigger")), status=422, error=saved.summary)
        flash(saved.summary, "error")
        return redirect(url_for("automation.index"), 303)
    return _back_to_list()


@bp.post("/<int:rule_id>/active")
@admin_required
def set_active(rule_id):
    rule = load_automation_rule(rule_id)
    commit(lambda: service.set_active(db.session, rule, request.form.get("active") == "1", current_user))
    if request.form.get("back") == "rule" and not is_htmx():
        return redirect(url_for("automation.show", rule_id=rule.id), 303)
    return _back_to_list()


@bp.post("/<int:rule_id>/delete")
@admin_required
def delete(rule_id):
    rule = load_automation_rule(rule_id)
    name = rule.name
    commit(lambda: service.delete_rule(db.session, rule))
    flash(f"Deleted “{name}”.")
    return redirect(url_for("automation.index"), 303)


# --- the builder ------------------------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    form = _form()
    rule, page = _save(form, None, lambda: service.create_rule(db.session, form.data_for_service(), current_user))
    if rule is None:
        return page
    flash(f"Created “{rule.name}”" + ("." if rule.is_active else ": it is off until you switch it on."))
    return redirect(url_for("automation.edit", rule_id=rule.id), 303)


@bp.route("/<int:rule_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(rule_id):
    rule = load_automation_rule(rule_id)
    form = _form(rule)
    saved, page = _save(form, rule, lambda: service.update_rule(db.session, rule, form.data_for_service(),
                                                                current_user))
    if saved is None:
        return page
    flash(f"Saved “{rule.name}”.")
    return redirect(url_for("automation.edit", rule_id=rule.id), 303)


@bp.post("/action-row")
@admin_required
def action_row():
    """A new sequencer row (no `row`), or a row drawn again for its newly chosen type (same id, values kept)."""
    row_id = request.form.get("row", "")
    if row_id and not builder.ROW_ID.match(row_id):
        abort(400)
    type_name = request.form.get(f"ac-{row_id}-type" if row_id else "type", "")
    action = builder.action_from_form(request.form, row_id, type_name) if row_id else {"type": type_name}
    entity = load_entity(request.form.get("entity_id"), optional=True)
    row = builder.row_view(db.session, entity, action, row_id=row_id or None)
    return render_template("automation/_action_row.html", row=row, type_groups=builder.type_groups())


@bp.post("/test")
@admin_required
def test():
    """Test mode: the form as it stands against one ticket or the latest ones. Writes nothing; always 200."""
    draft, problems = _draft(request.form)
    event = request.form.get("test_event") or None
    event = event if event in TRIGGERS else None
    number = (request.form.get("test_ticket") or "").strip()[:60]
    recent = request.form.get("test_recent") == "1"
    single, many, missing = None, None, False
    if recent:
        many = test_mode.test_recent(db.session, draft, limit=RECENT_LIMIT, event=event)
    elif number:
        ticket = access.find_ticket(db.session, current_user, number)
        missing = ticket is None
        if ticket is not None:
            single = test_mode.test_rule(db.session, draft, ticket, event)
    db.session.rollback()  # test mode never writes; nothing it touched may reach a later commit
    return render_template("automation/_test_result.html", single=single, many=many, number=number, recent=recent,
                           missing=missing, problems=problems, trigger_labels=TRIGGER_LABELS)


def _draft(form) -> tuple[dict, dict]:
    """The rule form as test mode's draft, read leniently: what cannot be read is left out and reported."""
    problems = {}
    conditions = None
    raw = form.get("conditions") or ""
    try:
        conditions = json.loads(raw) if raw.strip() else None
    except ValueError:
        problems["conditions"] = "The conditions could not be read."
    try:
        raw_actions = service.parse_actions(form.get("actions") or "")
    except DomainError as exc:
        problems.update(exc.errors)
        raw_actions = []
    trigger = form.get("trigger_event") if form.get("trigger_event") in TRIGGERS else "ticket_created"
    entity = load_entity(form.get("entity_id"), optional=True)
    return {"entity_id": entity.id if entity else None, "trigger_event": trigger, "conditions": conditions,
            "actions": raw_actions}, problems


# --- a rule's page ----------------------------------------------------------------------------

@bp.get("/<int:rule_id>")
@admin_required
def show(rule_id):
    rule = load_automation_rule(rule_id)
    return render("automation/show.html", rule=rule, stats=service.stats(db.session, [rule.id])[rule.id],
                  actions_words=service.describe_actions(db.session, rule.actions),
                  executions=service.recent_executions(db.session, rule), trigger_labels=TRIGGER_LABELS)
