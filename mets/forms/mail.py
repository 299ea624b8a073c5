"""Mail forms: the test email, one notification event's row, an email template's editor."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import Length

from mets.forms import CheckboxesField
from mets.services.notifications.templates import Source


class TestEmailForm(FlaskForm):
    address = StringField("Send a test email to", validators=[Length(max=254)])


class NotificationForm(FlaskForm):
    """One event's row; the event key is the prefix, so seven rows share a page without clashing."""

    enabled = BooleanField("On")
    recipients = CheckboxesField("Recipients")
    extra_addresses = TextAreaField("Extra addresses", validators=[Length(max=5000)])


class TemplateForm(FlaskForm):
    """The three sources as typed (services.notifications.templates checks them) and the preview's ticket."""

    subject = StringField("Subject")
    body_text = TextAreaField("Text part")
    body_html = TextAreaField("HTML part")
    ticket = StringField("Preview with ticket", validators=[Length(max=60)])  # never saved

    def source(self) -> Source:
        return Source(self.subject.data or "", self.body_text.data or "", self.body_html.data or "")
