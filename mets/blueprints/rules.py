"""The condition builder's htmx fragments: a row redrawn after its field or operator changed, a row's message, a
new group. The builder's view and reading its inputs are mets/forms/rules.py's.
"""
from flask import Blueprint, abort, render_template, request

from mets.forms.rules import Palette, group_view, leaf_from_form, row_view
from mets.services import rules
from mets.services.rules import Registry
from mets.web import arg_int, staff_required

bp = Blueprint("rules", __name__, url_prefix="/rules")


def _registry_or_404(name: str | None) -> Registry:
    registry = rules.get_registry(name or "ticket")
    if registry is None:
        abort(404)
    return registry


def _row_id() -> str | None:
    row_id = request.form.get("row", "")
    if row_id and not (row_id.startswith("rbr") and row_id[3:].isalnum() and len(row_id) <= 40):
        abort(400)
    return row_id or None


def _row_problem(registry: Registry, leaf: dict) -> str | None:
    found = rules.problems(leaf, registry)
    return found[0].message if found else None


# --- routes -----------------------------------------------------------------------------------

@bp.post("/builder/row")
@staff_required
def builder_row():
    """A new row (no `row`), or a row drawn again after its field or operator changed."""
    registry = _registry_or_404(request.form.get("registry"))
    palette = Palette(registry)
    row_id = _row_id()
    if row_id is None:
        first = registry.fields()[0]
        return render_template("rules/_row.html", row=row_view(registry, {"field": first.name,
                               "op": registry.operators_for(first)[0].name}), palette=palette)
    changed = request.form.get("changed")
    leaf = leaf_from_form(registry, request.form, row_id, changed)
    # A freshly chosen field or operator with no value yet is not an error; a value that is wrong is.
    has_value = leaf.get("value") not in (None, "", [])
    error = _row_problem(registry, leaf) if (has_value or changed == "value") else None
    return render_template("rules/_row.html", row=row_view(registry, leaf, error=error, row_id=row_id),
                           palette=palette)


@bp.post("/builder/check")
@staff_required
def builder_check():
    """One row's message slot after its value changed: its problem, or empty.

    Always 200: a wrong value is an answer, not a failed request (browsers log 4xx as errors)."""
    registry = _registry_or_404(request.form.get("registry"))
    row_id = _row_id() or abort(400)
    error = _row_problem(registry, leaf_from_form(registry, request.form, row_id, "value"))
    return render_template("rules/_row_error.html", row_id=row_id, error=error)


@bp.post("/builder/group")
@staff_required
def builder_group():
    """A new nested group holding one condition; `depth` is the new group's depth (the top is 1)."""
    registry = _registry_or_404(request.form.get("registry"))
    depth = arg_int("depth", 2, min_value=0, max_value=99, source=request.form)
    if not 2 <= depth <= rules.MAX_DEPTH:
        return render_template("rules/_row_error.html", row_id=None,
                               error=f"Groups nest at most {rules.MAX_DEPTH} deep."), 422
    first = registry.fields()[0]
    node = {"all": [{"field": first.name, "op": registry.operators_for(first)[0].name}]}
    return render_template("rules/_group.html", group=group_view(registry, node, depth=depth),
                           palette=Palette(registry))
