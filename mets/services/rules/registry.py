"""The vocabulary of the condition language: registries of field types, fields and operators.

Everything here describes itself (name, label, value type, choices), so the builder's form is
generated from it and an unknown name is an error that names it. A child registry (`extend`) sees
its parent's entries plus its own: automation adds event fields and operators to a child of the
ticket registry without changing what SLA rules may use.
"""
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field as dataclass_field
from typing import Any

VALUE_NONE, VALUE_ONE, VALUE_MANY = "none", "one", "many"
VALUE_KINDS = (VALUE_NONE, VALUE_ONE, VALUE_MANY)


@dataclass(frozen=True)
class FieldType:
    """A kind of value. `normalize` turns an actual value into what operators compare;
    `check(value, field)` returns (normalized expected value, None) or (None, message);
    `parse(text)` turns a form input into the JSON value; `widget` tells the builder what to draw."""

    name: str
    label: str
    normalize: Callable[[Any], Any]
    check: Callable[[Any, "Field"], tuple[Any, str | None]]
    parse: Callable[[str], Any]
    widget: str


@dataclass(frozen=True)
class Field:
    """A value conditions can test: `getter(context)` reads it (raw, as shown by `explain`).

    `change_key` names the entry in an event's `changes` that holds this field's old and new
    values (for the event operators); `suggest(session, user)` lists (value, label) hints for
    free-text fields (the builder offers them, validation does not require them).
    """

    name: str
    label: str
    type: str
    getter: Callable[[Any], Any]
    choices: tuple[tuple[str, str], ...] = ()
    group: str = "Ticket"
    change_key: str | None = None
    suggest: Callable[[Any, Any], list[tuple[str, str]]] | None = None
    help: str = ""

    def choice_label(self, value) -> str:
        return dict(self.choices).get(value, str(value))


@dataclass(frozen=True)
class Operator:
    """A comparison. `tests` maps each field type it applies to onto a factory:
    `factory(expected) -> test(actual) -> bool`, where both sides are normalized by the type.

    `value` says what the condition's value is: nothing, one value, or a non-empty list.
    `reader(field) -> (context -> normalized actual)` replaces the default (the field's getter,
    normalized): event operators read `context.changes` through it.
    """

    name: str
    label: str
    value: str
    tests: dict[str, Callable[[Any], Callable[[Any], bool]]] = dataclass_field(default_factory=dict)
    reader: Callable[[Field], Callable[[Any], Any]] | None = None
    needs_change: bool = False  # only for fields an event can change (with a `change_key`)

    def applies_to(self, field: Field) -> bool:
        return field.type in self.tests and (field.change_key is not None or not self.needs_change)

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self.tests)


class Registry:
    """Named field types, fields and operators, falling back to a parent registry."""

    def __init__(self, name: str, parent: "Registry | None" = None):
        self.name = name
        self.parent = parent
        self._types: dict[str, FieldType] = {}
        self._fields: dict[str, Field] = {}
        self._operators: dict[str, Operator] = {}
        self._own_version = 0

    # --- reading --------------------------------------------------------------------------------

    @property
    def version(self) -> tuple[int, ...]:
        """Changes whenever this registry or an ancestor gains an entry (compiled rules key on it)."""
        own = (self._own_version,)
        return (self.parent.version + own) if self.parent else own

    def type(self, name: str) -> FieldType | None:
        found = self._types.get(name)
        return found if found is not None or self.parent is None else self.parent.type(name)

    def field(self, name: str) -> Field | None:
        found = self._fields.get(name)
        return found if found is not None or self.parent is None else self.parent.field(name)

    def operator(self, name: str) -> Operator | None:
        found = self._operators.get(name)
        return found if found is not None or self.parent is None else self.parent.operator(name)

    def fields(self) -> list[Field]:
        """Every field, the parent's first, in registration order."""
        inherited = [f for f in self.parent.fields() if f.name not in self._fields] if self.parent else []
        return inherited + list(self._fields.values())

    def operators(self) -> list[Operator]:
        inherited = [o for o in self.parent.operators() if o.name not in self._operators] if self.parent else []
        return inherited + list(self._operators.values())

    def operators_for(self, field: Field) -> list[Operator]:
        """The operators that apply to this field's type, in registration order."""
        return [o for o in self.operators() if o.applies_to(field)]

    def fields_by_group(self) -> list[tuple[str, list[Field]]]:
        groups: dict[str, list[Field]] = {}
        for f in self.fields():
            groups.setdefault(f.group, []).append(f)
        return list(groups.items())

    def describe(self) -> dict:
        """The vocabulary as plain data (for an API, docs or a client-side builder)."""
        return {
            "fields": [{"name": f.name, "label": f.label, "type": f.type, "group": f.group,
                        "choices": [list(c) for c in f.choices], "help": f.help,
                        "operators": [o.name for o in self.operators_for(f)]} for f in self.fields()],
            "operators": [{"name": o.name, "label": o.label, "value": o.value, "types": sorted(o.types)}
                          for o in self.operators()],
        }

    # --- registering ----------------------------------------------------------------------------

    def register_type(self, name: str, label: str, normalize, check, parse, widget: str) -> FieldType:
        """Add a field type."""
        return self._add(self._types, FieldType(name, label, normalize, check, parse, widget))

    def register_field(self, name: str, label: str, type: str, getter: Callable[[Any], Any], *,
                       choices: Iterable[tuple[str, str]] | Iterable[str] = (), group: str = "Ticket",
                       change_key: str | None = None, suggest=None, help: str = "") -> Field:
        """Add a field, in one line: `register_field("sla.used", "SLA used (%)", "number", getter)`."""
        if self.type(type) is None:
            raise ValueError(f"unknown field type {type!r} for field {name!r}")
        pairs = tuple((c, c) if isinstance(c, str) else (str(c[0]), str(c[1])) for c in choices)
        if type == "choice" and not pairs:
            raise ValueError(f"choice field {name!r} needs choices")
        return self._add(self._fields, Field(name, label, type, getter, pairs, group, change_key, suggest, help))

    def register_operator(self, name: str, label: str, value: str, tests: dict, reader=None,
                          needs_change: bool = False) -> Operator:
        """Add an operator: `tests` maps field type -> factory(expected) -> test(actual) -> bool."""
        if value not in VALUE_KINDS:
            raise ValueError(f"operator {name!r}: value must be one of {VALUE_KINDS}")
        for type_name in tests:
            if self.type(type_name) is None:
                raise ValueError(f"operator {name!r}: unknown field type {type_name!r}")
        return self._add(self._operators, Operator(name, label, value, dict(tests), reader, needs_change))

    def extend(self, name: str) -> "Registry":
        """A child registry that sees everything here plus what is registered on it; findable by name."""
        child = Registry(name, parent=self)
        register_registry(child)
        return child

    def _add(self, table: dict, entry):
        # Names are the rule language's public vocabulary: replacing one silently would change stored rules.
        if entry.name in table:
            raise ValueError(f"{entry.name!r} is already registered in {self.name!r}")
        table[entry.name] = entry
        self._own_version += 1
        return entry

    def __repr__(self):
        return f"<Registry {self.name}>"


_REGISTRIES: dict[str, Registry] = {}


def register_registry(registry: Registry) -> Registry:
    if registry.name in _REGISTRIES:
        raise ValueError(f"a registry named {registry.name!r} exists")
    _REGISTRIES[registry.name] = registry
    return registry


def get_registry(name: str) -> Registry | None:
    """The registry with this name ("ticket" for SLA rules), or None."""
    return _REGISTRIES.get(name)


# The ticket registry: fields of a ticket and the operators on them (SLA rule conditions).
TICKET = register_registry(Registry("ticket"))
