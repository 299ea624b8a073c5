"""Transports for the outbox: SMTP over Flask-Mail's connection (one reused for a batch), or a
Maildir under instance/ in the embedded run (no MAIL_SERVER). Both send the same message."""
import binascii
import mailbox
import os
import socket
import uuid
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr

from flask import current_app

from mets.extensions import mail

def reject_crlf(*values: str | None) -> None:
    """Header values are one line: CR or LF would let data add headers."""
    for value in values:
        if value and ("\r" in value or "\n" in value):
            raise ValueError("header values cannot contain CR or LF")


def display_address(name: str | None, email: str) -> str:
    return formataddr((name, email)) if name else email


def build_message(*, sender: str, to: str, subject: str, text: str, html: str | None, message_id: str,
                  headers: dict[str, str]) -> bytes:
    """The message as sent (CRLF line ends): text and HTML alternatives in quoted-printable UTF-8,
    our Message-ID, Auto-Submitted and friends.

    Written out directly: building it with Flask-Mail's Message (or the email package's
    generator) re-folds every header and cost more than the SMTP exchange itself.
    """
    reject_crlf(sender, to, subject, message_id, *headers, *headers.values())
    head = {"From": _address(sender), "To": _address(to), "Subject": _header_text(subject),
            "Date": formatdate(usegmt=True),
            "Message-ID": message_id, "MIME-Version": "1.0", **headers}
    if html:
        boundary = f"=_mets_{uuid.uuid4().hex}"
        head["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
        body = (f"--{boundary}\r\n{_part_head('plain')}\r\n{_qp(text)}\r\n"
                f"--{boundary}\r\n{_part_head('html')}\r\n{_qp(html)}\r\n--{boundary}--\r\n")
    else:
        body, head = _qp(text), {**head, **_part_headers("plain")}
    lines = "".join(f"{name}: {value}\r\n" for name, value in head.items())
    return f"{lines}\r\n{body}".encode("ascii")


def _address(value: str) -> str:
    """"Name <addr>" with a non-ASCII name encoded (formataddr's RFC 2047 words)."""
    return value if value.isascii() else formataddr(parseaddr(value))


def _header_text(value: str) -> str:
    """ASCII as is; anything else as RFC 2047 encoded words (folded)."""
    return value if value.isascii() else Header(value, "utf-8").encode(linesep="\r\n")


def _part_headers(subtype: str) -> dict[str, str]:
    return {"Content-Type": f"text/{subtype}; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable"}


def _part_head(subtype: str) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in _part_headers(subtype).items())


def _qp(value: str) -> str:
    """Quoted-printable with CRLF line ends: 7-bit, lines under 77 characters."""
    normalized = value.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(normalized, istext=True).decode("ascii").replace("\n", "\r\n")


class SmtpTransport:
    """One Flask-Mail SMTP connection (TLS and login as configured) for a batch of messages."""

    def __init__(self):
        self._connection = mail.connect()
        # Flask-Mail opens smtplib.SMTP without a timeout; the default timeout covers the connect,
        # the greeting and every later read, so a server that never answers cannot hang a worker.
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(current_app.config["MAIL_SMTP_TIMEOUT"])
        try:
            self._connection.__enter__()  # connects (and logs in): refused connections raise here
        finally:
            socket.setdefaulttimeout(previous)

    def send(self, *, to_email: str, message: bytes) -> None:
        # Bounces go to the install's address, whichever entity the message is from.
        envelope_from = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
        if self._connection.host is not None:  # None: Flask-Mail's MAIL_SUPPRESS_SEND
            self._connection.host.sendmail(envelope_from, [to_email], message)

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

    def send(self, *, to_email: str, message: bytes) -> None:
        self._box.add(message.replace(b"\r\n", b"\n"))  # a file on this machine: local line ends

    def close(self) -> None:
        pass


def open_transport():
    """SMTP when MAIL_SERVER is set, else the Maildir."""
    return SmtpTransport() if current_app.config.get("MAIL_SERVER") else MaildirTransport()
