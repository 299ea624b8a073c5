"""Admin pages for SLA rules: the list by entity (reorder, activate), the rule form, and "test against ticket".

The list is one box per entity (`sla/_entity_rules.html`); moving or (de)activating a rule
answers with that entity's box for htmx, and redirects otherwise. The rule form embeds the
shared condition builder; the test box sends the form as it stands (unsaved edits included)
with the ticket number and shows `sla_test_mode.test_against_ticket`'s answer.
"""
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from mets.extensions import db
from mets.forms import entity_choices, status_for
from mets.forms.sla import SlaRuleForm
from mets.models import Entity, SlaRule
from mets.services.directory import access
from mets.services.directory import entities
from mets.services.sla import admin as sla_rules
from mets.services.sla import test_mode as sla_test_mode
from mets.web import admin_required, arg_int, commit, is_htmx, load_entity, load_sla_rule, render

bp = Blueprint("sla_rules", __name__, url_prefix="/admin/sla")


def _form(rule: SlaRule | None = None, blank: bool = False, **defaults) -> SlaRuleForm:
    """The rule form: the request's values, or (blank, or a first view) the rule's."""
    if blank or request.method == "GET":
        form = SlaRuleForm(formdata=None, data=sla_rules.form_values(rule) if rule else defaults)
    else:
        form = SlaRuleForm()
    form.entity_id.choices = entity_choices(entities.entity_tree(db.session))
    return form


def _entity_box(entity: Entity):
    """One entity's rules, as the list shows them (the htmx answer of every verb on that box)."""
    depth = len(access.ancestors(db.session, entity))
    return render("sla/index.html", "sla/_entity_rules.html", entity=entity, depth=depth,
                  rules=sla_rules.rules_of(db.session, entity), groups=sla_rules.rules_by_entity(db.session))


# --- routes -----------------------------------------------------------------------------------

@bp.get("/")
@admin_required
def index():
    return render("sla/index.html", groups=sla_rules.rules_by_entity(db.session))


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    entity_id = arg_int("entity_id")
    form = _form(entity_id=entity_id, warnings="80%", pause_statuses=["pending"], business_hours_only=True)
    saved = commit(lambda: sla_rules.create_rule(db.session, load_entity(form.entity_id.data, optional=True),
                                                 form.data_for_service()), form)
    if saved:
        flash(f"Created “{saved.result.name}”. Test it against a ticket below.")
        return redirect(url_for("sla_rules.edit", rule_id=saved.result.id), 303)
    return render("sla/form.html", form=form, rule=None, status=status_for(form))


@bp.route("/<int:rule_id>", methods=["GET", "POST"])
@admin_required
def edit(rule_id):
    rule = load_sla_rule(rule_id)
    form = _form(rule)
    saved = commit(lambda: sla_rules.update_rule(db.session, rule, form.data_for_service(),
                                                 entity=load_entity(form.entity_id.data, optional=True)), form)
    if saved:
        flash(f"Saved “{rule.name}”.")
        return redirect(url_for("sla_rules.edit", rule_id=rule.id), 303)
    return render("sla/form.html", form=form, rule=rule, status=status_for(form))


@bp.post("/<int:rule_id>/active")
@admin_required
def set_active(rule_id):
    rule = load_sla_rule(rule_id)
    commit(lambda: sla_rules.set_active(db.session, rule, request.form.get("active") == "1"))
    if is_htmx():
        return _entity_box(rule.entity)
    if request.form.get("back") == "edit":
        return redirect(url_for("sla_rules.edit", rule_id=rule.id), 303)
    return redirect(url_for("sla_rules.index", _anchor=f"sla-entity-{rule.entity_id}"), 303)


@bp.post("/<int:rule_id>/move")
@admin_required
def move(rule_id):
    rule = load_sla_rule(rule_id)
    offset = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    if offset is None:
        abort(400)
    commit(lambda: sla_rules.move(db.session, rule, offset))
    if is_htmx():
        return _entity_box(rule.entity)
    return redirect(url_for("sla_rules.index", _anchor=f"sla-entity-{rule.entity_id}"), 303)


@bp.post("/<int:rule_id>/test")
@admin_required
def test(rule_id):
    """The test box: the form as it stands (when sent along) or the saved rule, against one ticket now."""
    rule = load_sla_rule(rule_id)
    number = (request.form.get("ticket") or "").strip()[:60]
    with_form = "name" in request.form
    form = _form(rule, blank=not with_form)
    ticket = access.find_ticket(db.session, current_user, number) if number else None
    result = None
    if ticket is not None:
        subject = form.data_for_service() if with_form else rule
        result = sla_test_mode.test_against_ticket(db.session, subject, ticket, editing=rule)
    return render("sla/form.html", "sla/_test_result.html", form=form, rule=rule, number=number, test=result)
