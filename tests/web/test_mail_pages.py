"""The admin mail pages: the queue and its filters, one message, retry / cancel / bulk retry, the pause
switch, the SMTP settings and test email, notification settings, and the nav's failed-mail badge."""
import html as html_module
import mailbox
import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from mets import clock
from mets.extensions import db
from mets.models import CANCELLED, CRITICAL, FAILED, PENDING, SENT, NotificationSetting, QueuedEmail
from mets.services import outbox
from mets.services.outbox import smtp as mail_delivery
from tests.conftest import HTMX, count_rows, login
from tests.factories import make_entity, make_staff, make_ticket
from tests.web.helpers import screen, vary

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
ROW_FIELDS = ("attempts", "max_attempts", "error_message", "attempt_log", "sent_at", "next_attempt_at")


@pytest.fixture
def world(session, client):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    admin = make_staff(name="Ada Admin", is_admin=True)
    agent = make_staff(acme, name="Gus Agent")
    session.commit()
    login(client, admin)
    return {"acme": acme, "billing": billing, "globex": globex, "admin": admin, "agent": agent}


def queue(to: str = "someone@example.com", subject: str = "Hello", *, status: str = PENDING, **kw) -> QueuedEmail:
    """A message queued the way the app queues it, then put in `status` (and other columns) as a worker would."""
    columns = {name: kw.pop(name) for name in ROW_FIELDS if name in kw}
    row = outbox.queue_message(db.session, to=to, subject=subject, text=kw.pop("text", "Hi there."), **kw)
    row.status = status
    for name, value in columns.items():
        setattr(row, name, value)
    db.session.commit()
    return row


def reload(row: QueuedEmail) -> QueuedEmail:
    db.session.expire_all()
    return db.session.get(QueuedEmail, row.id)


def maildir(app) -> list:
    path = app.config["MAILDIR"]
    return list(mailbox.Maildir(path, create=False)) if os.path.isdir(path) else []


def recipients_listed(response) -> list[str]:
    return re.findall(r'<td class="recipient">([^<]+)</td>', response.get_data(as_text=True))


# --- the queue ------------------------------------------------------------------------------------

def test_the_queue_shows_each_message_newest_first(client, world, session):
    ticket = make_ticket(world["billing"], subject="Charged twice")
    session.commit()
    queue("old@example.com", "Older one")
    queue("ann@example.com", "Your ticket", entity=world["billing"], ticket=ticket,
          template_name="ticket-created-customer", status=FAILED, attempts=5, max_attempts=5,
          error_message="SMTP 550: mailbox unavailable " + "x" * 100)
    response = client.get("/admin/mail/")
    assert response.status_code == 200
    page = screen(response)
    assert page.index("Your ticket") < page.index("Older one")
    assert (f"ann@example.com Your ticket ticket-created-customer Acme Billing {ticket.number} Failed 5/5"
            in page)
    assert "SMTP 550: mailbox unavailable xxx" in page and "x" * 100 not in page  # shortened in the table...
    assert 'title="SMTP 550: mailbox unavailable ' + "x" * 100 in response.get_data(as_text=True)  # ...whole on hover
    assert f'href="/tickets/{ticket.number}"' in response.get_data(as_text=True)
    assert "Pending" in page and "now" in page  # the pending one's next attempt


def test_filters_narrow_the_list(client, world):
    queue("ann@acme.example", entity=world["acme"], template_name="ticket-assigned")
    queue("bob@acme.example", entity=world["billing"], template_name="sla-breach-warning", status=FAILED)
    queue("Carl.Sent@globex.example", entity=world["globex"], template_name="ticket-assigned", status=SENT)
    queue("dora@example.com", status=FAILED)

    def listed(query: str) -> set[str]:
        return set(recipients_listed(client.get(f"/admin/mail/?{query}")))

    assert listed("") == {"ann@acme.example", "bob@acme.example", "carl.sent@globex.example", "dora@example.com"}
    assert listed("status=failed") == {"bob@acme.example", "dora@example.com"}
    assert listed(f"entity={world['billing'].id}") == {"bob@acme.example"}
    assert listed("recipient=ACME") == {"ann@acme.example", "bob@acme.example"}
    assert listed("template=ticket-assigned") == {"ann@acme.example", "carl.sent@globex.example"}
    assert listed("template=none") == {"dora@example.com"}
    assert listed(f"status=failed&entity={world['globex'].id}") == set()
    assert listed("status=bogus&entity=x") == listed("")  # unknown values are dropped, not errors


def test_status_tabs_count_within_the_other_filters(client, world):
    queue("a@acme.example", status=FAILED)
    queue("b@acme.example", status=FAILED)
    queue("c@acme.example")
    queue("d@globex.example", status=FAILED)
    page = screen(client.get("/admin/mail/?recipient=acme"))
    assert "All 3 Pending 1 Sending 0 Sent 0 Failed 2 Cancelled 0" in page
    assert "Retry 2 failed" in page


def test_htmx_filtering_answers_with_the_table_only(client, world):
    queue("ann@acme.example")
    response = client.get("/admin/mail/?recipient=ann", headers=HTMX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in vary(response)
    assert body.lstrip().startswith("<div id=\"mail-queue\"") and "<html" not in body
    assert 'hx-push-url="true"' in body and "ann@acme.example" in body
    full = client.get("/admin/mail/?recipient=ann").get_data(as_text=True)
    assert 'id="mail-filters"' in full and 'id="mail-queue"' in full  # the page includes the very partial


def test_the_queue_pages_by_25(client, world):
    for n in range(30):
        queue(f"person{n:02d}@example.com")
    first = client.get("/admin/mail/")
    assert len(recipients_listed(first)) == 25 and "Page 1 of 2" in screen(first)
    assert recipients_listed(first)[0] == "person29@example.com"
    second = client.get("/admin/mail/?page=2")
    assert recipients_listed(second) == [f"person{n:02d}@example.com" for n in range(4, -1, -1)]
    assert recipients_listed(client.get("/admin/mail/?page=99")) == recipients_listed(second)


# --- one message ----------------------------------------------------------------------------------

def test_the_message_page_shows_headers_every_attempt_and_the_parts(client, world, session):
    ticket = make_ticket(world["billing"], subject="Charged twice")
    session.commit()
    row = queue("ann@example.com", "About your ticket", name="Ann Example", entity=world["billing"], ticket=ticket,
                event_name="reply_added", template_name="ticket-reply-customer", html="<p>Hello <b>Ann</b></p>",
                template_data={"ticket_number": ticket.number, "agent": {"name": "Gus"}},
                status=FAILED, attempts=2, max_attempts=2, error_message="SMTP 554: rejected",
                attempt_log=[{"at": "2026-03-02T10:00:00+00:00", "error": "SMTP 451: try again later"},
                             {"at": "2026-03-02T10:01:00+00:00", "error": "SMTP 554: rejected"}])
    response = client.get(f"/admin/mail/{row.id}")
    assert response.status_code == 200
    page = screen(response)
    assert "To Ann Example <ann@example.com>" in page
    assert f"Message-ID {row.message_id}" in page
    assert "Priority 5 (normal)" in page and "Template ticket-reply-customer" in page and "Event reply_added" in page
    assert f"Ticket {ticket.number} Charged twice" in page and "Entity Acme Billing" in page
    assert "Status Failed" in page and "Attempts 2 of 2" in page
    assert "2026-03-02 10:00:00 UTC SMTP 451: try again later" in page
    assert "2026-03-02 10:01:00 UTC SMTP 554: rejected" in page
    assert "Last error SMTP 554: rejected" in page
    assert '<pre class="mail-text">Hi there.</pre>' in response.get_data(as_text=True)
    assert f"ticket_number {ticket.number}" in page and 'agent {"name": "Gus"}' in page
    assert "Retry now" in page and "Cancel" in page


def test_html_parts_only_ever_live_in_the_sandboxed_iframe(client, world):
    evil = '<p>Hi</p><script>alert("owned")</script><img src=x onerror="alert(1)">'
    row = queue("ann@example.com", "<script>alert(2)</script>", html=evil, text="<script>alert(3)</script>")
    body = client.get(f"/admin/mail/{row.id}").get_data(as_text=True)
    assert "<script>alert" not in body and "<img src=x" not in body
    iframe = re.search(r'<iframe [^>]*>', body).group(0)
    assert 'sandbox=""' in iframe
    assert html_module.unescape(re.search(r'srcdoc="([^"]*)"', iframe).group(1)) == evil
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in body  # the text part, escaped in its <pre>


def test_the_message_box_refreshes_itself_until_the_message_is_out(client, world):
    pending = queue("a@example.com")
    sent = queue("b@example.com", status=SENT, sent_at=NOW)
    box = client.get(f"/admin/mail/{pending.id}", headers=HTMX).get_data(as_text=True)
    assert box.lstrip().startswith('<section id="mail-status"') and 'hx-trigger="every 3s"' in box
    sent_page = client.get(f"/admin/mail/{sent.id}").get_data(as_text=True)
    assert "every 3s" not in sent_page and "Retry now" not in sent_page and ">Cancel<" not in sent_page


def test_an_unknown_message_is_404(client, world):
    assert client.get("/admin/mail/999999").status_code == 404
    assert client.post("/admin/mail/999999/retry").status_code == 404


def test_retry_makes_a_failed_message_due_now_with_more_attempts(client, world):
    clock.set_now(NOW)
    row = queue(status=FAILED, attempts=5, max_attempts=5, error_message="SMTP 421: busy",
                next_attempt_at=NOW - timedelta(hours=2))
    response = client.post(f"/admin/mail/{row.id}/retry")
    assert response.status_code == 303 and response.location.endswith(f"/admin/mail/{row.id}")
    row = reload(row)
    assert (row.status, row.next_attempt_at, row.attempts) == (PENDING, NOW, 5)
    assert row.max_attempts > row.attempts
    assert "The message will be sent again now." in screen(client.get(response.location))


def test_retry_with_htmx_answers_with_the_status_box(client, world):
    row = queue(status=FAILED, attempts=1, max_attempts=1)
    response = client.post(f"/admin/mail/{row.id}/retry", headers=HTMX)
    assert response.status_code == 200
    assert response.get_data(as_text=True).lstrip().startswith('<section id="mail-status"')
    assert "Status Pending" in screen(response) and "sent again now" in screen(response)


def test_cancel_a_pending_message(client, world):
    row = queue()
    response = client.post(f"/admin/mail/{row.id}/cancel")
    assert response.status_code == 303
    assert reload(row).status == CANCELLED
    assert "it will not be sent" in screen(client.get(response.location))


@pytest.mark.parametrize("htmx", [False, True])
def test_cancelling_a_sent_message_is_refused_and_changes_nothing(client, world, htmx):
    row = queue(status=SENT, attempts=1, sent_at=NOW)
    response = client.post(f"/admin/mail/{row.id}/cancel", headers=HTMX if htmx else {})
    assert response.status_code == 422
    assert "A sent message cannot be cancelled." in screen(response)
    row = reload(row)
    assert (row.status, row.sent_at, row.attempts) == (SENT, NOW, 1)


def test_bulk_retry_retries_only_the_failed_messages_matching_the_filters(client, world):
    mine = queue("a@acme.example", entity=world["acme"], status=FAILED, attempts=5, max_attempts=5)
    pending = queue("b@acme.example", entity=world["acme"])
    sent = queue("c@acme.example", entity=world["acme"], status=SENT)
    elsewhere = queue("d@globex.example", entity=world["globex"], status=FAILED)
    listing = client.get(f"/admin/mail/?entity={world['acme'].id}&status=failed").get_data(as_text=True)
    assert f'<input type="hidden" name="entity" value="{world["acme"].id}">' in listing  # the filters go along

    response = client.post("/admin/mail/retry-failed", data={"entity": str(world["acme"].id), "status": "failed"})
    assert response.status_code == 303
    assert response.location == f"/admin/mail/?status=failed&entity={world['acme'].id}"
    assert [reload(r).status for r in (mine, pending, sent, elsewhere)] == [PENDING, PENDING, SENT, FAILED]
    assert "1 message will be retried." in screen(client.get(response.location))


# --- pause ----------------------------------------------------------------------------------------

def test_the_pause_switch_stops_sending_and_resume_sends(app, client, world):
    row = queue("ann@example.com", "Queued while paused")
    assert client.post("/admin/mail/pause", data={"paused": "1"}).status_code == 303
    page = screen(client.get("/admin/mail/"))
    assert re.search(r"Sending is paused since \d{4}-\d\d-\d\d \d\d:\d\d UTC \(.*\) — 1 message waiting", page)
    assert "Resume sending" in page

    mail_delivery.deliver(db.session)
    assert reload(row).status == PENDING and maildir(app) == []
    queue("bob@example.com")  # rows keep queueing
    assert "Sending is paused: resume it" in screen(client.get(f"/admin/mail/{row.id}"))

    assert client.post("/admin/mail/pause", data={"paused": "0"}).status_code == 303
    assert "Sending is on" in screen(client.get("/admin/mail/"))
    mail_delivery.deliver(db.session)
    assert reload(row).status == SENT
    assert sorted(m["Subject"] for m in maildir(app)) == ["Hello", "Queued while paused"]


# --- settings and the test email ------------------------------------------------------------------

def test_the_settings_page_never_shows_a_password(app, client, world):
    app.config.update(MAIL_SERVER="smtp.example.net", MAIL_PORT=587, MAIL_USE_TLS=True, MAIL_USERNAME="mets-bot",
                      MAIL_PASSWORD="hunter2-smtp-secret", REDIS_URL="redis://:redis-pass-9@cache.internal:6379/2",
                      METS_OWN_ADDRESSES=["tickets@acme.example"])
    response = client.get("/admin/mail/settings")
    assert response.status_code == 200
    body, page = response.get_data(as_text=True), screen(response)
    assert "hunter2-smtp-secret" not in body and "redis-pass-9" not in body
    assert "Server smtp.example.net Port 587 Security STARTTLS Username mets-bot Password set" in page
    assert "redis://:***@cache.internal:6379/2" in page
    assert "tickets@acme.example" in page  # the loop guard
    assert "Attempts per message 5" in page and "Batch size" in page and "Stale claim" in page


def test_the_settings_page_shows_the_maildir_in_embedded_mode(app, client, world):
    page = screen(client.get("/admin/mail/settings"))
    assert f"Maildir {app.config['MAILDIR']}" in page and "Password" not in page
    assert "No REDIS_URL" in page


def test_a_test_email_is_queued_as_critical_and_delivered(app, client, world):
    response = client.post("/admin/mail/test", data={"address": "Me@Example.com"})
    assert response.status_code == 303
    row = db.session.scalars(db.select(QueuedEmail).where(QueuedEmail.event == "test")).one()
    assert response.location.endswith(f"/admin/mail/{row.id}")
    assert (row.priority, row.recipient_email, row.subject, row.status) == (CRITICAL, "me@example.com",
                                                                           "METS test email", PENDING)
    page = screen(client.get(response.location))
    assert "Test email queued for me@example.com" in page and "Status Pending" in page

    mail_delivery.deliver(db.session)
    [message] = maildir(app)
    assert message["Subject"] == "METS test email" and "me@example.com" in message["To"]
    page = screen(client.get(response.location))
    assert "Status Sent" in page and "accepted by the server" in page


@pytest.mark.parametrize("address, error", [
    ("own", "This is the install's own address"),
    ("not an address", "email address"),
    ("", "Enter an email address."),
])
def test_a_test_email_to_a_refused_address_shows_the_error(app, client, world, address, error):
    if address == "own":  # (the default sender's .localhost domain is refused as invalid already)
        app.config["MAIL_DEFAULT_SENDER"] = "Acme Support <help@support.example>"
        address = "Help@Support.example"
    response = client.post("/admin/mail/test", data={"address": address})
    assert response.status_code == 422
    assert error in screen(response)
    assert count_rows(db.session, QueuedEmail) == 0


# --- notification settings ------------------------------------------------------------------------

def checked(body: str, name: str) -> list[str]:
    boxes = re.findall(rf'<input[^>]*name="{name}"[^>]*>', body)
    return [re.search(r'value="([^"]*)"', b).group(1) for b in boxes if re.search(r"\bchecked\b", b)]


def row_of(body: str, event: str) -> str:
    return re.search(rf'<tr id="notify-{event}".*?</tr>', body, re.S).group(0)


def test_the_notification_page_lists_the_seven_events_with_their_defaults(client, world):
    response = client.get(f"/admin/mail/notifications?entity_id={world['acme'].id}")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert len(re.findall(r'<tr id="notify-', body)) == 7
    assert checked(body, "ticket_created-recipients") == ["customer", "agents"]
    assert 'value="customer"' not in row_of(body, "assigned")  # the event never mails customers
    assert "Inherited: default" in screen(response)


def test_save_is_inherited_by_a_child_and_reset_restores_the_default(client, world):
    acme, billing = world["acme"], world["billing"]
    data = {"assigned-enabled": "y", "assigned-recipients": ["managers", "assignee"],
            "assigned-extra_addresses": "Ops@Acme.example,\nlead@acme.example"}
    response = client.post(f"/admin/mail/notifications/{acme.id}/assigned", data=data, headers=HTMX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<tr id="notify-assigned"')
    assert "Own setting" in screen(response) and checked(body, "assigned-recipients") == ["assignee", "managers"]
    assert "ops@acme.example\nlead@acme.example" in body

    child = row_of(client.get(f"/admin/mail/notifications?entity_id={billing.id}").get_data(as_text=True), "assigned")
    assert "Inherited from Acme" in child and "ops@acme.example" in child
    assert checked(child, "assigned-recipients") == ["assignee", "managers"]

    response = client.post(f"/admin/mail/notifications/{acme.id}/assigned/reset", headers=HTMX)
    assert response.status_code == 200 and "Inherited: default" in screen(response)
    assert checked(response.get_data(as_text=True), "assigned-recipients") == ["assignee"]
    assert count_rows(db.session, NotificationSetting) == 0


def test_switching_an_event_off_without_htmx_redirects_to_the_page(client, world):
    acme = world["acme"]
    response = client.post(f"/admin/mail/notifications/{acme.id}/ticket_created",
                           data={"ticket_created-recipients": "agents", "ticket_created-extra_addresses": ""})
    assert response.status_code == 303
    assert response.location == f"/admin/mail/notifications?entity_id={acme.id}#notify-ticket_created"
    setting = db.session.scalars(db.select(NotificationSetting)).one()
    assert (setting.enabled, setting.recipients) == (False, ["agents"])
    assert "Saved: Ticket created for Acme." in screen(client.get(response.location))


@pytest.mark.parametrize("htmx", [True, False])
def test_a_bad_extra_address_shows_an_error_and_saves_nothing(client, world, htmx):
    response = client.post(f"/admin/mail/notifications/{world['acme'].id}/sla_breach",
                           data={"sla_breach-enabled": "y", "sla_breach-recipients": "managers",
                                 "sla_breach-extra_addresses": "ok@acme.example, not-an-address"},
                           headers=HTMX if htmx else {})
    assert response.status_code == 422
    row = row_of(response.get_data(as_text=True), "sla_breach")
    assert "not-an-address:" in screen(response) and 'class="error"' in row
    assert "ok@acme.example, not-an-address" in row  # what was typed stays in the box
    assert count_rows(db.session, NotificationSetting) == 0


def test_unknown_entities_and_events_are_404(client, world):
    acme = world["acme"]
    assert client.post(f"/admin/mail/notifications/{acme.id}/nonsense", headers=HTMX).status_code == 404
    assert client.post("/admin/mail/notifications/999999/assigned", headers=HTMX).status_code == 404
    assert client.post(f"/admin/mail/notifications/{acme.id}/nonsense/reset", headers=HTMX).status_code == 404
    assert client.get("/admin/mail/notifications?entity_id=999999").status_code == 404


# --- navigation -----------------------------------------------------------------------------------

def test_the_mail_pages_share_a_sub_navigation(client, world):
    for path, current in (("/admin/mail/", "Queue"), ("/admin/mail/settings", "Settings"),
                          ("/admin/mail/notifications", "Notifications")):
        body = client.get(path).get_data(as_text=True)
        nav = re.search(r'<nav class="mail-subnav".*?</nav>', body, re.S).group(0)
        assert re.findall(r">(\w+)</a>", nav) == ["Queue", "Templates", "Notifications", "Settings", "Webhooks"]
        assert re.search(rf'aria-current="page">{current}</a>', nav)
        assert 'href="/admin/mail/templates/"' in nav


def test_the_header_badge_shows_failed_mail_to_admins_only(client, world):
    queue("a@example.com", status=FAILED)
    queue("b@example.com", status=FAILED)
    queue("c@example.com", status=SENT)
    response = client.get("/tickets/")
    assert "Mail 2 failed" in screen(response)
    assert 'title="2 messages failed to send"' in response.get_data(as_text=True)
    assert 'href="/admin/mail/?status=failed"' in response.get_data(as_text=True)

    client.post("/logout")
    login(client, world["agent"])
    response = client.get("/tickets/")
    assert "failed" not in screen(response) and "/admin/mail/" not in response.get_data(as_text=True)


def test_no_badge_without_failed_mail(client, world):
    queue("c@example.com", status=SENT)
    body = client.get("/tickets/").get_data(as_text=True)
    assert 'href="/admin/mail/">Mail</a>' in body and "nav-failed" not in body
