"""Small validators shared by the services."""
import re
from functools import lru_cache
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# ASCII digits only: "²".isdigit() is True but int("²") fails, and int("١٢") reads Arabic-Indic digits.
_INT_RE = re.compile(r"-?[0-9]{1,19}", re.ASCII)
# The largest id (and page) any request may name: PostgreSQL's INTEGER. A larger number overflows the
# column type in the query (a 500) instead of simply finding nothing.
MAX_ID = 2**31 - 1


def parse_int(value, default=None, min_value: int = 1, max_value: int = MAX_ID):
    """`value` (a str from a request, or an int) as an int within [min_value, max_value], else `default`.

    The one parser for numbers that come from requests: junk, other scripts' digits, signs where
    none belong and numbers too large for the database all give `default`, never an exception.
    """
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return default
    return number if min_value <= number <= max_value else default


def parse_id(value):
    """A database id from a request (1 to MAX_ID), or None."""
    return parse_int(value)


@lru_cache(maxsize=1)
def timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def normalize_email(value: str | None) -> str:
    """Lower-cased and trimmed; the one form stored and compared."""
    return (value or "").strip().lower()


@lru_cache(maxsize=4096)  # a pure check, and costly (0.2 ms): the tick queues thousands of mails to a few people
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
