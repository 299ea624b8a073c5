"""Ticket forms: a reply (staff and portal), a ticket opened by staff."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from mets.forms import PRIORITY_CHOICES, body_field, coerce_id
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


class StaffTicketForm(FlaskForm):
    entity_id = SelectField("Entity", coerce=coerce_id)
    customer_email = EmailField("Customer email", validators=[DataRequired(), Email(), Length(max=254)])
    customer_name = StringField("Customer name", validators=[Optional(), Length(max=200)])
    subject = StringField("Subject", validators=[DataRequired(), Length(max=250)])
    body = body_field("Description")
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, default="normal")
    category = StringField("Category", validators=[Optional(), Length(max=80)])
