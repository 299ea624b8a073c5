"""Column types shared by the models."""
from datetime import timezone

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python on every database; naive values are refused.

    PostgreSQL stores `timestamptz`; SQLite stores the naive UTC wall time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: METS stores aware UTC times only")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return _utc(value)

    def result_processor(self, dialect, coltype):
        # `_utc` itself on PostgreSQL (whose driver gives datetimes), not TypeDecorator's wrapper calling
        # process_result_value: one call a value instead of two (a page of the API reads some 200 instants).
        impl = self.impl_instance.result_processor(dialect, coltype)
        return _utc if impl is None else lambda value: _utc(impl(value))


def _utc(value):
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
