"""The API's schemas (marshmallow): the request bodies and query strings it validates (unknown fields refused,
each problem a message under its field) and the shapes it answers, which the OpenAPI document describes.

The output schemas describe what `services.tickets.payload` (tickets, replies, SLA) and the read-only endpoints
produce; schemathesis checks every answer against them, so they cannot drift from the code unnoticed.
"""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from mets.models import PRIORITIES, STATUSES
from mets.services.tickets.search import ESCALATION_FILTERS, MAX_FEED, SLA_FILTERS, STATUS_FILTERS
from mets.services.validation import parse_int

CURSOR_PATTERN = r"^c[0-9a-z]{1,6}$"  # mets.api.requests.encode_cursor
INSTANT = {"format": "date-time", "description": "UTC, ISO 8601 with Z"}


class Number(fields.Integer):
    """A whole number in [min_value, max_value], read by the one parser of request numbers
    (`services.validation.parse_int`: ASCII digits only, never a float or a bool); anything else is this field's
    error. An Integer to apispec, with its range, so the document says what the parser takes."""

    def __init__(self, min_value: int, max_value: int, **kwargs):
        super().__init__(validate=validate.Range(min_value, max_value), **kwargs)
        self.bounds = (min_value, max_value)

    def _deserialize(self, value, attr, data, **kwargs):
        number = parse_int(value, None, *self.bounds)
        if number is None:
            raise ValidationError(f"A whole number from {self.bounds[0]} to {self.bounds[1]}.")
        return number


class Strict(Schema):
    class Meta:
        unknown = RAISE  # a misspelt field is an error the caller sees, never silently ignored


# --- input ------------------------------------------------------------------------------------------------

class TicketQuery(Strict):
    """The ticket list's filters (as the web list's), and the page."""

    status = fields.String(validate=validate.OneOf(STATUS_FILTERS), load_default="active",
                           metadata={"description": "active (default: not resolved or closed), a status, or all"})
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    entity = fields.String(validate=validate.Length(min=1, max=80), metadata={"description": "an entity's slug"})
    assignee = fields.String(validate=validate.Length(min=1, max=254),
                             metadata={"description": "mine, unassigned, or a staff member's email"})
    sla = fields.String(validate=validate.OneOf(tuple(SLA_FILTERS)),
                        metadata={"description": "breached: a running clock is past due; due_1h, due_4h"})
    escalation = fields.String(validate=validate.OneOf(tuple(ESCALATION_FILTERS)))
    q = fields.String(validate=validate.Length(max=100), metadata={"description": "text search"})
    limit = Number(1, MAX_FEED, load_default=25)
    cursor = fields.String(validate=validate.Regexp(CURSOR_PATTERN),
                           metadata={"description": "next_cursor of the previous page (opaque)"})


class ExportQuery(TicketQuery):
    class Meta:
        exclude = ("limit", "cursor")


class MetricsQuery(Strict):
    from_ = fields.Date(data_key="from", metadata={"description": "first UTC day (default: 30 days before `to`)"})
    to = fields.Date(metadata={"description": "last UTC day (default: today)"})
    entity = fields.String(validate=validate.Length(min=1, max=80), metadata={"description": "an entity's slug"})
    priority = fields.String(validate=validate.OneOf(PRIORITIES))


class CustomerIn(Strict):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(validate=validate.Length(max=200), load_default="")


class TicketCreate(Strict):
    entity = fields.String(required=True, validate=validate.Length(min=1, max=80),
                           metadata={"description": "the slug of an entity you work in"})
    customer = fields.Nested(CustomerIn, required=True)
    subject = fields.String(required=True, validate=validate.Length(min=1, max=250))
    body = fields.String(required=True, validate=validate.Length(min=1, max=50_000))
    priority = fields.String(validate=validate.OneOf(PRIORITIES), load_default="normal")
    category = fields.String(allow_none=True, validate=validate.Length(max=100), load_default=None)


class ReplyCreate(Strict):
    body = fields.String(required=True, validate=validate.Length(min=1, max=50_000))
    internal = fields.Boolean(load_default=False, metadata={"description": "an internal note, never sent"})


class TicketPatch(Strict):
    subject = fields.String(validate=validate.Length(min=1, max=250))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    category = fields.String(allow_none=True, validate=validate.Length(max=100))
    entity = fields.String(validate=validate.Length(min=1, max=80), metadata={"description": "move to this entity"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    assignee = fields.Email(allow_none=True, metadata={"description": "a staff member's email; null unassigns"})

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one field to change.")


# --- output -----------------------------------------------------------------------------------------------

class Person(Schema):
    email = fields.String(required=True)
    name = fields.String(required=True)


class Sla(Schema):
    rule = fields.String(required=True, allow_none=True)
    response_due = fields.String(required=True, allow_none=True, metadata=INSTANT)
    next_reply_due = fields.String(required=True, allow_none=True, metadata=INSTANT)
    resolution_due = fields.String(required=True, allow_none=True, metadata=INSTANT)
    response_breached = fields.Boolean(required=True)
    next_reply_breached = fields.Boolean(required=True)
    resolution_breached = fields.Boolean(required=True)
    nearest_due = fields.String(required=True, allow_none=True, metadata=INSTANT)
    first_response_at = fields.String(required=True, allow_none=True, metadata=INSTANT)


class TicketOut(Schema):
    number = fields.String(required=True)
    entity = fields.String(required=True)
    subject = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    priority = fields.String(required=True, validate=validate.OneOf(PRIORITIES))
    category = fields.String(required=True, allow_none=True)
    customer = fields.Nested(Person, required=True, allow_none=True)
    assignee = fields.Nested(Person, required=True, allow_none=True)
    escalation_level = fields.Integer(required=True)
    created_at = fields.String(required=True, metadata=INSTANT)
    updated_at = fields.String(required=True, allow_none=True, metadata=INSTANT)
    resolved_at = fields.String(required=True, allow_none=True, metadata=INSTANT)
    sla = fields.Nested(Sla, required=True)


class TicketPageOut(Schema):
    items = fields.List(fields.Nested(TicketOut), required=True)
    next_cursor = fields.String(required=True, allow_none=True,
                                metadata={"description": "pass as `cursor` for the next page; null: the last page"})


class ReplyOut(Schema):
    id = fields.Integer(required=True)
    ticket = fields.String(required=True)
    author = fields.Nested(Person, required=True, allow_none=True)
    internal = fields.Boolean(required=True)
    via = fields.String(required=True)
    body = fields.String(required=True)
    body_format = fields.String(required=True)
    created_at = fields.String(required=True, metadata=INSTANT)


class RepliesOut(Schema):
    items = fields.List(fields.Nested(ReplyOut), required=True)


class ChangesOut(Schema):
    ticket = fields.Nested(TicketOut, required=True)
    events = fields.List(fields.String(), required=True, metadata={"description": "the ticket events written"})


class ClockOut(Schema):
    name = fields.String(required=True)
    target_minutes = fields.Float(required=True)
    started_at = fields.String(required=True, metadata=INSTANT)
    due = fields.String(required=True, allow_none=True, metadata=INSTANT)
    stopped_at = fields.String(required=True, allow_none=True, metadata=INSTANT)
    business_minutes_used = fields.Float(required=True)
    state = fields.String(required=True, validate=validate.OneOf(("running", "paused", "met", "breached")))


class SlaStatusOut(Sla):
    ticket = fields.String(required=True)
    clocks = fields.List(fields.Nested(ClockOut), required=True)


class SlaRuleOut(Schema):
    id = fields.Integer(required=True)
    entity = fields.Function(lambda r: r.entity.slug, required=True, metadata={"type": "string"})
    name = fields.String(required=True)
    priority = fields.String(required=True, allow_none=True)
    response_minutes = fields.Integer(required=True, allow_none=True)
    next_reply_minutes = fields.Integer(required=True, allow_none=True)
    resolution_minutes = fields.Integer(required=True, allow_none=True)
    business_hours_only = fields.Boolean(required=True)
    conditions = fields.Raw(required=True, allow_none=True, metadata={"description": "the rule language (JSON)"})
    warnings = fields.List(fields.Raw(), required=True)
    pause_statuses = fields.List(fields.String(), required=True)
    position = fields.Integer(required=True)
    active = fields.Boolean(required=True, attribute="is_active")


class SlaRulesOut(Schema):
    items = fields.List(fields.Nested(SlaRuleOut), required=True)


class IntervalOut(Schema):
    weekday = fields.Integer(required=True, metadata={"description": "Monday=0 .. Sunday=6"})
    start = fields.String(required=True, metadata={"description": "local HH:MM"})
    end = fields.String(required=True, metadata={"description": "local HH:MM; at or before start: past midnight"})


class HolidayOut(Schema):
    date = fields.Date(required=True)
    name = fields.String(required=True)


class HoursExceptionOut(Schema):
    date = fields.Date(required=True)
    start = fields.Function(lambda r: r.start_time.strftime("%H:%M") if r.start_time else None, required=True,
                            allow_none=True, metadata={"type": ["string", "null"], "description": "null: closed"})
    end = fields.Function(lambda r: r.end_time.strftime("%H:%M") if r.end_time else None, required=True,
                          allow_none=True, metadata={"type": ["string", "null"]})
    note = fields.String(required=True, allow_none=True)


class HoursOut(Schema):
    entity = fields.Function(lambda v: v.entity.slug, required=True, metadata={"type": "string"})
    follows = fields.Function(lambda v: v.source.slug, required=True, metadata={
        "type": "string", "description": "the entity whose hours apply (itself, or one above it)"})
    timezone = fields.Function(lambda v: v.source.timezone, required=True, metadata={"type": "string"})
    weekly = fields.Function(lambda v: [{"weekday": day, "start": s.strftime("%H:%M"), "end": e.strftime("%H:%M")}
                                        for day, pairs in sorted(v.weekly.items()) for s, e in pairs],
                             required=True,
                             metadata={"type": "array", "items": {"$ref": "#/components/schemas/Interval"}})
    holidays = fields.List(fields.Nested(HolidayOut), required=True)
    exceptions = fields.List(fields.Nested(HoursExceptionOut), required=True)


class HoursListOut(Schema):
    items = fields.List(fields.Nested(HoursOut), required=True)


class LevelOut(Schema):
    level = fields.Function(lambda lv: lv.policy.levels.index(lv) + 1, required=True, metadata={"type": "integer"})
    trigger = fields.String(required=True)
    value = fields.Integer(required=True)
    actions = fields.List(fields.Raw(), required=True)


class PolicyOut(Schema):
    id = fields.Integer(required=True)
    entity = fields.Function(lambda p: p.entity.slug, required=True, metadata={"type": "string"})
    name = fields.String(required=True)
    clock = fields.String(required=True)
    business_time = fields.Boolean(required=True)
    active = fields.Boolean(required=True, attribute="is_active")
    position = fields.Integer(required=True)
    conditions = fields.Raw(required=True, allow_none=True)
    levels = fields.List(fields.Nested(LevelOut), required=True)


class PoliciesOut(Schema):
    items = fields.List(fields.Nested(PolicyOut), required=True)


class DistributionOut(Schema):
    count = fields.Integer(required=True)
    median = fields.Float(required=True, allow_none=True)
    p90 = fields.Float(required=True, allow_none=True)
    mean = fields.Float(required=True, allow_none=True)


class ComplianceOut(Schema):
    achieved = fields.Integer(required=True)
    breached = fields.Integer(required=True)
    rate = fields.Float(required=True, allow_none=True, metadata={"description": "achieved / (achieved + breached)"})


class MeasuresOut(Schema):
    business = fields.Nested(DistributionOut, required=True)
    calendar = fields.Nested(DistributionOut, required=True)


class MetricsSummaryOut(Schema):
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    compliance = fields.Dict(keys=fields.String(), values=fields.Nested(ComplianceOut), required=True,
                             metadata={"description": "by SLA clock: response, next_reply, resolution"})
    first_response = fields.Nested(MeasuresOut, required=True, metadata={"description": "minutes"})
    response = fields.Nested(MeasuresOut, required=True)
    resolution = fields.Nested(MeasuresOut, required=True)


class Problem(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "field -> messages (validation problems)"})
