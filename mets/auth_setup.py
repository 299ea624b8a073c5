"""Flask-Login wiring: loading the signed-in user and where anonymous users are sent."""
import hmac

from flask import redirect, request, url_for

from mets.extensions import db, login_manager
from mets.models import User
from mets.services.validation import parse_id


def init_app(app):
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str):
        # "<id>:<session token>" (User.get_id): a cookie from before a sign-out, a password change or a
        # deactivation carries an old token and signs nobody in. Plain old "<id>" cookies are refused too.
        raw_id, _, token = user_id.partition(":")
        user_pk = parse_id(raw_id)
        user = db.session.get(User, user_pk) if user_pk is not None and token else None
        if user is None or not user.active or not hmac.compare_digest(user.session_token.encode(), token.encode()):
            return None
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        if request.headers.get("HX-Request"):
            # htmx cannot follow a login redirect into a fragment: ask for a full page load.
            return "", 401, {"HX-Redirect": _login_url()}
        return redirect(_login_url())


def _login_url() -> str:
    if request.blueprint == "portal":
        return url_for("portal.login")
    # An htmx GET asks for a fragment: coming back to it after signing in would show a bare partial.
    wants_page = request.method == "GET" and not request.headers.get("HX-Request")
    return url_for("auth.login", next=request.full_path if wants_page else None)
