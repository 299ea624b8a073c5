"""What an operation would cost, refused before it runs: arithmetic, `%` and `str.format`, method calls.

Python computes `9**64**64` or `'%9999999s' % x` in one step that no budget check can interrupt,
so each is priced from its operands first: the result's bits, its size, the widths it pads to.
"""
import re
import types
from collections import abc

from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter, SecurityError

from mets.services.notifications.sandbox.limits import Budget, TemplateBudgetError, active, joined, size_of

SIZED = (str, list, tuple)  # what `+` and `*` build by copying
FORMAT_MARK = "mets_format"  # set on the str.format wrappers Sandbox.wrap_str_format makes
_PERCENT = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.S)
_SPEC_NUMBER = re.compile(r"\d+")


# --- arithmetic and % formatting --------------------------------------------------------------

def check_binop(b: Budget, operator: str, left, right) -> None:
    if operator == "**":
        if (isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
                and left.bit_length() * right > b.limits.bits):
            raise TemplateBudgetError(f"This template computes a number larger than {b.limits.bits:,} bits")
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > b.limits.bits:
                raise TemplateBudgetError(f"This template computes a number larger than {b.limits.bits:,} bits")
        else:
            sized, count = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(sized, SIZED) and isinstance(count, int) and count > 0:
                b.fits(size_of(sized, b.max_size) * count)
    elif operator == "+":
        if isinstance(left, SIZED) and isinstance(right, SIZED):
            b.fits(size_of(left, b.max_size) + size_of(right, b.max_size))
    elif operator == "%" and isinstance(left, str):
        check_percent(b, left, right)


def check_percent(b: Budget, fmt: str, values) -> None:
    """`fmt % values` refused before formatting if a width or precision is too wide or the result too big."""
    mapping = values if isinstance(values, abc.Mapping) else None
    positional = values if isinstance(values, tuple) else (values,)
    index, total = 0, len(fmt)
    for match in _PERCENT.finditer(fmt):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        pad = 0
        for part in (width, precision):
            if part == "*":
                given = positional[index] if index < len(positional) else 0
                index += 1
                part = given if isinstance(given, int) else 0
            else:
                part = (int(part) if len(part) < 7 else 10 ** 7) if part else 0
            b.wide(part)
            pad = max(pad, abs(part))
        if key is not None:
            value = mapping.get(key) if mapping is not None else None
        else:
            value = positional[index] if index < len(positional) else None
            index += 1
        total += max(pad, size_of(value, b.max_size))
    b.fits(total)


def _check_spec(b: Budget, spec: str) -> None:
    """A str.format spec ("{:>80}", "{:.2f}") with every number in it (width, precision) within the limit."""
    for number in _SPEC_NUMBER.findall(spec):
        b.wide(int(number) if len(number) < 7 else 10 ** 7)


class _FormatBudget:
    """str.format under the budget: each spec checked, each field's text counted as the result grows."""

    def vformat(self, format_string, args, kwargs):
        self._made = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value, format_spec):
        b = active()
        b.tick()
        _check_spec(b, format_spec)
        b.fits(size_of(value, b.max_size))
        text = super().format_field(value, format_spec)
        self._made += len(text)
        b.fits(self._made)
        return text


class Formatter(_FormatBudget, SandboxedFormatter):
    pass


class EscapeFormatter(_FormatBudget, SandboxedEscapeFormatter):
    pass


# --- methods a template may call --------------------------------------------------------------

_STR_METHODS = frozenset(
    "capitalize casefold center count endswith expandtabs find index isalnum isalpha isascii isdecimal isdigit "
    "isidentifier islower isnumeric isprintable isspace istitle isupper join ljust lower lstrip partition "
    "removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip split splitlines startswith "
    "strip swapcase title upper zfill striptags unescape".split())
_COLLECTION_METHODS = frozenset("count index copy get items keys values".split())
_LOOP_METHODS = frozenset({"cycle", "changed"})


def _pad(b, s, width=0, *_, **__):
    b.wide(width)


def _expandtabs(b, s, tabsize=8, *_, **__):
    b.wide(tabsize)
    if isinstance(tabsize, int):
        b.fits(len(s) + s.count("\t") * tabsize)


def replace_growth(b, s: str, old, new, count=-1) -> None:
    """Refuse a replace whose result would be too big (every match of `old` grows by the difference)."""
    if not (isinstance(old, str) and isinstance(new, str)) or len(new) <= len(old):
        return
    found = len(s) + 1 if not old else s.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    b.fits(len(s) + found * (len(new) - len(old)))


def _replace(b, s, old=None, new=None, count=-1, *_, **__):
    replace_growth(b, s, old, new, -1 if count is None else count)


_STR_CHECKS = {"center": _pad, "ljust": _pad, "rjust": _pad, "zfill": _pad, "expandtabs": _expandtabs,
               "replace": _replace}


def check_method(b: Budget, obj, args: tuple, kwargs: dict) -> tuple:
    """Refuse a call a template may not make (only allow-listed methods); returns the arguments to call with."""
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if isinstance(obj, types.FunctionType) and getattr(obj, FORMAT_MARK, False):
        return args  # str.format, wrapped by the sandbox: it checks as it formats
    if not isinstance(obj, (types.BuiltinMethodType, types.MethodType)):
        raise SecurityError(f"calling {name or type(obj).__name__!r} is not allowed in a template")
    if isinstance(owner, str) and name in _STR_METHODS:
        plain = {k: v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars")}
        if name == "join" and args:
            return (joined(b, owner, args[0]), *args[1:])  # a generator is listed once, to be measured
        if name in _STR_CHECKS:
            _STR_CHECKS[name](b, owner, *args, **plain)
        return args
    if not ((isinstance(owner, (list, tuple, dict)) and name in _COLLECTION_METHODS)
            or (isinstance(owner, LoopContext) and name in _LOOP_METHODS)):
        raise SecurityError(f"calling {name or obj!r} is not allowed in a template")
    return args
