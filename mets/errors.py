"""Error pages: never a traceback, and a clear page for a missing or stale CSRF token. Under /api/v1 every error is
an RFC 9457 problem document (`application/problem+json`) instead, never an HTML page, whoever raised it: routing
(404, 405), Werkzeug (413, malformed JSON's 400), Flask-Limiter (429), the API's own refusals, or a crash (500)."""
import math
import time

from flask import current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from mets.extensions import db, limiter

API_PREFIX = "/api/"


def is_api() -> bool:
    return request.path.startswith(API_PREFIX)


def problem(status: int, detail: str, errors: dict | None = None, headers: dict | None = None):
    """An RFC 9457 answer. `type` is about:blank (the status says what happened, `title` is its phrase); validation
    problems carry `errors`, each field's messages."""
    body = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error"), "status": status,
            "detail": detail}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers.update(headers or {})
    return response


def _api_problem(exc: HTTPException):
    headers = {}
    if exc.code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="mets"'
    elif exc.code == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    elif exc.code == 429:
        headers["Retry-After"] = str(_retry_after())
    return problem(exc.code or 500, exc.description or "", getattr(exc, "errors", None), headers)


def _retry_after() -> int:
    """Seconds until the limit that refused this request lets one through again (at least 1)."""
    try:
        current = limiter.current_limit
        return max(1, math.ceil(current.reset_at - time.time())) if current else 60
    except Exception:  # the limiter's store is down: a plausible wait rather than a 500 on a 429
        return 60


def init_app(app):
    @app.errorhandler(HTTPException)
    def http_error(exc):
        # Only the API's: the site's own pages keep Werkzeug's answers for the codes handled nowhere below.
        return _api_problem(exc) if is_api() else exc

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_template("errors/error.html", code=400, title="Form expired",
                               message="This form was open too long or came from another site. "
                                       "Go back, reload the page and try again."), 400

    @app.errorhandler(404)
    def not_found(exc):
        if is_api():
            return _api_problem(exc)
        return render_template("errors/error.html", code=404, title="Not found",
                               message="There is nothing here, or you do not have access to it."), 404

    @app.errorhandler(405)
    def not_allowed(exc):
        if is_api():
            return _api_problem(exc)
        return render_template("errors/error.html", code=405, title="Not allowed",
                               message="That action is not available here."), 405

    @app.errorhandler(413)
    def too_large(exc):
        if is_api():
            return _api_problem(exc)
        # Werkzeug refuses the body before anything reads it (CSRF included): nothing was stored.
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        size = f"{limit / (1024 * 1024):g} MB" if limit >= 1024 * 1024 else f"{limit // 1024} kB"
        return render_template("errors/error.html", code=413, title="Too large to send",
                               message=f"What you sent is larger than the {size} this site accepts, so nothing "
                                       f"was saved. Shorten the text, or split it into several messages."), 413

    @app.errorhandler(429)
    def too_many(exc):
        if is_api():
            return _api_problem(exc)
        return render_template("errors/error.html", code=429, title="Too many requests",
                               message="Please wait a few minutes and try again."), 429

    @app.errorhandler(500)
    def server_error(exc):
        db.session.rollback()
        if is_api():
            return problem(500, "The error was logged. Nothing you sent was half-saved; please try again.")
        return render_template("errors/error.html", code=500, title="Something went wrong",
                               message="The error was logged. Nothing you sent was half-saved; please try again."), 500
