"""The customer portal: sign in by emailed link, open tickets, follow and answer them."""
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user

from mets import clock, throttle
from mets.extensions import db
from mets.forms import status_for
from mets.forms.portal import PortalLinkForm, PortalTicketForm, SurveyForm
from mets.forms.tickets import ReplyForm
from mets.services import tickets
from mets.services.metrics import csat
from mets.services.tickets.search import customer_tickets
from mets.services.directory import categories, entities, portal_auth
from mets.services.directory.portal_mail import send_sign_in_link
from mets.services.validation import normalize_email
from mets.web import arg_int, commit, customer_required, is_htmx, load_entity, load_ticket

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("/")
@customer_required
def index():
    return render_template("portal/index.html", tickets=customer_tickets(db.session, current_user))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and current_user.is_customer:
        return redirect(url_for("portal.index"))
    form = PortalLinkForm()
    if form.validate_on_submit():
        config = current_app.config
        client, email = request.remote_addr or "", normalize_email(form.email.data)
        if not throttle.LINK_CLIENT.hit(client):
            # One client asking for many addresses: a flood, told so plainly (it says nothing about any address).
            wait = throttle.LINK_CLIENT.retry_after(client)
            form.form_errors.append(f"Too many sign-in links were asked for from your network. Wait "
                                    f"{throttle.wait_phrase(wait)} and try again.")
            return render_template("portal/login.html", form=form), 429, {"Retry-After": str(wait)}
        # Over the address's limit no more mail goes out, but the page stays the same: the owner already
        # has the recent links, and the answer for an address never depends on who asked before.
        if throttle.LINK_ADDRESS.hit(email) and portal_auth.should_send_link(db.session, email,
                                                                             config["PORTAL_OPEN_SIGNUP"]):
            commit(lambda: send_sign_in_link(email, portal_auth.safe_next(form.next.data)))
        # The same answer whether or not the address is known: it reveals nothing.
        return render_template("portal/link_sent.html", email=form.email.data)
    return render_template("portal/login.html", form=form), status_for(form)


@bp.get("/auth/<token>")
def redeem(token):
    config = current_app.config
    result = portal_auth.redeem(db.session, config["SECRET_KEY"], token, config["PORTAL_LINK_MAX_AGE"],
                                config["PORTAL_OPEN_SIGNUP"], config["PORTAL_TICKET_LINK_MAX_AGE"])
    if result.error:
        db.session.rollback()
        return render_template("portal/link_invalid.html", reason=result.error, form=PortalLinkForm()), 400
    db.session.commit()
    session.clear()
    login_user(result.user)
    return redirect(result.next_path or url_for("portal.index"))


@bp.route("/tickets/new", methods=["GET", "POST"])
@customer_required
def new():
    form = PortalTicketForm()
    teams = entities.portal_entities(db.session)
    form.entity_id.choices = [(e.id, e.name) for e in teams]
    if not form.is_submitted() and (default := entities.portal_default(db.session)) is not None:
        form.entity_id.data = default.id
    saved = commit(lambda: tickets.create_ticket(
        db.session, actor=current_user, entity=load_entity(form.entity_id.data, optional=True), customer=current_user,
        subject=form.subject.data, body=form.body.data, priority=form.priority.data, category=form.category.data,
        via="portal"), form)
    if saved:
        return redirect(url_for("portal.show", number=saved.result.ticket.number), 303)
    return render_template("portal/new.html", form=form, teams=teams,
                           category_names=_category_names(form.entity_id.data)), status_for(form)


def _category_names(entity_id) -> tuple[str, ...]:
    entity = load_entity(entity_id, optional=True) if entity_id else None
    return categories.categories_for(db.session, entity).names if entity else ()


@bp.get("/tickets/new/category")
@customer_required
def category_field():
    """The topic select for the team chosen in the new-request form (htmx swaps it in when the team changes)."""
    form = PortalTicketForm(formdata=None)
    return render_template("tickets/_category_field.html", f=form.category, free_text=False,
                           category_names=_category_names(request.args.get("entity_id")))


@bp.get("/tickets/<number>")
@customer_required
def show(number):
    ticket = load_ticket(number)
    return render_template("portal/show.html", ticket=ticket, form=ReplyForm())


@bp.post("/tickets/<number>/replies")
@customer_required
def reply(number):
    ticket = load_ticket(number)
    form = ReplyForm()
    saved = commit(lambda: tickets.add_reply(db.session, ticket, actor=current_user, body=form.body.data,
                                             via="portal"), form)
    status = 200 if saved else 422
    if saved:
        form = ReplyForm(formdata=None)
    if not is_htmx():
        if status == 200:
            return redirect(url_for("portal.show", number=ticket.number), 303)
        return render_template("portal/show.html", ticket=ticket, form=form), status
    return render_template("portal/_conversation.html", ticket=ticket, form=form), status


@bp.route("/survey/<token>", methods=["GET", "POST"])
def survey(token):
    """The satisfaction survey a mail links to (no sign-in: the signed link is the key). A GET only shows the form,
    with the link's score preselected: mail scanners follow links, so only the form's POST records an answer."""
    found = csat.open_survey(db.session, token, clock.now())
    if found.error:
        status = 410 if found.error == "expired" else 400
        return render_template("portal/survey_invalid.html", reason=found.error), status
    response = found.response
    form = SurveyForm()
    if not form.is_submitted():
        form.score.data = arg_int("score", response.score, max_value=5)
        form.comment.data = response.comment
    saved = commit(lambda: csat.answer(db.session, response, form.score.data, form.comment.data, clock.now()), form)
    if saved:
        return redirect(url_for("portal.survey", token=token, saved=1), 303)
    return render_template("portal/survey.html", form=form, response=response, ticket=response.ticket,
                           saved=request.args.get("saved") == "1" and response.score is not None), status_for(form)
