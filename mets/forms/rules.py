"""The condition builder's form side: the view a host form draws, and a row's inputs read back as a condition.

A host form embeds the builder with `{% include "rules/_builder.html" %}` (reading `conditions`,
and optionally `conditions_error`, `conditions_name`, `conditions_registry` from the context) or
with the `condition_builder(...)` macro of `rules/_macros.html`, which builds the view through the
`rule_builder` global (mets/templating.py). The browser keeps one hidden `conditions` field (JSON)
in sync with the rows; the host reads it with `rules.parse(...)`. The htmx fragments that redraw a
row or add a group are blueprints/rules.py's.
"""
import json
import secrets
from dataclasses import dataclass, field as dataclass_field
from typing import Any

from flask import g
from flask_login import current_user

from mets.extensions import db
from mets.services import rules
from mets.services.rules import VALUE_MANY, VALUE_NONE, Field, Operator, Registry

LIST_WIDGETS = {"text": "text-list", "number": "number-list", "select": "checks"}


# --- the view ---------------------------------------------------------------------------------

@dataclass
class Palette:
    """What every row offers: the registry's fields, grouped, and how deep groups may nest."""

    registry: Registry
    max_depth: int = rules.MAX_DEPTH

    @property
    def name(self) -> str:
        return self.registry.name

    @property
    def fields_by_group(self) -> list[tuple[str, list[Field]]]:
        return self.registry.fields_by_group()


@dataclass
class RowView:
    id: str
    path: str
    field_name: str
    field: Field | None
    op_name: str
    op: Operator | None
    operators: list[Operator]
    widget: str                       # none text number select boolean text-list number-list checks
    value_text: str = ""
    options: list[tuple[str, str, bool]] = dataclass_field(default_factory=list)  # (value, label, selected)
    suggestions: list[tuple[str, str]] = dataclass_field(default_factory=list)
    error: str | None = None
    kind: str = "row"


@dataclass
class GroupView:
    id: str
    path: str
    join: str
    depth: int
    children: list = dataclass_field(default_factory=list)
    error: str | None = None
    kind: str = "group"


@dataclass
class BuilderView:
    id: str
    name: str
    palette: Palette
    root: GroupView
    json: str
    error: str | None = None


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(5)


def _suggestions(field: Field) -> list[tuple[str, str]]:
    """A free-text field's hints for this user (entities they may see), once per request."""
    if field.suggest is None or not getattr(current_user, "is_staff", False):
        return []
    cache = g.setdefault("rule_suggestions", {})
    if field.name not in cache:
        cache[field.name] = field.suggest(db.session, current_user)
    return cache[field.name]


def _widget(registry: Registry, field: Field | None, op: Operator | None) -> str:
    if op is not None and op.value == VALUE_NONE:
        return "none"
    field_type = registry.type(field.type) if field else None
    widget = field_type.widget if field_type else "text"
    return LIST_WIDGETS.get(widget, widget) if op is not None and op.value == VALUE_MANY else widget


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def row_view(registry: Registry, leaf: dict, path: str = "", error: str | None = None,
             row_id: str | None = None) -> RowView:
    """A condition as a builder row (it may be invalid: unknown names are kept and shown)."""
    name = leaf.get("field") if isinstance(leaf.get("field"), str) else ""
    op_name = leaf.get("op") if isinstance(leaf.get("op"), str) else ""
    field = registry.field(name)
    op = registry.operator(op_name)
    operators = registry.operators_for(field) if field else registry.operators()
    widget = _widget(registry, field, op)
    value = leaf.get("value")
    values = value if isinstance(value, list) else ([] if value is None else [value])
    row = RowView(row_id or _new_id("rbr"), path, name, field, op_name, op, operators, widget, error=error)
    if widget in ("text", "number"):
        row.value_text = _text(values[0]) if values else ""
    elif widget in ("text-list", "number-list"):
        row.value_text = ", ".join(_text(v) for v in values)
    elif widget in ("select", "checks"):
        chosen = {_text(v).casefold() for v in values}
        row.options = [(code, label, code.casefold() in chosen) for code, label in field.choices]
        known = {code.casefold() for code, _ in field.choices}
        # A stored value that is not a choice stays visible (and selected) so the error makes sense.
        row.options += [(_text(v), f"{_text(v)} (not a choice)", True)
                        for v in values if _text(v).casefold() not in known]
    elif widget == "boolean":
        row.options = [("true", "Yes", value is True), ("false", "No", value is False)]
    if field is not None and widget in ("text", "text-list"):
        row.suggestions = _suggestions(field)
    return row


def group_view(registry: Registry, node: dict | None, path: str = "", depth: int = 1,
               errors: dict[str, str] | None = None, group_id: str | None = None) -> GroupView:
    """A group and everything in it; `errors` maps paths to messages."""
    errors = errors or {}
    node = node if isinstance(node, dict) else {}
    join = "any" if "any" in node and "all" not in node else "all"
    items = node.get(join)
    group = GroupView(group_id or _new_id("rbg"), path, join, depth, error=errors.get(path) if depth > 1 else None)
    for index, item in enumerate(items if isinstance(items, list) else []):
        child_path = f"{path}.{join}[{index}]" if path else f"{join}[{index}]"
        if isinstance(item, dict) and any(k in item for k in rules.GROUPS):
            group.children.append(group_view(registry, item, child_path, depth + 1, errors))
        elif isinstance(item, dict):
            group.children.append(row_view(registry, item, child_path, errors.get(child_path)))
        # Anything else cannot be drawn; the builder's error names it.
    return group


def _drawn(group: GroupView) -> set[str]:
    """The paths the builder draws a row or a nested group for (where their own message shows)."""
    paths = {group.path} if group.depth > 1 else set()
    for child in group.children:
        paths |= _drawn(child) if isinstance(child, GroupView) else {child.path}
    return paths


def builder_view(conditions=None, name: str = "conditions", registry: str = "ticket",
                 error: str | None = None) -> BuilderView:
    """The whole builder for a host form: `conditions` is a tree, its JSON text (as submitted) or None."""
    reg = rules.get_registry(registry)
    if reg is None:
        raise ValueError(f"unknown rule registry {registry!r}")
    tree, raw = conditions, None
    if isinstance(conditions, str):
        raw = conditions
        try:
            tree = json.loads(conditions) if conditions.strip() else None
        except ValueError:
            tree, error = None, error or "The conditions could not be read; build them again below."
    if isinstance(tree, dict) and tree and not any(k in tree for k in rules.GROUPS):
        tree = {"all": [tree]}  # a single condition at the top is shown inside a group
    found = rules.problems(tree, reg)
    errors = {p.path: str(p) for p in reversed(found)}  # the first problem at a path wins
    top = errors.get("")
    root = group_view(reg, tree, errors=errors)
    text = raw if raw is not None else json.dumps(tree if tree is not None else {"all": []})
    if found and all(p.path in _drawn(root) for p in found):
        # The refusal of a save names the same problems: each is shown once, beside its condition.
        error = None
    return BuilderView(_new_id("rb"), name, Palette(reg), root, text, error or top)


# --- form inputs of one row -------------------------------------------------------------------

def _items(raw: list[str], widget: str) -> list[str]:
    """The values a row's inputs held, as separate strings, whatever widget they came from."""
    if widget in ("text-list", "number-list"):
        return [part.strip() for text in raw for part in text.split(",") if part.strip()]
    return [text.strip() for text in raw if text.strip()]


def leaf_from_form(registry: Registry, form, row_id: str, changed: str | None = None) -> dict:
    """One row's inputs (named rb-<row>-field/op/value/widget) as a condition.

    When the field changed, an operator that no longer applies becomes the field's first one and
    values that do not fit the new field are dropped; otherwise values are kept as typed, so
    validation can say what is wrong with them.
    """
    prefix = f"rb-{row_id}-"
    name, op_name = form.get(prefix + "field", ""), form.get(prefix + "op", "")
    items = _items(form.getlist(prefix + "value"), form.get(prefix + "widget", "text"))
    field = registry.field(name)
    if field is None:
        return {"field": name, "op": op_name}
    allowed = registry.operators_for(field)
    op = registry.operator(op_name)
    if op not in allowed and (changed in ("field", None) or op is None):
        op = allowed[0]
        op_name = op.name
    leaf: dict[str, Any] = {"field": name, "op": op_name}
    if op is None or op.value == VALUE_NONE:
        return leaf
    field_type = registry.type(field.type)
    values = [field_type.parse(item) for item in items]
    if changed == "field":
        values = [v for v in values if v is not None and field_type.check(v, field)[1] is None]
    if op.value == VALUE_MANY:
        leaf["value"] = values
    elif values:
        leaf["value"] = values[0]
    return leaf
