"""The action sequencer's view: rows drawn from an actions list (stored or as submitted), and one row read back.

A row's inputs are named `ac-<row id>-<param>`; the browser keeps the whole list in one hidden
`actions` JSON field (static/js/automation.js), which is what the rule form saves. Errors from
`automation_actions.validate` are keyed "actions", "actions[i]" or "actions[i].param" and land
on the list, the row or the field.
"""
import json
import re
import secrets
from dataclasses import dataclass, field

from mets.services.automation import actions

ROW_ID = re.compile(r"^acr[0-9a-f]{1,32}$")


@dataclass
class ParamView:
    param: actions.Param
    value: object = ""                       # text, or a list for multi
    options: list = field(default_factory=list)  # (value, label, selected)
    visible: bool = True
    error: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.value, (dict, list)) and self.param.kind != "multi":
            return json.dumps(self.value, indent=2)
        return "" if self.value is None else str(self.value)


@dataclass
class ActionRowView:
    id: str
    type_name: str
    kind: actions.ActionType | None
    params: list[ParamView] = field(default_factory=list)
    error: str | None = None


def new_row_id() -> str:
    return "acr" + secrets.token_hex(5)


def type_groups(registry: dict | None = None) -> list[tuple[str, list[actions.ActionType]]]:
    """The action types by group, in menu order (the type select's optgroups); `registry`: another set of types
    than automation's (escalation levels offer their own)."""
    groups: dict[str, list[actions.ActionType]] = {}
    for kind in (actions.ACTIONS if registry is None else registry).values():
        groups.setdefault(kind.group, []).append(kind)
    return list(groups.items())


def _options(param, session, entity, value) -> list[tuple[str, str, bool]]:
    chosen = {str(v) for v in value} if isinstance(value, list) else {str(value)} if value not in (None, "") else set()
    pairs = param.options(session, entity)
    out = [(v, label, v in chosen) for v, label in pairs]
    known = {v for v, _ in pairs}
    # A stored value that is no longer a choice stays visible (selected) so its error makes sense.
    return out + [(v, f"{v} (not a choice)", True) for v in sorted(chosen - known)]


def row_view(session, entity, action: dict, errors: dict | None = None, index: int | None = None,
             row_id: str | None = None, registry: dict | None = None) -> ActionRowView:
    """One action as a sequencer row; `index` places the validation errors ("actions[index]...")."""
    errors = errors or {}
    type_name = action.get("type") if isinstance(action.get("type"), str) else ""
    kind = (actions.ACTIONS if registry is None else registry).get(type_name)
    where = f"actions[{index}]" if index is not None else None
    row = ActionRowView(row_id or new_row_id(), type_name, kind, error=errors.get(where) if where else None)
    for param in kind.params if kind else ():
        value = action.get(param.name, [] if param.kind == "multi" else "")
        view = ParamView(param, value, visible=param.shown(action),
                         error=errors.get(f"{where}.{param.name}") if where else None)
        if param.kind in ("select", "multi"):
            view.options = _options(param, session, entity, value)
        row.params.append(view)
    return row


def rows_view(session, entity, raw, errors: dict | None = None,
              registry: dict | None = None) -> tuple[list[ActionRowView], str | None]:
    """Every row of an actions list (a list or its JSON text) and the message for the whole list, if any."""
    errors = errors or {}
    top = errors.get("actions")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except ValueError:
            raw, top = [], top or "The actions could not be read; add them again below."
    if not isinstance(raw, list):
        raw, top = [], top or "The actions could not be read; add them again below."
    rows = [row_view(session, entity, a if isinstance(a, dict) else {}, errors, i, registry=registry)
            for i, a in enumerate(raw)]
    return rows, top


def action_from_form(form, row_id: str, type_name: str, registry: dict | None = None) -> dict:
    """A row's inputs (ac-<row>-<param>) as an action of `type_name`: values of same-named params carry over."""
    prefix = f"ac-{row_id}-"
    out: dict = {"type": type_name}
    kind = (actions.ACTIONS if registry is None else registry).get(type_name)
    for param in kind.params if kind else ():
        if param.kind == "multi":
            out[param.name] = [v for v in form.getlist(prefix + param.name) if v]
        elif prefix + param.name in form:
            out[param.name] = form.get(prefix + param.name, "")
    return out


def split_errors(errors: dict) -> tuple[dict, dict]:
    """(errors for the rule's own fields, errors for the sequencer)."""
    mine = {k: v for k, v in errors.items() if k == "actions" or k.startswith("actions[")}
    return {k: v for k, v in errors.items() if k not in mine}, mine
