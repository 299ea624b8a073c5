"""Forms of the business-hours page. Fields are text: services.hours.admin parses them and names the field at fault."""
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional


class IntervalForm(FlaskForm):
    """One weekday's "add interval" form; its prefix is the weekday ("d0-start") so seven can share a page."""

    start = StringField("From", validators=[Optional(), Length(max=8)])
    end = StringField("To", validators=[Optional(), Length(max=8)])


class HolidayForm(FlaskForm):
    date = StringField("Date", validators=[Optional(), Length(max=10)])
    name = StringField("Name", validators=[Optional(), Length(max=200)])


class HolidayImportForm(FlaskForm):
    country = StringField("Country", validators=[Optional(), Length(max=10)])
    year = StringField("Year", validators=[Optional(), Length(max=4)])


class ExceptionForm(FlaskForm):
    date = StringField("Date", validators=[Optional(), Length(max=10)])
    start = StringField("From", validators=[Optional(), Length(max=8)])
    end = StringField("To", validators=[Optional(), Length(max=8)])
    note = StringField("Note", validators=[Optional(), Length(max=200)])


class TimezoneForm(FlaskForm):
    timezone = StringField("Time zone", validators=[Optional(), Length(max=64)])


class PreviewForm(FlaskForm):
    """Read-only (GET), so no CSRF token."""

    class Meta:
        csrf = False

    created_at = StringField("Created at", validators=[Optional(), Length(max=32)])
    target = StringField("Target", validators=[Optional(), Length(max=40)])
