"""Reading an API request: its JSON body and query string through a schema, the list's filters and cursor.
Each refusal is an HTTPException whose `errors` (field -> messages) mets.errors puts in the problem document."""
import re
from functools import cache

from flask import request
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest, NotFound, UnprocessableEntity, UnsupportedMediaType

from mets.api.schemas import CURSOR_PATTERN
from mets.models import User
from mets.services.directory import access, users
from mets.services.tickets.search import TicketFilters
from mets.services.validation import MAX_ID

# A service's DomainError names the web form's fields; the API's are named as its schemas name them.
FIELD_NAMES = {"entity_id": "entity", "assignee_id": "assignee", "customer_email": "customer.email", "": "_schema"}


class Invalid(UnprocessableEntity):
    """422: the body parsed but its fields are refused (`errors`)."""

    def __init__(self, errors: dict, description: str = "Some fields are not valid: see errors."):
        super().__init__(description)
        self.errors = errors


class BadQuery(BadRequest):
    def __init__(self, errors: dict):
        super().__init__("Some query parameters are not valid: see errors.")
        self.errors = errors


def _flat(messages, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as `field.sub` -> [message, ...]."""
    if isinstance(messages, list):
        return {prefix or "_schema": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def service_errors(errors: dict[str, str]) -> dict[str, list[str]]:
    return {FIELD_NAMES.get(name, name): [message] for name, message in errors.items()}


@cache
def _schema(schema_class):
    """One instance of each schema (loading changes nothing in it; making one per request cost more than loading)."""
    return schema_class()


def load_body(schema_class) -> dict:
    """The request's JSON body, validated: 415 when it is not JSON, 400 when it does not parse, 422 for its fields."""
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
    try:
        data = request.get_json()
    except BadRequest:
        raise BadRequest("The body is not valid JSON.") from None
    try:
        return _schema(schema_class).load(data)
    except ValidationError as exc:
        raise Invalid(_flat(exc.messages)) from None


def load_query(schema_class) -> dict:
    try:
        return _schema(schema_class).load(request.args.to_dict(flat=True))
    except ValidationError as exc:
        raise BadQuery(_flat(exc.messages)) from None


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def encode_cursor(ticket_id: int | None) -> str | None:
    """The id to continue below, in base 36 after a "c". Opaque to callers (they pass back what they were given;
    it may change shape in a later version), and short: every id up to MAX_ID fits in six characters, so the
    document's pattern accepts exactly the cursors that decode."""
    if ticket_id is None:
        return None
    text = ""
    while True:
        ticket_id, digit = divmod(ticket_id, 36)
        text = _DIGITS[digit] + text
        if not ticket_id:
            return "c" + text


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise BadQuery({"cursor": ["Not a cursor this API gave: pass next_cursor back as it is."]})
    # Base 36 is the cursor's own notation (not a number people type: services.validation reads those); a value
    # past the largest id continues from the top, as the first page does.
    return min(int(cursor[1:], 36), MAX_ID + 1)


def staff_by_email(session, email: str) -> User:
    user = users.find_by_email(session, email)
    if user is None or not user.is_staff:
        raise Invalid({"assignee": ["No staff member has this email."]})
    return user


def ticket_filters(session, user: User, args: dict) -> TicketFilters:
    """The web list's filters from the API's query (already validated): an entity by slug, an assignee by email."""
    f = TicketFilters(status=args["status"], priority=args.get("priority", ""), q=args.get("q", "").strip(),
                      sla=args.get("sla", ""), escalation=args.get("escalation", ""))
    if "entity" in args:
        f.entity_id = entity_named(session, user, args["entity"]).id
    assignee = args.get("assignee")
    if assignee in ("mine", "unassigned"):
        f.assignee = assignee
    elif assignee:
        # Anyone else's address is simply assigned nothing (the filter matches no ticket), as on the web list.
        found = users.find_by_email(session, assignee)
        f.assignee = str(found.id) if found is not None and found.is_staff else NOBODY
    return f


NOBODY = "-1"  # an assignee id no user has


def entity_named(session, user: User, slug: str):
    """An entity the user works in, by slug; else a 404, as for a ticket they may not see (the same words for one
    that does not exist and one of another entity)."""
    entity = access.visible_entity(session, user, slug)
    if entity is None:
        raise NotFound("No entity you work in has this slug.")
    return entity
