"""The condition language: operators on every type, groups, validation messages, compiling, explain, context."""
import copy
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from mets import clock
from mets.extensions import db
from mets.services import rules
from mets.services.errors import DomainError
from mets.services.rules import engine
from mets.services.rules.registry import Registry
from tests.factories import make_customer, make_entity, make_staff, make_ticket

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)

# A registry of one field per type, reading plain values, so every operator is tested on every type.
TYPES = Registry("types-under-test", parent=rules.TICKET)
TYPES.register_field("t", "Text", "text", lambda c: c.values.get("t"))
TYPES.register_field("c", "Colour", "choice", lambda c: c.values.get("c"), choices=[("red", "Red"), ("Blue", "Blue")])
TYPES.register_field("n", "Count", "number", lambda c: c.values.get("n"))
TYPES.register_field("b", "Flag", "boolean", lambda c: c.values.get("b"))
TYPES.register_field("l", "Tags", "list", lambda c: c.values.get("l"))


def ctx(**values):
    return rules.Context(None, NOW, values=values)


def holds(field, op, value, actual, **kw) -> bool:
    leaf = {"field": field, "op": op} if value is ... else {"field": field, "op": op, "value": value}
    return rules.compile({"all": [leaf]}, TYPES)(ctx(**{field: actual}))


# (field, op, value, actual, expected); `...` as value: the operator takes none.
OPERATOR_CASES = [
    # text
    ("t", "is", "refund", "Refund", True), ("t", "is", "refund", "refunds", False), ("t", "is", "x", None, False),
    ("t", "is_not", "refund", "REFUND", False), ("t", "is_not", "refund", "other", True),
    ("t", "is_not", "refund", None, True),
    ("t", "in", ["a", "B"], "b", True), ("t", "in", ["a", "b"], "c", False), ("t", "in", ["a"], None, False),
    ("t", "not_in", ["a", "B"], "b", False), ("t", "not_in", ["a"], "c", True),
    ("t", "contains", "FUND", "a refund please", True), ("t", "contains", "fund", "nothing", False),
    ("t", "contains", "x", None, False),
    ("t", "not_contains", "fund", "a REFUND", False), ("t", "not_contains", "fund", "hello", True),
    ("t", "not_contains", "fund", None, True),
    ("t", "starts_with", "re:", "RE: hello", True), ("t", "starts_with", "re:", "fw: re:", False),
    ("t", "ends_with", "@VIP.example", "bob@vip.EXAMPLE", True), ("t", "ends_with", "@vip.example", "vip.example.org", False),
    ("t", "is_empty", ..., None, True), ("t", "is_empty", ..., "", True), ("t", "is_empty", ..., "  ", True),
    ("t", "is_empty", ..., "x", False),
    ("t", "is_not_empty", ..., "x", True), ("t", "is_not_empty", ..., None, False), ("t", "is_not_empty", ..., "", False),
    # choice
    ("c", "is", "red", "red", True), ("c", "is", "RED", "red", True), ("c", "is", "red", "blue", False),
    ("c", "is", "blue", "Blue", True),
    ("c", "is_not", "red", "blue", True), ("c", "is_not", "red", "red", False),
    ("c", "in", ["red", "blue"], "Blue", True), ("c", "in", ["red"], "blue", False),
    ("c", "not_in", ["red"], "blue", True), ("c", "not_in", ["red", "blue"], "red", False),
    ("c", "is_empty", ..., None, True), ("c", "is_empty", ..., "red", False),
    ("c", "is_not_empty", ..., "red", True), ("c", "is_not_empty", ..., None, False),
    # number
    ("n", "is", 4, 4, True), ("n", "is", 4, 4.0, True), ("n", "is", 4, 5, False), ("n", "is", 0, None, False),
    ("n", "is_not", 4, 5, True), ("n", "is_not", 4, 4, False), ("n", "is_not", 4, None, True),
    ("n", "in", [1, 2.5], 2.5, True), ("n", "in", [1, 2], 3, False),
    ("n", "not_in", [1, 2], 3, True), ("n", "not_in", [1, 2], 2, False),
    ("n", "gt", 24, 24.01, True), ("n", "gt", 24, 24, False), ("n", "gt", 24, None, False),
    ("n", "gte", 24, 24, True), ("n", "gte", 24, 23.9, False), ("n", "gte", 0, None, False),
    ("n", "lt", 1.5, 1, True), ("n", "lt", 1.5, 1.5, False), ("n", "lt", 5, None, False),
    ("n", "lte", -2, -2, True), ("n", "lte", -2, 0, False), ("n", "lte", 5, None, False),
    ("n", "is_empty", ..., None, True), ("n", "is_empty", ..., 0, False),
    ("n", "is_not_empty", ..., 0, True), ("n", "is_not_empty", ..., None, False),
    # boolean
    ("b", "is", True, True, True), ("b", "is", True, False, False), ("b", "is", False, None, True),
    ("b", "is_not", True, False, True), ("b", "is_not", False, False, False),
    # list
    ("l", "in", ["ACME", "globex"], ["billing", "acme"], True), ("l", "in", ["initech"], ["billing", "acme"], False),
    ("l", "in", ["acme"], None, False),
    ("l", "not_in", ["initech"], ["billing", "acme"], True), ("l", "not_in", ["Billing"], ["billing", "acme"], False),
    ("l", "contains", "Acme", ["billing", "ACME"], True), ("l", "contains", "acm", ["acme"], False),
    ("l", "not_contains", "acme", ["billing"], True), ("l", "not_contains", "acme", ["acme"], False),
    ("l", "is_empty", ..., [], True), ("l", "is_empty", ..., None, True), ("l", "is_empty", ..., ["a"], False),
    ("l", "is_not_empty", ..., ["a"], True), ("l", "is_not_empty", ..., [], False),
]


@pytest.mark.parametrize("field, op, value, actual, expected", [
    pytest.param(*case, id=f"{case[0]}-{case[1]}-{i}") for i, case in enumerate(OPERATOR_CASES)])
def test_operator_on_type(field, op, value, actual, expected):
    assert holds(field, op, value, actual) is expected


def test_every_operator_is_tested_on_every_type_it_declares():
    tested = {(TYPES.field(f).type, op) for f, op, *_ in OPERATOR_CASES}
    declared = {(type_name, o.name) for o in rules.TICKET.operators() for type_name in o.types}
    assert declared == tested


def test_operators_per_type_are_declared_in_the_registry():
    def names(field):
        return [o.name for o in TYPES.operators_for(TYPES.field(field))]

    assert names("c") == ["is", "is_not", "in", "not_in", "is_empty", "is_not_empty"]
    assert names("n") == ["is", "is_not", "in", "not_in", "gt", "gte", "lt", "lte", "is_empty", "is_not_empty"]
    assert names("b") == ["is", "is_not"]
    assert "contains" in names("t") and "gt" not in names("t")
    assert {o.name: o.value for o in rules.TICKET.operators()}["in"] == rules.VALUE_MANY


def test_the_vocabulary_describes_itself():
    described = rules.TICKET.describe()
    priority = next(f for f in described["fields"] if f["name"] == "priority")
    assert priority == {"name": "priority", "label": "Priority", "type": "choice", "group": "Ticket",
                        "choices": [["low", "Low"], ["normal", "Normal"], ["high", "High"], ["urgent", "Urgent"]],
                        "help": "", "operators": ["is", "is_not", "in", "not_in", "is_empty", "is_not_empty"]}
    assert {"name": "in", "label": "is one of", "value": "many", "types": ["choice", "list", "number", "text"]} in \
        described["operators"]
    assert [f["name"] for f in described["fields"]] == [
        "priority", "status", "category", "subject", "body", "number", "hours_since_created", "hours_since_updated",
        "customer.email", "customer.domain", "customer.name", "entity.slug", "entity.name", "entity.lineage",
        "assignee.email", "assignee.name"]
    json.dumps(described)


@pytest.mark.parametrize("value, actual", [
    ("ÉCOLE", "école"), ("straße", "STRASSE"), ("VIP", "vip"), ("Re: Refund", "re: REFUND")])
def test_text_comparisons_ignore_case(value, actual):
    assert holds("t", "is", value, actual)
    assert holds("t", "in", [value], actual)
    assert holds("t", "contains", value, f"x {actual} y")
    assert holds("t", "starts_with", value, actual + "!")
    assert holds("t", "ends_with", value, "!" + actual)


# --- groups -----------------------------------------------------------------------------------

REFUND_VIP = {"all": [
    {"field": "priority", "op": "in", "value": ["high", "urgent"]},
    {"any": [{"field": "subject", "op": "contains", "value": "refund"},
             {"field": "customer.email", "op": "ends_with", "value": "@vip.example"}]}]}


class FakeTicket:
    """What the ticket fields read, without a database."""

    def __init__(self, **kw):
        self.priority, self.status, self.category = kw.get("priority", "normal"), kw.get("status", "new"), kw.get("category")
        self.subject, self.body, self.number = kw.get("subject", "Hello"), kw.get("body", ""), kw.get("number", "ACME-1")
        self.created_at, self.updated_at = kw.get("created_at", NOW - timedelta(hours=30)), kw.get("updated_at", NOW)
        self.customer = type("Customer", (), {"email": kw.get("email", "ann@example.com"), "name": "Ann"})()
        self.entity, self.assignee = kw.get("entity"), kw.get("assignee")


@pytest.mark.parametrize("priority, subject, email, expected", [
    ("high", "Refund please", "ann@example.com", True),
    ("urgent", "Hello", "bob@VIP.example", True),
    ("high", "Hello", "ann@example.com", False),   # the OR group fails
    ("low", "Refund", "bob@vip.example", False),   # the first condition fails
])
def test_nested_all_and_any(priority, subject, email, expected):
    matches = rules.compile(REFUND_VIP)
    assert matches(rules.context_for(FakeTicket(priority=priority, subject=subject, email=email), NOW)) is expected


def test_groups_nest_several_levels():
    tree = {"any": [{"all": [{"field": "n", "op": "gt", "value": 1}, {"any": [
        {"field": "t", "op": "is", "value": "a"}, {"all": [{"field": "t", "op": "is", "value": "b"},
                                                            {"field": "c", "op": "is", "value": "red"}]}]}]},
        {"field": "b", "op": "is", "value": True}]}
    matches = rules.compile(tree, TYPES)
    assert matches(ctx(n=2, t="a"))
    assert matches(ctx(n=2, t="b", c="red"))
    assert not matches(ctx(n=2, t="b", c="blue"))
    assert not matches(ctx(n=0, t="a"))
    assert matches(ctx(n=0, t="z", b=True))


@pytest.mark.parametrize("empty", [None, {}, {"all": []}, {"any": []}])
def test_empty_conditions_match_everything(empty):
    rules.validate(empty)
    assert rules.compile(empty)(rules.context_for(FakeTicket(), NOW)) is True
    assert rules.is_empty(empty)
    assert rules.explain(empty, rules.context_for(FakeTicket(), NOW))["result"] is True


def test_a_single_condition_at_the_top_is_allowed():
    leaf = {"field": "priority", "op": "is", "value": "high"}
    assert rules.compile(leaf)(rules.context_for(FakeTicket(priority="high"), NOW))
    assert not rules.is_empty(leaf)


# --- validation -------------------------------------------------------------------------------

def message(conditions, registry=rules.TICKET) -> str:
    with pytest.raises(DomainError) as caught:
        rules.validate(conditions, registry)
    assert list(caught.value.errors) == ["conditions"]
    return caught.value.errors["conditions"]


def deep(levels: int):
    tree = {"field": "subject", "op": "is_empty"}
    for _ in range(levels):
        tree = {"all": [tree]}
    return tree


@pytest.mark.parametrize("conditions, expected", [
    # unknown names
    ({"all": [{"field": "prioritee", "op": "is", "value": "high"}]}, "Condition 1: unknown field 'prioritee'."),
    ({"all": [{"field": "priority", "op": "equals", "value": "high"}]}, "Condition 1: unknown operator 'equals'."),
    ({"any": [{"field": "subject", "op": "is", "value": "x"}, {"field": "priority", "op": "contains", "value": "hi"}]},
     "Condition 2: operator 'contains' does not apply to Priority (a choice field: use is, is_not, in, not_in, "
     "is_empty, is_not_empty)."),
    ({"all": [{"field": "subject", "op": "gt", "value": 3}]},
     "Condition 1: operator 'gt' does not apply to Subject (a text field: use is, is_not, in, not_in, contains, "
     "not_contains, starts_with, ends_with, is_empty, is_not_empty)."),
    # values
    ({"all": [{"field": "priority", "op": "in", "value": "high"}]}, "Condition 1: 'is one of' needs a list of values, not text."),
    ({"all": [{"field": "priority", "op": "in", "value": []}]}, "Condition 1: 'is one of' needs at least one value."),
    ({"all": [{"field": "priority", "op": "in", "value": ["high", "hgh"]}]},
     "Condition 1: 'hgh' is not a priority (choose from low, normal, high, urgent)."),
    ({"all": [{"field": "status", "op": "is", "value": "done"}]},
     "Condition 1: 'done' is not a status (choose from new, open, pending, on_hold, resolved, closed)."),
    ({"all": [{"field": "hours_since_created", "op": "gt", "value": "24"}]},
     "Condition 1: hours since created needs a number, not '24'."),
    ({"all": [{"field": "hours_since_created", "op": "gt", "value": True}]},
     "Condition 1: hours since created needs a number, not yes/no."),
    ({"all": [{"field": "hours_since_created", "op": "in", "value": [1, "two"]}]},
     "Condition 1: hours since created needs a number, not 'two'."),
    ({"all": [{"field": "subject", "op": "contains", "value": 5}]}, "Condition 1: subject needs text, not 5."),
    ({"all": [{"field": "subject", "op": "contains", "value": "  "}]}, "Condition 1: enter a value for Subject."),
    ({"all": [{"field": "subject", "op": "contains"}]}, "Condition 1: enter a value for Subject."),
    ({"all": [{"field": "subject", "op": "contains", "value": None}]}, "Condition 1: enter a value for Subject."),
    ({"all": [{"field": "subject", "op": "is_empty", "value": "x"}]}, "Condition 1: 'is empty' takes no value."),
    ({"all": [{"field": "subject", "op": "is", "value": "x" * 501}]},
     "Condition 1: subject: a value is at most 500 characters."),
    ({"all": [{"field": "priority", "op": "in", "value": ["high"] * 201}]},
     "Condition 1: 'is one of' takes at most 200 values."),
    # structure
    ("priority is high", "Expected a condition or a group, not text."),
    ([{"field": "priority", "op": "is", "value": "high"}], "Expected a condition or a group, not a list."),
    ({"all": {"field": "priority"}}, "'all' needs a list of conditions, not an object."),
    ({"all": [], "any": []}, "A group holds exactly one of 'all' or 'any'."),
    ({"all": [{"field": "subject", "op": "is_empty"}], "name": "x"}, "A group holds only 'all', not 'name'."),
    ({"all": [{"field": "subject", "op": "is_empty"}, {"any": []}]},
     "Condition 2: this group is empty: add a condition or remove the group."),
    ({"all": [{"field": "subject", "op": "is_empty"}, 7]}, "Condition 2: expected a condition or a group, not a number."),
    ({"all": [{"op": "is", "value": "x"}]}, "Condition 1: a condition needs a field."),
    ({"all": [{"field": "subject", "value": "x"}]}, "Condition 1: the condition on Subject needs an operator."),
    ({"all": [{"field": "subject", "op": "is", "value": "x", "negate": True}]},
     "Condition 1: unknown key 'negate' in a condition (a condition has 'field', 'op' and 'value'; a group has "
     "'all' or 'any')."),
    (deep(rules.MAX_DEPTH + 1), "Condition " + ".".join(["1"] * rules.MAX_DEPTH) + ": groups nest at most 8 deep."),
    ({"all": [{"field": "subject", "op": "is_empty"}] * (rules.MAX_CONDITIONS + 1)},
     "A rule holds at most 100 conditions, this one has 101."),
], ids=lambda v: None if not isinstance(v, str) else v[:40])
def test_validation_names_the_problem_and_where(conditions, expected):
    assert message(conditions) == expected


def test_nesting_up_to_the_limit_is_fine():
    rules.validate(deep(rules.MAX_DEPTH))


def test_validation_counts_further_problems():
    tree = {"all": [{"field": "prioritee", "op": "is", "value": "x"}, {"any": [{"field": "subject", "op": "zz"}]},
                    {"field": "priority", "op": "in", "value": ["high"]}]}
    assert message(tree) == "Condition 1: unknown field 'prioritee' (and 1 more problem)."
    assert rules.problems(tree) == [rules.Problem("all[0]", "Unknown field 'prioritee'"),
                                    rules.Problem("all[1].any[0]", "Unknown operator 'zz'")]
    assert rules.problems(REFUND_VIP) == []


def test_compile_refuses_what_validate_refuses():
    with pytest.raises(DomainError, match="Condition 1: unknown field 'nope'"):
        rules.compile({"all": [{"field": "nope", "op": "is", "value": "x"}]})
    with pytest.raises(DomainError, match="needs a list of values"):
        rules.compile({"all": [{"field": "priority", "op": "in", "value": {"high"}}]})  # not JSON at all


def test_choice_values_are_matched_case_insensitively_when_validated():
    rules.validate({"all": [{"field": "priority", "op": "in", "value": ["HIGH", "Urgent"]}]})


def test_parse_reads_a_form_value():
    assert rules.parse(json.dumps(REFUND_VIP)) == REFUND_VIP
    assert rules.parse(REFUND_VIP) == REFUND_VIP
    for empty in ("", "  ", None, '{"all": []}', "{}"):
        assert rules.parse(empty) is None
    with pytest.raises(DomainError) as caught:
        rules.parse('{"all": [')
    assert caught.value.errors["conditions"].startswith("The conditions are not valid JSON (")
    with pytest.raises(DomainError) as caught:
        rules.parse('{"all": [{"field": "x", "op": "is", "value": 1}]}', key="if")
    assert caught.value.errors == {"if": "Condition 1: unknown field 'x'."}


# --- compiling --------------------------------------------------------------------------------

def test_compile_once_evaluate_many(monkeypatch):
    matches = rules.compile(REFUND_VIP)
    assert rules.compile(copy.deepcopy(REFUND_VIP)) is matches  # equal trees share one compiled rule

    def no_parsing(*args, **kwargs):
        raise AssertionError("evaluating must not validate or parse again")

    monkeypatch.setattr(engine._Checker, "__init__", no_parsing)
    monkeypatch.setattr(engine.json, "dumps", no_parsing)
    contexts = [rules.context_for(FakeTicket(priority=p, subject=s), NOW)
                for p in ("low", "high", "urgent") for s in ("refund", "hello")]
    results = [matches(c) for _ in range(200) for c in contexts]
    assert results.count(True) == 2 * 200


def test_getters_run_only_as_far_as_needed():
    calls = []
    reg = Registry("counting", parent=rules.TICKET)
    reg.register_field("x", "X", "number", lambda c: calls.append("x") or c.values["x"])
    reg.register_field("y", "Y", "number", lambda c: calls.append("y") or c.values["y"])
    matches = rules.compile({"all": [{"field": "x", "op": "gt", "value": 1}, {"field": "y", "op": "gt", "value": 1}]}, reg)
    assert matches(ctx(x=0, y=5)) is False
    assert calls == ["x"]  # "all" stops at the first false condition


def test_a_new_field_changes_the_registry_version_and_the_cache():
    reg = Registry("growing", parent=rules.TICKET)
    tree = {"all": [{"field": "subject", "op": "is_empty"}]}
    before = rules.compile(tree, reg)
    reg.register_field("later", "Later", "text", lambda c: "")
    assert rules.compile(tree, reg) is not before
    assert rules.compile(tree, reg) is rules.compile(tree, reg)


def test_registering_a_field_is_one_line_and_names_are_unique():
    reg = Registry("extension", parent=rules.TICKET)
    reg.register_field("sla.resolution_percent", "Resolution SLA used (%)", "number", lambda c: c.values["pct"], group="SLA")
    assert rules.compile({"all": [{"field": "sla.resolution_percent", "op": "gte", "value": 80}]}, reg)(ctx(pct=85.5))
    assert reg.field("priority") is rules.TICKET.field("priority")   # inherited
    assert rules.TICKET.field("sla.resolution_percent") is None      # the parent is untouched
    assert ("SLA", [reg.field("sla.resolution_percent")]) in reg.fields_by_group()
    with pytest.raises(ValueError, match="already registered"):
        reg.register_field("sla.resolution_percent", "Again", "number", lambda c: 0)
    with pytest.raises(ValueError, match="unknown field type"):
        reg.register_field("odd", "Odd", "colour", lambda c: 0)
    with pytest.raises(ValueError, match="needs choices"):
        reg.register_field("pick", "Pick", "choice", lambda c: 0)


def test_event_operators_can_be_added_on_the_changes_of_the_context():
    """The automation issue adds changed / changed_from / changed_to this way."""
    reg = Registry("events", parent=rules.TICKET)

    def changes_of(field):
        normalize = reg.type(field.type).normalize
        return lambda c: tuple(normalize(v) for v in c.changes[field.change_key]) if field.change_key in c.changes else None

    reg.register_operator("changed_to", "changed to", rules.VALUE_ONE,
                          {"choice": lambda e: lambda a: a is not None and a[1] == e}, reader=changes_of)
    tree = {"all": [{"field": "priority", "op": "changed_to", "value": "urgent"}]}
    matches = rules.compile(tree, reg)
    ticket = FakeTicket(priority="urgent")
    assert matches(rules.context_for(ticket, NOW, changes={"priority": ["normal", "Urgent"]}))
    assert not matches(rules.context_for(ticket, NOW, changes={"status": ["new", "open"]}))
    assert rules.explain(tree, rules.context_for(ticket, NOW, changes={"priority": ["low", "urgent"]}),
                         reg)["children"][0]["actual"] == ("low", "urgent")
    with pytest.raises(DomainError, match="unknown operator 'changed_to'"):
        rules.validate(tree)  # SLA conditions (the ticket registry) do not know it


# --- explain ----------------------------------------------------------------------------------

def test_explain_gives_every_result_and_the_actual_values():
    context = rules.context_for(FakeTicket(priority="high", subject="Hello", email="bob@vip.example"), NOW)
    assert rules.explain(REFUND_VIP, context) == {
        "group": "all", "path": "", "result": True, "children": [
            {"path": "all[0]", "field": "priority", "field_label": "Priority", "op": "in", "op_label": "is one of",
             "value": ["high", "urgent"], "actual": "high", "result": True},
            {"group": "any", "path": "all[1]", "result": True, "children": [
                {"path": "all[1].any[0]", "field": "subject", "field_label": "Subject", "op": "contains",
                 "op_label": "contains", "value": "refund", "actual": "Hello", "result": False},
                {"path": "all[1].any[1]", "field": "customer.email", "field_label": "Customer email",
                 "op": "ends_with", "op_label": "ends with", "value": "@vip.example", "actual": "bob@vip.example",
                 "result": True}]}]}


def test_explain_evaluates_every_condition_and_shows_a_broken_getter():
    reg = Registry("broken", parent=rules.TICKET)
    reg.register_field("boom", "Boom", "number", lambda c: 1 / 0)
    tree = {"any": [{"field": "subject", "op": "is", "value": "hello"}, {"field": "boom", "op": "gt", "value": 1}]}
    out = rules.explain(tree, rules.context_for(FakeTicket(), NOW), reg)
    assert out["result"] is True
    assert out["children"][1]["result"] is False
    assert out["children"][1]["error"] == "ZeroDivisionError: division by zero"
    with pytest.raises(ZeroDivisionError):  # compiled rules do not hide a broken getter
        rules.compile({"all": [tree["any"][1]]}, reg)(rules.context_for(FakeTicket(), NOW))


# --- the context of a real ticket ---------------------------------------------------------------

def test_context_needs_an_aware_now():
    with pytest.raises(ValueError, match="aware"):
        rules.context_for(FakeTicket(), datetime(2026, 1, 1))


def test_context_for_a_real_ticket(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    agent = make_staff(billing, name="Dana Agent", email="dana@staff.example")
    customer = make_customer("Carol Customer", "Carol@Big-Customer.example")
    with clock.freeze(NOW - timedelta(hours=30)):
        ticket = make_ticket(billing, customer=customer, subject="Refund for order 7", priority="urgent",
                             category="Billing", body="I was <b>charged twice</b>.")
    session.commit()
    context = rules.context_for(ticket, now=NOW)
    values = {f.name: f.getter(context) for f in rules.TICKET.fields()}
    assert values == {
        "priority": "urgent", "status": "new", "category": "Billing", "subject": "Refund for order 7",
        "body": "I was <b>charged twice</b>.", "number": ticket.number, "hours_since_created": 30.0,
        "hours_since_updated": 30.0, "customer.email": "carol@big-customer.example",
        "customer.domain": "big-customer.example", "customer.name": "Carol Customer", "entity.slug": "billing",
        "entity.name": "Acme Billing", "entity.lineage": ["billing", "acme"], "assignee.email": None,
        "assignee.name": None}
    matches = rules.compile({"all": [
        {"field": "customer.domain", "op": "is", "value": "BIG-customer.example"},
        {"field": "entity.lineage", "op": "contains", "value": "acme"},
        {"field": "assignee.email", "op": "is_empty"},
        {"field": "hours_since_created", "op": "gte", "value": 24},
        {"field": "body", "op": "contains", "value": "charged twice"}]})
    assert matches(context)

    ticket.assignee = agent
    session.commit()
    assigned = rules.context_for(ticket, now=NOW)
    assert rules.TICKET.field("assignee.email").getter(assigned) == "dana@staff.example"
    assert not matches(assigned)


def test_evaluating_many_rules_reads_the_database_at_most_once_per_context(session):
    acme = make_entity("Acme", "acme")
    ticket = make_ticket(acme, subject="Refund", priority="high")
    session.commit()
    ticket = session.get(type(ticket), ticket.id)  # loaded as a job or route would
    compiled = [rules.compile({"all": [{"field": "priority", "op": "in", "value": ["high", "urgent"]},
                                       {"field": "customer.email", "op": "contains", "value": f"x{i}"},
                                       {"field": "entity.lineage", "op": "contains", "value": "acme"}]})
                for i in range(50)]
    statements = []

    def count(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        first = rules.context_for(ticket, NOW)
        [rule(first) for rule in compiled]
        on_first = len(statements)
        [rule(first) for rule in compiled]
        [rule(rules.context_for(ticket, NOW)) for rule in compiled]
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert on_first <= 2  # the customer, at most the entity: once, not once per rule
    assert len(statements) == on_first  # now loaded: nothing more, even for a new context


@pytest.mark.parametrize("type_name, text, value", [
    ("number", "4", 4), ("number", " 4.5 ", 4.5), ("number", "-2", -2), ("number", "1e3", 1000), ("number", ".5", 0.5),
    ("number", "", None), ("number", "1_000", "1_000"), ("number", "inf", "inf"), ("number", "1e400", "1e400"),
    ("number", "abc", "abc"), ("boolean", "true", True), ("boolean", "No", False), ("boolean", "maybe", "maybe"),
    ("text", "  refund ", "refund"), ("choice", "high", "high"),
])
def test_form_inputs_parse_as_rules_js_does(type_name, text, value):
    """The builder's row check and the JSON the browser submits must agree on what a typed value is."""
    assert rules.TICKET.type(type_name).parse(text) == value
