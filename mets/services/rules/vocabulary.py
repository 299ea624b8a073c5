"""The built-in field types and operators. Text comparisons ignore case (casefold on both sides)."""
import math
import re
from numbers import Real

from mets.services.rules.registry import TICKET, VALUE_MANY, VALUE_NONE, VALUE_ONE

MAX_TEXT = 500  # characters in one compared value


# --- field types ------------------------------------------------------------------------------

def _text(actual) -> str:
    return "" if actual is None else str(actual).casefold()


def _check_text(value, field):
    if not isinstance(value, str):
        return None, f"{field.label} needs text, not {_describe(value)}"
    if not value.strip():
        return None, f"Enter a value for {field.label}"
    if len(value) > MAX_TEXT:
        return None, f"{field.label}: a value is at most {MAX_TEXT} characters"
    return value.casefold(), None


def _check_choice(value, field):
    if isinstance(value, str):
        wanted = value.casefold()
        for code, _label in field.choices:
            if code.casefold() == wanted:
                return code.casefold(), None
    if isinstance(value, str) and not value.strip():
        return None, f"Enter a value for {field.label}"
    allowed = ", ".join(code for code, _ in field.choices)
    return None, f"{_show(value)} is not a {field.label.lower()} (choose from {allowed})"


def _number(actual):
    return None if actual is None or isinstance(actual, bool) else actual


def _check_number(value, field):
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        return None, f"{field.label} needs a number, not {_describe(value)}"
    return value, None


# The same pattern as rules.js, so the row check and the saved JSON agree ("1_000" and "inf" are text).
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _parse_number(text: str):
    """A form input as a JSON number; text that is not one is kept so validation can name it."""
    text = text.strip()
    if not text:
        return None
    if not _NUMBER.fullmatch(text):
        return text
    number = float(text)
    if not math.isfinite(number):
        return text
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _check_boolean(value, field):
    if not isinstance(value, bool):
        return None, f"{field.label} needs yes or no, not {_describe(value)}"
    return value, None


def _parse_boolean(text: str):
    lowered = text.strip().lower()
    return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(lowered, text)


def _list(actual) -> frozenset:
    return frozenset(_text(item) for item in actual or ())


def _describe(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes/no"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return _show(value)


def _show(value) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


TICKET.register_type("text", "Text", _text, _check_text, str.strip, "text")
TICKET.register_type("choice", "Choice", _text, _check_choice, str.strip, "select")
TICKET.register_type("number", "Number", _number, _check_number, _parse_number, "number")
TICKET.register_type("boolean", "Yes/no", bool, _check_boolean, _parse_boolean, "boolean")
# A list of tags (an entity and its parents, skills): operators test membership of one item.
TICKET.register_type("list", "List", _list, _check_text, str.strip, "text")


# --- operators --------------------------------------------------------------------------------
# Each factory takes the normalized expected value and returns the test of a normalized actual.

def _is(e):
    return lambda a: a == e


def _is_not(e):
    return lambda a: a != e


def _in(e):
    return lambda a: a in e


def _not_in(e):
    return lambda a: a not in e


def _contains(e):
    return lambda a: e in a


def _not_contains(e):
    return lambda a: e not in a


def _starts_with(e):
    return lambda a: a.startswith(e)


def _ends_with(e):
    return lambda a: a.endswith(e)


# A missing number is neither greater nor less than anything.
def _gt(e):
    return lambda a: a is not None and a > e


def _gte(e):
    return lambda a: a is not None and a >= e


def _lt(e):
    return lambda a: a is not None and a < e


def _lte(e):
    return lambda a: a is not None and a <= e


def _blank_text(_):
    return lambda a: not a.strip()


def _filled_text(_):
    return lambda a: bool(a.strip())


def _none(_):
    return lambda a: a is None


def _not_none(_):
    return lambda a: a is not None


def _empty(_):
    return lambda a: not a


def _not_empty(_):
    return lambda a: bool(a)


def _any_in(e):
    return lambda a: not a.isdisjoint(e)


def _none_in(e):
    return lambda a: a.isdisjoint(e)


op = TICKET.register_operator
op("is", "is", VALUE_ONE, {"text": _is, "choice": _is, "number": _is, "boolean": _is})
op("is_not", "is not", VALUE_ONE, {"text": _is_not, "choice": _is_not, "number": _is_not, "boolean": _is_not})
# On a list field, "is one of" means one of its items is among the values.
op("in", "is one of", VALUE_MANY, {"text": _in, "choice": _in, "number": _in, "list": _any_in})
op("not_in", "is none of", VALUE_MANY, {"text": _not_in, "choice": _not_in, "number": _not_in, "list": _none_in})
op("contains", "contains", VALUE_ONE, {"text": _contains, "list": _contains})
op("not_contains", "does not contain", VALUE_ONE, {"text": _not_contains, "list": _not_contains})
op("starts_with", "starts with", VALUE_ONE, {"text": _starts_with})
op("ends_with", "ends with", VALUE_ONE, {"text": _ends_with})
op("gt", "is more than", VALUE_ONE, {"number": _gt})
op("gte", "is at least", VALUE_ONE, {"number": _gte})
op("lt", "is less than", VALUE_ONE, {"number": _lt})
op("lte", "is at most", VALUE_ONE, {"number": _lte})
op("is_empty", "is empty", VALUE_NONE, {"text": _blank_text, "choice": _blank_text, "number": _none, "list": _empty})
op("is_not_empty", "is not empty", VALUE_NONE,
   {"text": _filled_text, "choice": _filled_text, "number": _not_none, "list": _not_empty})
del op
