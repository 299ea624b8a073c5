"""Error pages: never a traceback, and a clear page for a missing or stale CSRF token."""
from flask import current_app, render_template
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

    @app.errorhandler(413)
    def too_large(exc):
        # Werkzeug refuses the body before anything reads it (CSRF included): nothing was stored.
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        size = f"{limit / (1024 * 1024):g} MB" if limit >= 1024 * 1024 else f"{limit // 1024} kB"
        return render_template("errors/error.html", code=413, title="Too large to send",
                               message=f"What you sent is larger than the {size} this site accepts, so nothing "
                                       f"was saved. Shorten the text, or split it into several messages."), 413

    @app.errorhandler(429)
    def too_many(exc):
        return render_template("errors/error.html", code=429, title="Too many requests",
                               message="Please wait a few minutes and try again."), 429

    @app.errorhandler(500)
    def server_error(exc):
        db.session.rollback()
        return render_template("errors/error.html", code=500, title="Something went wrong",
                               message="The error was logged. Nothing you sent was half-saved; please try again."), 500
