"""Error pages: never a traceback, and a clear page for a missing or stale CSRF token."""
from flask import render_template
from flask_wtf.csrf import CSRFError

from mets.extensions import db


def init_app(app):
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_template("errors/error.html", code=400, title="Form expired",
                               message="This form was open too long or came from another site. "
                                       "Go back, reload the page and try again."), 400

    @app.errorhandler(404)
    def not_found(exc):
        return render_template("errors/error.html", code=404, title="Not found",
                               message="There is nothing here, or you do not have access to it."), 404

    @app.errorhandler(405)
    def not_allowed(exc):
        return render_template("errors/error.html", code=405, title="Not allowed",
                               message="That action is not available here."), 405

    @app.errorhandler(500)
    def server_error(exc):
        db.session.rollback()
        return render_template("errors/error.html", code=500, title="Something went wrong",
                               message="The error was logged. Nothing you sent was half-saved; please try again."), 500
