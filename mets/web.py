"""What every route uses: page-or-partial rendering, role guards, the loaders that scope and 404, the one commit
helper, reading numbers.

A route loads what its URL names (`load_ticket`, `load_entity`, ...: out of the current user's scope is a 404, as
missing is), reads its form, changes data only through `commit(action, form)` and renders with `render`.
"""
from dataclasses import dataclass, field
from functools import wraps

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.routing import IntegerConverter

from mets.extensions import db
from mets.models import (
    AutomationRule, Entity, EscalationPolicy, Macro, Membership, SlaRule, Ticket, TicketCategory, User,
    WebhookEndpoint,
)
from mets.services import macros
from mets.services import webhooks
from mets.services.directory import access, api_tokens
from mets.services.metrics import dashboard as metrics_dashboard
from mets.services.errors import DomainError
from mets.services.tickets import views as tickets_views
from mets.services.validation import MAX_ID, parse_id, parse_int


def arg_int(name: str, default=None, min_value: int = 1, max_value: int = MAX_ID, source=None):
    """The request's `name` (query string, or `source`: request.form) as an int in range, else `default`.

    How every number a request names is read: a filter or choice that does not parse is simply not
    applied (links get mangled, nobody needs a 400 for that); a path id that does not fit is a 404
    (IdConverter); a posted form field that does not is the form's field error.
    """
    values = request.args if source is None else source
    return parse_int(values.get(name), default, min_value, max_value)


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: ASCII digits only, and at most MAX_ID, so a 23-digit id is a 404, not an
    overflow in the database."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def is_htmx() -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def render(page: str, partial: str | None = None, status: int = 200, **context):
    """The partial for htmx requests, the full page (which includes that partial) otherwise."""
    template = partial if partial and is_htmx() else page
    # One URL answers with a page or a fragment: caches must keep them apart.
    return render_template(template, **context), status, {"Vary": "HX-Request"}


def staff_required(view):
    """Signed-in staff only; customers get 404 so staff URLs reveal nothing to them."""
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_staff:
            abort(404)
        return view(*args, **kwargs)
    return wrapped


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not (current_user.is_staff and current_user.is_admin):
            abort(404)
        return view(*args, **kwargs)
    return wrapped


def customer_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_customer:
            abort(404)
        return view(*args, **kwargs)
    return wrapped


# --- loaders: one per model, scoped to the current user; out of scope looks the same as missing ------------

def _load(model, row_id, allowed, optional: bool = False):
    """The row with this id (an int, or a request's text) if `allowed(row)`; else 404, or None when `optional`."""
    row_id = parse_id(row_id)
    row = db.session.get(model, row_id) if row_id is not None else None
    if row is not None and allowed(row):
        return row
    if optional:
        return None
    abort(404)


def _found(row):
    """`row`, or a 404 when a lookup found nothing the current user may see."""
    if row is None:
        abort(404)
    return row


def _works_in(entity_id: int | None) -> bool:
    """The current user works in this entity (access: admins every one, staff theirs and their departments);
    None ("all entities") is the admins' only."""
    ids = access.visible_entity_ids(db.session, current_user)
    return ids is None or entity_id in ids


def load_ticket(number: str, options=()):
    """The ticket if the current user may see it (access.find_ticket); an old number of a moved ticket (or a
    lower-case one) redirects a GET to the number it has now. `options`: loader options for its relations."""
    ticket = _found(access.find_ticket(db.session, current_user, number, options))
    if ticket.number != number and request.method == "GET" and request.endpoint:
        abort(redirect(url_for(request.endpoint, **{**request.view_args, "number": ticket.number})))
    return ticket


def load_entity(entity_id, optional: bool = False) -> Entity | None:
    """An entity the current user may use: staff those they work in, customers the portal's teams (active and
    portal-enabled). `optional`: None instead of a 404 (an entity picked in a form, which the service then
    refuses)."""
    allowed = (lambda e: e.active and e.portal_enabled) if current_user.is_customer else (lambda e: _works_in(e.id))
    return _load(Entity, entity_id, allowed, optional)


def load_user(user_id) -> User:
    """A user, on the admin pages (nobody else loads people by id)."""
    return _load(User, user_id, lambda u: current_user.is_admin)


def load_membership(user: User, membership_id) -> Membership:
    """One of `user`'s memberships."""
    return _load(Membership, membership_id, lambda m: m.user_id == user.id)


def load_sla_rule(rule_id) -> SlaRule:
    return _load(SlaRule, rule_id, lambda r: _works_in(r.entity_id))


def load_automation_rule(rule_id) -> AutomationRule:
    return _load(AutomationRule, rule_id, lambda r: _works_in(r.entity_id))


def load_escalation_policy(policy_id, optional: bool = False) -> EscalationPolicy | None:
    """An escalation policy of an entity the current user works in."""
    return _load(EscalationPolicy, policy_id, lambda p: _works_in(p.entity_id), optional)


def load_hours_row(model, row_id, entity: Entity):
    """A row of `entity`'s own hours (`BusinessHours`, `Holiday`, `HoursException`)."""
    return _load(model, row_id, lambda r: r.entity_id == entity.id)


def load_category(entity: Entity, category_id) -> TicketCategory:
    """One of `entity`'s own ticket categories."""
    return _load(TicketCategory, category_id, lambda c: c.entity_id == entity.id)


def load_managed_entity(entity_id) -> Entity:
    """An entity whose catalogue the current user manages (admins, the entity's managers and those above)."""
    entity = load_entity(entity_id)
    if not macros.manages(db.session, current_user, entity):
        abort(404)
    return entity


def load_macro(entity: Entity, macro_id) -> Macro:
    """One of `entity`'s own macros (its admin page)."""
    return _load(Macro, macro_id, lambda m: m.entity_id == entity.id)


def load_ticket_macro(ticket: Ticket, macro_id) -> Macro:
    """A macro an agent may use on `ticket`: of its entity or one above (another entity's is a 404)."""
    return _found(macros.available(db.session, ticket, macro_id))


def load_saved_view(view_id):
    """A saved view of the ticket list the current user may see (theirs, or shared with an entity they work in)."""
    return _found(tickets_views.find_view(db.session, current_user, parse_id(view_id)))


def load_outbox_row(channel, row_id):
    """A row of an outbox channel's table (a queued email, a webhook delivery)."""
    return _load(channel.model, row_id, lambda r: _works_in(r.entity_id))


def load_webhook_endpoint(endpoint_id) -> WebhookEndpoint:
    """A webhook endpoint whose entity the current user manages (admins, its managers and those above)."""
    return _load(WebhookEndpoint, endpoint_id, lambda e: macros.manages(db.session, current_user, e.entity))


def load_endpoint_delivery(endpoint: WebhookEndpoint, delivery_id):
    """One of `endpoint`'s deliveries (another endpoint's is a 404, as a missing one)."""
    return _found(webhooks.endpoints.delivery_of(db.session, endpoint, parse_id(delivery_id)))


def load_api_token(token_id):
    """One of the current user's own API tokens not revoked (anyone else's is a 404: a token is personal)."""
    return _found(api_tokens.find_own_token(db.session, current_user, parse_id(token_id)))


def load_metrics_agent(user_id):
    """A staff member whose agent metrics page the current user may open, and the entities it reads
    (`metrics.dashboard.agent_scope`: admins any, an agent their own, a manager those who work in an entity they
    manage)."""
    agent = _load(User, user_id, lambda u: u.is_staff)
    scope = metrics_dashboard.agent_scope(db.session, current_user, agent)
    if scope is False:
        abort(404)
    return agent, scope


# --- the one commit helper ------------------------------------------------------------------------

def show_errors(form, errors: dict[str, str]) -> None:
    """Put a service's messages (a DomainError's `errors`) on the matching fields (the rest on the form)."""
    for name, message in errors.items():
        target = getattr(form, name, None) if name else None
        if target is not None and hasattr(target, "errors"):
            target.errors = list(target.errors) + [message]
        else:
            form.form_errors.append(message)


@dataclass
class Saved:
    """What `commit` did: `ok` (also its truth), the service's `result`, and, refused, the messages left for the
    page to show (`errors` by field, `summary` in one line): those that did not go on a form."""

    ok: bool
    result: object = None
    errors: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def summary(self) -> str:
        return "; ".join(self.errors.values())


def commit(action, form=None) -> Saved:
    """The one way a route changes data: validate `form` (if any), run `action()` (one service call), commit.

    Refused, by the form or by the service (a DomainError): roll back; the service's messages go on the form's
    fields, or without a form come back in `errors`. A verb whose service never refuses may ignore the answer.
    """
    if form is not None and not form.validate_on_submit():
        return Saved(False)
    try:
        result = action()
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if form is None:
            return Saved(False, errors=exc.errors)
        show_errors(form, exc.errors)
        return Saved(False)
    return Saved(True, result)
