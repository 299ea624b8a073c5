"""Reading an API request: its JSON body and query string through a schema, the list's filters and cursor.
Each refusal is an HTTPException whose `errors` (field -> messages) mets.errors puts in the problem document."""
import base64
import binascii

from flask import request
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest, UnprocessableEntity, UnsupportedMediaType

from mets.models import User
from mets.services.directory import access, users
from mets.services.tickets.search import TicketFilters
from mets.services.validation import parse_id

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


def load_body(schema_class) -> dict:
    """The request's JSON body, validated: 415 when it is not JSON, 400 when it does not parse, 422 for its fields."""
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
    try:
        data = request.get_json()
    except BadRequest:
        raise BadRequest("The body is not valid JSON.") from None
    try:
        return schema_class().load(data)
    except ValidationError as exc:
        raise Invalid(_flat(exc.messages)) from None


def load_query(schema_class) -> dict:
    try:
        return schema_class().load(request.args.to_dict(flat=True))
    except ValidationError as exc:
        raise BadQuery(_flat(exc.messages)) from None


def encode_cursor(ticket_id: int | None) -> str | None:
    """Opaque to callers: they pass back what they were given (it may change shape in a later version)."""
    return None if ticket_id is None else base64.urlsafe_b64encode(f"t1:{ticket_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    kind, _, raw = text.partition(":")
    ticket_id = parse_id(raw) if kind == "t1" else None
    if ticket_id is None:
        raise BadQuery({"cursor": ["Not a cursor this API gave: pass next_cursor back as it is."]})
    return ticket_id


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
        entity = access.visible_entity(session, user, args["entity"])
        if entity is None:
            raise BadQuery({"entity": ["No entity you work in has this slug."]})
        f.entity_id = entity.id
    assignee = args.get("assignee")
    if assignee in ("mine", "unassigned"):
        f.assignee = assignee
    elif assignee:
        try:
            f.assignee = str(staff_by_email(session, assignee).id)
        except Invalid:
            raise BadQuery({"assignee": ["mine, unassigned, or the email of a staff member."]}) from None
    return f
