"""The filters and tests a template may use, each wrapped to run on the budget.

Every filter is allow-listed with the check of its arguments (a width, a count, a text fed to a
slow word-by-word filter) and wrapped: the clock ticks, a container's size is counted before the
filter pays for str() of it, and what the filter returns is counted as built. The wrappers take
the context, which also stops Jinja from running filters at compile time on constants.
"""
from collections import abc
from functools import update_wrapper

from jinja2 import pass_context
from jinja2.sandbox import SecurityError
from jinja2.utils import _PassArg

from mets.services.notifications.sandbox.limits import TemplateBudgetError, active, counted, joined, kb, size_of
from mets.services.notifications.sandbox.operations import check_percent, replace_growth

_SLOW_TEXT = 64 * 1024  # textwrap, urlize and title work word by word in Python: ~0.3-1 us a character


# --- the argument checks -------------------------------------------------------------------------

def _f_center(b, value, width=80, *_, **__):
    b.wide(width)


def _f_indent(b, value, width=4, *_, **__):
    columns = len(width) if isinstance(width, str) else width
    b.wide(columns)
    if isinstance(columns, int) and isinstance(value, str):
        b.fits(len(value) + (value.count("\n") + 1) * max(columns, 0))


def _f_format(b, value, *args, **kwargs):
    if isinstance(value, str):
        check_percent(b, value, kwargs or args)


def _f_batch(b, value, linecount=1, fill_with=None, *_, **__):
    if fill_with is not None and isinstance(linecount, int) and linecount > b.limits.loops:
        raise TemplateBudgetError(f"This template loops more than {b.limits.loops:,} times")
    return _per_item(b, value)


def _f_slice(b, value, slices=1, *_, **__):
    if isinstance(slices, int) and slices > b.limits.loops:  # it yields `slices` lists, however short the value
        raise TemplateBudgetError(f"This template loops more than {b.limits.loops:,} times")


def _slow_text(b, name: str, s) -> None:
    if isinstance(s, str) and len(s) > _SLOW_TEXT:
        raise TemplateBudgetError(f"This template gives {name} more than {kb(_SLOW_TEXT)} of text")


def _f_title(b, s, *_, **__):
    _slow_text(b, "title", s)


def _f_wordwrap(b, s, width=79, break_long_words=True, wrapstring=None, *_, **__):
    _slow_text(b, "wordwrap", s)
    if isinstance(s, str) and isinstance(wrapstring, str) and isinstance(width, int):
        b.fits(len(s) + (len(s) // max(width, 1) + s.count("\n") + 1) * len(wrapstring))


def _f_replace(b, s, old=None, new=None, count=None, *_, **__):
    replace_growth(b, str(s), str(old), str(new), -1 if count is None else count)


def _f_join(b, value, d="", *_, **__):
    return joined(b, d, value)


def _per_item(b, value, *_, **__):
    """Filters that go through their items in Python (a key, a test, a filter per item) count them as loops."""
    if isinstance(value, abc.Sized):
        b.count_loop(len(value))
        return value
    return counted(b, value, 0)


def _f_sum(b, iterable, attribute=None, start=0, *_, **__):
    if not isinstance(start, (int, float)):  # sum(start=[]) over lists copies the total at every step
        raise SecurityError("sum adds up numbers only")
    return _per_item(b, iterable)


def _f_round(b, value, precision=0, *_, **__):
    if isinstance(precision, int) and abs(precision) > b.limits.width:
        raise TemplateBudgetError(f"This template rounds to more than {b.limits.width:,} digits")


def _f_urlize(b, value, trim_url_limit=None, nofollow=False, target=None, rel=None, *_, **__):
    _slow_text(b, "urlize", str(value))
    if len(str(target or "")) + len(str(rel or "")) > 100:  # they are copied into every link
        raise SecurityError("urlize: target and rel may be 100 characters at most")


# --- the allow-lists -----------------------------------------------------------------------------

# The filters a template may use, each with its argument check (None: the size checks suffice).
# Not offered: pprint and tojson (serialisers whose indentation grows with nesting; no use in mail).
FILTER_CHECKS = {
    "abs": None, "attr": None, "batch": _f_batch, "capitalize": None, "center": _f_center, "count": None,
    "d": None, "default": None, "dictsort": _per_item, "e": None, "escape": None, "filesizeformat": None,
    "first": None, "float": None, "forceescape": None, "format": _f_format, "groupby": _per_item,
    "indent": _f_indent, "int": None, "items": None, "join": _f_join, "last": None, "length": None, "list": None,
    "lower": None, "map": _per_item, "max": _per_item, "min": _per_item, "random": None, "reject": _per_item,
    "rejectattr": _per_item, "replace": _f_replace, "reverse": None, "round": _f_round, "safe": None,
    "select": _per_item, "selectattr": _per_item, "slice": _f_slice, "sort": _per_item, "string": None,
    "striptags": None, "sum": _f_sum, "title": _f_title, "trim": None, "truncate": None, "unique": _per_item,
    "upper": None, "urlencode": None, "urlize": _f_urlize, "wordcount": None, "wordwrap": _f_wordwrap,
    "xmlattr": None,
}
TESTS = ("!=", "<", "<=", "==", ">", ">=", "boolean", "callable", "defined", "divisibleby", "eq", "equalto",
         "escaped", "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le",
         "lessthan", "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "test",
         "true", "undefined", "upper")


# --- the wrappers ----------------------------------------------------------------------------------

def _leading(pass_arg):
    """The first arguments Jinja would pass a filter or test of this kind, given the context."""
    if pass_arg is _PassArg.context:
        return lambda context: (context,)
    if pass_arg is _PassArg.eval_context:
        return lambda context: (context.eval_ctx,)
    if pass_arg is _PassArg.environment:
        return lambda context: (context.environment,)
    return lambda context: ()


def budgeted_filter(func, check):
    """Jinja's filter `func` on the budget, its arguments checked by `check` first (which may replace the value)."""
    lead = _leading(_PassArg.from_obj(func))

    # Taking the context also stops Jinja from running the filter at compile time on constants.
    @pass_context
    def budgeted(context, value, *args, **kwargs):
        b = active()
        if b.trusted:
            return func(*lead(context), value, *args, **kwargs)
        b.tick()
        if not isinstance(value, str):
            b.fits(size_of(value, b.max_size))  # what str() of a container costs, before the filter pays that
        if check is not None:
            replaced = check(b, value, *args, **kwargs)
            if replaced is not None:
                value = replaced
        return b.made(func(*lead(context), value, *args, **kwargs))

    return update_wrapper(budgeted, func, assigned=("__name__", "__doc__"), updated=())


def budgeted_test(func):
    """Jinja's test `func`, ticking the clock (tests are cheap; a loop of them is what costs)."""
    lead = _leading(_PassArg.from_obj(func))

    @pass_context
    def budgeted(context, value, *args, **kwargs):
        active().tick()
        return func(*lead(context), value, *args, **kwargs)

    return update_wrapper(budgeted, func, assigned=("__name__", "__doc__"), updated=())
