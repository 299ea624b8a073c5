"""What a render may cost (`Limits`), what it has used (`Budget`), and the budget in force.

The budget in force is a contextvar, so every hook of the sandbox finds it without Jinja passing
it along: `budget()` sets one around a block (the three parts of one email, a webhook body's
strings share one), `trusted()` one without limits (the shipped defaults), and a template
rendered outside both gets its own (see `environment`).
"""
import time
from collections import abc
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from jinja2.sandbox import SecurityError


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
UNLIMITED = Limits(float("inf"), *(float("inf"),) * 7)


class TemplateBudgetError(SecurityError):
    """A render went over its budget; the message says which limit, in words for the admin."""


class TemplateTimeoutError(TemplateBudgetError):
    """A render ran out of time: the one budget failure that costs its full price each time."""


def kb(n: int) -> str:
    return f"{n // 1024:,} KB" if n < 1024 * 1024 else f"{n // (1024 * 1024):,} MB"


# --- what the current render has used ----------------------------------------------------------

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
            raise TemplateBudgetError(f"This template builds a text or list larger than {kb(self.max_size)}")

    def made(self, value):
        """Check and count a value the template built; returns it."""
        size = len(value) if isinstance(value, str) else size_of(value, self.max_size)
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
            raise TemplateBudgetError(f"This template builds more than {kb(self.max_built)} of text in all")

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


# --- the budget in force -------------------------------------------------------------------------

current_budget: ContextVar[Budget | None] = ContextVar("mets_template_budget", default=None)


@contextmanager
def budget(limits: Limits = LIMITS, *, fresh: bool = False):
    """Run the block under the active budget (a webhook body's strings share one), or a fresh one if none or asked."""
    active = current_budget.get()
    if active is not None and not fresh:
        yield active
        return
    token = current_budget.set(Budget(limits))
    try:
        yield current_budget.get()
    finally:
        current_budget.reset(token)


@contextmanager
def trusted():
    """Render without limits: the shipped default templates (they must never fail for big ticket data)."""
    token = current_budget.set(Budget(UNLIMITED, trusted=True))
    try:
        yield
    finally:
        current_budget.reset(token)


def active() -> Budget:
    # Hooks run only inside Template.render, which sets a budget; this is for odd paths (a fresh one).
    return current_budget.get() or Budget()


# --- measuring what a template builds ----------------------------------------------------------

def size_of(value, limit: float) -> int:
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
            total += size_of(item, limit)
    return total


def counted(b: Budget, iterable, text_per_item: int):
    """The items, each counted as a loop iteration (and `text_per_item` characters built) as it is taken."""
    for item in iterable:
        b.count_loop()
        if text_per_item:
            b.add(text_per_item)
        yield item


def joined(b: Budget, separator, items) -> list:
    """The items as a list, refused if joining them with `separator` would be too big."""
    items = list(items) if not isinstance(items, (list, tuple)) else items
    limit = b.max_size
    total = size_of(separator, limit) * max(len(items) - 1, 0)
    for item in items:
        total += size_of(item, limit)
        if total > limit:
            break
    b.fits(total)
    return items
