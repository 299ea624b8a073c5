"""Sending one email now: over SMTP with Flask-Mail, or into a Maildir in the embedded run.

The notifications issue replaces direct sending with the outbox; until then only the
portal sign-in link uses this.
"""
import mailbox
import os
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from flask import current_app
from flask_mail import Message

from mets.extensions import mail


def _reject_crlf(*values: str) -> None:
    for value in values:
        if "\r" in value or "\n" in value:
            raise ValueError("header values cannot contain CR or LF")


def send_email(to: str, subject: str, text: str, html: str | None = None, sender: str | None = None) -> str:
    """Send one message and return its Message-ID."""
    sender = sender or current_app.config["MAIL_DEFAULT_SENDER"]
    _reject_crlf(to, subject, sender)
    domain = sender.rsplit("@", 1)[-1].strip(">") or "mets.localhost"
    message_id = make_msgid(domain=domain)
    headers = {"Auto-Submitted": "auto-generated"}
    if current_app.config.get("MAIL_SERVER"):
        msg = Message(subject=subject, recipients=[to], body=text, html=html, sender=sender, extra_headers=headers)
        # Flask-Mail writes its own Message-ID (and extra_headers would add a second one): use ours.
        msg.msgId = message_id
        mail.send(msg)
    else:
        _write_maildir(to, subject, text, html, sender, {**headers, "Message-ID": message_id})
    return message_id


def _write_maildir(to, subject, text, html, sender, headers) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    for name, value in headers.items():
        msg[name] = value
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    path = current_app.config["MAILDIR"]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    mailbox.Maildir(path, create=True).add(msg)


def display_address(name: str | None, email: str) -> str:
    return formataddr((name, email)) if name else email
