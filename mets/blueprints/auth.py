"""Staff sign-in and sign-out (customers sign in through portal links), and the staff profile page: API tokens."""
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from mets import clock, throttle
from mets.extensions import db
from mets.forms.auth import ApiTokenForm, LoginForm
from mets.services.directory import api_tokens, users
from mets.services.tickets import views as ticket_views
from mets.services.validation import normalize_email
from mets.web import commit, load_api_token, staff_required

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths, so the login form cannot bounce users to another site."""
    if not target or len(target) > 2000 or not target.isprintable():
        return None  # (no CR/LF: it becomes the Location header)
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _landing() -> str:
    """Where staff land: "My open tickets" for those who work in an entity (services.tickets.views)."""
    return url_for("tickets.index", **ticket_views.landing_args(db.session, current_user))


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(_landing() if current_user.is_staff else url_for("portal.index"))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and current_user.is_staff:
        return redirect(_landing())
    form = LoginForm()
    if form.validate_on_submit():
        email, client = normalize_email(form.email.data), request.remote_addr or ""
        if wait := throttle.login_wait(email, client):
            # Checked before the password: once throttled, even the right one does not get in.
            form.form_errors.append(f"Too many failed sign-ins. For your security, wait "
                                    f"{throttle.wait_phrase(wait)} and try again.")
            return render_template("auth/login.html", form=form), 429, {"Retry-After": str(wait)}
        user = commit(lambda: users.authenticate(db.session, email, form.password.data)).result
        if user is None:
            throttle.login_failed(email, client)
            form.form_errors.append("Wrong email or password.")
        else:
            throttle.login_succeeded(email)
            session.clear()  # no session fixation across sign-ins
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")) or _landing())
    status = 200 if not form.is_submitted() else 422
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    was_customer = current_user.is_authenticated and current_user.is_customer
    if current_user.is_authenticated:
        # Signing out ends every session of this user: a copied session or remember cookie is worthless after.
        commit(lambda: users.end_sessions(db.session, current_user))
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("portal.login" if was_customer else "auth.login"))


# --- the profile page: one's own API tokens ---------------------------------------------------------------

@bp.get("/profile")
@staff_required
def profile():
    return _profile_page(ApiTokenForm(formdata=None))


def _profile_page(form, new_token=None, status: int = 200):
    return render_template("auth/profile.html", form=form, new_token=new_token,
                           tokens=api_tokens.tokens_of(db.session, current_user)), status


@bp.post("/profile/tokens")
@staff_required
def create_token():
    form = ApiTokenForm()
    saved = commit(lambda: api_tokens.create_token(db.session, current_user, form.name.data, clock.now()), form)
    # The token's text is in this answer only (never stored, never in a redirect's URL): not cached anywhere.
    return (*_profile_page(ApiTokenForm(formdata=None) if saved else form,
                           new_token=saved.result if saved else None, status=200 if saved else 422),
            {"Cache-Control": "no-store"})


@bp.post("/profile/tokens/<int:token_id>/revoke")
@staff_required
def revoke_token(token_id):
    token = load_api_token(token_id)
    commit(lambda: api_tokens.revoke_token(db.session, token, clock.now()))
    flash(f"Token \u201c{token.name}\u201d revoked: it no longer works.", "info")
    return redirect(url_for("auth.profile"), 303)
