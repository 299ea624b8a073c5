"""The sandbox every admin-written template renders in (email templates, rule notes, SMS and webhook texts).

Jinja's immutable sandbox stops a template from reaching Python; this one also bounds what a
render may cost, so no template an admin can save (or that ticket data makes expensive later)
holds a request for long. Each render runs under a `Budget` (a contextvar set around it; the
three parts of one email share one):

- time: 0.2 s, checked in every hook below and every 32 loop iterations;
- loops: 10,000 iterations in all: `{% for %}`, recursive `loop()`, and the items of filters that
  go through them one by one in Python (sort, map, select, unique, groupby, batch...);
- sizes: no text or list over 256 KB, at most 256 KB of output per part, 8 MB of text built in
  all (what loops, macros and `{% set %}` blocks build and throw away counts too), each on top of
  the longest text the template is given (a customer's long message is theirs, not the template's);
- numbers: `**` and `*` refuse results over 4,096 bits before computing them;
- widths: padding and format widths or precisions over 1,000 (`center`, `ljust`, `'%9999s'`,
  `'{:>9999}'`); wordwrap, urlize and title (slow, word by word) take 64 KB at most; macro calls
  nest 50 deep at most.

The hooks: `call_binop` (+ * % **), `call` (macros, blocks, recursive loops and an allow-list of
str and collection methods), every filter and test (an allow-list, each wrapped), `finalize`
(every `{{ }}`), the `str.format` formatter, and rewrites of the parsed tree (`_parse`, Jinja has
no hook for these): every `{% for %}` iterable goes through a counting filter, every `~` through
a checked join, every comparison ticks the clock. Jinja folds constants at compile time; the
wrapped filters and tests take the context, which stops that, so nothing of a template runs
when it is compiled. A render outside any budget (`Template.render`) gets one of its own;
`trusted()` renders the shipped defaults without limits. A single operation is not interrupted:
the limits keep each one short (milliseconds), so a render stops within a few of the deadline.
"""
import re
import time
import types
from collections import abc
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import update_wrapper

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes, pass_context
from jinja2.environment import Template
from jinja2.runtime import BlockReference, LoopContext, Macro, Undefined, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter, SecurityError
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

__all__ = ["Limits", "LIMITS", "Budget", "TemplateBudgetError", "TemplateTimeoutError", "Sandbox", "budget",
           "trusted"]


@dataclass(frozen=True)
class Limits:
    """What one render (all parts of one template together) may cost."""

    seconds: float = 0.2  # a notification renders inside the change's request, a customer's included
    loops: int = 10_000
    output: int = 256 * 1024  # characters of one rendered part
    size: int = 256 * 1024  # characters (or items) of any one text or list the template builds
    built: int = 8 * 1024 * 1024  # characters built in all, kept or not
    bits: int = 4096  # the largest integer arithmetic may produce
    width: int = 1000  # the widest padding, format width or precision
    depth: int = 50  # macro, block and recursive-loop calls in progress at once


LIMITS = Limits()
_UNLIMITED = Limits(float("inf"), *(float("inf"),) * 7)


class TemplateBudgetError(SecurityError):
    """A render went over its budget; the message says which limit, in words for the admin."""


class TemplateTimeoutError(TemplateBudgetError):
    """A render ran out of time: the one budget failure that costs its full price each time."""


def _kb(n: int) -> str:
    return f"{n // 1024:,} KB" if n < 1024 * 1024 else f"{n // (1024 * 1024):,} MB"


class Budget:
    """What the current render has used: started at creation, shared by every part rendered under it.

    The size limits are on top of the longest text the template is given (`allow`): a customer's
    300 KB message still fits; what a template may add to it, or build from it, is bounded.
    """

    __slots__ = ("limits", "trusted", "deadline", "allowance", "max_size", "max_built", "max_output", "loops",
                 "built", "depth")

    def __init__(self, limits: Limits = LIMITS, trusted: bool = False):
        self.limits, self.trusted = limits, trusted
        self.deadline = time.monotonic() + limits.seconds
        self.allowance = 0
        self.max_size, self.max_built, self.max_output = limits.size, limits.built, limits.output
        self.loops = self.built = self.depth = 0

    def allow(self, longest_input: int) -> None:
        """Raise the size limits by the longest input text (kept if an earlier part had a longer one)."""
        if longest_input > self.allowance:
            self.allowance = longest_input
            self.max_size = self.limits.size + longest_input
            self.max_output = self.limits.output + longest_input
            self.max_built = self.limits.built + 8 * longest_input  # each part may quote it, filter it...

    def tick(self) -> None:
        """Refuse to go on past the deadline."""
        if time.monotonic() > self.deadline:
            raise TemplateTimeoutError(f"This template takes too long to render (over {self.limits.seconds:g} s)")

    def fits(self, size: int) -> None:
        """Refuse a text or list of `size` characters (or items) before it is built."""
        if size > self.max_size:
            raise TemplateBudgetError(f"This template builds a text or list larger than {_kb(self.max_size)}")

    def made(self, value):
        """Check and count a value the template built; returns it."""
        size = len(value) if isinstance(value, str) else _size(value, self.max_size)
        if size > self.max_size:
            self.fits(size)
        self.built += size
        if self.built > self.max_built:
            self.add(0)
        return value

    def add(self, size: int) -> None:
        """Count `size` characters built, kept or not."""
        self.built += size
        if self.built > self.max_built:
            raise TemplateBudgetError(f"This template builds more than {_kb(self.max_built)} of text in all")

    def wide(self, width) -> None:
        """Refuse a padding width, format width or precision over the limit."""
        if isinstance(width, int) and abs(width) > self.limits.width:
            raise TemplateBudgetError(
                f"This template pads or formats text wider than {self.limits.width:,} characters")

    def count_loop(self, items: int = 1) -> None:
        """Count loop iterations (or items a filter goes through one by one in Python)."""
        self.loops += items
        if self.loops > self.limits.loops:
            raise TemplateBudgetError(f"This template loops more than {self.limits.loops:,} times")
        if not self.loops & 31 or items > 1:  # every 32 iterations: each is cheap, time.monotonic() is not free
            self.tick()


_current: ContextVar[Budget | None] = ContextVar("mets_template_budget", default=None)


@contextmanager
def budget(limits: Limits = LIMITS, *, fresh: bool = False):
    """Run the block under the active budget (a webhook body's strings share one), or a fresh one if none or asked."""
    active = _current.get()
    if active is not None and not fresh:
        yield active
        return
    token = _current.set(Budget(limits))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


@contextmanager
def trusted():
    """Render without limits: the shipped default templates (they must never fail for big ticket data)."""
    token = _current.set(Budget(_UNLIMITED, trusted=True))
    try:
        yield
    finally:
        _current.reset(token)


def _active() -> Budget:
    # Hooks run only inside Template.render, which sets a budget; this is for odd paths (a fresh one).
    return _current.get() or Budget()


def _size(value, limit: float) -> int:
    """At least how many characters str() of the value makes (containers counted as far as `limit`)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (bool, float)) or value is None:
        return 1
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if not isinstance(value, (abc.Collection, abc.MappingView)) or isinstance(value, (bytes, bytearray)):
        return len(value) if isinstance(value, (bytes, bytearray)) else 0  # generators, macros: short str()
    # Every container counts its length, so the walk visits at most `limit` items before it stops.
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 1
        elif isinstance(item, (abc.Collection, abc.MappingView)) and not isinstance(item, (bytes, bytearray)):
            total += len(item) + 1
            if total <= limit:
                stack.extend(item.values() if isinstance(item, abc.Mapping) else item)
                if isinstance(item, abc.Mapping):
                    stack.extend(item.keys())
        else:
            total += _size(item, limit)
    return total


# --- arithmetic and % formatting --------------------------------------------------------------

_SIZED = (str, list, tuple)
_PERCENT = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.S)
_SPEC_NUMBER = re.compile(r"\d+")


def _check_binop(b: Budget, operator: str, left, right) -> None:
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
            if isinstance(sized, _SIZED) and isinstance(count, int) and count > 0:
                b.fits(_size(sized, b.max_size) * count)
    elif operator == "+":
        if isinstance(left, _SIZED) and isinstance(right, _SIZED):
            b.fits(_size(left, b.max_size) + _size(right, b.max_size))
    elif operator == "%" and isinstance(left, str):
        _check_percent(b, left, right)


def _check_percent(b: Budget, fmt: str, values) -> None:
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
        total += max(pad, _size(value, b.max_size))
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
        b = _active()
        b.tick()
        _check_spec(b, format_spec)
        b.fits(_size(value, b.max_size))
        text = super().format_field(value, format_spec)
        self._made += len(text)
        b.fits(self._made)
        return text


class _Formatter(_FormatBudget, SandboxedFormatter):
    pass


class _EscapeFormatter(_FormatBudget, SandboxedEscapeFormatter):
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


def _replace_growth(b, s: str, old, new, count=-1) -> None:
    if not (isinstance(old, str) and isinstance(new, str)) or len(new) <= len(old):
        return
    found = len(s) + 1 if not old else s.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    b.fits(len(s) + found * (len(new) - len(old)))


def _replace(b, s, old=None, new=None, count=-1, *_, **__):
    _replace_growth(b, s, old, new, -1 if count is None else count)


def _joined(b, separator, items) -> list:
    """The items as a list, refused if joining them with `separator` would be too big."""
    items = list(items) if not isinstance(items, (list, tuple)) else items
    limit = b.max_size
    total = _size(separator, limit) * max(len(items) - 1, 0)
    for item in items:
        total += _size(item, limit)
        if total > limit:
            break
    b.fits(total)
    return items


_STR_CHECKS = {"center": _pad, "ljust": _pad, "rjust": _pad, "zfill": _pad, "expandtabs": _expandtabs,
               "replace": _replace}


# --- filters and tests ------------------------------------------------------------------------

def _f_center(b, value, width=80, *_, **__):
    b.wide(width)


def _f_indent(b, value, width=4, *_, **__):
    columns = len(width) if isinstance(width, str) else width
    b.wide(columns)
    if isinstance(columns, int) and isinstance(value, str):
        b.fits(len(value) + (value.count("\n") + 1) * max(columns, 0))


def _f_format(b, value, *args, **kwargs):
    if isinstance(value, str):
        _check_percent(b, value, kwargs or args)


def _f_batch(b, value, linecount=1, fill_with=None, *_, **__):
    if fill_with is not None and isinstance(linecount, int) and linecount > b.limits.loops:
        raise TemplateBudgetError(f"This template loops more than {b.limits.loops:,} times")
    return _per_item(b, value)


def _f_slice(b, value, slices=1, *_, **__):
    if isinstance(slices, int) and slices > b.limits.loops:  # it yields `slices` lists, however short the value
        raise TemplateBudgetError(f"This template loops more than {b.limits.loops:,} times")


_SLOW_TEXT = 64 * 1024  # textwrap, urlize and title work word by word in Python: ~0.3-1 us a character


def _slow_text(b, name: str, s) -> None:
    if isinstance(s, str) and len(s) > _SLOW_TEXT:
        raise TemplateBudgetError(f"This template gives {name} more than {_kb(_SLOW_TEXT)} of text")


def _f_title(b, s, *_, **__):
    _slow_text(b, "title", s)


def _f_wordwrap(b, s, width=79, break_long_words=True, wrapstring=None, *_, **__):
    _slow_text(b, "wordwrap", s)
    if isinstance(s, str) and isinstance(wrapstring, str) and isinstance(width, int):
        b.fits(len(s) + (len(s) // max(width, 1) + s.count("\n") + 1) * len(wrapstring))


def _f_replace(b, s, old=None, new=None, count=None, *_, **__):
    _replace_growth(b, str(s), str(old), str(new), -1 if count is None else count)


def _f_join(b, value, d="", *_, **__):
    return _joined(b, d, value)


def _per_item(b, value, *_, **__):
    """Filters that go through their items in Python (a key, a test, a filter per item) count them as loops."""
    if isinstance(value, abc.Sized):
        b.count_loop(len(value))
        return value
    return _counted(b, value, 0)


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


def _leading(pass_arg):
    """The first arguments Jinja would pass a filter or test of this kind, given the context."""
    if pass_arg is _PassArg.context:
        return lambda context: (context,)
    if pass_arg is _PassArg.eval_context:
        return lambda context: (context.eval_ctx,)
    if pass_arg is _PassArg.environment:
        return lambda context: (context.environment,)
    return lambda context: ()


def _budgeted_filter(func, check):
    lead = _leading(_PassArg.from_obj(func))

    # Taking the context also stops Jinja from running the filter at compile time on constants.
    @pass_context
    def budgeted(context, value, *args, **kwargs):
        b = _active()
        if b.trusted:
            return func(*lead(context), value, *args, **kwargs)
        b.tick()
        if not isinstance(value, str):
            b.fits(_size(value, b.max_size))  # what str() of a container costs, before the filter pays that
        if check is not None:
            replaced = check(b, value, *args, **kwargs)
            if replaced is not None:
                value = replaced
        return b.made(func(*lead(context), value, *args, **kwargs))

    return update_wrapper(budgeted, func, assigned=("__name__", "__doc__"), updated=())


def _budgeted_test(func):
    lead = _leading(_PassArg.from_obj(func))

    @pass_context
    def budgeted(context, value, *args, **kwargs):
        _active().tick()
        return func(*lead(context), value, *args, **kwargs)

    return update_wrapper(budgeted, func, assigned=("__name__", "__doc__"), updated=())


# --- what the parsed tree is rewritten to call ------------------------------------------------

_LOOP, _CONCAT, _TICK = "mets_budget_loop", "mets_budget_concat", "mets_budget_tick"
_INTERNAL = frozenset({_LOOP, _CONCAT, _TICK})


def _counted(b: Budget, iterable, text_per_item: int):
    for item in iterable:
        b.count_loop()
        if text_per_item:
            b.add(text_per_item)
        yield item


@pass_context
def _loop_filter(context, iterable, text_per_item=0):
    b = _active()
    if b.trusted:
        return iterable
    b.tick()
    return _counted(b, iterable, text_per_item)


@pass_context
def _concat_filter(context, parts):
    b = _active()
    join = markup_join if context.eval_ctx.autoescape else str_join
    if b.trusted:
        return join(parts)
    b.tick()
    _joined(b, "", parts)
    return b.made(join(parts))


@pass_context
def _tick_filter(context, value):
    b = _active()
    if not b.trusted:
        b.tick()
    return value


def _static_text(body) -> int:
    """Characters of template text one pass of a loop body writes (nested loops and macros count their own)."""
    total, stack = 0, list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif not isinstance(node, (nodes.For, nodes.Macro, nodes.CallBlock)):
            stack.extend(node.iter_child_nodes())
    return total


class _Instrument(NodeTransformer):
    """Rewrite loops, `~` and comparisons to go through the budget (Jinja has no hook for them)."""

    def visit_For(self, node):
        self.generic_visit(node)
        # Loop text is counted per pass: in a {% set %} block or macro it is buffered, not streamed.
        node.iter = nodes.Filter(node.iter, _LOOP, [nodes.Const(_static_text(node.body))], [], None, None,
                                 lineno=node.iter.lineno)
        return node

    def visit_Concat(self, node):
        self.generic_visit(node)
        return nodes.Filter(nodes.Tuple(node.nodes, "load", lineno=node.lineno), _CONCAT, [], [], None, None,
                            lineno=node.lineno)

    def visit_Compare(self, node):
        self.generic_visit(node)
        return nodes.Filter(node, _TICK, [], [], None, None, lineno=node.lineno)


@pass_context
def _finalize(context, value):
    """Every {{ }} output: checked and counted (buffered output in macros and blocks is not streamed)."""
    b = _current.get()
    if b is None or b.trusted:
        return value
    if time.monotonic() > b.deadline:
        b.tick()
    if isinstance(value, str):  # (the output cap, or the buffer's owner, checks its size)
        b.add(len(value))
        return value
    return b.made(value)


class _Template(Template):
    """A template whose render runs under the active budget (or its own) and stops at the output cap."""

    def render(self, *args, **kwargs) -> str:
        b = _current.get()
        token = None if b is not None else _current.set(b := Budget())  # (not budget(): this runs per part)
        try:
            variables = dict(*args, **kwargs)
            ctx = self.new_context(variables)
            try:
                if b.trusted:
                    return self.environment.concat(self.root_render_func(ctx))
                b.allow(max((len(v) for v in variables.values() if isinstance(v, str)), default=0))
                out, written, cap = [], 0, b.max_output
                append = out.append
                for piece in self.root_render_func(ctx):
                    append(piece)
                    written += len(piece)
                    if written > cap:
                        raise TemplateBudgetError(f"This template produces more than {_kb(cap)}")
                return "".join(out)
            except Exception:
                self.environment.handle_exception()
        finally:
            if token is not None:
                _current.reset(token)

    def generate(self, *args, **kwargs):
        # A budget cannot span a generator's yields (the contextvar would leak to the caller): render whole.
        yield self.render(*args, **kwargs)


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with no globals, allow-listed filters and tests, and every render on a budget."""

    intercepted_binops = frozenset({"+", "*", "%", "**"})
    template_class = _Template

    def __init__(self, autoescape: bool):
        super().__init__(undefined=StrictUndefined, autoescape=autoescape, trim_blocks=True, lstrip_blocks=True,
                         finalize=_finalize)
        self.globals.clear()  # no range, cycler, lipsum...: a template sees its variables and nothing else
        self.filters = {name: _budgeted_filter(self.filters[name], check) for name, check in FILTER_CHECKS.items()}
        self.filters.update({_LOOP: _loop_filter, _CONCAT: _concat_filter, _TICK: _tick_filter})
        self.tests = {name: _budgeted_test(self.tests[name]) for name in TESTS}

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        for node in tree.find_all(nodes.Filter):
            if node.name in _INTERNAL:  # the budget's own filters are for the rewritten tree only
                raise TemplateSyntaxError(f"No filter named {node.name!r}.", node.lineno, name, filename)
        return _Instrument().visit(tree)

    def call_binop(self, context, operator, left, right):
        b = _active()
        if b.trusted:
            return self.binop_table[operator](left, right)
        b.tick()
        _check_binop(b, operator, left, right)
        result = self.binop_table[operator](left, right)
        return b.made(result) if isinstance(result, _SIZED) else result

    def call(self, context, obj, /, *args, **kwargs):
        """Call from a template: macros, blocks and recursive loops (depth-limited) and allow-listed methods only."""
        b = _active()
        if b.trusted or isinstance(obj, Undefined) or not callable(obj):  # these raise their own errors
            return super().call(context, obj, *args, **kwargs)
        b.tick()
        if isinstance(obj, (Macro, BlockReference, LoopContext)):
            if isinstance(obj, LoopContext) and args:  # loop(children) in a recursive loop: iterations count
                args = (_counted(b, args[0], 0), *args[1:])
            b.depth += 1
            try:
                if b.depth > b.limits.depth:
                    raise TemplateBudgetError(f"This template nests macro calls more than {b.limits.depth} deep")
                return b.made(super().call(context, obj, *args, **kwargs))
            finally:
                b.depth -= 1
        owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
        if isinstance(obj, types.FunctionType) and getattr(obj, "mets_format", False):
            pass  # str.format, wrapped below: it checks as it formats
        elif not isinstance(obj, (types.BuiltinMethodType, types.MethodType)):
            raise SecurityError(f"calling {name or type(obj).__name__!r} is not allowed in a template")
        elif isinstance(owner, str) and name in _STR_METHODS:
            plain = {k: v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars")}
            if name == "join" and args:
                args = (_joined(b, owner, args[0]), *args[1:])
            elif name in _STR_CHECKS:
                _STR_CHECKS[name](b, owner, *args, **plain)
        elif not ((isinstance(owner, (list, tuple, dict)) and name in _COLLECTION_METHODS)
                  or (isinstance(owner, LoopContext) and name in _LOOP_METHODS)):
            raise SecurityError(f"calling {name or obj!r} is not allowed in a template")
        return b.made(super().call(context, obj, *args, **kwargs))

    def wrap_str_format(self, value):
        """str.format and format_map (and Markup's) through a formatter that checks specs and sizes."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
                "format", "format_map") or not isinstance(value.__self__, str):
            return None
        text = value.__self__
        str_type, is_format_map = type(text), value.__name__ == "format_map"
        formatter = _EscapeFormatter(self, escape=text.escape) if isinstance(text, Markup) else _Formatter(self)

        def wrapper(*args, **kwargs):
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                args, kwargs = (), args[0]
            return str_type(formatter.vformat(text, args, kwargs))

        wrapper = update_wrapper(wrapper, value)
        wrapper.mets_format = True
        return wrapper
