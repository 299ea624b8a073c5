"""Validating, compiling and explaining conditions.

Conditions nest: a group `{"all": [...]}` or `{"any": [...]}` of conditions
`{"field": "priority", "op": "in", "value": ["high", "urgent"]}` and further groups. None, `{}`
or an empty top-level group match every ticket. A nested group must not be empty (say what it
is for, or remove it). Paths in messages read like `all[1].any[0]`.
"""
import json
from collections.abc import Callable
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mets.services.errors import DomainError
from mets.services.rules.registry import TICKET, VALUE_MANY, VALUE_NONE, Field, Operator, Registry

MAX_DEPTH = 8          # groups inside groups; the top-level group is depth 1
MAX_CONDITIONS = 100   # conditions (leaves) in one rule
MAX_VALUES = 200       # values in one "is one of" list
GROUPS = ("all", "any")
LEAF_KEYS = frozenset({"field", "op", "value"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a condition tree: where (`all[0]`, "" for the whole tree) and what."""

    path: str
    message: str

    @property
    def place(self) -> str:
        """Where, as people count: "all[0]" is "Condition 1", "all[1].any[0]" "Condition 2.1"; "" the whole rule."""
        if not self.path:
            return ""
        return "Condition " + ".".join(str(int(n) + 1) for n in re.findall(r"\[(\d+)\]", self.path))

    @property
    def located(self) -> str:
        """The message with its place, no final stop: "Condition 1: unknown field 'x'"."""
        if not self.path:
            return self.message
        first, _, rest = self.message.partition(" ")
        if first[:1].isupper() and not first[1:2].isupper():  # "Enter" -> "enter", "SLA" stays
            first = first[:1].lower() + first[1:]
        return f"{self.place}: {first}{' ' if rest else ''}{rest}"

    def __str__(self) -> str:
        return self.located + "."


# --- the checked tree -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Leaf:
    path: str
    field: Field
    op: Operator
    value: Any              # as written in the rule
    read: Callable          # context -> normalized actual
    test: Callable          # normalized actual -> bool


@dataclass(frozen=True)
class _Group:
    path: str
    join: str               # "all" | "any"
    children: tuple


def _join(path: str, key: str, index: int) -> str:
    return f"{path}.{key}[{index}]" if path else f"{key}[{index}]"


class _Checker:
    """Walks a tree once: collects every problem and, when there are none, the checked nodes."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.problems: list[Problem] = []
        self.leaves = 0

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def root(self, conditions):
        if conditions is None or conditions == {}:
            return _Group("", "all", ())
        if isinstance(conditions, dict) and len(conditions) == 1:
            (key, items), = conditions.items()
            if key in GROUPS and isinstance(items, list) and not items:
                return _Group("", key, ())  # an empty top-level group: no conditions
        node = self.node(conditions, "", 1)
        if isinstance(node, _Leaf):
            node = _Group("", "all", (node,))  # explain always answers with a group at the top
        if self.leaves > MAX_CONDITIONS:
            self.fail("", f"A rule holds at most {MAX_CONDITIONS} conditions, this one has {self.leaves}")
        return node

    def node(self, node, path: str, depth: int):
        if not isinstance(node, dict):
            self.fail(path, f"Expected a condition or a group, not {_kind(node)}")
            return None
        groups = [k for k in GROUPS if k in node]
        if groups:
            return self.group(node, groups, path, depth)
        return self.leaf(node, path)

    def group(self, node: dict, keys: list[str], path: str, depth: int):
        if len(node) != 1:
            extra = sorted(str(k) for k in node if k != keys[0])
            self.fail(path, "A group holds exactly one of 'all' or 'any'" if len(keys) > 1
                      else f"A group holds only '{keys[0]}', not {', '.join(repr(k) for k in extra)}")
            return None
        key = keys[0]
        items = node[key]
        if not isinstance(items, list):
            self.fail(path, f"'{key}' needs a list of conditions, not {_kind(items)}")
            return None
        if depth > MAX_DEPTH:
            self.fail(path, f"Groups nest at most {MAX_DEPTH} deep")
            return None
        if not items:
            self.fail(path, "This group is empty: add a condition or remove the group")
            return None
        children = tuple(self.node(item, _join(path, key, i), depth + 1) for i, item in enumerate(items))
        return _Group(path, key, children)

    def leaf(self, node: dict, path: str):
        self.leaves += 1
        unknown = sorted(str(k) for k in node if k not in LEAF_KEYS)
        if unknown:
            self.fail(path, f"Unknown key {', '.join(repr(k) for k in unknown)} in a condition "
                            "(a condition has 'field', 'op' and 'value'; a group has 'all' or 'any')")
            return None
        name, op_name = node.get("field"), node.get("op")
        if not isinstance(name, str) or not name:
            self.fail(path, "A condition needs a field")
            return None
        field = self.registry.field(name)
        if field is None:
            self.fail(path, f"Unknown field {name!r}")
            return None
        if not isinstance(op_name, str) or not op_name:
            self.fail(path, f"The condition on {field.label} needs an operator")
            return None
        op = self.registry.operator(op_name)
        if op is None:
            self.fail(path, f"Unknown operator {op_name!r}")
            return None
        field_type = self.registry.type(field.type)
        if field.type in op.tests and not op.applies_to(field):
            changeable = ", ".join(f.label for f in self.registry.fields() if f.change_key)
            self.fail(path, f"'{op.label}' applies only to what an event changes ({changeable}), not {field.label}")
            return None
        if field.type not in op.tests:
            allowed = ", ".join(o.name for o in self.registry.operators_for(field))
            self.fail(path, f"Operator {op_name!r} does not apply to {field.label} "
                            f"(a {field_type.label.lower()} field: use {allowed})")
            return None
        expected = self.value(node, field, field_type, op, path)
        if expected is _INVALID:
            return None
        read = op.reader(field) if op.reader else _reader(field.name, field.getter, field_type.normalize)
        return _Leaf(path, field, op, node.get("value"), read, op.tests[field.type](expected))

    def value(self, node: dict, field: Field, field_type, op: Operator, path: str):
        value = node.get("value")
        if op.value == VALUE_NONE:
            if value not in (None, "", []):
                self.fail(path, f"'{op.label}' takes no value")
                return _INVALID
            return None
        if "value" not in node or value is None:
            self.fail(path, f"Enter a value for {field.label}")
            return _INVALID
        if op.value == VALUE_MANY:
            if not isinstance(value, list):
                self.fail(path, f"'{op.label}' needs a list of values, not {_kind(value)}")
                return _INVALID
            if not value:
                self.fail(path, f"'{op.label}' needs at least one value")
                return _INVALID
            if len(value) > MAX_VALUES:
                self.fail(path, f"'{op.label}' takes at most {MAX_VALUES} values")
                return _INVALID
            checked = [field_type.check(item, field) for item in value]
            errors = [message for _, message in checked if message]
            if errors:
                self.fail(path, errors[0])
                return _INVALID
            return frozenset(v for v, _ in checked)
        expected, message = field_type.check(value, field)
        if message:
            self.fail(path, message)
            return _INVALID
        return expected


_INVALID = object()


def _reader(name: str, getter, normalize):
    """Read a field's normalized value once per context: many rules on one event test the same fields."""
    def read(ctx):
        values = ctx.normalized
        try:
            return values[name]
        except KeyError:
            value = values[name] = normalize(getter(ctx))
            return value
    return read


def value_reader(registry: Registry, name: str):
    """context -> the named field's normalized value (cached per context), for indexes of rules."""
    field = registry.field(name)
    if field is None:
        raise ValueError(f"unknown field {name!r}")
    return _reader(field.name, field.getter, registry.type(field.type).normalize)


def _kind(value) -> str:
    if isinstance(value, bool):
        return "yes/no"
    return {str: "text", int: "a number", float: "a number", list: "a list", dict: "an object",
            type(None): "nothing"}.get(type(value), type(value).__name__)


# --- public API -------------------------------------------------------------------------------

def problems(conditions, registry: Registry = TICKET) -> list[Problem]:
    """Every problem in a condition tree (empty when it is valid), in tree order."""
    checker = _Checker(registry)
    checker.root(conditions)
    return checker.problems


def validate(conditions, registry: Registry = TICKET, key: str = "conditions") -> None:
    """Raise DomainError({key: message}) naming the first problem (and how many more), if any."""
    found = problems(conditions, registry)
    if found:
        raise DomainError({key: _summary(found)})


def _summary(found: list[Problem]) -> str:
    more = len(found) - 1
    return found[0].located + (f" (and {more} more problem{'s' if more > 1 else ''})." if more else ".")


def is_empty(conditions) -> bool:
    """True for conditions that place no condition (None, {}, an empty top-level group)."""
    if conditions is None or conditions == {}:
        return True
    return (isinstance(conditions, dict) and len(conditions) == 1
            and any(conditions.get(key) == [] for key in GROUPS))


def parse(raw, registry: Registry = TICKET, key: str = "conditions") -> dict | None:
    """A form's conditions (JSON text, a dict or None), validated; None when they place no condition.

    Raises DomainError({key: message}) for JSON that does not parse or a tree that does not validate.
    """
    if isinstance(raw, str):
        if not raw.strip():
            return None
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise DomainError({key: f"The conditions are not valid JSON ({exc.msg} at character {exc.pos})."})
    validate(raw, registry, key)
    return None if is_empty(raw) else raw


class Condition:
    """A compiled condition tree: call it with a Context; `explain(context)` tells why."""

    __slots__ = ("conditions", "registry", "_root", "_predicate")

    def __init__(self, conditions, registry: Registry, root: _Group | _Leaf):
        self.conditions = conditions
        self.registry = registry
        self._root = root
        self._predicate = _closure(root)

    def __call__(self, context) -> bool:
        return self._predicate(context)

    def explain(self, context) -> dict:
        """Each group's and condition's result, with the actual value each condition compared."""
        return _explain(self._root, context)

    def __repr__(self):
        return f"<Condition {json.dumps(self.conditions)[:80]}>"


def compile(conditions, registry: Registry = TICKET) -> Condition:
    """Validate (DomainError as `validate`) and build closures once; equal trees share one Condition."""
    try:
        key = json.dumps(conditions, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return _compile(conditions, registry)  # not JSON: it cannot be valid, let validation say why
    return _compile_cached(registry, registry.version, key)


@lru_cache(maxsize=4096)
def _compile_cached(registry: Registry, _version, key: str) -> Condition:
    return _compile(json.loads(key), registry)


def _compile(conditions, registry: Registry) -> Condition:
    checker = _Checker(registry)
    root = checker.root(conditions)
    if checker.problems:
        raise DomainError({"conditions": _summary(checker.problems)})
    return Condition(conditions, registry, root)


def explain(conditions, context, registry: Registry = TICKET) -> dict:
    """`compile(conditions).explain(context)`: a tree of results for test mode.

    A group: {"group": "all"|"any", "path", "result", "children": [...]}. A condition:
    {"path", "field", "field_label", "op", "op_label", "value", "actual", "result"} and "error"
    when reading the value failed (then its result is False).
    """
    return compile(conditions, registry).explain(context)


def _closure(node) -> Callable[[Any], bool]:
    """Plain closures, short-circuiting, with no per-evaluation lookups."""
    if isinstance(node, _Leaf):
        read, test = node.read, node.test
        return lambda ctx: test(read(ctx))
    predicates = tuple(_closure(child) for child in node.children)
    if not predicates:
        return lambda ctx: True
    if len(predicates) == 1:
        return predicates[0]
    if node.join == "all":
        def all_of(ctx):
            for predicate in predicates:
                if not predicate(ctx):
                    return False
            return True
        return all_of

    def any_of(ctx):
        for predicate in predicates:
            if predicate(ctx):
                return True
        return False
    return any_of


def _explain(node, context) -> dict:
    if isinstance(node, _Group):
        children = [_explain(child, context) for child in node.children]
        results = [c["result"] for c in children]
        result = all(results) if node.join == "all" else (any(results) if children else True)
        return {"group": node.join, "path": node.path, "result": result, "children": children}
    out = {"path": node.path, "field": node.field.name, "field_label": node.field.label, "op": node.op.name,
           "op_label": node.op.label, "value": node.value}
    try:
        # The raw value is what people recognise; the test runs on it normalized, as compiled rules do.
        out["actual"] = node.field.getter(context) if node.op.reader is None else node.read(context)
        out["result"] = bool(node.test(node.read(context)))
    except Exception as exc:  # test mode shows a broken getter instead of failing the page
        out.update(actual=None, result=False, error=f"{type(exc).__name__}: {exc}")
    return out
