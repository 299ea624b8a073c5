"""The staff portal: ticket list, ticket page with its inline edits (kept current by its poll), creating tickets
for customers."""
from datetime import timedelta

from flask import (Blueprint, Response, abort, current_app, redirect, render_template, request, stream_with_context,
                   url_for)
from flask_login import current_user

from mets import clock
from mets.extensions import db
from mets.forms import category_choices, status_for
from mets.forms.tickets import BulkForm, EscalateForm, ReplyForm, SaveViewForm, StaffTicketForm
from mets.models import PRIORITIES, STATUSES, Entity, User
from mets.models.tickets import STATUS_LABELS
from mets.services import escalation, macros, sla, tickets
from mets.services.directory import access, categories
from mets.services.directory import users
from mets.services.errors import DomainError
from mets.services.metrics import exports
from mets.services.tickets import bulk, live, views
from mets.services.tickets.activity import activity_lines
from mets.services.tickets.search import STATUS_FILTERS, TicketFilters, search_tickets
from mets.services.validation import parse_id
from mets.web import (arg_int, commit, is_htmx, load_entity, load_saved_view, load_ticket, load_ticket_macro, render,
                      staff_required)

bp = Blueprint("tickets", __name__, url_prefix="/tickets")

# The fields the ticket page edits inline, each in its own htmx box.
INLINE_FIELDS = ("status", "priority", "assignee_id", "entity_id", "category")


@bp.get("/")
@staff_required
def index():
    return _list_page(TicketFilters.from_args(request.args), BulkForm(formdata=None))


def _list_page(filters: TicketFilters, bulk_form: BulkForm, bulk_result=None, view_form=None, status: int = 200):
    result = search_tickets(db.session, current_user, filters, per_page=current_app.config["TICKETS_PER_PAGE"])
    entities = access.visible_entities(db.session, current_user)
    assignees = _assignee_choices(entities)
    now = clock.now()
    ticket_viewers = live.viewers_by_ticket(db.session, [t.id for t in result.items], current_user, now,
                                            _presence_window())
    return render("tickets/index.html", "tickets/_table.html", status=status, result=result, f=filters,
                  entities=entities, assignees=assignees, status_filters=STATUS_FILTERS, priorities=PRIORITIES,
                  sla_summaries={t.id: sla.summary(db.session, t, now) for t in result.items},
                  bulk_form=bulk_form, bulk_result=bulk_result, max_bulk=bulk.MAX_BULK,
                  views=views.view_links(db.session, current_user, filters, now),
                  view_form=view_form or SaveViewForm(formdata=None),
                  share_entities=views.shareable_entities(db.session, current_user),
                  ticket_viewers=ticket_viewers, viewers_key=live.badges_key(ticket_viewers),
                  poll_seconds=current_app.config["TICKET_POLL_SECONDS"])


def _presence_window() -> timedelta:
    return live.presence_window(current_app.config["TICKET_POLL_SECONDS"])


@bp.get("/export.csv")
@staff_required
def export_csv():
    """Every ticket matching the list's filters, as CSV, streamed (services.metrics.exports)."""
    filters = TicketFilters.from_args(request.args)
    return _download(exports.ticket_csv(db.session, current_user, filters, clock.now()), "mets-tickets.csv")


@bp.get("/sla-report.csv")
@staff_required
def sla_report_csv():
    """The SLA report (per ticket: rule, each clock's due, met or breached, business minutes) of the list's filters."""
    filters = TicketFilters.from_args(request.args)
    return _download(exports.sla_report_csv(db.session, current_user, filters, clock.now()), "mets-sla-report.csv")


def _download(lines, filename: str) -> Response:
    return Response(stream_with_context(lines), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "private, no-store"})


@bp.get("/viewers")
@staff_required
def list_viewers():
    """The list's poll (every TICKET_POLL_SECONDS): who else views the tickets it shows. 204 while the badges are as
    the page has them (its `viewers` key); otherwise each row's badge, out of band, for the ids the user may see
    (others are left out, as if not asked). A GET that writes nothing: polling the list is not viewing a ticket."""
    asked = [parse_id(value) for value in request.args.getlist("ticket")[:live.MAX_LIST_IDS]]
    viewing = live.list_viewers(db.session, current_user, [i for i in asked if i], clock.now(), _presence_window())
    key = live.badges_key(viewing)
    if key == request.args.get("viewers", ""):
        return "", 204
    return render_template("tickets/_list_live.html", row_viewers=viewing, viewers_key=key)


@bp.get("/views/<int:view_id>")
@staff_required
def open_view(view_id):
    """A saved view is the list at the URL of its filters (read through the list's scoping like any URL)."""
    view = load_saved_view(view_id)
    return redirect(url_for("tickets.index", **views.view_args(view)), 303)


@bp.post("/views")
@staff_required
def save_view():
    form = SaveViewForm()
    filters = TicketFilters.from_args(request.form)
    saved = commit(lambda: views.save_view(db.session, current_user, form.name.data, filters, form.share_with.data),
                   form)
    if saved and not is_htmx():
        return redirect(url_for("tickets.index", **filters.as_args()), 303)
    return _list_page(filters, BulkForm(formdata=None), view_form=None if saved else form,
                      status=200 if saved else 422)


@bp.post("/views/<int:view_id>/delete")
@staff_required
def delete_view(view_id):
    view = load_saved_view(view_id)
    filters = TicketFilters.from_args(request.form)
    saved = commit(lambda: views.delete_view(db.session, current_user, view))
    if not saved:
        abort(404)  # not theirs to delete: as for a view they cannot see
    if not is_htmx():
        return redirect(url_for("tickets.index", **filters.as_args()), 303)
    return _list_page(filters, BulkForm(formdata=None))


@bp.post("/bulk")
@staff_required
def bulk_change():
    """Change the chosen tickets (or all matching the list's filters, posted along), then show the list again."""
    form = BulkForm()
    filters = TicketFilters.from_args(request.form)
    saved = commit(lambda: bulk.bulk_change(
        db.session, current_user, {name: getattr(form, name).data for name in bulk.BULK_FIELDS}, form.ids.data or [],
        matching=filters if form.scope.data == "matching" else None), form)
    if saved:
        form = BulkForm(formdata=None)
    return _list_page(filters, form, bulk_result=saved.result, status=200 if saved else 422)


def _assignee_choices(entities: list[Entity]) -> list[User]:
    people: dict[int, User] = {}
    for entity in entities:
        for user in access.members_of(db.session, entity):
            people[user.id] = user
    return sorted(people.values(), key=lambda u: u.name.lower())


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def new():
    form = StaffTicketForm()
    entities = [e for e in access.visible_entities(db.session, current_user) if e.active]
    form.entity_id.choices = [(e.id, e.name) for e in entities]
    saved = commit(lambda: tickets.create_ticket(
        db.session, actor=current_user, entity=load_entity(form.entity_id.data, optional=True),
        customer=users.get_or_create_customer(db.session, form.customer_email.data, form.customer_name.data),
        subject=form.subject.data, body=form.body.data, priority=form.priority.data,
        category=form.category.data, via="agent"), form)
    if saved:
        return redirect(url_for("tickets.show", number=saved.result.ticket.number), 303)
    entity = load_entity(form.entity_id.data, optional=True) if form.entity_id.data else (
        entities[0] if entities else None)
    return render_template("tickets/new.html", form=form,
                           category_names=categories.categories_for(db.session, entity).names if entity else ()
                           ), status_for(form)


@bp.get("/new/category")
@staff_required
def category_field():
    """The category input for the entity chosen in the new-ticket form (htmx swaps it in when the entity changes)."""
    entity = load_entity(request.args.get("entity_id"), optional=True)
    return render_template("tickets/_category_field.html", f=StaffTicketForm(formdata=None).category, free_text=True,
                           category_names=categories.categories_for(db.session, entity).names if entity else ())


@bp.get("/<number>")
@staff_required
def show(number):
    ticket = load_ticket(number)
    now = clock.now()
    commit(lambda: live.record_viewer(db.session, ticket, current_user, now))  # opening the page is viewing it
    return _show_page(ticket, _fresh_reply_form(ticket))


def _fresh_reply_form(ticket) -> ReplyForm:
    form = ReplyForm(formdata=None)
    form.version.data = ticket.version  # what the agent is shown: a reply is held if others changed it since
    return form


def _show_page(ticket, form, status: int = 200, held=()):
    others = live.viewers(db.session, ticket, current_user, clock.now(), _presence_window())
    return render_template("tickets/show.html", ticket=ticket, form=form, fields=_field_boxes(ticket),
                           sla_clocks=sla.clocks(db.session, ticket), activity=activity_lines(db.session, ticket),
                           **_escalation_box(ticket),
                           held=held, others=others, viewers_key=live.viewers_key(others),
                           poll_seconds=current_app.config["TICKET_POLL_SECONDS"]), status


@bp.post("/<number>/replies")
@staff_required
def reply(number):
    ticket = load_ticket(number)
    form = ReplyForm()
    # A macro picked in the reply box: its field changes are made with the reply (another entity's is a 404).
    macro = load_ticket_macro(ticket, form.macro_id.data) if form.macro_id.data else None
    # A public reply on a ticket others changed since the form was loaded is held, not sent (compared under the
    # ticket's lock): the agent sees what they missed, the text stays in the box, and sending again (the form now
    # carries the current version) sends. Internal notes are never held.
    saved = commit(lambda: macros.send_reply(db.session, ticket, macro, actor=current_user, body=form.body.data,
                                             internal=form.internal.data, seen_version=form.version.data), form)
    held = saved.result.held if saved else []
    if held:
        form.version.data = ticket.version
        saved, status = None, 409
    else:
        status = 200 if saved else 422
    internal = form.internal.data
    if saved:
        form = _fresh_reply_form(ticket)
    if not is_htmx():
        if saved:
            return redirect(url_for("tickets.show", number=ticket.number), 303)
        return _show_page(ticket, form, status, held)
    headers = {"HX-Trigger": "ticket-changed"} if status == 200 else {}
    # base.html tells htmx to swap 422 and 409 answers too, so field errors and the held reply show in place.
    sent = ("Note added" if internal else "Reply sent") if saved else None  # read out by the status region
    page = render_template("tickets/_conversation.html", ticket=ticket, form=form, held=held, sent=sent)
    return page, status, headers


@bp.post("/<number>/live")
@staff_required
def poll(number):
    """The open ticket page's poll: 204 when neither the ticket nor who else views it changed; otherwise the parts
    that did, as out-of-band swaps (never the reply box). Records the poller's presence."""
    ticket = load_ticket(number)
    # The version came with the scoped load: when it is the page's, nothing else about the ticket is read.
    changed = arg_int("version", min_value=0, max_value=2**31 - 1, source=request.form) != ticket.version
    now = clock.now()
    others = commit(lambda: live.check_in(db.session, ticket, current_user, now, _presence_window())).result
    key = live.viewers_key(others)
    if not changed and key == request.form.get("viewers", ""):
        return "", 204
    context = {"ticket": ticket, "others": others, "viewers_key": key, "changed": changed,
               "poll_seconds": current_app.config["TICKET_POLL_SECONDS"]}
    if changed:
        context.update(fields=_field_boxes(ticket), sla_clocks=sla.clocks(db.session, ticket),
                       activity=activity_lines(db.session, ticket))
    return render_template("tickets/_live.html", **context)


@bp.get("/<number>/macro")
@staff_required
def macro_picker(number):
    """The reply box's macro select; with `fill`, the chosen macro's text for this ticket replaces the reply
    (out of band) and its field changes show as pending."""
    ticket = load_ticket(number)
    macro = load_ticket_macro(ticket, request.args["macro_id"]) if request.args.get("macro_id") else None
    filled, error = None, None
    if macro is not None and request.args.get("fill"):
        try:
            filled = macros.render(db.session, macro, ticket, current_user)
        except DomainError as exc:
            error = exc.summary
    return render_template("tickets/_macro_picker.html", ticket=ticket, macro=macro, filled=filled, error=error,
                           choices=macros.macros_for(db.session, ticket.entity),
                           pending=macros.pending(db.session, macro, ticket) if macro else [],
                           can_manage=macros.manages(db.session, current_user, ticket.entity))


@bp.get("/<number>/sla")
@staff_required
def sla_panel(number):
    ticket = load_ticket(number)
    return render_template("tickets/_sla.html", ticket=ticket, sla_clocks=sla.clocks(db.session, ticket))


def _escalation_box(ticket, form: EscalateForm | None = None) -> dict:
    """What the escalation box shows: the level, the policy's levels still to come, the timeline, the form."""
    now = clock.now()
    return {"escalate_form": form or EscalateForm(formdata=None),
            "escalations": escalation.timeline(db.session, ticket),
            "escalation_notices": escalation.held_notices(db.session, ticket),
            "escalation_policy": escalation.policy_for(db.session, ticket, now),
            "escalation_next": escalation.pending(db.session, ticket, now)}


@bp.get("/<number>/escalation")
@staff_required
def escalation_panel(number):
    ticket = load_ticket(number)
    return render_template("tickets/_escalation.html", ticket=ticket, **_escalation_box(ticket))


@bp.post("/<number>/escalate")
@staff_required
def escalate(number):
    """Escalate by hand to the next level of the ticket's policy (a reason is required)."""
    ticket = load_ticket(number)
    form = EscalateForm()
    saved = commit(lambda: escalation.escalate(db.session, ticket, current_user, form.reason.data), form)
    if not is_htmx():
        if saved:
            return redirect(url_for("tickets.show", number=ticket.number), 303)
        return render_template("tickets/show.html", ticket=ticket, form=_fresh_reply_form(ticket),
                               fields=_field_boxes(ticket), sla_clocks=sla.clocks(db.session, ticket),
                               activity=activity_lines(db.session, ticket), **_escalation_box(ticket, form), held=(),
                               others=[], viewers_key="", poll_seconds=current_app.config["TICKET_POLL_SECONDS"]), 422
    box = _escalation_box(ticket, None if saved else form)
    headers = {"HX-Trigger": "ticket-changed"} if saved else {}
    return render_template("tickets/_escalation.html", ticket=ticket, **box), (200 if saved else 422), headers


@bp.get("/<number>/activity")
@staff_required
def activity(number):
    ticket = load_ticket(number)
    return render_template("tickets/_activity.html", ticket=ticket, activity=activity_lines(db.session, ticket))


@bp.get("/<number>/properties")
@staff_required
def properties(number):
    ticket = load_ticket(number)
    return render_template("tickets/_properties.html", ticket=ticket, fields=_field_boxes(ticket))


@bp.post("/<number>/fields/<name>")
@staff_required
def edit_field(number, name):
    if name not in INLINE_FIELDS:
        abort(404)
    ticket = load_ticket(number)
    raw = request.form.get(name, "")
    saved = commit(lambda: _apply_field(ticket, name, raw))
    error = None if saved else saved.errors.get(name) or saved.summary
    if error is None and not access.find_ticket(db.session, current_user, ticket.number):
        # Moved to an entity this user does not work in: leave the page.
        return "", 200, {"HX-Redirect": url_for("tickets.index")}
    box = _field_box(ticket, name, error=error, submitted=raw if error else None)
    headers = {"HX-Trigger": "ticket-changed"} if saved and saved.result.changed else {}
    return render_template("tickets/_field.html", ticket=ticket, box=box), 422 if error else 200, headers


def _apply_field(ticket, name: str, raw: str):
    if name == "status":
        return tickets.change_status(db.session, ticket, raw, actor=current_user)
    if name == "assignee_id":
        # One of those the box offers (who may be assigned tickets of this entity), or "" for nobody.
        assignee = next((u for u in access.members_of(db.session, ticket.entity) if u.id == parse_id(raw)), None)
        if raw and assignee is None:
            raise DomainError({"assignee_id": tickets.NOT_ASSIGNABLE})  # as for anyone else not assignable
        return tickets.assign(db.session, ticket, assignee, actor=current_user)
    if name == "entity_id":
        return tickets.update_fields(db.session, ticket, {"entity_id": parse_id(raw)}, actor=current_user)
    return tickets.update_fields(db.session, ticket, {name: raw}, actor=current_user)


def _field_box(ticket, name: str, error: str | None = None, submitted: str | None = None) -> dict:
    """What one inline-edit box shows: label, current value, choices, and an error in place."""
    if name == "status":
        choices = [(s, STATUS_LABELS[s]) for s in STATUSES]
        value = ticket.status
    elif name == "priority":
        choices = [(p, p.capitalize()) for p in PRIORITIES]
        value = ticket.priority
    elif name == "assignee_id":
        choices = [("", "Unassigned")] + [(str(u.id), u.name) for u in access.members_of(db.session, ticket.entity)]
        value = str(ticket.assignee_id or "")
    elif name == "entity_id":
        choices = [(str(e.id), e.name) for e in access.visible_entities(db.session, current_user) if e.active]
        value = str(ticket.entity_id)
    else:
        value = ticket.category or ""
        names = categories.categories_for(db.session, ticket.entity).names
        # The entity's list (and the ticket's own category, kept if it is not on it); free text without a list.
        choices = category_choices(names, value, "— none —") if names else None
    labels = {"status": "Status", "priority": "Priority", "assignee_id": "Assignee", "entity_id": "Entity",
              "category": "Category"}
    return {"name": name, "label": labels[name], "choices": choices,
            "value": submitted if submitted is not None else value, "error": error}


def _field_boxes(ticket) -> list[dict]:
    return [_field_box(ticket, name) for name in INLINE_FIELDS]
