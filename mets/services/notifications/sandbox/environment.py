"""The sandboxed environment: Jinja's immutable sandbox with every hook it offers on the budget.

`Sandbox` has no globals, only the allow-listed filters and tests (`filters`), its parse rewritten
(`instrument`), arithmetic and calls priced before they run (`operations`), and every `{{ }}`
counted (`_finalize`). Its templates render under the budget in force, or one of their own, and
stop at the output cap.
"""
import time
import types
from functools import update_wrapper

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes, pass_context
from jinja2.environment import Template
from jinja2.runtime import BlockReference, LoopContext, Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from mets.services.notifications.sandbox import filters, instrument, operations
from mets.services.notifications.sandbox.limits import Budget, TemplateBudgetError, active, counted, current_budget, kb


@pass_context
def _finalize(context, value):
    """Every {{ }} output: checked and counted (buffered output in macros and blocks is not streamed)."""
    b = current_budget.get()
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
        b = current_budget.get()
        token = None if b is not None else current_budget.set(b := Budget())  # (not budget(): this runs per part)
        try:
            variables = dict(*args, **kwargs)
            ctx = self.new_context(variables)
            try:
                if b.trusted:
                    return self.environment.concat(self.root_render_func(ctx))
                return self._render_capped(b, ctx, variables)
            except Exception:
                self.environment.handle_exception()
        finally:
            if token is not None:
                current_budget.reset(token)

    def _render_capped(self, b: Budget, ctx, variables: dict) -> str:
        """The output as it streams, refused once it passes the cap (on top of the longest text given)."""
        b.allow(max((len(v) for v in variables.values() if isinstance(v, str)), default=0))
        out, written, cap = [], 0, b.max_output
        append = out.append
        for piece in self.root_render_func(ctx):
            append(piece)
            written += len(piece)
            if written > cap:
                raise TemplateBudgetError(f"This template produces more than {kb(cap)}")
        return "".join(out)

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
        self.filters = {name: filters.budgeted_filter(self.filters[name], check)
                        for name, check in filters.FILTER_CHECKS.items()}
        self.filters.update(instrument.FILTERS)
        self.tests = {name: filters.budgeted_test(self.tests[name]) for name in filters.TESTS}

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        for node in tree.find_all(nodes.Filter):
            if node.name in instrument.INTERNAL:  # the budget's own filters are for the rewritten tree only
                raise TemplateSyntaxError(f"No filter named {node.name!r}.", node.lineno, name, filename)
        return instrument.Instrument().visit(tree)

    def call_binop(self, context, operator, left, right):
        b = active()
        if b.trusted:
            return self.binop_table[operator](left, right)
        b.tick()
        operations.check_binop(b, operator, left, right)
        result = self.binop_table[operator](left, right)
        return b.made(result) if isinstance(result, operations.SIZED) else result

    def call(self, context, obj, /, *args, **kwargs):
        """Call from a template: macros, blocks and recursive loops (depth-limited) and allow-listed methods only."""
        b = active()
        if b.trusted or isinstance(obj, Undefined) or not callable(obj):  # these raise their own errors
            return super().call(context, obj, *args, **kwargs)
        b.tick()
        if isinstance(obj, (Macro, BlockReference, LoopContext)):
            return self._call_nested(b, context, obj, args, kwargs)
        args = operations.check_method(b, obj, args, kwargs)
        return b.made(super().call(context, obj, *args, **kwargs))

    def _call_nested(self, b: Budget, context, obj, args: tuple, kwargs: dict):
        """A macro, block or recursive loop: calls in progress are limited, a recursive loop's items counted."""
        if isinstance(obj, LoopContext) and args:  # loop(children) in a recursive loop: iterations count
            args = (counted(b, args[0], 0), *args[1:])
        b.depth += 1
        try:
            if b.depth > b.limits.depth:
                raise TemplateBudgetError(f"This template nests macro calls more than {b.limits.depth} deep")
            return b.made(super().call(context, obj, *args, **kwargs))
        finally:
            b.depth -= 1

    def wrap_str_format(self, value):
        """str.format and format_map (and Markup's) through a formatter that checks specs and sizes."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
                "format", "format_map") or not isinstance(value.__self__, str):
            return None
        text = value.__self__
        formatter = (operations.EscapeFormatter(self, escape=text.escape) if isinstance(text, Markup)
                     else operations.Formatter(self))
        wrapper = update_wrapper(_formatting(formatter, text, value.__name__ == "format_map"), value)
        setattr(wrapper, operations.FORMAT_MARK, True)  # what Sandbox.call lets through
        return wrapper


def _formatting(formatter, text: str, is_format_map: bool):
    """`text.format` (or `format_map`) through `formatter`, with str's own argument errors."""
    str_type = type(text)

    def wrapper(*args, **kwargs):
        if is_format_map:
            if kwargs:
                raise TypeError("format_map() takes no keyword arguments")
            if len(args) != 1:
                raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
            args, kwargs = (), args[0]
        return str_type(formatter.vformat(text, args, kwargs))

    return wrapper
