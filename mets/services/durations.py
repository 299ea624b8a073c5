"""Durations as people type them ("4h 30m", "90m", "2d 4h") and as the UI shows them.

Targets are stored in whole minutes. A day is 24 hours ("1d" == "24h"): on a Mon-Fri 09-17
calendar a 1d business-time target therefore spans three working days, so forms should say so.
"""
import re

MAX_MINUTES = 365 * 24 * 60  # a year: far past any sensible target, and clear of overflow

_UNITS = {"d": 24 * 60, "day": 24 * 60, "days": 24 * 60,
          "h": 60, "hr": 60, "hrs": 60, "hour": 60, "hours": 60,
          "m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1}
_PART = re.compile(r"(\d+(?:[.,]\d+)?)\s*([a-z]+)")
_EXAMPLES = 'Write it like "4h 30m", "90m" or "2d 4h".'


def parse_duration(text: str) -> int:
    """Minutes in a duration such as "4h 30m", "90m", "2d 4h", "1.5h" or a bare "90" (minutes)."""
    if text is None or not str(text).strip():
        raise ValueError(f"Enter a duration. {_EXAMPLES}")
    raw = str(text).strip().lower()
    if re.fullmatch(r"\d+", raw):
        minutes = int(raw)
    else:
        minutes_f = 0.0
        seen: set[int] = set()
        pos = 0
        compact = raw.replace(",", ".") if re.search(r"\d,\d", raw) else raw
        for match in _PART.finditer(compact):
            if compact[pos:match.start()].strip(" ,+"):
                raise ValueError(f"Cannot read \"{text}\" as a duration. {_EXAMPLES}")
            number, unit = match.groups()
            if unit not in _UNITS:
                raise ValueError(f"Unknown unit \"{unit}\" in \"{text}\": use d, h or m.")
            size = _UNITS[unit]
            if size in seen:
                raise ValueError(f"\"{text}\" gives the {_unit_name(size)} twice.")
            seen.add(size)
            minutes_f += float(number.replace(",", ".")) * size
            pos = match.end()
        if not seen or compact[pos:].strip(" ,+"):
            raise ValueError(f"Cannot read \"{text}\" as a duration. {_EXAMPLES}")
        if abs(minutes_f - round(minutes_f)) > 1e-9:
            raise ValueError(f"\"{text}\" is not a whole number of minutes.")
        minutes = round(minutes_f)
    if minutes <= 0:
        raise ValueError("A duration must be longer than 0 minutes.")
    if minutes > MAX_MINUTES:
        raise ValueError("A duration can be at most 365 days.")
    return minutes


def _unit_name(size: int) -> str:
    return {24 * 60: "days", 60: "hours", 1: "minutes"}[size]


def format_minutes(minutes: int) -> str:
    """A whole number of minutes as "2d 4h 30m" (largest units first, zero parts left out; 0 -> "0m")."""
    if minutes is None:
        return ""
    minutes = int(minutes)
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "m")) if n]
    return sign + (" ".join(parts) if parts else "0m")
