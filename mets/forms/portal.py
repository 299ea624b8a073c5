"""Customer portal forms: a new ticket, a sign-in link request (replies use tickets.ReplyForm)."""
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from mets.forms import PRIORITY_CHOICES, body_field, coerce_id


class PortalTicketForm(FlaskForm):
    entity_id = SelectField("Team", coerce=coerce_id)
    subject = StringField("Subject", validators=[DataRequired(), Length(max=250)])
    body = body_field("How can we help?")
    priority = SelectField("Urgency", choices=PRIORITY_CHOICES, default="normal")
    # One of the chosen team's categories (templates/tickets/_category_field.html; the service checks it).
    category = StringField("Topic", validators=[Optional(), Length(max=80)])


class PortalLinkForm(FlaskForm):
    email = EmailField("Your email address", validators=[DataRequired(), Email(), Length(max=254)])
    next = HiddenField(validators=[Optional(), Length(max=500)])  # where the link lands; portal_auth.safe_next
