"""Admin pages for an entity's catalogues: its ticket categories and its canned replies (macros)."""
from flask import Blueprint, redirect, render_template, request, url_for

from mets.extensions import db
from mets.forms import status_for
from mets.forms.catalog import CategoryForm
from mets.services.directory import categories
from mets.web import admin_required, commit, load_category, load_entity

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
    form = CategoryForm(prefix=f"c{category.id}")
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
