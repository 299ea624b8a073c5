"""The one source of "now". Tests move it with `freeze`; code never calls datetime.now()."""
from contextlib import contextmanager
from datetime import datetime, timezone

_frozen: datetime | None = None


def now() -> datetime:
    """Current instant, timezone-aware UTC (or the frozen instant in tests)."""
    return _frozen if _frozen is not None else datetime.now(timezone.utc)


def set_now(at: datetime | None) -> None:
    """Freeze the clock at `at` (aware), or unfreeze with None."""
    global _frozen
    if at is not None and at.tzinfo is None:
        raise ValueError("clock.set_now needs an aware datetime")
    _frozen = at.astimezone(timezone.utc) if at is not None else None


@contextmanager
def freeze(at: datetime):
    """Freeze the clock inside a with-block."""
    previous = _frozen
    set_now(at)
    try:
        yield
    finally:
        set_now(previous)
