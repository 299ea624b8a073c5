"""/api/v1: the REST API. Token-authenticated (`Authorization: Bearer`, never a cookie: mets.api.auth), so CSRF-exempt;
every route scoped as the pages are (the same loaders and services, as the token's user); throttled per token by
the login's limiter; errors as problem+json (mets.errors). The OpenAPI document is generated from these routes'
`operation`s (mets.api.spec); /api/v1/docs renders it for people."""
from flask import Blueprint, Response, current_app, render_template, request, stream_with_context, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from mets import clock, transaction
from mets.api import auth, spec
from mets.api import schemas as s
from mets.api.requests import (Invalid, decode_cursor, encode_cursor, entity_named, load_body, load_query,
                               service_errors, staff_by_email, ticket_filters)
from mets.extensions import csrf, db, limiter
from mets.models import Ticket
from mets.services import hours, sla, tickets
from mets.services.directory import access, api_tokens, users
from mets.services.escalation import admin as escalation_admin
from mets.services.metrics import dashboard, exports
from mets.services.sla import admin as sla_admin
from mets.services.tickets import payload, search
from mets.web import commit, load_ticket

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # no cookie authenticates here (mets.api.auth): a forged cross-site request carries no token
limiter.limit(lambda: current_app.config["API_RATE_LIMIT"], key_func=auth.rate_key)(bp)

PUBLIC = {"api.openapi", "api.docs"}
# Reads run without a transaction (mets.transaction.autocommit) but these: a server-side cursor lives in one.
STREAMED = {"api.export_tickets", "api.export_sla_report"}
NO_ENTITY = ((404, "No entity you work in has this slug"),)
SLA_RELATIONS = (joinedload(Ticket.sla_rule), joinedload(Ticket.entity))  # the SLA status' (one statement, built once)


@bp.before_request
def authenticate():
    """Every request reads its token's row and user: a revoked token or a deactivated user fails at once."""
    if request.endpoint in PUBLIC:
        return
    if request.method in ("GET", "HEAD") and request.endpoint not in STREAMED:
        transaction.autocommit(db.session)  # no BEGIN, no ROLLBACK: the request reads (but its token's mark)
    presented = api_tokens.authenticate(db.session, auth.bearer_token(), clock.now())
    if presented.touched:  # (at most once a minute per token: a commit expires the user, to be read again)
        commit(lambda: None)
    auth.sign_in(presented.user)


@bp.after_request
def no_store(response):
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def _refused(saved):
    """A service's refusal (DomainError) as a 422 naming the API's fields."""
    raise Invalid(service_errors(saved.errors), "The change was refused: see errors.")


# --- tickets ----------------------------------------------------------------------------------------------

@bp.get("/tickets")
@spec.operation("List tickets", tag="Tickets", query=s.TicketQuery, response=s.TicketPageOut, refusals=NO_ENTITY)
def list_tickets():
    """The tickets you may see that match the filters (the web list's), newest first. Pages follow `next_cursor`:
    a walk never repeats a ticket nor skips one that existed when it began, however many are created meanwhile."""
    args = load_query(s.TicketQuery)
    before = decode_cursor(args.get("cursor"))
    items, next_id = search.ticket_feed(db.session, current_user, ticket_filters(db.session, current_user, args),
                                        before, args["limit"])
    return {"items": [payload.row_payload(row) for row in items], "next_cursor": encode_cursor(next_id)}


@bp.post("/tickets")
@spec.operation("Open a ticket", tag="Tickets", body=s.TicketCreate, response=s.TicketOut, status=201)
def create_ticket():
    """For a customer (created on first contact by email), in an entity you work in."""
    data = load_body(s.TicketCreate)
    saved = commit(lambda: tickets.create_ticket(
        db.session, actor=current_user, entity=access.visible_entity(db.session, current_user, data["entity"]),
        customer=users.get_or_create_customer(db.session, data["customer"]["email"], data["customer"]["name"]),
        subject=data["subject"], body=data["body"], priority=data["priority"], category=data["category"],
        via="agent"))
    if not saved:
        _refused(saved)
    ticket = saved.result.ticket
    return payload.ticket_payload(ticket), 201, {"Location": url_for("api.get_ticket", number=ticket.number)}


@bp.get("/tickets/<number>")
@spec.operation("A ticket", tag="Tickets", response=s.TicketOut)
def get_ticket(number):
    return payload.ticket_payload(load_ticket(number))


@bp.patch("/tickets/<number>")
@spec.operation("Change a ticket's fields, assignee or status", tag="Tickets", body=s.TicketPatch,
                response=s.ChangesOut, refusals=((409, "Conflict"),))
def update_ticket(number):
    """Fields first (a move to another entity may unassign), then the assignee, then the status: each its own
    ticket event, all in one transaction (a refusal of one makes none)."""
    ticket = load_ticket(number)
    data = load_body(s.TicketPatch)
    fields = {name: data[name] for name in ("subject", "priority", "category") if name in data}
    if "entity" in data:
        entity = access.visible_entity(db.session, current_user, data["entity"])
        fields["entity_id"] = entity.id if entity is not None else 0  # 0: none, which the service refuses
    assignee = tickets.KEEP
    if "assignee" in data:
        assignee = staff_by_email(db.session, data["assignee"]) if data["assignee"] else None
    saved = commit(lambda: tickets.edit_ticket(db.session, ticket, actor=current_user, fields=fields,
                                               status=data.get("status"), assignee=assignee))
    if not saved:
        _refused(saved)
    return {"ticket": payload.ticket_payload(ticket),
            "events": [event.event for change in saved.result for event in change.events]}


@bp.get("/tickets/<number>/replies")
@spec.operation("A ticket's conversation", tag="Tickets", response=s.RepliesOut)
def list_replies(number):
    """Replies and internal notes, oldest first (the ticket's own description is its first message on the page)."""
    return {"items": [payload.reply_payload(r) for r in load_ticket(number).replies]}


@bp.post("/tickets/<number>/replies")
@spec.operation("Reply, or add an internal note", tag="Tickets", body=s.ReplyCreate, response=s.ReplyOut,
                status=201)
def add_reply(number):
    """A public reply is mailed to the customer as one written on the ticket page."""
    ticket = load_ticket(number)
    data = load_body(s.ReplyCreate)
    saved = commit(lambda: tickets.add_reply(db.session, ticket, actor=current_user, body=data["body"],
                                             internal=data["internal"], via="agent"))
    if not saved:
        _refused(saved)
    return payload.reply_payload(saved.result.reply), 201


@bp.get("/tickets/<number>/sla")
@spec.operation("A ticket's SLA status", tag="SLA", response=s.SlaStatusOut)
def ticket_sla(number):
    """Each clock of the ticket's SLA rule: its due instant, business minutes used, and whether it was met."""
    # One statement for the ticket (its scope within), its rule and entity (the calendar's, cached per process:
    # services.hours), one for its pauses.
    ticket = load_ticket(number, options=SLA_RELATIONS)
    return {"ticket": ticket.number, **payload.sla_payload(ticket),
            "clocks": [payload.clock_payload(state) for state in sla.clocks(db.session, ticket, clock.now())]}


# --- SLA configuration, read only -------------------------------------------------------------------------

@bp.get("/sla-rules")
@spec.operation("SLA rules", tag="SLA", response=s.SlaRulesOut)
def sla_rules():
    """The rules of the entities you work in, in the order each entity tries them."""
    rules = sla_admin.visible_rules(db.session, access.visible_entity_ids(db.session, current_user))
    return s.SlaRulesOut().dump({"items": rules})


@bp.get("/business-hours")
@spec.operation("Business hours", tag="SLA", response=s.HoursListOut)
def business_hours():
    """The hours that apply to each entity you work in (its own or its parent's), in its time zone."""
    views = hours.hours_views(db.session, access.visible_entities(db.session, current_user))
    return s.HoursListOut().dump({"items": views})


@bp.get("/escalation-policies")
@spec.operation("Escalation policies", tag="SLA", response=s.PoliciesOut)
def escalation_policies():
    """The policies of the entities you work in, with their levels."""
    policies = escalation_admin.visible_policies(db.session, access.visible_entity_ids(db.session, current_user))
    return s.PoliciesOut().dump({"items": policies})


# --- metrics and exports ----------------------------------------------------------------------------------

@bp.get("/metrics/summary")
@spec.operation("SLA compliance and response times", tag="Metrics", query=s.MetricsQuery,
                response=s.MetricsSummaryOut, refusals=NO_ENTITY)
def metrics_summary():
    """The dashboard's summary: for admins and managers over the entities of their dashboard, for agents their own
    figures (as their agent page)."""
    args = load_query(s.MetricsQuery)
    query = {"from": args.get("from_"), "to": args.get("to"), "priority": args.get("priority")}
    if "entity" in args:
        query["entity"] = str(entity_named(db.session, current_user, args["entity"]).id)
    filters = dashboard.Filters.from_args({k: str(v) for k, v in query.items() if v is not None}, clock.now().date())
    summary, scope = dashboard.own_summary(db.session, current_user, filters)
    return s.MetricsSummaryOut().dump({
        "from_": scope.filters.since, "to": scope.filters.last_day,
        "compliance": {name: {"achieved": c.achieved, "breached": c.breached, "rate": c.rate}
                       for name, c in summary.compliance.items()},
        "first_response": summary.first_response, "response": summary.response, "resolution": summary.resolution})


def _csv(lines, name: str) -> Response:
    return Response(stream_with_context(lines), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/exports/tickets.csv")
@spec.operation("The ticket list as CSV", tag="Exports", query=s.ExportQuery, media="text/csv",
                refusals=NO_ENTITY)
def export_tickets():
    """Every ticket matching the filters (the list's), newest first, streamed."""
    f = ticket_filters(db.session, current_user, load_query(s.ExportQuery))
    return _csv(exports.ticket_csv(db.session, current_user, f, clock.now()), "mets-tickets.csv")


@bp.get("/exports/sla-report.csv")
@spec.operation("The SLA report as CSV", tag="Exports", query=s.ExportQuery, media="text/csv",
                refusals=NO_ENTITY)
def export_sla_report():
    """Per matching ticket: its SLA rule and, per clock, the due instant, met or breached, business minutes used."""
    f = ticket_filters(db.session, current_user, load_query(s.ExportQuery))
    return _csv(exports.sla_report_csv(db.session, current_user, f, clock.now()), "mets-sla-report.csv")


# --- the document -----------------------------------------------------------------------------------------

@bp.get("/openapi.json")
@spec.operation("This API's OpenAPI 3.1 document", tag="Documentation", public=True, media="application/json",
                response={"type": "object"})
def openapi():
    return spec.document()


@bp.get("/docs")
@spec.operation("This API's documentation, for people", tag="Documentation", public=True, media="text/html")
def docs():
    return render_template("api/docs.html", spec=spec.document())
