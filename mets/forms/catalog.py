"""Catalogue forms: an entity's ticket categories, its canned replies (macros)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from mets.forms import PRIORITY_CHOICES, coerce_optional_id
from mets.models.tickets import STATUS_LABELS
from mets.services.macros import MACRO_STATUSES
from mets.services.notifications.templates import MAX_SOURCE


class CategoryForm(FlaskForm):
    name = StringField("Category", validators=[DataRequired(), Length(max=80)])
    active = BooleanField("Offered", default=True)


class MacroForm(FlaskForm):
    """A canned reply; the route fills the choices (the entity's members and categories)."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    body = TextAreaField("Reply text", validators=[DataRequired(), Length(max=MAX_SOURCE)])
    status = SelectField("Then set status",
                         choices=[("", "— leave —"), *((s, STATUS_LABELS[s]) for s in MACRO_STATUSES)],
                         validate_choice=False)  # the service says what is wrong; left out means leave
    priority = SelectField("Then set priority", choices=[("", "— leave —"), *PRIORITY_CHOICES], validate_choice=False)
    assignee_id = SelectField("Then assign to", coerce=coerce_optional_id)
    category = SelectField("Then set category", validate_choice=False)

    def data_for_service(self) -> dict:
        return {n: self[n].data for n in ("name", "body", "status", "priority", "assignee_id", "category")}
