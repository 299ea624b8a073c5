"""Flask-Login wiring: loading the signed-in user and where anonymous users are sent."""
from flask import redirect, request, url_for

from mets.extensions import db, login_manager
from mets.models import User


def init_app(app):
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str):
        user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
        return user if user is not None and user.active else None

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
