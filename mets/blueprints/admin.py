"""Admin pages: the entity tree (with the background jobs' health above it), users and their memberships."""
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from mets import clock, jobs
from mets.extensions import db
from mets.forms import entity_choices, status_for
from mets.forms.admin import EntityForm, MembershipForm, UserForm
from mets.models import Entity
from mets.services import health
from mets.services.directory import access
from mets.services.directory import entities
from mets.services.directory import users
from mets.web import admin_required, commit, load_entity, load_membership, load_user, render

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@admin_required
def index():
    return redirect(url_for("admin.entity_list"))


# --- entities -------------------------------------------------------------------------------

def _entity_form(entity: Entity | None = None) -> EntityForm:
    form = EntityForm(obj=entity)
    # An entity cannot sit under itself or one of its own departments.
    excluded = access.with_descendants(db.session, [entity.id]) if entity else set()
    form.parent_id.choices = [(None, "— none (top level) —"), *entity_choices(entities.entity_tree(db.session),
                                                                              skip=excluded)]
    return form


@bp.get("/entities")
@admin_required
def entity_list():
    # The page /admin/ lands on, so it carries the background jobs' health (mets health's report).
    jobs_health = health.report(db.session, clock.now(), jobs.periods(current_app.config),
                                current_app.config.get("REDIS_URL"))
    return render_template("admin/entities.html", tree=entities.entity_tree(db.session), jobs_health=jobs_health,
                           format_age=health.format_age)


@bp.route("/entities/new", methods=["GET", "POST"])
@admin_required
def entity_new():
    form = _entity_form()
    if commit(lambda: entities.create_entity(db.session, form.data_for_service()), form):
        return redirect(url_for("admin.entity_list"), 303)
    return render_template("admin/entity_form.html", form=form, entity=None), status_for(form)


@bp.route("/entities/<int:entity_id>", methods=["GET", "POST"])
@admin_required
def entity_edit(entity_id):
    entity = load_entity(entity_id)
    form = _entity_form(entity)
    if commit(lambda: entities.update_entity(db.session, entity, form.data_for_service()), form):
        return redirect(url_for("admin.entity_list"), 303)
    return render_template("admin/entity_form.html", form=form, entity=entity), status_for(form)


# --- users ----------------------------------------------------------------------------------

@bp.get("/users")
@admin_required
def user_list():
    kind = request.args.get("kind", "staff")
    q = request.args.get("q", "").strip().lower()[:100]
    rows = users.search_users(db.session, kind, q)
    return render("admin/users.html", "admin/_user_rows.html", rows=rows, kind=kind, q=q)


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def user_new():
    form = UserForm()
    saved = commit(lambda: users.create_user(db.session, form.data_for_service()), form)
    if saved:
        return redirect(url_for("admin.user_edit", user_id=saved.result.id), 303)
    return render_template("admin/user_form.html", form=form, user=None), status_for(form)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def user_edit(user_id):
    user = load_user(user_id)
    form = UserForm(obj=user)
    token_before = user.session_token
    if commit(lambda: users.update_user(db.session, user, form.data_for_service(), actor=current_user), form):
        if user.id == current_user.id and user.session_token != token_before:
            # A new password of one's own ends every other session, not the one it was changed in.
            remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
            login_user(user, remember=remembered)
        return redirect(url_for("admin.user_edit", user_id=user.id), 303)
    return render_template("admin/user_form.html", form=form, user=user,
                           membership_form=_membership_form(blank=True)), status_for(form)


def _membership_form(blank: bool = False) -> MembershipForm:
    """The add-membership form; `blank` ignores the request (a fresh form after saving)."""
    form = MembershipForm(formdata=None) if blank else MembershipForm()
    form.entity_id.choices = entity_choices(entities.entity_tree(db.session))
    return form


@bp.post("/users/<int:user_id>/memberships")
@admin_required
def membership_save(user_id):
    user = load_user(user_id)
    form = _membership_form()
    saved = commit(lambda: users.set_membership(
        db.session, user, load_entity(form.entity_id.data), form.role.data,
        form.tier.data, users.parse_skills(form.skills.data)), form)
    status = 200 if saved else 422
    if saved:
        form = _membership_form(blank=True)
    return render("admin/user_form.html", "admin/_memberships.html", status=status, user=user,
                  form=UserForm(obj=user), membership_form=form)


@bp.delete("/users/<int:user_id>/memberships/<int:membership_id>")
@admin_required
def membership_delete(user_id, membership_id):
    membership = load_membership(load_user(user_id), membership_id)
    commit(lambda: users.remove_membership(db.session, membership))
    return ""
