"""Admin forms: entities, users, memberships."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from mets.forms import coerce_id, coerce_optional_id
from mets.models import ROLES


class EntityForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    slug = StringField("Slug (ticket prefix)", validators=[Optional(), Length(max=40)])
    parent_id = SelectField("Parent", coerce=coerce_optional_id)
    timezone = StringField("Time zone", default="UTC", validators=[DataRequired(), Length(max=64)])
    sender_name = StringField("Sender name", validators=[Optional(), Length(max=200)])
    sender_email = StringField("Sender address", validators=[Optional(), Length(max=254)])
    active = BooleanField("Active", default=True)
    portal_enabled = BooleanField("Takes portal requests", default=True)
    portal_default = BooleanField("The portal's default team (preselected for new requests)")

    def data_for_service(self) -> dict:
        return {"name": self.name.data, "slug": self.slug.data, "parent_id": self.parent_id.data,
                "timezone": (self.timezone.data or "").strip(), "sender_name": self.sender_name.data,
                "sender_email": self.sender_email.data, "active": self.active.data,
                "portal_enabled": self.portal_enabled.data, "portal_default": self.portal_default.data}


class UserForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    kind = SelectField("Kind", choices=[("staff", "Staff"), ("customer", "Customer")], default="staff")
    password = PasswordField("Password", validators=[Optional()])
    is_admin = BooleanField("Administrator")
    active = BooleanField("Active", default=True)

    def data_for_service(self) -> dict:
        return {n: self[n].data for n in ("name", "email", "kind", "password", "is_admin", "active")}


class MembershipForm(FlaskForm):
    entity_id = SelectField("Entity", coerce=coerce_id)
    role = SelectField("Role", choices=[(r, r.capitalize()) for r in ROLES], default="agent")
    tier = IntegerField("Tier", default=1, validators=[NumberRange(min=1, max=9)])
    skills = StringField("Skills (comma separated)", validators=[Optional(), Length(max=400)])
