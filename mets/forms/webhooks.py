"""The webhook endpoint form: URL, description, the event types it subscribes to. (The verbs, enable, disable,
rotate, test, replay and delete, are buttons whose POST carries only the CSRF token, which CSRFProtect checks.)"""
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length

from mets.forms import CheckboxesField
from mets.services.outbox.http import MAX_URL
from mets.services.webhooks.endpoints import MAX_DESCRIPTION
from mets.services.webhooks.types import EVENT_TYPES


class EndpointForm(FlaskForm):
    """The service checks the URL and the types (a refusal lands on the field), so the form only bounds sizes."""

    url = StringField("URL", validators=[Length(max=MAX_URL)])
    description = StringField("Description", validators=[Length(max=MAX_DESCRIPTION)])
    event_types = CheckboxesField("Events", choices=[(name, f"{name}: {label}") for name, label in EVENT_TYPES.items()],
                                  validate_choice=False)

    def data_for_service(self) -> dict:
        return {"url": self.url.data, "description": self.description.data, "event_types": self.event_types.data}
