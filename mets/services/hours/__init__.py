"""Business time: the BusinessCalendar (calendar), which hours apply to an entity (entity_hours, re-
exported here), and editing them (admin).

May import: directory, models.
"""
# The package's API is its main module's: `from mets.services import hours; hours.<name>`.
from mets.services.hours.entity_hours import (  # noqa: F401
    WEEKDAYS, DEFAULT_WEEKLY, clear_cache, hours_source, mark_changed, calendar_for, weekly_of, week_of, holidays_of,
    exceptions_of, preview, preview_from_text, HoursView, hours_views,
)
