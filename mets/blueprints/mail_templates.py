"""Admin pages for email templates: per-entity overrides of the defaults, with live preview.

The list shows, for one entity, where each of the nine templates comes from (the default, a
parent's override, or its own). The editor is pre-filled with the effective source; its preview
box sits inside the form and re-renders the unsaved sources as the admin types (htmx posts the
form to the preview route, which answers with the box). The HTML part is shown only inside a
sandboxed iframe, never in the page itself.
"""
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from mets.extensions import db
from mets.security import allows_inline_styles
from mets.forms import status_for
from mets.forms.mail import TemplateForm
from mets.models import Entity
from mets.services.directory import entities
from mets.services.notifications import templates as mail_templates
from mets.web import admin_required, arg_int, commit, load_entity, render

bp = Blueprint("mail_templates", __name__, url_prefix="/admin/mail/templates")


def _name(name: str) -> str:
    if name not in mail_templates.NAMES:
        abort(404)
    return name


def _editor(entity: Entity, name: str, form: TemplateForm, status: int = 200):
    """The editor page, or (htmx) its preview box, for the form as it stands."""
    _, owner = mail_templates.source_for(db.session, entity, name)
    number = (form.ticket.data or "").strip()[:60]
    preview = mail_templates.preview_for(db.session, current_user, entity, name, form.source(), number)
    return render("mail_templates/edit.html", "mail_templates/_preview.html", status=status, form=form,
                  entity=entity, name=name, owner=owner, preview=preview,
                  audience=mail_templates.audience_of(name), variables=mail_templates.variables_of(name),
                  description=mail_templates.DESCRIPTIONS[name], labels=mail_templates.FIELD_LABELS)


@bp.get("/")
@admin_required
def index():
    tree = entities.entity_tree(db.session)
    entity_id = arg_int("entity_id")
    entity = load_entity(entity_id) if entity_id is not None else (tree[0][0] if tree else None)
    rows = mail_templates.overview(db.session, entity) if entity else []
    return render("mail_templates/index.html", tree=tree, entity=entity, rows=rows)


@bp.route("/<int:entity_id>/<name>", methods=["GET", "POST"])
@admin_required
@allows_inline_styles  # the preview shows the HTML part in a sandboxed iframe
def edit(entity_id, name):
    entity, name = load_entity(entity_id), _name(name)
    if request.method == "GET":
        source, _ = mail_templates.source_for(db.session, entity, name)
        form = TemplateForm(formdata=None, data=vars(source))
    else:
        form = TemplateForm()
    saved = commit(lambda: mail_templates.save_override(
        db.session, entity, name, subject=form.subject.data or "", body_text=form.body_text.data or "",
        body_html=form.body_html.data or "", actor=current_user), form)
    if saved:
        flash(f"Saved {name} for {entity.name}.")
        return redirect(url_for("mail_templates.edit", entity_id=entity.id, name=name), 303)
    return _editor(entity, name, form, status_for(form))


@bp.post("/<int:entity_id>/<name>/preview")
@admin_required
@allows_inline_styles
def preview(entity_id, name):
    """The preview box for the form's current (unsaved) sources."""
    entity, name = load_entity(entity_id), _name(name)
    return _editor(entity, name, TemplateForm())


@bp.post("/<int:entity_id>/<name>/reset")
@admin_required
def reset(entity_id, name):
    """Delete the entity's own version: it inherits again (from a parent's override or the default)."""
    entity, name = load_entity(entity_id), _name(name)
    if commit(lambda: mail_templates.reset_override(db.session, entity, name)).result:
        _, owner = mail_templates.source_for(db.session, entity, name)
        flash(f"{entity.name} now uses " + (f"{owner.name}'s version." if owner else "the default."))
    else:
        flash(f"{entity.name} had no version of its own to reset.")
    return redirect(url_for("mail_templates.edit", entity_id=entity.id, name=name), 303)
