"""WTForms for every page form, one module per domain (auth, tickets, portal, admin, hours, sla, automation,
mail; rules: the condition builder's view); the services do the domain checks and the forms show their errors.
Here: what the modules share."""
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, TextAreaField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from mets.models import PRIORITIES
from mets.services.tickets import BODY_TOO_LONG_MESSAGE, MAX_BODY
from mets.services.validation import parse_id

PRIORITY_CHOICES = [(p, p.capitalize()) for p in PRIORITIES]


def body_field(label: str, required_message: str | None = None) -> TextAreaField:
    """A message body: required, at most the service's MAX_BODY characters (checked here first, so the form
    shows the error beside what was typed)."""
    return TextAreaField(label, validators=[DataRequired(message=required_message) if required_message else
                                            DataRequired(), Length(max=MAX_BODY, message=BODY_TOO_LONG_MESSAGE)])


class CheckboxesField(SelectMultipleField):
    """A multiple choice drawn as a list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


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


def entity_label(entity, depth: int) -> str:
    """An entity's name indented by its depth in the tree: how every entity choice reads (forms and, as the Jinja
    global of that name, templates/_macros.html's entity_options)."""
    return "\u00a0\u00a0" * depth + entity.name


def entity_choices(tree, skip=frozenset()) -> list[tuple[int, str]]:
    """(id, indented name) for each (entity, depth) of `tree` (`entities.entity_tree`) but those in `skip`."""
    return [(e.id, entity_label(e, depth)) for e, depth in tree if e.id not in skip]


def category_choices(names, current: str, blank: str) -> list[tuple[str, str]]:
    """An entity's categories as choices after `blank`, plus `current` if it is no longer on the list
    (a ticket or macro keeps the category it had)."""
    kept = [(current, f"{current} (not in the list)")] if current and current not in names else []
    return [("", blank), *((n, n) for n in names), *kept]


def status_for(form: FlaskForm) -> int:
    """422 for a submitted form shown again with errors, 200 for a first view."""
    return 422 if form.is_submitted() else 200
