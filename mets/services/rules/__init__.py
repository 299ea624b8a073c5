"""The condition language shared by SLA rules, automation and escalation (docs/architecture.md, "The rule language").

    from mets.services import rules
    rules.validate(tree)                      # DomainError({"conditions": "Unknown field 'x' at all[0]."})
    matches = rules.compile(tree)             # once per rule (cached by content)
    matches(rules.context_for(ticket, now))   # cheap, per ticket and event
    rules.explain(tree, context)              # per-condition results and actual values

Fields, operators and field types are registries (`rules.TICKET`); adding a field is one line:
`rules.TICKET.register_field("sla.used", "SLA used (%)", "number", lambda c: c.sla.used)`.
"""
from mets.services.rules import vocabulary  # noqa: F401  (registers the built-in types and operators)
from mets.services.rules.context import Context, context_for, register_context_value
from mets.services.rules.engine import (
    GROUPS, MAX_CONDITIONS, MAX_DEPTH, MAX_VALUES, Condition, Problem, compile, explain, is_empty, parse, problems,
    validate, value_reader,
)
from mets.services.rules.registry import (
    TICKET, VALUE_MANY, VALUE_NONE, VALUE_ONE, Field, FieldType, Operator, Registry, get_registry,
)

register_field = TICKET.register_field
register_operator = TICKET.register_operator

__all__ = ["Context", "context_for", "register_context_value", "Condition", "Problem", "compile", "explain",
           "is_empty", "parse", "problems", "validate", "GROUPS", "MAX_CONDITIONS", "MAX_DEPTH", "MAX_VALUES",
           "TICKET", "Registry", "Field", "FieldType", "Operator", "get_registry", "register_field",
           "register_operator", "VALUE_NONE", "VALUE_ONE", "VALUE_MANY", "value_reader"]
