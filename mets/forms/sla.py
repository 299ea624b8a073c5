"""The SLA rule form."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from mets.forms import PRIORITY_CHOICES, CheckboxesField, coerce_id
from mets.models import CLOCKS
from mets.models.tickets import STATUS_LABELS
from mets.services.sla.admin import PAUSABLE_STATUSES


class SlaRuleForm(FlaskForm):
    """Text in, as people type it; services.sla.admin parses it and names the field at fault."""

    entity_id = SelectField("Entity", coerce=coerce_id)
    name = StringField("Name", validators=[Length(max=200)])
    priority = SelectField("Priority", choices=[("", "Any priority"), *PRIORITY_CHOICES], default="")
    response = StringField("First response", validators=[Length(max=40)])
    next_reply = StringField("Next reply", validators=[Length(max=40)])
    resolution = StringField("Resolution", validators=[Length(max=40)])
    business_hours_only = BooleanField("Count business hours only (unticked: the clocks run 24/7)", default=True)
    warnings = StringField("Warnings", default="80%", validators=[Length(max=200)])
    pause_statuses = CheckboxesField("Pause the clocks while the ticket is",
                                     choices=[(s, STATUS_LABELS[s]) for s in PAUSABLE_STATUSES],
                                     default=["pending"])
    conditions = TextAreaField("Conditions")  # drawn by the condition builder, which keeps this one JSON field

    def data_for_service(self) -> dict:
        names = ("name", "priority", *CLOCKS, "business_hours_only", "warnings", "pause_statuses", "conditions")
        return {"entity_id": self.entity_id.data, **{n: self[n].data for n in names}}
