"""The portal sign-in email: queued in the outbox as critical mail (the customer is waiting)."""
from functools import lru_cache

from flask import current_app, has_request_context, url_for

from mets.services.directory import portal_auth
from mets.extensions import db
from mets.models import CRITICAL
from mets.services import outbox


def sign_in_url(email: str, next_path: str | None = None) -> str:
    """An absolute, signed, expiring sign-in link under METS_BASE_URL."""
    token = portal_auth.make_token(current_app.config["SECRET_KEY"], email, next_path)
    return current_app.config["METS_BASE_URL"] + url_for("portal.redeem", token=token)


def _path(endpoint: str, **values) -> str:
    if has_request_context():
        return url_for(endpoint, **values)
    # Jobs run in an app context with no request, where url_for needs SERVER_NAME; the path alone does not.
    return _built(current_app.url_map, endpoint, tuple(sorted(values.items())))


@lru_cache(maxsize=4096)
def _built(url_map, endpoint: str, values: tuple) -> str:
    # A path is a pure function of the app's (fixed) routes and the values: the tick links each of its
    # tickets in several mails (the SLA warning, each level), and every staff mail to the portal.
    return url_map.bind("localhost").build(endpoint, dict(values))


def absolute_url(endpoint: str, **values) -> str:
    """METS_BASE_URL + the endpoint's path; works in jobs too (an app context with no request)."""
    return current_app.config["METS_BASE_URL"] + _path(endpoint, **values)


def ticket_link(email: str, ticket_number: str) -> str:
    """A signed link that signs the customer in and opens their ticket; valid for PORTAL_TICKET_LINK_MAX_AGE."""
    landing = _path("portal.show", number=ticket_number)
    token = portal_auth.make_token(current_app.config["SECRET_KEY"], email, landing, kind=portal_auth.TICKET)
    return absolute_url("portal.redeem", token=token)


def send_sign_in_link(email: str, next_path: str | None = None) -> str:
    """Queue the link (the caller commits); in the embedded run (no MAIL_SERVER) also print it to the console."""
    link = sign_in_url(email, next_path)
    minutes = current_app.config["PORTAL_LINK_MAX_AGE"] // 60
    text = (f"Hello,\n\nUse this link to sign in to the support portal:\n\n{link}\n\n"
            f"It works for {minutes} minutes. If you did not ask for it, ignore this email.\n")
    html = (f"<p>Hello,</p><p><a href=\"{link}\">Sign in to the support portal</a></p>"
            f"<p>The link works for {minutes} minutes. If you did not ask for it, ignore this email.</p>")
    outbox.queue_message(db.session, to=email, subject="Your sign-in link", text=text, html=html, audience="customer",
                         priority=CRITICAL, event_name="sign_in")
    if not current_app.config.get("MAIL_SERVER"):
        print(f"[mets] portal sign-in link for {email}: {link}", flush=True)
    return link

