"""WTForms for every page form; the services do the domain checks and forms show their errors."""
from flask_wtf import FlaskForm

from wtforms import (BooleanField, EmailField, HiddenField, IntegerField, PasswordField, SelectField, StringField,
                     TextAreaField)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from mets.models import PRIORITIES, ROLES
from mets.services.tickets import BODY_TOO_LONG_MESSAGE, MAX_BODY
from mets.services.validation import parse_id


def body_field(label: str, required_message: str | None = None) -> TextAreaField:
    """A message body: required, at most the service's MAX_BODY characters (checked here first, so the form
    shows the error beside what was typed)."""
    return TextAreaField(label, validators=[DataRequired(message=required_message) if required_message else
                                            DataRequired(), Length(max=MAX_BODY, message=BODY_TOO_LONG_MESSAGE)])


def coerce_id(value):
    """SelectField coerce for database ids: an id, or ValueError (the field says "Not a valid choice").

    Never int(): it reads "٣" as 3 and passes 23-digit numbers on to overflow the database's INTEGER.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = parse_id(value)
    if number is None:
        raise ValueError("Not a valid choice.")
    return number


def coerce_optional_id(value):
    """Like coerce_id, with "" (and "None", how WTForms renders a None choice) meaning no choice."""
    return None if value in ("", None, "None") else coerce_id(value)


def show_errors(form: FlaskForm, errors: dict[str, str]) -> None:
    """Put a service's messages (a DomainError's `errors`) on the matching fields (the rest on the form)."""
    for name, message in errors.items():
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + [message]
        else:
            form.form_errors.append(message)


def status_for(form: FlaskForm) -> int:
    """422 for a submitted form shown again with errors, 200 for a first view."""
    return 422 if form.is_submitted() else 200


PRIORITY_CHOICES = [(p, p.capitalize()) for p in PRIORITIES]


class LoginForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in")


class ReplyForm(FlaskForm):
    body = body_field("Reply", "Write something before sending.")
    internal = BooleanField("Internal note (customers never see it)")


class StaffTicketForm(FlaskForm):
    entity_id = SelectField("Entity", coerce=coerce_id)
    customer_email = EmailField("Customer email", validators=[DataRequired(), Email(), Length(max=254)])
    customer_name = StringField("Customer name", validators=[Optional(), Length(max=200)])
    subject = StringField("Subject", validators=[DataRequired(), Length(max=250)])
    body = body_field("Description")
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, default="normal")
    category = StringField("Category", validators=[Optional(), Length(max=80)])


class PortalTicketForm(FlaskForm):
    entity_id = SelectField("Team", coerce=coerce_id)
    subject = StringField("Subject", validators=[DataRequired(), Length(max=250)])
    body = body_field("How can we help?")
    priority = SelectField("Urgency", choices=PRIORITY_CHOICES, default="normal")


class PortalLinkForm(FlaskForm):
    email = EmailField("Your email address", validators=[DataRequired(), Email(), Length(max=254)])
    next = HiddenField(validators=[Optional(), Length(max=500)])  # where the link lands; portal_auth.safe_next


class EntityForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    slug = StringField("Slug (ticket prefix)", validators=[Optional(), Length(max=40)])
    parent_id = SelectField("Parent", coerce=coerce_optional_id)
    timezone = StringField("Time zone", default="UTC", validators=[DataRequired(), Length(max=64)])
    sender_name = StringField("Sender name", validators=[Optional(), Length(max=200)])
    sender_email = StringField("Sender address", validators=[Optional(), Length(max=254)])
    active = BooleanField("Active", default=True)


class UserForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    kind = SelectField("Kind", choices=[("staff", "Staff"), ("customer", "Customer")], default="staff")
    password = PasswordField("Password", validators=[Optional()])
    is_admin = BooleanField("Administrator")
    active = BooleanField("Active", default=True)


class MembershipForm(FlaskForm):
    entity_id = SelectField("Entity", coerce=coerce_id)
    role = SelectField("Role", choices=[(r, r.capitalize()) for r in ROLES], default="agent")
    tier = IntegerField("Tier", default=1, validators=[NumberRange(min=1, max=9)])
    skills = StringField("Skills (comma separated)", validators=[Optional(), Length(max=400)])
