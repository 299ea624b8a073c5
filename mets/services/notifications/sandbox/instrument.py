"""The parsed tree rewritten to go through the budget where Jinja has no hook.

Every `{% for %}` iterable goes through a counting filter (with the text one pass writes), every
`~` through a checked join, every comparison ticks the clock. The filters are the sandbox's own:
a template that names one is refused (`INTERNAL`).
"""
from jinja2 import nodes, pass_context
from jinja2.runtime import markup_join, str_join
from jinja2.visitor import NodeTransformer

from mets.services.notifications.sandbox.limits import active, counted, joined

LOOP, CONCAT, TICK = "mets_budget_loop", "mets_budget_concat", "mets_budget_tick"
INTERNAL = frozenset({LOOP, CONCAT, TICK})


@pass_context
def _loop_filter(context, iterable, text_per_item=0):
    b = active()
    if b.trusted:
        return iterable
    b.tick()
    return counted(b, iterable, text_per_item)


@pass_context
def _concat_filter(context, parts):
    b = active()
    join = markup_join if context.eval_ctx.autoescape else str_join
    if b.trusted:
        return join(parts)
    b.tick()
    joined(b, "", parts)
    return b.made(join(parts))


@pass_context
def _tick_filter(context, value):
    b = active()
    if not b.trusted:
        b.tick()
    return value


FILTERS = {LOOP: _loop_filter, CONCAT: _concat_filter, TICK: _tick_filter}


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


class Instrument(NodeTransformer):
    """Rewrite loops, `~` and comparisons to go through the budget (Jinja has no hook for them)."""

    def visit_For(self, node):
        self.generic_visit(node)
        # Loop text is counted per pass: in a {% set %} block or macro it is buffered, not streamed.
        node.iter = nodes.Filter(node.iter, LOOP, [nodes.Const(_static_text(node.body))], [], None, None,
                                 lineno=node.iter.lineno)
        return node

    def visit_Concat(self, node):
        self.generic_visit(node)
        return nodes.Filter(nodes.Tuple(node.nodes, "load", lineno=node.lineno), CONCAT, [], [], None, None,
                            lineno=node.lineno)

    def visit_Compare(self, node):
        self.generic_visit(node)
        return nodes.Filter(node, TICK, [], [], None, None, lineno=node.lineno)
