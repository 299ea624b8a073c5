"""Small validators shared by the services."""
import re
from functools import lru_cache
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


@lru_cache(maxsize=1)
def timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def normalize_email(value: str | None) -> str:
    """Lower-cased and trimmed; the one form stored and compared."""
    return (value or "").strip().lower()


def email_error(value: str) -> str | None:
    """A message if `value` is not a valid address (syntax only, no DNS)."""
    if not value:
        return "Enter an email address."
    if "\r" in value or "\n" in value:
        return "An email address cannot contain line breaks."
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def timezone_error(value: str) -> str | None:
    if value not in timezones():
        return f"Unknown time zone '{value}'. Use an IANA name such as Europe/Paris."
    return None


def text_error(value: str | None, label: str, max_length: int, required: bool = True) -> str | None:
    value = (value or "").strip()
    if required and not value:
        return f"{label} is required."
    if len(value) > max_length:
        return f"{label} must be at most {max_length} characters."
    if "\r" in value or "\n" in value:
        return f"{label} must be a single line."
    return None
