"""Every route of the app × every kind of visitor, with the exact answer each one gets.

A route added without a line in ROUTES fails this test: decide who may use it first.
"""
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from mets import clock
from mets.models import CsatResponse
from mets.services.automation import admin as automation_rules
from mets.services import escalation, hours, macros, outbox
from mets.services import webhooks as webhook_endpoints
from mets.services.directory import api_tokens, categories
from mets.services.hours import admin as hours_edit
from mets.services.directory import portal_auth
from mets.services.outbox import http as webhooks
from mets.services.tickets import views as ticket_views
from mets.services.tickets.search import TicketFilters
from tests.conftest import HTMX, login, login_customer
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket

ROLES = ("admin", "manager", "agent", "owner", "customer", "anonymous")

# Expected answers, one per role in ROLES order. "302>/login": a redirect to that path;
# "401>/login": htmx is told (HX-Redirect) to load that page.
STAFF_PAGE = "200 200 200 404 404 302>/login"
TICKET_PAGE = "200 200 404 404 404 302>/login"
TICKET_HTMX = "200 200 404 404 404 401>/login"
ADMIN_PAGE = "200 404 404 404 404 302>/login"
ADMIN_SAVE = "303 404 404 404 404 302>/login"
ADMIN_HTMX = "200 404 404 404 404 401>/login"
CUSTOMER_PAGE = "404 404 404 200 200 302>/portal/login"
OWNER_PAGE = "404 404 404 200 404 302>/portal/login"
STAFF_HTMX = "200 200 200 404 404 401>/login"
MANAGER_SAVE = "303 303 404 404 404 302>/login"

NEW_TICKET = {"entity_id": "{billing}", "customer_email": "new.person@example.com", "customer_name": "New Person",
              "subject": "Cannot log in", "body": "It says my password is wrong.", "priority": "normal"}
ENTITY = {"name": "Acme Billing", "slug": "", "parent_id": "{acme}", "timezone": "Europe/Paris", "active": "y"}
SLA_RULE = {"entity_id": "{acme}", "name": "Gold", "priority": "", "response": "4h 30m", "resolution": "2d",
            "business_hours_only": "y", "warnings": "80%", "pause_statuses": "pending", "conditions": ""}
# Braces doubled: every form value goes through str.format with the world's values.
AUTO_RULE = {"name": "Raise urgent", "entity_id": "{acme}", "trigger_event": "ticket_created", "conditions": "",
             "actions": '[{{"type": "set_priority", "priority": "high"}}]'}
MACRO = {"name": "Refund issued", "body": "Hello {{{{ customer_name }}}}.", "status": "pending"}
# An escalation policy as its editor posts it: the policy's fields, then each level row (ids in page order).
POLICY = {"name": "Near breach", "entity_id": "{acme}", "clock": "resolution", "business_time": "y", "is_active": "y",
          "position": "", "conditions": "", "level_row": "lvr1", "lv-lvr1-id": "", "lv-lvr1-trigger": "percent",
          "lv-lvr1-value": "75", "lv-lvr1-actions": '[{{"type": "raise_priority"}}]'}
ENDPOINT = {"url": "https://hooks.example.com/mets", "description": "CRM", "event_types": "ticket.created"}
STAFF_USER = {"name": "Nina New", "email": "nina@staff.example", "kind": "staff",
              "password": "long-enough-secret", "active": "y"}

ROUTES = [
    # method, rule, path (None: the rule itself), form data, htmx?, expected answers
    ("GET", "/", None, None, False,
     "302>/tickets/ 302>/tickets/ 302>/tickets/ 302>/portal/ 302>/portal/ 302>/login"),
    ("GET", "/login", None, None, False,
     "302>/tickets/ 302>/tickets/ 302>/tickets/ 200 200 200"),
    ("POST", "/login", None, {"email": "{manager_email}", "password": "{password}"}, False,
     "302>/tickets/ 302>/tickets/ 302>/tickets/ 302>/tickets/ 302>/tickets/ 302>/tickets/"),
    ("POST", "/logout", None, {}, False,
     "302>/login 302>/login 302>/login 302>/portal/login 302>/portal/login 302>/login"),

    # One's own profile and API tokens: staff only (customers get no tokens); the token to revoke is the manager's.
    ("GET", "/profile", None, None, False, STAFF_PAGE),
    ("POST", "/profile/tokens", None, {"name": "Script"}, False, "200 200 200 404 404 302>/login"),
    ("POST", "/profile/tokens/<int:token_id>/revoke", "/profile/tokens/{api_token}/revoke", {}, False,
     "404 303>/profile 404 404 404 302>/login"),

    ("GET", "/tickets/", None, None, False, STAFF_PAGE),
    # The list's downloads: any staff member, each scoped to what they see (tests/web/test_api.py).
    ("GET", "/tickets/export.csv", None, None, False, STAFF_PAGE),
    ("GET", "/tickets/sla-report.csv", None, None, False, STAFF_PAGE),
    ("GET", "/tickets/new", None, None, False, STAFF_PAGE),
    # The agent works in Globex only: Acme Billing is not one of their choices.
    ("POST", "/tickets/new", None, NEW_TICKET, False, "303 303 422 404 404 302>/login"),
    ("GET", "/tickets/<number>", "/tickets/{number}", None, False, TICKET_PAGE),
    ("POST", "/tickets/<number>/replies", "/tickets/{number}/replies", {"body": "On it."}, True, TICKET_HTMX),
    ("POST", "/tickets/<number>/live", "/tickets/{number}/live", {"version": "0", "viewers": ""}, True, TICKET_HTMX),
    # The list's poll of viewer badges: any staff member; the agent (Globex) is answered only the new key, never the
    # Acme ticket's badge (test_live.py).
    ("GET", "/tickets/viewers", "/tickets/viewers?ticket={ticket_id}&viewers=stale", None, True, STAFF_HTMX),
    ("GET", "/tickets/new/category", "/tickets/new/category?entity_id={billing}", None, True, STAFF_HTMX),
    ("GET", "/tickets/<number>/macro", "/tickets/{number}/macro?fill=1&macro_id={macro}", None, True, TICKET_HTMX),
    ("GET", "/tickets/<number>/activity", "/tickets/{number}/activity", None, True, TICKET_HTMX),
    # The SLA panel: a partial the ticket page fetches with htmx.
    ("GET", "/tickets/<number>/sla", "/tickets/{number}/sla", None, True, TICKET_HTMX),
    ("GET", "/tickets/<number>/properties", "/tickets/{number}/properties", None, True, TICKET_HTMX),
    # The escalation box and escalating by hand (a reason is required).
    ("GET", "/tickets/<number>/escalation", "/tickets/{number}/escalation", None, True, TICKET_HTMX),
    ("POST", "/tickets/<number>/escalate", "/tickets/{number}/escalate", {"reason": "Customer called"}, True,
     TICKET_HTMX),
    ("POST", "/tickets/<number>/fields/<name>", "/tickets/{number}/fields/priority", {"priority": "high"}, True,
     TICKET_HTMX),
    # Bulk changes: the agent (Globex) may post, and gets the Acme ticket back as refused (test_ticket_bulk.py).
    ("POST", "/tickets/bulk", None, {"ids": "{ticket_id}", "set_priority": "high"}, True, STAFF_HTMX),
    ("POST", "/tickets/views", None, {"name": "Urgent ones", "priority": "urgent"}, True, STAFF_HTMX),
    # The manager's view, shared with Acme: not the agent's (Globex) to open or delete.
    ("GET", "/tickets/views/<int:view_id>", "/tickets/views/{view}", None, False,
     "303>/tickets/ 303>/tickets/ 404 404 404 302>/login"),
    ("POST", "/tickets/views/<int:view_id>/delete", "/tickets/views/{view}/delete", {}, True, TICKET_HTMX),

    ("GET", "/admin/", None, None, False, "302>/admin/entities 404 404 404 404 302>/login"),
    ("GET", "/admin/entities", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/entities/new", None, None, False, ADMIN_PAGE),
    ("POST", "/admin/entities/new", None, {**ENTITY, "name": "Acme Legal", "slug": "legal"}, False, ADMIN_SAVE),
    ("GET", "/admin/entities/<int:entity_id>", "/admin/entities/{billing}", None, False, ADMIN_PAGE),
    ("POST", "/admin/entities/<int:entity_id>", "/admin/entities/{billing}", ENTITY, False, ADMIN_SAVE),
    # An entity's categories (admins) and macros (admins and the entity's managers: Maria manages Acme).
    ("GET", "/admin/entities/<int:entity_id>/categories", "/admin/entities/{acme}/categories", None, False,
     ADMIN_PAGE),
    ("POST", "/admin/entities/<int:entity_id>/categories", "/admin/entities/{acme}/categories",
     {"name": "Refunds"}, False, ADMIN_SAVE),
    ("POST", "/admin/entities/<int:entity_id>/categories/<int:category_id>",
     "/admin/entities/{acme}/categories/{category}", {"name": "Invoices", "active": "y"}, False, ADMIN_SAVE),
    ("POST", "/admin/entities/<int:entity_id>/categories/<int:category_id>/move",
     "/admin/entities/{acme}/categories/{category}/move", {"step": "down"}, False, ADMIN_SAVE),
    ("POST", "/admin/entities/<int:entity_id>/categories/<int:category_id>/delete",
     "/admin/entities/{acme}/categories/{category}/delete", {}, False, ADMIN_SAVE),
    ("GET", "/admin/entities/<int:entity_id>/macros", "/admin/entities/{acme}/macros", None, False, TICKET_PAGE),
    ("GET", "/admin/entities/<int:entity_id>/macros/new", "/admin/entities/{acme}/macros/new", None, False,
     TICKET_PAGE),
    ("POST", "/admin/entities/<int:entity_id>/macros/new", "/admin/entities/{acme}/macros/new", MACRO, False,
     MANAGER_SAVE),
    ("GET", "/admin/entities/<int:entity_id>/macros/<int:macro_id>", "/admin/entities/{acme}/macros/{macro}", None,
     False, TICKET_PAGE),
    ("POST", "/admin/entities/<int:entity_id>/macros/<int:macro_id>", "/admin/entities/{acme}/macros/{macro}", MACRO,
     False, MANAGER_SAVE),
    ("POST", "/admin/entities/<int:entity_id>/macros/<int:macro_id>/delete",
     "/admin/entities/{acme}/macros/{macro}/delete", {}, False, MANAGER_SAVE),
    ("GET", "/admin/users", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/users/new", None, None, False, ADMIN_PAGE),
    ("POST", "/admin/users/new", None, STAFF_USER, False, ADMIN_SAVE),
    ("GET", "/admin/users/<int:user_id>", "/admin/users/{agent_id}", None, False, ADMIN_PAGE),
    ("POST", "/admin/users/<int:user_id>", "/admin/users/{agent_id}",
     {"name": "Gus Renamed", "email": "{agent_email}", "active": "y"}, False, ADMIN_SAVE),
    ("POST", "/admin/users/<int:user_id>/memberships", "/admin/users/{agent_id}/memberships",
     {"entity_id": "{acme}", "role": "agent", "tier": "2", "skills": "billing"}, True, ADMIN_HTMX),
    ("DELETE", "/admin/users/<int:user_id>/memberships/<int:membership_id>",
     "/admin/users/{agent_id}/memberships/{agent_membership}", None, True, ADMIN_HTMX),

    ("GET", "/admin/hours/", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/hours/<int:entity_id>", "/admin/hours/{billing}", None, False, ADMIN_PAGE),
    ("POST", "/admin/hours/<int:entity_id>/own", "/admin/hours/{billing}/own", {"own": "1"}, False, ADMIN_SAVE),
    ("POST", "/admin/hours/<int:entity_id>/timezone", "/admin/hours/{acme}/timezone", {"timezone": "Europe/Paris"},
     True, ADMIN_HTMX),
    ("POST", "/admin/hours/<int:entity_id>/days/<int:weekday>", "/admin/hours/{acme}/days/5",
     {"d5-start": "10:00", "d5-end": "14:00"}, True, ADMIN_HTMX),
    ("DELETE", "/admin/hours/<int:entity_id>/intervals/<int:interval_id>", "/admin/hours/{acme}/intervals/{interval}",
     None, True, ADMIN_HTMX),
    ("POST", "/admin/hours/<int:entity_id>/holidays", "/admin/hours/{acme}/holidays",
     {"holiday-date": "2026-07-03", "holiday-name": "Summer day"}, True, ADMIN_HTMX),
    ("POST", "/admin/hours/<int:entity_id>/holidays/import", "/admin/hours/{acme}/holidays/import",
     {"import-country": "US", "import-year": "2026"}, True, ADMIN_HTMX),
    ("DELETE", "/admin/hours/<int:entity_id>/holidays/<int:holiday_id>", "/admin/hours/{acme}/holidays/{holiday}",
     None, True, ADMIN_HTMX),
    ("POST", "/admin/hours/<int:entity_id>/exceptions", "/admin/hours/{acme}/exceptions",
     {"exception-date": "2026-12-31", "exception-note": "Closed"}, True, ADMIN_HTMX),
    ("DELETE", "/admin/hours/<int:entity_id>/exceptions/<int:exception_id>",
     "/admin/hours/{acme}/exceptions/{exception}", None, True, ADMIN_HTMX),
    ("GET", "/admin/hours/<int:entity_id>/preview",
     "/admin/hours/{billing}/preview?created_at=2026-03-06T16:55&target=4h", None, True, ADMIN_HTMX),

    ("GET", "/admin/sla/", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/sla/new", None, None, False, ADMIN_PAGE),
    ("POST", "/admin/sla/new", None, SLA_RULE, False, ADMIN_SAVE),
    ("GET", "/admin/sla/<int:rule_id>", "/admin/sla/{rule}", None, False, ADMIN_PAGE),
    ("POST", "/admin/sla/<int:rule_id>", "/admin/sla/{rule}", SLA_RULE, False, ADMIN_SAVE),
    ("POST", "/admin/sla/<int:rule_id>/active", "/admin/sla/{rule}/active", {"active": "0"}, True, ADMIN_HTMX),
    ("POST", "/admin/sla/<int:rule_id>/move", "/admin/sla/{rule}/move", {"direction": "down"}, True, ADMIN_HTMX),
    ("POST", "/admin/sla/<int:rule_id>/test", "/admin/sla/{rule}/test", {"ticket": "{number}"}, True, ADMIN_HTMX),

    # Email templates (blueprint mail_templates).
    ("GET", "/admin/mail/templates/", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/mail/templates/<int:entity_id>/<name>", "/admin/mail/templates/{billing}/ticket-assigned", None,
     False, ADMIN_PAGE),
    ("POST", "/admin/mail/templates/<int:entity_id>/<name>", "/admin/mail/templates/{billing}/ticket-assigned",
     {"subject": "Assigned: ticket", "body_text": "Please look.", "body_html": "<p>Please look.</p>"}, False,
     ADMIN_SAVE),
    ("POST", "/admin/mail/templates/<int:entity_id>/<name>/preview",
     "/admin/mail/templates/{billing}/ticket-assigned/preview",
     {"subject": "Assigned", "body_text": "Please look.", "body_html": "<p>Please look.</p>", "ticket": "{number}"},
     True, ADMIN_HTMX),
    ("POST", "/admin/mail/templates/<int:entity_id>/<name>/reset", "/admin/mail/templates/{billing}/ticket-assigned/reset",
     {}, False, ADMIN_SAVE),

    # The mail queue, mail settings and notification settings (blueprint mail).
    ("GET", "/admin/mail/", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/mail/<int:message_id>", "/admin/mail/{email}", None, False, ADMIN_PAGE),
    ("POST", "/admin/mail/<int:message_id>/retry", "/admin/mail/{email}/retry", {}, False, ADMIN_SAVE),
    ("POST", "/admin/mail/<int:message_id>/cancel", "/admin/mail/{email}/cancel", {}, False, ADMIN_SAVE),
    ("POST", "/admin/mail/retry-failed", None, {"entity": "{acme}"}, False, ADMIN_SAVE),
    ("POST", "/admin/mail/pause", None, {"paused": "1"}, False, ADMIN_SAVE),
    ("GET", "/admin/mail/settings", None, None, False, ADMIN_PAGE),
    ("POST", "/admin/mail/test", None, {"address": "ops@example.com"}, False, ADMIN_SAVE),
    ("GET", "/admin/mail/notifications", "/admin/mail/notifications?entity_id={billing}", None, False, ADMIN_PAGE),
    ("POST", "/admin/mail/notifications/<int:entity_id>/<event>", "/admin/mail/notifications/{billing}/assigned",
     {"assigned-enabled": "y", "assigned-recipients": "managers", "assigned-extra_addresses": ""}, True, ADMIN_HTMX),
    ("POST", "/admin/mail/notifications/<int:entity_id>/<event>/reset",
     "/admin/mail/notifications/{billing}/assigned/reset", {}, True, ADMIN_HTMX),

    # Outgoing webhooks and SMS (blueprint webhooks).
    ("GET", "/admin/webhooks/", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/webhooks/<int:delivery_id>", "/admin/webhooks/{hook}", None, False, ADMIN_PAGE),
    ("POST", "/admin/webhooks/<int:delivery_id>/retry", "/admin/webhooks/{hook}/retry", {}, False, ADMIN_SAVE),
    ("POST", "/admin/webhooks/<int:delivery_id>/cancel", "/admin/webhooks/{hook}/cancel", {}, False, ADMIN_SAVE),
    ("POST", "/admin/webhooks/pause", None, {"paused": "1"}, False, ADMIN_SAVE),

    # Webhook endpoints (blueprint endpoints): admins and the managers of the endpoint's entity or above (Maria
    # manages Acme, the endpoint is Acme Billing's); the agent manages nothing. Creating and rotating show the secret.
    ("GET", "/admin/endpoints/", None, None, False, TICKET_PAGE),
    ("GET", "/admin/endpoints/entity/<int:entity_id>/new", "/admin/endpoints/entity/{billing}/new", None, False,
     TICKET_PAGE),
    ("POST", "/admin/endpoints/entity/<int:entity_id>/new", "/admin/endpoints/entity/{billing}/new", ENDPOINT, False,
     "201 201 404 404 404 302>/login"),
    ("GET", "/admin/endpoints/<int:endpoint_id>", "/admin/endpoints/{endpoint}", None, False, TICKET_PAGE),
    ("POST", "/admin/endpoints/<int:endpoint_id>", "/admin/endpoints/{endpoint}", ENDPOINT, False, MANAGER_SAVE),
    ("POST", "/admin/endpoints/<int:endpoint_id>/disable", "/admin/endpoints/{endpoint}/disable", {}, False,
     MANAGER_SAVE),
    ("POST", "/admin/endpoints/<int:endpoint_id>/enable", "/admin/endpoints/{endpoint}/enable", {}, False,
     MANAGER_SAVE),
    ("POST", "/admin/endpoints/<int:endpoint_id>/test", "/admin/endpoints/{endpoint}/test", {}, False, MANAGER_SAVE),
    ("POST", "/admin/endpoints/<int:endpoint_id>/rotate", "/admin/endpoints/{endpoint}/rotate", {}, False,
     "200 200 404 404 404 302>/login"),
    ("POST", "/admin/endpoints/<int:endpoint_id>/delete", "/admin/endpoints/{endpoint}/delete", {}, False,
     MANAGER_SAVE),
    ("GET", "/admin/endpoints/<int:endpoint_id>/deliveries/<int:delivery_id>",
     "/admin/endpoints/{endpoint}/deliveries/{endpoint_delivery}", None, False, TICKET_PAGE),
    ("POST", "/admin/endpoints/<int:endpoint_id>/deliveries/<int:delivery_id>/replay",
     "/admin/endpoints/{endpoint}/deliveries/{endpoint_delivery}/replay", {}, False, MANAGER_SAVE),

    # Automation rules (blueprint automation).
    ("GET", "/admin/automation/", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/automation/new", None, None, False, ADMIN_PAGE),
    ("POST", "/admin/automation/new", None, AUTO_RULE, False, ADMIN_SAVE),
    ("GET", "/admin/automation/<int:rule_id>", "/admin/automation/{auto}", None, False, ADMIN_PAGE),
    ("GET", "/admin/automation/<int:rule_id>/edit", "/admin/automation/{auto}/edit", None, False, ADMIN_PAGE),
    ("POST", "/admin/automation/<int:rule_id>/edit", "/admin/automation/{auto}/edit", AUTO_RULE, False, ADMIN_SAVE),
    ("POST", "/admin/automation/<int:rule_id>/active", "/admin/automation/{auto}/active", {"active": "1"}, True,
     ADMIN_HTMX),
    ("POST", "/admin/automation/<int:rule_id>/delete", "/admin/automation/{auto}/delete", {}, False, ADMIN_SAVE),
    ("POST", "/admin/automation/reorder", None, {"ids": "{auto}"}, True, ADMIN_HTMX),
    ("POST", "/admin/automation/action-row", None, {"type": "assign", "entity_id": "{acme}"}, True, ADMIN_HTMX),
    ("POST", "/admin/automation/test", None, {**AUTO_RULE, "test_ticket": "{number}"}, True, ADMIN_HTMX),

    # Escalation policies (blueprint escalation_policies): admins only, as SLA rules and automation.
    ("GET", "/admin/escalation/", None, None, False, ADMIN_PAGE),
    ("GET", "/admin/escalation/new", None, None, False, ADMIN_PAGE),
    ("POST", "/admin/escalation/new", None, POLICY, False, ADMIN_SAVE),
    ("GET", "/admin/escalation/<int:policy_id>", "/admin/escalation/{policy}", None, False, ADMIN_PAGE),
    ("POST", "/admin/escalation/<int:policy_id>", "/admin/escalation/{policy}", POLICY, False, ADMIN_SAVE),
    ("POST", "/admin/escalation/<int:policy_id>/active", "/admin/escalation/{policy}/active", {"active": "0"}, True,
     ADMIN_HTMX),
    ("POST", "/admin/escalation/<int:policy_id>/move", "/admin/escalation/{policy}/move", {"direction": "down"}, True,
     ADMIN_HTMX),
    ("POST", "/admin/escalation/<int:policy_id>/delete", "/admin/escalation/{policy}/delete", {}, False, ADMIN_SAVE),
    ("POST", "/admin/escalation/level-row", None, {"entity_id": "{acme}"}, True, ADMIN_HTMX),
    ("POST", "/admin/escalation/action-row", None, {"type": "notify", "entity_id": "{acme}"}, True, ADMIN_HTMX),
    ("POST", "/admin/escalation/preview", None, {**POLICY, "policy_id": "{policy}", "preview_ticket": "{number}"}, True,
     ADMIN_HTMX),

    # The condition builder's fragments: any staff member (host pages decide who may save a rule).
    ("POST", "/rules/builder/row", None, {"registry": "ticket"}, True, STAFF_HTMX),
    ("POST", "/rules/builder/group", None, {"registry": "ticket", "depth": "2"}, True, STAFF_HTMX),
    ("POST", "/rules/builder/check", None, {"registry": "ticket", "row": "rbr1", "rb-rbr1-field": "priority",
                                            "rb-rbr1-op": "is", "rb-rbr1-value": "high"}, True, STAFF_HTMX),

    # The KPI dashboard: admins and managers (their entities); an agent is sent to their own agent page.
    ("GET", "/metrics/", None, None, False, "200 200 302>/metrics/agents/{agent_id} 404 404 302>/login"),
    ("GET", "/metrics/export/<name>.csv", "/metrics/export/workload.csv", None, False, TICKET_PAGE),
    # Gus's own page: his, and the admin's; Maria manages Acme, where Gus does not work.
    ("GET", "/metrics/agents/<int:user_id>", "/metrics/agents/{agent_id}", None, False,
     "200 404 200 404 404 302>/login"),
    ("GET", "/metrics/agents/<int:user_id>/export/<name>.csv", "/metrics/agents/{agent_id}/export/agent_trend.csv",
     None, False, "200 404 200 404 404 302>/login"),

    ("GET", "/portal/", None, None, False, CUSTOMER_PAGE),
    ("GET", "/portal/login", None, None, False, "200 200 200 302>/portal/ 302>/portal/ 200"),
    ("POST", "/portal/login", None, {"email": "{owner_email}"}, False, "200 200 200 302>/portal/ 302>/portal/ 200"),
    # A valid link signs its customer in, whoever was signed in before.
    ("GET", "/portal/auth/<token>", "/portal/auth/{token}", None, False, " ".join(["302>/portal/"] * 6)),
    ("GET", "/portal/tickets/new", None, None, False, CUSTOMER_PAGE),
    ("POST", "/portal/tickets/new", None,
     {"entity_id": "{billing}", "subject": "Refund", "body": "Please refund order 7.", "priority": "normal"}, False,
     "404 404 404 303 303 302>/portal/login"),
    ("GET", "/portal/tickets/new/category", "/portal/tickets/new/category?entity_id={billing}", None, False,
     CUSTOMER_PAGE),
    ("GET", "/portal/tickets/<number>", "/portal/tickets/{number}", None, False, OWNER_PAGE),
    # The satisfaction survey: the signed link is the key (no sign-in), so every visitor gets the same answer; a GET
    # only shows the form (test_csat_survey.py), the POST records and comes back to it.
    ("GET", "/portal/survey/<token>", "/portal/survey/{survey}?score=4", None, False, " ".join(["200"] * 6)),
    ("POST", "/portal/survey/<token>", "/portal/survey/{survey}", {"score": "4"}, False,
     " ".join(["303>/portal/survey/{survey}"] * 6)),
    ("POST", "/portal/tickets/<number>/replies", "/portal/tickets/{number}/replies", {"body": "Any news?"}, True,
     "404 404 404 200 404 401>/portal/login"),
]


def app_routes(app) -> set[tuple[str, str]]:
    """Every route but the API's: tokens, not sessions, open those (tests/web/test_api.py has their matrix)."""
    return {(method, rule.rule) for rule in app.url_map.iter_rules()
            if rule.endpoint != "static" and not rule.rule.startswith("/api/")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


@pytest.fixture
def world(session, client, snapshot):
    """Acme with its Billing department, unrelated Globex, and one ticket in Acme Billing: each role's address,
    and the ids and values the routes are formatted with (built once, kept for every test: see `snapshot`)."""
    return snapshot(lambda: _build_world(session, client))


def _build_world(session, client):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    people = {
        "admin": make_staff(name="Ada Admin", is_admin=True),
        "manager": make_staff(acme, role="manager", name="Maria Manager"),  # covers Acme Billing
        "agent": make_staff(globex, name="Gus Agent"),
        "owner": make_customer("Olive Owner"),
        "customer": make_customer("Carl Other"),
    }
    rule = make_rule(acme, "Standard", response_minutes=240)
    ticket = make_ticket(billing, customer=people["owner"], subject="Charged twice")
    hours_edit.set_custom_hours(session, acme, True)  # Acme's own hours, which Billing inherits
    holiday = hours_edit.add_holiday(session, acme, "2026-12-25", "Christmas Day")
    exception = hours_edit.add_exception(session, acme, "2026-12-24", "09:00", "13:00")
    email = outbox.queue_message(session, to="ops@example.com", subject="Hello", text="Hi", entity=billing)
    hook = webhooks.queue_webhook(session, url="https://hooks.example.com/in", payload={}, entity=billing,
                                 secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    endpoint = webhook_endpoints.create_endpoint(session, billing, {"url": "https://hooks.example.com/billing",
                                                                    "event_types": ["ticket.created"]})
    endpoint_delivery = webhook_endpoints.send_test(session, endpoint, people["admin"])
    auto = automation_rules.create_rule(session, {**AUTO_RULE, "entity_id": acme.id,
                                                  "actions": [{"type": "set_priority", "priority": "high"}]})
    category = categories.add_category(session, acme, "Billing")
    macro = macros.create_macro(session, acme, {"name": "Thanks", "body": "Thanks, {{ customer_name }}."})
    policy = escalation.create_policy(session, acme, name="Slow answers", clock="since_created", business_time=False,
                                      levels=[{"trigger": "after_duration", "value": 600, "actions": []}])
    api_token = api_tokens.create_token(session, people["manager"], "Nightly", clock.now()).row
    view = ticket_views.save_view(session, people["manager"], "Acme urgent", TicketFilters(priority="urgent"), acme.id)
    survey = CsatResponse(ticket_id=ticket.id, resolved_at=clock.now(), entity_id=billing.id,
                          customer_id=people["owner"].id, priority="normal", sent_at=clock.now(),
                          expires_at=clock.now() + timedelta(days=14), comment="")
    session.add(survey)
    session.commit()
    values = {"api_token": api_token.id, "policy": policy.id, "view": view.id, "ticket_id": str(ticket.id), "category": category.id, "macro": macro.id, "acme": acme.id, "auto": auto.id, "billing": billing.id, "number": ticket.number, "password": "correct-horse-battery",
              "agent_id": people["agent"].id, "agent_email": people["agent"].email,
              "agent_membership": people["agent"].memberships[0].id, "manager_email": people["manager"].email,
              "owner_email": people["owner"].email, "holiday": holiday.id, "exception": exception.id,
              "interval": hours.week_of(session, acme)[0][0].id, "rule": rule.id, "email": email.id, "hook": hook.id,
              "endpoint": endpoint.id, "endpoint_delivery": endpoint_delivery.id,
              "token": portal_auth.make_token(client.application.secret_key, people["owner"].email),
              "survey": portal_auth.make_survey_token(client.application.secret_key, survey.id, people["owner"].email)}
    return {role: person.email for role, person in people.items()}, values


def sign_in(client, role, people):
    if role in ("admin", "manager", "agent"):
        login(client, people[role])
    elif role in ("owner", "customer"):
        login_customer(client, people[role])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method, rule, path, data, htmx, expected",
                         [pytest.param(*r, id=f"{r[0]} {r[1]}") for r in ROUTES])
def test_route_answers_each_role_exactly(app, client, world, role, method, rule, path, data, htmx, expected):
    missing = app_routes(app) - {(r[0], r[1]) for r in ROUTES}
    assert not missing, f"routes with no access expectation: {sorted(missing)}"
    people, values = world
    sign_in(client, role, people)

    form = {k: v.format(**values) for k, v in data.items()} if data is not None else None
    response = client.open((path or rule).format(**values), method=method, data=form, headers=HTMX if htmx else {})

    code, _, target = expected.split()[ROLES.index(role)].partition(">")
    target = target.format(**values)
    assert response.status_code == int(code), response.get_data(as_text=True)[:300]
    if code == "401":
        assert response.headers["HX-Redirect"] == target
    elif target:
        assert urlsplit(response.location).path == target
