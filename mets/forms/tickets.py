"""Ticket forms: a reply (staff and portal), escalating by hand, a ticket opened by staff."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from mets.forms import PRIORITY_CHOICES, body_field, coerce_id, coerce_optional_id
from mets.services.validation import parse_int

STALE_FORM = "This page is out of date: reload it to see the ticket as it is now (your text is kept below)."


class VersionField(HiddenField):
    """The ticket version a form was loaded at: a number, or nothing (a client that does not say)."""

    def process_formdata(self, valuelist):
        raw = valuelist[0] if valuelist else ""
        if raw in ("", None):
            self.data = None
            return
        self.data = parse_int(raw, None, 0, 2**31 - 1)
        if self.data is None:
            raise ValueError(STALE_FORM)


class ReplyForm(FlaskForm):
    body = body_field("Reply", "Write something before sending.")
    internal = BooleanField("Internal note (customers never see it)")
    version = VersionField()
    macro_id = StringField(validators=[Optional(), Length(max=20)])  # the macro picked: its field changes apply


class EscalateForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired("Say why you escalate it."), Length(max=1000)])


class StaffTicketForm(FlaskForm):
    entity_id = SelectField("Entity", coerce=coerce_id)
    customer_email = EmailField("Customer email", validators=[DataRequired(), Email(), Length(max=254)])
    customer_name = StringField("Customer name", validators=[Optional(), Length(max=200)])
    subject = StringField("Subject", validators=[DataRequired(), Length(max=250)])
    body = body_field("Description")
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, default="normal")
    category = StringField("Category", validators=[Optional(), Length(max=80)])


class BulkForm(FlaskForm):
    """The list's bulk change: the tickets chosen (or all matching the list's filters) and what to set on them. The
    choices are checked by the service (services/tickets/bulk.py), which says what is wrong with each."""

    ids = SelectMultipleField("Tickets", validate_choice=False)
    scope = StringField("Which tickets", validators=[Optional(), Length(max=20)])
    set_status = StringField("Set status", validators=[Optional(), Length(max=20)])
    set_priority = StringField("Set priority", validators=[Optional(), Length(max=20)])
    set_assignee = StringField("Set assignee", validators=[Optional(), Length(max=20)])
    set_category = StringField("Set category", validators=[Optional(), Length(max=200)])


class SaveViewForm(FlaskForm):
    """Save the list's current filters (posted along) as a view; share_with: "" for oneself, or an entity id."""

    name = StringField("View name", validators=[DataRequired(message="Name the view."), Length(max=80)])
    share_with = SelectField("Share with", coerce=coerce_optional_id, validate_choice=False)
