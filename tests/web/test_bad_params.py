"""Junk where a number or a choice belongs never makes a 500.

The attacker (or a mangled link) sends "²" (str.isdigit() says yes, int() says no), a 23-digit
id (too big for PostgreSQL's INTEGER), a negative number, letters, or CR/LF meant to split a
header, in every query parameter, path id and form field the app reads as a number.
"""
from urllib.parse import quote

import pytest

from mets.models import AutomationRule, Entity, Membership, Reply, SlaRule, Ticket
from mets.services import outbox
from mets.services.automation import admin as automation_rules
from mets.services.outbox import http as webhooks
from tests.conftest import HTMX, count_rows, login, login_customer
from tests.factories import PASSWORD, make_customer, make_entity, make_rule, make_staff, make_ticket

BAD = ["²", "99999999999999999999999", "-1", "abc", "1\r\nX: y"]

# who signs in, method, path ("{bad}" is replaced by the value, URL-encoded), form ("{bad}" raw), htmx?
TARGETS = [
    ("admin", "GET", "/tickets/?page={bad}", None, False),
    ("admin", "GET", "/tickets/?entity={bad}", None, False),
    ("admin", "GET", "/tickets/?assignee={bad}", None, True),
    ("admin", "GET", "/tickets/?status={bad}&priority={bad}&sla={bad}&sort={bad}&dir={bad}", None, False),
    ("admin", "GET", "/admin/mail/?page={bad}", None, False),
    ("admin", "GET", "/admin/mail/?entity={bad}&status={bad}", None, True),
    ("admin", "GET", "/admin/webhooks/?page={bad}&entity={bad}&kind={bad}", None, False),
    ("admin", "GET", "/admin/mail/notifications?entity_id={bad}", None, False),
    ("admin", "GET", "/admin/mail/templates/?entity_id={bad}", None, False),
    ("admin", "GET", "/admin/sla/new?entity_id={bad}", None, False),
    ("admin", "GET", "/admin/automation/new?entity_id={bad}", None, False),
    ("admin", "GET", "/admin/automation/?trigger={bad}", None, False),
    ("admin", "GET", "/admin/users?kind={bad}", None, False),
    ("admin", "GET", "/admin/hours/{acme}/preview?created_at={bad}&target={bad}", None, True),
    # Ids in the path.
    ("admin", "GET", "/admin/users/{bad}", None, False),
    ("admin", "GET", "/admin/entities/{bad}", None, False),
    ("admin", "GET", "/admin/hours/{bad}", None, False),
    ("admin", "GET", "/admin/sla/{bad}", None, False),
    ("admin", "GET", "/admin/automation/{bad}", None, False),
    ("admin", "GET", "/admin/mail/{bad}", None, False),
    ("admin", "GET", "/admin/webhooks/{bad}", None, False),
    ("admin", "GET", "/admin/mail/templates/{bad}/ticket-assigned", None, False),
    ("admin", "POST", "/admin/hours/{acme}/days/{bad}", {}, True),
    ("admin", "DELETE", "/admin/users/{agent}/memberships/{bad}", None, True),
    # Ids and choices in posted forms.
    ("admin", "POST", "/tickets/{number}/fields/assignee_id", {"assignee_id": "{bad}"}, True),
    ("admin", "POST", "/tickets/{number}/fields/entity_id", {"entity_id": "{bad}"}, True),
    ("admin", "POST", "/tickets/{number}/fields/status", {"status": "{bad}"}, True),
    ("admin", "POST", "/tickets/{number}/fields/priority", {"priority": "{bad}"}, True),
    ("admin", "POST", "/tickets/new", {"entity_id": "{bad}", "customer_email": "new@example.com", "subject": "Hi",
                                       "body": "Hello", "priority": "{bad}"}, False),
    ("admin", "POST", "/admin/users/{agent}/memberships", {"entity_id": "{bad}", "role": "{bad}", "tier": "{bad}"},
     True),
    ("admin", "POST", "/admin/entities/new", {"name": "Evil", "slug": "evil", "parent_id": "{bad}",
                                              "timezone": "UTC"}, False),
    ("admin", "POST", "/admin/users/new", {"name": "N", "email": "n@staff.example", "kind": "{bad}"}, False),
    ("admin", "POST", "/admin/sla/new", {"entity_id": "{bad}", "name": "Gold", "response": "{bad}",
                                         "warnings": "{bad}%", "pause_statuses": "{bad}"}, False),
    ("admin", "POST", "/admin/sla/{rule}/test", {"ticket": "{number}", "name": "Gold", "entity_id": "{bad}"}, True),
    ("admin", "POST", "/admin/sla/{rule}/move", {"direction": "{bad}"}, True),
    ("admin", "POST", "/admin/automation/new", {"name": "R", "entity_id": "{bad}", "trigger_event": "{bad}",
                                                "actions": '[{{"type": "assign", "strategy": "agent", '
                                                           '"agent_id": "{bad_json}"}}]'}, False),
    ("admin", "POST", "/admin/automation/new", {"name": "R", "entity_id": "", "trigger_event": "ticket_created",
                                                "actions": '[{{"type": "switch_sla", "rule_id": "{bad_json}"}}]'},
     False),
    ("admin", "POST", "/admin/automation/action-row", {"type": "assign", "entity_id": "{bad}"}, True),
    ("admin", "POST", "/admin/automation/test", {"name": "R", "entity_id": "{bad}", "trigger_event": "{bad}",
                                                 "actions": '[{{"type": "assign", "strategy": "agent", '
                                                            '"agent_id": "{bad_json}"}}]',
                                                 "test_ticket": "{number}"}, True),
    ("admin", "POST", "/admin/automation/reorder", {"ids": "{bad}"}, True),
    ("admin", "POST", "/admin/mail/retry-failed", {"entity": "{bad}", "page": "{bad}", "status": "{bad}"}, False),
    ("admin", "POST", "/admin/hours/{acme}/holidays/import", {"import-country": "US", "import-year": "{bad}"}, True),
    ("admin", "POST", "/admin/hours/{acme}/days/1", {"d1-start": "{bad}:00", "d1-end": "1{bad}:00"}, True),
    ("admin", "POST", "/rules/builder/group", {"registry": "ticket", "depth": "{bad}"}, True),
    ("admin", "POST", "/rules/builder/row", {"registry": "{bad}"}, True),
    ("customer", "POST", "/portal/tickets/new", {"entity_id": "{bad}", "subject": "Refund", "body": "Please.",
                                                 "priority": "{bad}"}, False),
    # Where the sign-in forms send people afterwards.
    ("nobody", "POST", "/login?next={bad}", {"email": "{admin_email}", "password": PASSWORD}, False),
    ("nobody", "POST", "/login?next=/tickets/{bad}", {"email": "{admin_email}", "password": PASSWORD}, False),
    ("nobody", "POST", "/portal/login", {"email": "{customer_email}", "next": "/portal/{bad}"}, False),
]


@pytest.fixture
def world(session, snapshot):
    return snapshot(lambda: _build_world(session))


def _build_world(session):
    acme = make_entity("Acme", "acme")
    admin = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
    agent = make_staff(acme, name="Gus Agent")
    customer = make_customer("Carl Customer", "carl@example.com")
    ticket = make_ticket(acme, customer=customer, subject="Charged twice")
    rule = make_rule(acme, "Standard", response_minutes=240)
    outbox.queue_message(session, to="ops@example.com", subject="Hello", text="Hi", entity=acme)
    webhooks.queue_webhook(session, url="https://hooks.example.com/in", payload={}, secret="s", entity=acme)
    automation_rules.create_rule(session, {"name": "Raise", "entity_id": acme.id, "trigger_event": "ticket_created",
                                           "conditions": "", "actions": [{"type": "set_priority", "priority": "high"}]})
    session.commit()
    return {"admin": admin.email, "customer": customer.email,
            "values": {"acme": acme.id, "agent": agent.id, "number": ticket.number, "rule": rule.id,
                       "admin_email": admin.email, "customer_email": customer.email}}


def rows(session) -> dict:
    return {m.__name__: count_rows(session, m) for m in (Ticket, Reply, Entity, Membership, SlaRule, AutomationRule)}


@pytest.mark.parametrize("bad", BAD, ids=["superscript-two", "23-digits", "minus-one", "letters", "crlf"])
@pytest.mark.parametrize("who, method, path, form, htmx", TARGETS,
                         ids=[f"{t[1]} {t[2]}{' ' + ','.join(t[3]) if t[3] else ''}" for t in TARGETS])
def test_junk_numbers_and_choices_never_make_a_500(client, session, world, bad, who, method, path, form, htmx):
    if who == "admin":
        login(client, world["admin"])
    elif who == "customer":
        login_customer(client, world["customer"])
    values = {**world["values"], "bad": quote(bad, safe=""), "bad_json": bad.replace("\r", "\\r").replace("\n", "\\n")}
    data = {k: v.format(**{**values, "bad": bad}) for k, v in form.items()} if form is not None else None
    before = rows(session)

    response = client.open(path.format(**values), method=method, data=data, headers=HTMX if htmx else {})

    assert response.status_code < 500, response.get_data(as_text=True)[:800]
    assert "\r" not in response.headers.get("Location", "") and "X" not in response.headers
    if bad != "-1" and not (method == "POST" and path.startswith("/login")):
        # Nothing junk was saved (a sign-in may record last_login_at; "-1" can be a valid tier or name part).
        assert {k: v for k, v in rows(session).items() if k != "Membership"} == \
            {k: v for k, v in before.items() if k != "Membership"}
