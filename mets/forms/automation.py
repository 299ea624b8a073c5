"""The automation rule form (the builder keeps conditions and actions in two JSON fields)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField

from mets.models import TRIGGERS
from mets.services.automation.admin import TRIGGER_LABELS

TRIGGER_CHOICES = [(t, TRIGGER_LABELS[t]) for t in TRIGGERS]


class RuleForm(FlaskForm):
    """Text in, as people type it; services.automation.admin checks it and names the field at fault."""

    name = StringField("Name")
    entity_id = SelectField("Entity", validate_choice=False)
    trigger_event = SelectField("When", choices=TRIGGER_CHOICES, validate_choice=False)
    stop_processing = BooleanField("Stop processing further rules when this one matches")
    is_active = BooleanField("Active (a rule runs only when switched on)")
    conditions = TextAreaField("Conditions")  # kept by the condition builder
    actions = TextAreaField("Actions")  # kept by the action sequencer (static/js/automation.js)

    def data_for_service(self) -> dict:
        return {n: self[n].data for n in ("name", "entity_id", "trigger_event", "stop_processing", "is_active",
                                          "conditions", "actions")}
