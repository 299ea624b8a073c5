"""Transports for the outbox: SMTP through Flask-Mail (one connection reused for a batch), or a
Maildir under instance/ in the embedded run (no MAIL_SERVER)."""
import mailbox
import os
from email.message import EmailMessage
from email.utils import formataddr, parseaddr

from flask import current_app
from flask_mail import Message

from mets.extensions import mail


def reject_crlf(*values: str | None) -> None:
    """Header values are one line: CR or LF would let data add headers."""
    for value in values:
        if value and ("\r" in value or "\n" in value):
            raise ValueError("header values cannot contain CR or LF")


def display_address(name: str | None, email: str) -> str:
    return formataddr((name, email)) if name else email


class SmtpTransport:
    """One SMTP connection for a batch of messages."""

    def __init__(self):
        self._connection = mail.connect()
        self._connection.__enter__()  # connects (and logs in): refused connections raise here
        host = self._connection.host
        if host is not None and host.sock is not None:
            host.sock.settimeout(current_app.config["MAIL_SMTP_TIMEOUT"])

    def send(self, *, to, subject, text, html, message_id, headers, sender=None) -> None:
        sender = sender or current_app.config["MAIL_DEFAULT_SENDER"]
        reject_crlf(to, subject, sender, message_id, *headers, *headers.values())
        msg = Message(subject=subject, recipients=[to], body=text, html=html, sender=sender, extra_headers=headers)
        msg.msgId = message_id  # our stable id (extra_headers would add a second Message-ID)
        # Bounces go to the install's address, whichever entity the message is from.
        self._connection.send(msg, envelope_from=parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1])

    def close(self) -> None:
        try:
            self._connection.__exit__(None, None, None)
        except Exception:  # QUIT on a dead connection: nothing left to tidy
            pass


class MaildirTransport:
    """The embedded run's "SMTP server": every message lands in instance/maildir."""

    def __init__(self):
        path = current_app.config["MAILDIR"]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._box = mailbox.Maildir(path, create=True)

    def send(self, *, to, subject, text, html, message_id, headers, sender=None) -> None:
        sender = sender or current_app.config["MAIL_DEFAULT_SENDER"]
        reject_crlf(to, subject, sender, message_id, *headers, *headers.values())
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, to, subject, message_id
        for name, value in headers.items():
            msg[name] = value
        msg.set_content(text)
        if html:
            msg.add_alternative(html, subtype="html")
        self._box.add(msg)

    def close(self) -> None:
        pass


def open_transport():
    """SMTP when MAIL_SERVER is set, else the Maildir."""
    return SmtpTransport() if current_app.config.get("MAIL_SERVER") else MaildirTransport()
