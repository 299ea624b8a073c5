"""Who an API request acts as: the user of its `Authorization: Bearer <token>`, and nobody else.

A session cookie never authenticates an API call: browsers send cookies by themselves, so a cookie-authenticated,
CSRF-exempt API would let any site post as whoever is signed in. `sign_in` puts the token's user where Flask-Login
keeps the request's user (`g._login_user`), before anything reads `current_user`, so the session is never consulted
(nor written: no cookie is set). The routes then use the same scoped loaders and services as the pages.
"""
import hashlib

from flask import g, request
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import Unauthorized

from mets.models import User

SCHEME = "bearer"


def bearer_token() -> str | None:
    """The token of the request's `Authorization: Bearer ...` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == SCHEME else None


def sign_in(user: User | None) -> None:
    """Make `user` the request's current user, or refuse the request with a 401."""
    if user is None:
        raise Unauthorized("Send a valid API token: Authorization: Bearer <token> (make one on your profile page).")
    g._login_user = user  # Flask-Login's place for the request's user: the session is then never read


def rate_key() -> str:
    """The API's rate limits count per token (hashed: the store never holds a token), else per client address."""
    token = bearer_token()
    if token:
        return "api-token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "api-client:" + (get_remote_address() or "")
