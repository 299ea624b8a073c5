"""Customer portal forms: a new ticket, a sign-in link request, the satisfaction survey (replies use
tickets.ReplyForm)."""
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional

from mets.models.csat import MAX_COMMENT

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


SCORE_LABELS = ((1, "1 – Very dissatisfied"), (2, "2 – Dissatisfied"), (3, "3 – Neutral"), (4, "4 – Satisfied"),
                (5, "5 – Very satisfied"))


class SurveyForm(FlaskForm):
    """The satisfaction survey: a score of 1-5 (the mail's link preselects one) and an optional comment."""
    score = RadioField("How satisfied are you with the help you received?",
                       choices=[(n, label) for n, label in SCORE_LABELS], coerce=int,
                       validators=[InputRequired("Pick a score from 1 to 5.")])
    comment = TextAreaField("Anything you would like to tell us? (optional)",
                            validators=[Optional(), Length(max=MAX_COMMENT)])
