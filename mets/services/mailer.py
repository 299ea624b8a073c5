"""Transports for the outbox: SMTP over Flask-Mail's connection (one reused for a batch), or a
Maildir under instance/ in the embedded run (no MAIL_SERVER). Both send the same bytes."""
import mailbox
import os
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr

from flask import current_app

from mets.extensions import mail

# Quoted-printable UTF-8 bodies: readable in a raw Maildir, safe on any SMTP server.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


def reject_crlf(*values: str | None) -> None:
    """Header values are one line: CR or LF would let data add headers."""
    for value in values:
        if value and ("\r" in value or "\n" in value):
            raise ValueError("header values cannot contain CR or LF")


def display_address(name: str | None, email: str) -> str:
    return formataddr((name, email)) if name else email


def build_message(*, sender: str, to: str, subject: str, text: str, html: str | None, message_id: str,
                  headers: dict[str, str]) -> Message:
    """The message as sent: text and HTML alternatives, our Message-ID, Auto-Submitted and friends.

    Built with the stdlib's compat32 classes: Flask-Mail's own Message rebuilds every header
    through the modern email policy, which cost more than the SMTP exchange itself.
    """
    reject_crlf(sender, to, subject, message_id, *headers, *headers.values())
    plain = MIMEText(text, "plain", _UTF8)
    if html:
        msg = MIMEMultipart("alternative")
        msg.attach(plain)
        msg.attach(MIMEText(html, "html", _UTF8))
    else:
        msg = plain
    msg["From"], msg["To"] = sender, to
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    msg["Date"], msg["Message-ID"] = formatdate(usegmt=True), message_id
    for name, value in headers.items():
        msg[name] = value
    return msg


class SmtpTransport:
    """One Flask-Mail SMTP connection (TLS and login as configured) for a batch of messages."""

    def __init__(self):
        self._connection = mail.connect()
        self._connection.__enter__()  # connects (and logs in): refused connections raise here
        host = self._connection.host
        if host is not None and host.sock is not None:
            host.sock.settimeout(current_app.config["MAIL_SMTP_TIMEOUT"])

    def send(self, *, to_email: str, message: Message) -> None:
        # Bounces go to the install's address, whichever entity the message is from.
        envelope_from = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
        # SMTP wants CRLF line ends; smtplib leaves bytes as they are.
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        self._connection.host.sendmail(envelope_from, [to_email], data)

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

    def send(self, *, to_email: str, message: Message) -> None:
        self._box.add(message)

    def close(self) -> None:
        pass


def open_transport():
    """SMTP when MAIL_SERVER is set, else the Maildir."""
    return SmtpTransport() if current_app.config.get("MAIL_SERVER") else MaildirTransport()
