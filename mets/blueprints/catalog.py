"""Admin pages for an entity's catalogues: its ticket categories (admins) and its canned replies (macros: admins
and the entity's managers)."""
from flask import Blueprint, redirect, render_template, request, url_for

from mets.extensions import db
from mets.forms import category_choices, status_for
from mets.forms.catalog import CategoryForm, MacroForm
from mets.services import macros
from mets.services.directory import access, categories
from mets.services.notifications.templates import VARIABLES
from mets.web import admin_required, commit, load_category, load_entity, load_macro, load_managed_entity, staff_required

bp = Blueprint("catalog", __name__, url_prefix="/admin/entities")


# --- categories ------------------------------------------------------------------------------

def _categories_page(entity, form, status=200, errors=None):
    return render_template("catalog/categories.html", entity=entity, form=form, errors=errors or {},
                           own=categories.own_categories(db.session, entity),
                           applying=categories.categories_for(db.session, entity)), status


@bp.route("/<int:entity_id>/categories", methods=["GET", "POST"])
@admin_required
def categories_page(entity_id):
    entity = load_entity(entity_id)
    form = CategoryForm()
    if commit(lambda: categories.add_category(db.session, entity, form.name.data), form):
        return redirect(url_for("catalog.categories_page", entity_id=entity.id), 303)
    return _categories_page(entity, form, status_for(form))


@bp.post("/<int:entity_id>/categories/<int:category_id>")
@admin_required
def category_update(entity_id, category_id):
    entity = load_entity(entity_id)
    category = load_category(entity, category_id)
    form = CategoryForm()  # each row is its own form
    if commit(lambda: categories.update_category(db.session, category, name=form.name.data,
                                                 active=form.active.data), form):
        return redirect(url_for("catalog.categories_page", entity_id=entity.id), 303)
    # The row's errors beside it; the add form stays empty.
    return _categories_page(entity, CategoryForm(formdata=None), 422, {category.id: form})


@bp.post("/<int:entity_id>/categories/<int:category_id>/move")
@admin_required
def category_move(entity_id, category_id):
    entity = load_entity(entity_id)
    category = load_category(entity, category_id)
    commit(lambda: categories.move_category(db.session, category, -1 if request.form.get("step") == "up" else 1))
    return redirect(url_for("catalog.categories_page", entity_id=entity.id), 303)


@bp.post("/<int:entity_id>/categories/<int:category_id>/delete")
@admin_required
def category_delete(entity_id, category_id):
    entity = load_entity(entity_id)
    category = load_category(entity, category_id)
    commit(lambda: categories.delete_category(db.session, category))
    return redirect(url_for("catalog.categories_page", entity_id=entity.id), 303)


# --- macros (admins and the entity's managers) ----------------------------------------------------

def _macro_form(entity, macro=None) -> MacroForm:
    form = MacroForm(obj=macro)
    form.assignee_id.choices = [(None, "— leave —"), *((u.id, u.name) for u in access.members_of(db.session, entity))]
    names = categories.categories_for(db.session, entity).names
    form.category.choices = category_choices(names, form.category.data or "", "— leave —")
    return form


@bp.get("/<int:entity_id>/macros")
@staff_required
def macros_page(entity_id):
    entity = load_managed_entity(entity_id)
    inherited = [m for m in macros.macros_for(db.session, entity) if m.entity_id != entity.id]
    return render_template("catalog/macros.html", entity=entity, own=macros.own_macros(db.session, entity),
                           inherited=inherited)


@bp.route("/<int:entity_id>/macros/new", methods=["GET", "POST"])
@staff_required
def macro_new(entity_id):
    entity = load_managed_entity(entity_id)
    form = _macro_form(entity)
    if commit(lambda: macros.create_macro(db.session, entity, form.data_for_service()), form):
        return redirect(url_for("catalog.macros_page", entity_id=entity.id), 303)
    return render_template("catalog/macro_form.html", entity=entity, form=form, macro=None,
                           variables=VARIABLES), status_for(form)


@bp.route("/<int:entity_id>/macros/<int:macro_id>", methods=["GET", "POST"])
@staff_required
def macro_edit(entity_id, macro_id):
    entity = load_managed_entity(entity_id)
    macro = load_macro(entity, macro_id)
    form = _macro_form(entity, macro)
    if commit(lambda: macros.update_macro(db.session, macro, form.data_for_service()), form):
        return redirect(url_for("catalog.macros_page", entity_id=entity.id), 303)
    return render_template("catalog/macro_form.html", entity=entity, form=form, macro=macro,
                           variables=VARIABLES), status_for(form)


@bp.post("/<int:entity_id>/macros/<int:macro_id>/delete")
@staff_required
def macro_delete(entity_id, macro_id):
    entity = load_managed_entity(entity_id)
    macro = load_macro(entity, macro_id)
    commit(lambda: macros.delete_macro(db.session, macro))
    return redirect(url_for("catalog.macros_page", entity_id=entity.id), 303)
