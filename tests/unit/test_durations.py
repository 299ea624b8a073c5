"""services.durations: "4h 30m" and friends to minutes and back."""
import pytest

from mets.services.durations import format_minutes, parse_duration


@pytest.mark.parametrize("text, minutes", [
    ("4h 30m", 270), ("4h30m", 270), ("90m", 90), ("2d 4h", 52 * 60), ("1h", 60), ("90", 90), (" 1H ", 60),
    ("1.5h", 90), ("1,5h", 90), ("2 days 3 hours 5 minutes", 2 * 1440 + 185), ("4h, 30m", 270), ("45 min", 45),
    ("365d", 365 * 1440),
])
def test_parse_duration(text, minutes):
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text, message", [
    ("", 'Enter a duration. Write it like "4h 30m", "90m" or "2d 4h".'),
    (None, 'Enter a duration. Write it like "4h 30m", "90m" or "2d 4h".'),
    ("soon", 'Cannot read "soon" as a duration. Write it like "4h 30m", "90m" or "2d 4h".'),
    ("4h 30", 'Cannot read "4h 30" as a duration. Write it like "4h 30m", "90m" or "2d 4h".'),
    ("-4h", 'Cannot read "-4h" as a duration. Write it like "4h 30m", "90m" or "2d 4h".'),
    ("4w", 'Unknown unit "w" in "4w": use d, h or m.'),
    ("1h 2h", '"1h 2h" gives the hours twice.'),
    ("0h", "A duration must be longer than 0 minutes."),
    ("0", "A duration must be longer than 0 minutes."),
    ("0.5m", '"0.5m" is not a whole number of minutes.'),
    ("366d", "A duration can be at most 365 days."),
])
def test_parse_duration_refuses_with_a_clear_message(text, message):
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == message


@pytest.mark.parametrize("minutes, text", [(270, "4h 30m"), (90, "1h 30m"), (60, "1h"), (45, "45m"), (0, "0m"),
                                           (1440, "1d"), (52 * 60, "2d 4h"), (1441, "1d 1m"), (-90, "-1h 30m")])
def test_format_minutes(minutes, text):
    assert format_minutes(minutes) == text
    if minutes > 0:
        assert parse_duration(text) == minutes
