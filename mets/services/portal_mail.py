"""The portal sign-in email (sent directly until the notifications issue brings the outbox)."""
from flask import current_app, url_for

from mets.services import portal_auth
from mets.services.mailer import send_email


def sign_in_url(email: str, next_path: str | None = None) -> str:
    """An absolute, signed, expiring sign-in link under METS_BASE_URL."""
    token = portal_auth.make_token(current_app.config["SECRET_KEY"], email, next_path)
    return current_app.config["METS_BASE_URL"] + url_for("portal.redeem", token=token)


def send_sign_in_link(email: str, next_path: str | None = None) -> str:
    """Email the link; in the embedded run (no MAIL_SERVER) also print it to the console."""
    link = sign_in_url(email, next_path)
    minutes = current_app.config["PORTAL_LINK_MAX_AGE"] // 60
    text = (f"Hello,\n\nUse this link to sign in to the support portal:\n\n{link}\n\n"
            f"It works for {minutes} minutes. If you did not ask for it, ignore this email.\n")
    html = (f"<p>Hello,</p><p><a href=\"{link}\">Sign in to the support portal</a></p>"
            f"<p>The link works for {minutes} minutes. If you did not ask for it, ignore this email.</p>")
    send_email(email, "Your sign-in link", text, html)
    if not current_app.config.get("MAIL_SERVER"):
        print(f"[mets] portal sign-in link for {email}: {link}", flush=True)
    return link

