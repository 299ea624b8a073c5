"""What the sender does with refusals, hostile header data and rate limits, against a real aiosmtpd
server. `mail_delivery.deliver_due` runs in-process with a frozen clock (no worker, no Redis), so
backoffs and hourly limits take no real time."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from mets import clock
from mets.models import CRITICAL, QueuedEmail, Ticket
from mets.services import outbox, tickets
from mets.services.outbox import smtp as mail_delivery
from tests.conftest import login
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.integration.mail_helpers import mail_settings, outbox_rows

pytestmark = [pytest.mark.postgresql, pytest.mark.parametrize("backend", ["postgresql"]), pytest.mark.committing]

T0 = datetime(2026, 11, 27, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def app_overrides(smtp_server) -> dict:
    return mail_settings(None, smtp_server.port, MAIL_RETRY_BASE_SECONDS=60)  # no Redis: nothing enqueued


def queue(session, to: str, subject: str, at: datetime = T0, **kw):
    with clock.freeze(at):
        row = outbox.queue_message(session, to=to, subject=subject, text=f"{subject}.", **kw)
        session.commit()
    return row


def deliver_at(session, at: datetime):
    with clock.freeze(at):
        return mail_delivery.deliver_due(session)


def rows_by_recipient(session) -> dict:
    return {r.recipient_email: r for r in outbox_rows(session)}


def test_a_550_fails_that_message_at_once_and_the_others_are_sent(session, sink):
    sink.replies["gone@example.com"] = "550 5.1.1 <gone@example.com>: Recipient address rejected: no such user"
    for to in ("ann@example.com", "gone@example.com", "cid@example.com"):
        queue(session, to, f"Hello {to}")
    deliver_at(session, T0)

    rows = rows_by_recipient(session)
    gone = rows["gone@example.com"]
    assert (gone.status, gone.attempts) == ("failed", 1)
    assert "550" in gone.error_message and "no such user" in gone.error_message
    assert rows["ann@example.com"].status == rows["cid@example.com"].status == "sent"
    assert sorted(sink.recipients()) == ["ann@example.com", "cid@example.com"]
    deliver_at(session, T0 + timedelta(days=1))
    assert rows_by_recipient(session)["gone@example.com"].attempts == 1  # never tried again


def test_a_451_is_retried_with_backoff_until_the_last_attempt_then_fails(app, session, sink):
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    sink.replies["busy@example.com"] = "451 4.7.1 Greylisted, try again later"
    queue(session, "busy@example.com", "Your request")

    deliver_at(session, T0)
    row = rows_by_recipient(session)["busy@example.com"]
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451" in row.error_message and "Greylisted" in row.error_message
    assert row.next_attempt_at == T0 + timedelta(seconds=60)
    deliver_at(session, T0 + timedelta(seconds=30))  # not due yet
    assert rows_by_recipient(session)["busy@example.com"].attempts == 1

    deliver_at(session, T0 + timedelta(seconds=60))
    row = rows_by_recipient(session)["busy@example.com"]
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 2, T0 + timedelta(seconds=180))

    deliver_at(session, T0 + timedelta(seconds=180))
    row = rows_by_recipient(session)["busy@example.com"]
    assert (row.status, row.attempts) == ("failed", 3)
    assert "451" in row.error_message and "Greylisted" in row.error_message
    assert [bool(e["error"]) for e in row.attempt_log] == [True, True, True]
    assert sink.envelopes == []


def test_a_subject_with_a_line_break_cannot_add_a_header(session, sink):
    acme = make_entity("Acme", "acme")
    agent = make_staff(acme, name="Alice Agent", email="alice@acme.example")
    ticket = make_ticket(acme, customer=make_customer("Nina", "nina@example.com"), subject="Printer broken")
    # Imported from an older system, the subject holds a line break that the forms would refuse.
    session.execute(update(Ticket).where(Ticket.id == ticket.id)
                    .values(subject="Printer broken\r\nBcc: evil@example.com"))
    session.commit()
    session.expire_all()
    tickets.add_reply(session, session.get(Ticket, ticket.id), actor=agent, body="We are on it.")
    session.commit()
    deliver_at(session, clock.now())

    [message] = [m for e, m in zip(sink.envelopes, sink.messages)
                 if e.rcpt_tos == ["nina@example.com"] and "New reply" in m["Subject"]]
    # One Subject (folded onto a continuation line when long, as SMTP allows), no Bcc header.
    assert " ".join(message["Subject"].split()) == (
        f"[{ticket.number}] New reply to your request: Printer broken Bcc: evil@example.com")
    assert message.get_all("Subject") and len(message.get_all("Subject")) == 1
    assert message["Bcc"] is None
    assert "evil@example.com" not in sink.recipients()


def test_header_values_with_line_breaks_are_refused_or_folded_at_queue_time(session, sink):
    assert outbox.queue_message(session, to="victim@example.com\r\nBcc: evil@example.com", subject="Hi",
                                text="Hi") is None
    row = queue(session, "ann@example.com", "Hi\r\nBcc: evil@example.com", name="Ann\nBcc: evil@example.com")
    assert (row.subject, row.recipient_name) == ("Hi Bcc: evil@example.com", "Ann Bcc: evil@example.com")
    # A row written around queue_message (a bad migration, a hand edit) is refused by the transport.
    forged = queue(session, "bob@example.com", "Forged")
    session.execute(update(QueuedEmail).where(QueuedEmail.id == forged.id)
                    .values(subject="Forged\r\nBcc: evil@example.com"))
    session.commit()
    deliver_at(session, clock.now())

    rows = rows_by_recipient(session)
    assert set(rows) == {"ann@example.com", "bob@example.com"}  # nothing for the victim
    assert rows["ann@example.com"].status == "sent"
    assert rows["bob@example.com"].status == "failed" and "CR or LF" in rows["bob@example.com"].error_message
    [message] = sink.messages
    assert message["Subject"] == "Hi Bcc: evil@example.com" and message["Bcc"] is None
    assert sink.recipients() == ["ann@example.com"]


def test_the_web_form_refuses_a_subject_with_a_line_break(app, session, client):
    acme = make_entity("Acme", "acme")
    alice = make_staff(acme, email="alice@acme.example")
    session.commit()
    login(client, alice)
    response = client.post("/tickets/new", data={
        "entity_id": str(acme.id), "customer_email": "nina@example.com", "subject": "Hi\r\nBcc: evil@example.com",
        "body": "Body", "priority": "normal"})
    assert response.status_code == 422
    assert outbox_rows(session) == []


def test_the_hourly_limit_per_recipient_defers_mail_and_lets_critical_mail_through(app, session, sink):
    app.config["MAIL_RATE_PER_RECIPIENT_HOUR"] = 2
    for i in range(5):
        queue(session, "busy@example.com", f"Update {i}")
    deliver_at(session, T0)

    rows = outbox_rows(session)
    assert [r.status for r in rows] == ["sent", "sent", "pending", "pending", "pending"]
    for row in rows[2:]:
        assert row.attempts == 0 and "hourly limit" in row.error_message
        assert row.next_attempt_at == T0 + timedelta(hours=1)
    assert len(sink.envelopes) == 2

    queue(session, "busy@example.com", "SLA breached", at=T0 + timedelta(minutes=5), priority=CRITICAL,
          event_name="sla_breach")
    deliver_at(session, T0 + timedelta(minutes=5))
    assert [m["Subject"] for m in sink.messages][-1] == "SLA breached"  # not held back

    deliver_at(session, T0 + timedelta(minutes=61))  # the first two left the window; the breach has not
    deliver_at(session, T0 + timedelta(minutes=66))
    deliver_at(session, T0 + timedelta(minutes=122))
    assert [r.status for r in outbox_rows(session)] == ["sent"] * 6  # deferred, never dropped
    assert [m["Subject"] for m in sink.messages] == [
        "Update 0", "Update 1", "SLA breached", "Update 2", "Update 3", "Update 4"]


def test_sign_in_links_are_critical_but_still_limited_per_recipient(app, session, sink):
    # Anyone may ask for a link to any address: the limit keeps that from flooding an inbox.
    app.config["MAIL_RATE_PER_RECIPIENT_HOUR"] = 2
    for i in range(3):
        queue(session, "victim@example.com", f"Your sign-in link {i}", priority=CRITICAL, event_name="sign_in")
    deliver_at(session, T0)
    assert [r.status for r in outbox_rows(session)] == ["sent", "sent", "pending"]
    assert len(sink.envelopes) == 2


def test_the_per_minute_cap_sends_only_that_many_a_minute_most_urgent_first(app, session, sink):
    app.config["MAIL_RATE_PER_MINUTE"] = 3
    for i in range(5):
        queue(session, f"reader{i}@example.com", f"Digest {i}")
    queue(session, "maria@example.com", "SLA breached", priority=CRITICAL)
    deliver_at(session, T0)
    assert [m["Subject"] for m in sink.messages] == ["SLA breached", "Digest 0", "Digest 1"]
    deliver_at(session, T0 + timedelta(seconds=59))
    assert len(sink.envelopes) == 3
    deliver_at(session, T0 + timedelta(seconds=61))
    assert len(sink.envelopes) == 6
    assert {r.status for r in outbox_rows(session)} == {"sent"}
