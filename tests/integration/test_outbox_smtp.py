"""The outbox over SMTP: a real aiosmtpd server on 127.0.0.1 whose answers the test chooses (or a port
nobody listens on). Retries with backoff, permanent refusals, an admin's retry, the headers sent.
"""
import email
import email.policy
from datetime import datetime, timedelta, timezone

import pytest

from mets import clock
from mets.models import FAILED, PENDING, SENT, QueuedEmail
from mets.services import outbox
from mets.services.outbox import smtp as mail_delivery
from tests.servers import free_port

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
BASE = 60  # MAIL_RETRY_BASE_SECONDS

# Tests decorated with these take a `mail_via` argument: SMTP to the aiosmtpd server, or to a port nobody listens on.
VIA_SMTP = pytest.mark.parametrize("mail_via", ["smtp"])
VIA_SMTP_DOWN = pytest.mark.parametrize("mail_via", ["smtp_down"])


@pytest.fixture
def app_overrides(request):
    """Mail to the SMTP server, or to a port nobody listens on, as the test's `mail_via` says."""
    via = request.node.callspec.params["mail_via"]
    if via == "smtp":
        server = request.getfixturevalue("smtp_server")
        return {"MAIL_SERVER": server.hostname, "MAIL_PORT": server.port, "MAIL_SUPPRESS_SEND": False}
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": free_port(), "MAIL_SUPPRESS_SEND": False}


@pytest.fixture
def server(sink):
    """What the SMTP server received; `rcpt` and `data` map an address to the answer its RCPT or DATA gets."""
    return sink


def queue(session, to="bob@example.com", subject="Hello", **kw) -> QueuedEmail | None:
    kw.setdefault("now", T0)
    return outbox.queue_message(session, to=to, subject=subject, text=kw.pop("text", "Plain body"),
                                html=kw.pop("html", "<p>HTML body</p>"), **kw)


def reload(session, row: QueuedEmail) -> QueuedEmail:
    session.expire_all()
    return session.get(QueuedEmail, row.id)


def deliver_at(session, at: datetime):
    with clock.freeze(at):
        return mail_delivery.deliver_due(session)


@VIA_SMTP
def test_a_temporary_refusal_is_retried_with_exponential_backoff_then_fails(app, session, mail_via, server):
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    server.data["bob@example.com"] = "451 4.3.0 try later"
    row = queue(session)
    session.commit()

    result = deliver_at(session, T0)
    assert (result.sent, result.retrying, result.failed) == (0, 1, 0)
    row = reload(session, row)
    assert (row.status, row.attempts, row.next_attempt_at) == (PENDING, 1, T0 + timedelta(seconds=BASE))
    assert "451" in row.error_message and "try later" in row.error_message

    assert deliver_at(session, T0 + timedelta(seconds=BASE - 1)).claimed == 0  # still backing off
    second = T0 + timedelta(seconds=BASE)
    deliver_at(session, second)
    row = reload(session, row)
    assert (row.status, row.attempts, row.next_attempt_at) == (PENDING, 2, second + timedelta(seconds=2 * BASE))

    third = second + timedelta(seconds=2 * BASE)
    result = deliver_at(session, third)
    assert (result.retrying, result.failed) == (0, 1)
    row = reload(session, row)
    assert (row.status, row.attempts, row.sent_at) == (FAILED, 3, None)
    assert "451" in row.error_message
    assert [entry["at"] for entry in row.attempt_log] == [t.isoformat() for t in (T0, second, third)]
    assert all("451" in entry["error"] for entry in row.attempt_log)
    assert deliver_at(session, third + timedelta(days=1)).claimed == 0  # failed for good
    assert server.envelopes == []


@VIA_SMTP
def test_a_failed_message_retried_by_an_admin_is_sent_next_time(app, session, mail_via, server):
    server.rcpt["bob@example.com"] = "550 5.1.1 No such user"
    row = queue(session)
    session.commit()
    deliver_at(session, T0)
    assert reload(session, row).status == FAILED

    del server.rcpt["bob@example.com"]  # the mailbox exists now
    with clock.freeze(T0 + timedelta(hours=1)):
        outbox.retry(session, reload(session, row))
    session.commit()
    result = deliver_at(session, T0 + timedelta(hours=1))
    assert result.sent == 1
    row = reload(session, row)
    assert (row.status, row.attempts, row.error_message) == (SENT, 2, None)
    assert server.recipients() == ["bob@example.com"]


@VIA_SMTP
@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_permanent_refusal_fails_at_once_and_the_rest_of_the_batch_is_sent(app, session, mail_via, server, stage):
    getattr(server, stage)["bob@example.com"] = "550 5.1.1 No such user"
    bob = queue(session, to="bob@example.com")
    amy = queue(session, to="amy@example.com")
    session.commit()
    result = deliver_at(session, T0)
    assert (result.sent, result.failed, result.retrying) == (1, 1, 0)
    bob = reload(session, bob)
    assert (bob.status, bob.attempts) == (FAILED, 1)
    assert "550" in bob.error_message and "No such user" in bob.error_message
    assert reload(session, amy).status == SENT
    assert server.recipients() == ["amy@example.com"]


@VIA_SMTP_DOWN
def test_a_refused_connection_is_retried_later(app, session, mail_via):
    rows = [queue(session), queue(session, to="amy@example.com")]
    session.commit()
    result = deliver_at(session, T0)
    assert (result.sent, result.retrying, result.failed) == (0, 2, 0)
    for row in rows:
        row = reload(session, row)
        assert (row.status, row.attempts, row.next_attempt_at) == (PENDING, 1, T0 + timedelta(seconds=BASE))
        assert "refused" in row.error_message.lower()


@VIA_SMTP
def test_over_smtp_the_message_carries_its_message_id_and_auto_submitted(app, session, mail_via, server):
    row = queue(session)
    session.commit()
    deliver_at(session, T0)
    [envelope] = server.envelopes
    message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
    assert message.get_all("Message-ID") == [reload(session, row).message_id]
    assert message["Auto-Submitted"] == "auto-generated"
