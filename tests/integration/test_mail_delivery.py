"""Mail from change to inbox with the real parts: PostgreSQL, Redis, `python worker.py` processes
and an aiosmtpd SMTP server — including the failures an operator meets (SMTP down, a worker
killed mid-batch, Redis down)."""
import re
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import CRITICAL, Ticket
from mets.services import outbox
from mets.services.sla import tick as sla_tick
from tests.conftest import login, login_customer, text_of
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket
from tests.integration.mail_helpers import (SENDER, all_sent, app_overrides, mail_config, outbox_rows,  # noqa: F401
                                            start_worker, statuses)
from tests.servers import wait_until

# The workers need a server database: these run on PostgreSQL only (never skipped there).
pytestmark = [pytest.mark.postgresql, pytest.mark.parametrize("backend", ["postgresql"]), pytest.mark.committing]


def parts(message) -> dict[str, str]:
    return {p.get_content_type(): p.get_content() for p in message.walk() if p.get_content_maintype() == "text"}


def by_recipient(sink) -> dict[str, list]:
    found: dict[str, list] = {}
    for envelope, message in zip(sink.envelopes, sink.messages):
        for address in envelope.rcpt_tos:
            found.setdefault(address, []).append(message)
    return found


def queue_plain(session, count: int, prefix: str = "Message", **kw) -> None:
    for i in range(count):
        outbox.queue_message(session, to=f"reader{i}@example.com", subject=f"{prefix} {i}",
                             text=f"{prefix} {i} body", **kw)
    session.commit()


def test_a_new_ticket_mails_each_recipient_once_with_a_portal_link_that_works(app, session, client, sink,
                                                                                start_worker):
    acme = make_entity("Acme", "acme")
    alice = make_staff(acme, name="Alice Agent", email="alice@acme.example")
    make_staff(acme, name="Bob Agent", email="bob@acme.example")
    make_staff(acme, role="manager", name="Maria Manager", email="maria@acme.example")
    make_staff(make_entity("Globex", "globex"), email="gus@globex.example")  # another entity's agent
    session.commit()
    start_worker()

    login(client, alice)
    response = client.post("/tickets/new", data={
        "entity_id": str(acme.id), "customer_email": "nina@example.com", "customer_name": "Nina New",
        "subject": "Cannot download invoice", "body": "The link gives an error.", "priority": "high"})
    assert response.status_code == 303
    number = session.scalar(select(Ticket.number))
    session.rollback()

    wait_until(lambda: all_sent(session, 3) and len(sink.envelopes) >= 3, what="three emails sent",
               state=lambda: statuses(session))
    rows = {r.recipient_email: r for r in outbox_rows(session)}
    inbox = by_recipient(sink)
    # Customer and the entity's other staff; not Alice, who made the change, nor Globex.
    assert {a: len(m) for a, m in inbox.items()} == {"nina@example.com": 1, "bob@acme.example": 1,
                                                      "maria@acme.example": 1}
    for address, [message] in inbox.items():
        assert message["From"] == SENDER
        assert message["Auto-Submitted"] == "auto-generated"
        assert message.get_all("Message-ID") == [rows[address].message_id]

    [to_customer] = inbox["nina@example.com"]
    assert to_customer["Subject"] == f"[{number}] We have received your request: Cannot download invoice"
    assert to_customer["To"] == "Nina New <nina@example.com>"
    text = parts(to_customer)["text/plain"]
    assert "Thank you for contacting Acme" in text and "The link gives an error." in text
    [link] = [u for u in re.findall(r"https?://\S+", text) if "/portal/" in u]
    assert link.startswith("http://mets.test/portal/auth/")
    assert link in parts(to_customer)["text/html"]

    [to_agent] = inbox["bob@acme.example"]
    assert to_agent["Subject"] == f"[{number}] New ticket: Cannot download invoice"
    assert "Customer: Nina New" in parts(to_agent)["text/plain"]
    assert f"http://mets.test/tickets/{number}" in parts(to_agent)["text/plain"]

    # The customer clicks the link in a browser that was never signed in.
    browser = app.test_client()
    landed = browser.get(urlsplit(link).path)
    assert landed.status_code == 302
    assert urlsplit(landed.headers["Location"]).path == f"/portal/tickets/{number}"
    page = browser.get(f"/portal/tickets/{number}")
    assert page.status_code == 200
    assert "Cannot download invoice" in text_of(page)


def test_mail_waits_while_smtp_refuses_connections_and_arrives_once_it_is_back(session, smtp_server, sink,
                                                                                 start_worker):
    smtp_server.stop()  # nothing listens on the mail port yet
    queue_plain(session, 6)
    start_worker(MAIL_MAX_ATTEMPTS=8)

    def retried():
        rows = outbox_rows(session)
        return all(r.status == "pending" and r.attempts >= 2 for r in rows) and rows

    rows = wait_until(retried, timeout=30, what="every row retried twice", state=lambda: outbox_rows(session))
    for row in rows:
        assert "Connection refused" in row.error_message
        assert [e["error"] is not None for e in row.attempt_log] == [True] * row.attempts
        # Exponential backoff: the next try waits 1 s, 2 s, 4 s... after the last one.
        last_try = datetime.fromisoformat(row.attempt_log[-1]["at"])
        assert row.next_attempt_at - last_try == timedelta(seconds=2 ** (row.attempts - 1))
    assert sink.envelopes == []

    smtp_server.start()
    wait_until(lambda: all_sent(session, 6), timeout=30, what="all sent", state=lambda: statuses(session))
    assert sorted(sink.message_ids().values()) == [1] * 6  # every message exactly once, nothing lost
    assert set(sink.message_ids()) == {r.message_id for r in outbox_rows(session)}


def test_a_worker_killed_mid_batch_leaves_at_most_one_duplicate(session, sink, start_worker):
    sink.delay = 0.25  # a slow SMTP server: the batch takes seconds
    queue_plain(session, 24, prefix="Notice")
    first = start_worker(cron=False)  # no sweep: its own claims must not look stale while it sends
    wait_until(lambda: len(sink.envelopes) >= 3, timeout=30, what="a few messages delivered")
    first.kill()
    sink.delay = 0
    assert statuses(session).get("sending", 0) > 0  # the dead worker's claims

    start_worker()  # a new worker; its scheduler's sweep frees the stale claims
    wait_until(lambda: all_sent(session, 24), timeout=30, what="all sent", state=lambda: statuses(session))

    rows = {r.subject: r for r in outbox_rows(session)}
    delivered: dict[str, list[str]] = {}
    for message in sink.messages:
        delivered.setdefault(message["Subject"], []).append(message["Message-ID"])
    assert set(delivered) == set(rows)  # nothing lost
    twice = [s for s, ids in delivered.items() if len(ids) > 1]
    assert len(twice) <= 1 and all(len(ids) <= 2 for ids in delivered.values()), delivered
    for subject, ids in delivered.items():
        assert set(ids) == {rows[subject].message_id}  # a resend carries the same Message-ID
    reclaimed = [r for r in rows.values() if any("stopped while sending" in (e["error"] or "") for e in r.attempt_log)]
    assert reclaimed and all(r.attempts == 2 for r in reclaimed)


def test_tickets_created_while_redis_is_down_are_mailed_once_it_is_back(app, session, client, redis_server, sink,
                                                                         start_worker):
    acme = make_entity("Acme", "acme")
    make_staff(acme, name="Bob Agent", email="bob@acme.example")
    make_staff(acme, role="manager", name="Maria Manager", email="maria@acme.example")
    nina = make_customer("Nina New", "nina@example.com")
    session.commit()
    login_customer(client, nina)

    redis_server.stop()
    for i in range(3):
        started = time.monotonic()
        response = client.post("/portal/tickets/new", data={
            "entity_id": str(acme.id), "subject": f"Printer {i} is offline", "body": "Since this morning.",
            "priority": "normal"})
        assert response.status_code == 303  # the customer notices nothing
        assert time.monotonic() - started < 5
        assert f"Printer {i} is offline" in text_of(client.get(response.headers["Location"]))
    rows = outbox_rows(session)
    assert {r.recipient_email for r in rows} >= {"bob@acme.example", "maria@acme.example"}
    assert len(rows) >= 6 and {(r.status, r.attempts) for r in rows} == {("pending", 0)}

    redis_server.start()  # empty: the jobs enqueued before the outage never existed
    start_worker()  # with the scheduler, whose sweep hands the waiting rows to the queues
    wait_until(lambda: all_sent(session, len(rows)), timeout=30, what="all sent", state=lambda: statuses(session))
    assert sorted(sink.message_ids().values()) == [1] * len(rows)
    assert set(sink.message_ids()) == {r.message_id for r in rows}


def test_an_sla_breach_email_overtakes_a_backlog(app, session, sink, start_worker):
    batch = app.config["MAIL_BATCH_SIZE"] = 5  # the web side and the worker agree on it, as in production
    acme = make_entity("Acme", "acme")
    make_staff(acme, role="manager", name="Maria Manager", email="maria@acme.example")
    make_rule(acme, "24/7", response_minutes=30, business_hours_only=False, warnings=[])
    with clock.freeze(datetime.now(timezone.utc) - timedelta(hours=2)):
        ticket = make_ticket(acme, customer=make_customer(), subject="Server room is flooding")
    queue_plain(session, 40, prefix="Newsletter")  # the backlog, queued first
    sla_tick.tick(session)  # the breach: its email is queued last
    critical = [r for r in outbox_rows(session) if r.priority == CRITICAL]
    assert [r.recipient_email for r in critical] == ["maria@acme.example"]
    total = len(outbox_rows(session))

    start_worker(cron=False, MAIL_BATCH_SIZE=batch)
    wait_until(lambda: all_sent(session, total), timeout=30, what="all sent", state=lambda: statuses(session))
    order = [m["Message-ID"] for m in sink.messages]
    assert order.index(critical[0].message_id) < batch, "the breach email waited behind the backlog"
    [breach] = [m for m in sink.messages if m["Message-ID"] == critical[0].message_id]
    assert breach["Subject"].startswith(f"[{ticket.number}] SLA breached")
