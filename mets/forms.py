"""WTForms for every page form; the services do the domain checks and forms show their errors."""
from flask_wtf import FlaskForm

from mets.extensions import db
from wtforms import BooleanField, EmailField, HiddenField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from mets.models import PRIORITIES, ROLES
from mets.services.errors import DomainError


def show_errors(form: FlaskForm, exc: DomainError) -> None:
    """Put a service's messages on the matching fields (the rest on the form)."""
    for name, message in exc.errors.items():
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + [message]
        else:
            form.form_errors.append(message)


def commit_call(action) -> tuple[bool, object, DomainError | None]:
    """Run `action()` (one service call) and commit: (True, its result, None); when the service
    refuses the input, roll back: (False, None, the DomainError)."""
    try:
        result = action()
        db.session.commit()
        return True, result, None
    except DomainError as exc:
        db.session.rollback()
        return False, None, exc


def submit(form: FlaskForm, action):
    """Validate `form`, run `action()` and commit.

    Returns what the action returned, or None when the form or the service refused the input:
    then the session is rolled back and the messages sit on the form's fields.
    """
    if not form.validate_on_submit():
        return None
    _, result, refusal = commit_call(action)
    if refusal is not None:
        show_errors(form, refusal)
    return result


def status_for(form: FlaskForm) -> int:
    """422 for a submitted form shown again with errors, 200 for a first view."""
    return 422 if form.is_submitted() else 200


PRIORITY_CHOICES = [(p, p.capitalize()) for p in PRIORITIES]


class LoginForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in")


class ReplyForm(FlaskForm):
    body = TextAreaField("Reply", validators=[DataRequired(message="Write something before sending.")])
    internal = BooleanField("Internal note (customers never see it)")


class StaffTicketForm(FlaskForm):
    entity_id = SelectField("Entity", coerce=int)
    customer_email = EmailField("Customer email", validators=[DataRequired(), Email(), Length(max=254)])
    customer_name = StringField("Customer name", validators=[Optional(), Length(max=200)])
    subject = StringField("Subject", validators=[DataRequired(), Length(max=250)])
    body = TextAreaField("Description", validators=[DataRequired()])
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, default="normal")
    category = StringField("Category", validators=[Optional(), Length(max=80)])


class PortalTicketForm(FlaskForm):
    entity_id = SelectField("Team", coerce=int)
    subject = StringField("Subject", validators=[DataRequired(), Length(max=250)])
    body = TextAreaField("How can we help?", validators=[DataRequired()])
    priority = SelectField("Urgency", choices=PRIORITY_CHOICES, default="normal")


class PortalLinkForm(FlaskForm):
    email = EmailField("Your email address", validators=[DataRequired(), Email(), Length(max=254)])
    next = HiddenField()


class EntityForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    slug = StringField("Slug (ticket prefix)", validators=[Optional(), Length(max=40)])
    parent_id = SelectField("Parent", coerce=lambda v: int(v) if v not in ("", None, "None") else None)
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
    entity_id = SelectField("Entity", coerce=int)
    role = SelectField("Role", choices=[(r, r.capitalize()) for r in ROLES], default="agent")
    tier = IntegerField("Tier", default=1, validators=[NumberRange(min=1, max=9)])
    skills = StringField("Skills (comma separated)", validators=[Optional(), Length(max=400)])
