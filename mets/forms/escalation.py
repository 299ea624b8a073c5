"""The escalation policy form, and its level rows read back (each row's inputs are named lv-<row id>-<what>; the
rows come in the order the page shows them, so a drag or an up/down move is simply the order they are sent in)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from mets.forms import coerce_id
from mets.models import POLICY_CLOCKS
from mets.models.escalation import TRIGGERS
from mets.services.escalation.admin import LEVEL_ROW, MAX_LEVELS
from mets.services.escalation.policies import CLOCK_LABELS, TRIGGER_LABELS

CLOCK_CHOICES = [(c, CLOCK_LABELS[c][:1].upper() + CLOCK_LABELS[c][1:]) for c in POLICY_CLOCKS]
TRIGGER_CHOICES = [(t, TRIGGER_LABELS[t]) for t in TRIGGERS]


class PolicyForm(FlaskForm):
    """Text in, as people type it; services.escalation.admin checks it and names the field at fault."""

    name = StringField("Name", validators=[Length(max=200)])
    entity_id = SelectField("Entity", coerce=coerce_id)
    clock = SelectField("Clock it watches", choices=CLOCK_CHOICES, validate_choice=False)
    business_time = BooleanField("Count business hours only (unticked: the clock runs 24/7)", default=True)
    is_active = BooleanField("Active", default=True)
    position = StringField("Order among the entity's policies", validators=[Length(max=10)])
    conditions = TextAreaField("Conditions")  # kept by the condition builder

    def data_for_service(self) -> dict:
        return {n: self[n].data for n in ("name", "clock", "business_time", "is_active", "position", "conditions")}


def levels_from_form(formdata) -> list[dict]:
    """The level rows as sent (`level_row` ids in page order): trigger, value and actions (JSON) as typed."""
    out, seen = [], set()
    for row in formdata.getlist("level_row"):
        if not LEVEL_ROW.match(row) or row in seen:
            continue
        seen.add(row)
        field = f"lv-{row}-"
        out.append({"row": row, "id": formdata.get(field + "id", ""), "trigger": formdata.get(field + "trigger", ""),
                    "value": formdata.get(field + "value", "")[:20], "actions": formdata.get(field + "actions", "")})
        if len(out) > MAX_LEVELS + 5:
            break
    return out
