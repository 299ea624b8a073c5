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

Where each part lives:

- `limits`: `Limits` (what a render may cost), `Budget` (what it has used), the budget in force
  and the entry points that set one: `budget()` (a block shares one) and `trusted()` (the
  shipped defaults, without limits);
- `environment`: `Sandbox`, the environment, with the hooks Jinja offers: `call_binop` (+ * % **),
  `call` (macros, blocks, recursive loops and an allow-list of str and collection methods),
  `finalize` (every `{{ }}`), `wrap_str_format`; its templates render on the budget in force or
  their own, up to the output cap;
- `operations`: what arithmetic, `%`, `str.format` and method calls would cost, refused before
  they run;
- `filters`: the allow-listed filters and tests, each wrapped (and each filter's arguments checked);
- `instrument`: rewrites of the parsed tree where Jinja has no hook: every `{% for %}` iterable
  goes through a counting filter, every `~` through a checked join, every comparison ticks.

Jinja folds constants at compile time; the wrapped filters and tests take the context, which
stops that, so nothing of a template runs when it is compiled. A single operation is not
interrupted: the limits keep each one short (milliseconds), so a render stops within a few of the
deadline. What is remembered of a render that ran out of time (the override falls back to the
default) is the caller's: `templates._over_budget`.
"""
from mets.services.notifications.sandbox.environment import Sandbox
from mets.services.notifications.sandbox.filters import FILTER_CHECKS, TESTS
from mets.services.notifications.sandbox.limits import (
    LIMITS, Budget, Limits, TemplateBudgetError, TemplateTimeoutError, budget, trusted,
)

__all__ = ["Limits", "LIMITS", "Budget", "TemplateBudgetError", "TemplateTimeoutError", "Sandbox", "budget",
           "trusted", "FILTER_CHECKS", "TESTS"]
