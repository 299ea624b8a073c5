"""The communication actions of automation rules: email, internal note, SMS, webhook.

Registered on `automation_actions.ACTIONS` like the others (imported at the end of that module).
Every text an admin writes here is a template rendered in the email sandbox with the email
variables; webhook bodies are JSON whose strings are templates, so ticket data cannot break out
of a string value.
"""
import json

from flask import current_app

from mets.services import outbox, tickets
from mets.services.notifications import templates as mail_templates
from mets.services.notifications import variables as mail_variables
from mets.services.notifications import notify
from mets.services.notifications import sandbox
from mets.services.outbox import http as webhooks
from mets.services.automation.actions import RECIPIENT_CHOICES, Param, Plan, Run, action, fixed, snippet_error
from mets.services.errors import DomainError
from mets.services.notifications.settings import parse_addresses

_TEMPLATE_CHOICES = [(n, n) for n in mail_templates.TICKET_NAMES]


# --- communication ----------------------------------------------------------------------------

def _variables(run: Run) -> dict:
    return mail_variables.ticket_values(run.ticket, actor=None, changes=run.changes, now=run.now)


def _render(label: str, source: str, variables: dict) -> str:
    """A snippet rendered; over its budget, a DomainError the rule's log shows ("Note: This template loops...")."""
    try:
        return mail_templates.render_snippet(source, variables)
    except sandbox.TemplateBudgetError as exc:
        raise DomainError(f"{label}: {exc}.") from None


def _check_email(session, entity, params) -> dict:
    if not params.get("to") and not params.get("extra"):
        return {"to": "Choose who gets the email."}
    for address in parse_addresses(params.get("extra", "")):
        if why := outbox.refusal(session, address, current_app.config):
            return {"extra": f"{address}: {why}"}
    return {}


@action("send_email", "Send an email", "Communication",
        Param("template", "Template", "select", choices=fixed(_TEMPLATE_CHOICES)),
        Param("to", "To", "multi", required=False, choices=fixed(RECIPIENT_CHOICES)),
        Param("extra", "Other addresses", "text", required=False, help="Comma-separated."),
        check=_check_email,
        words=lambda s, p: f"Email {p.get('template')} to " + ", ".join(
            [dict(RECIPIENT_CHOICES).get(t, t).lower() for t in p.get("to", [])]
            + ([p["extra"]] if p.get("extra") else [])))
def _send_email(run: Run, p: dict) -> Plan:
    found = notify.people(run.session, run.ticket, set(p.get("to", [])), parse_addresses(p.get("extra", "")))
    if not found:
        return Plan(f"email {p['template']}: nobody to send it to", skipped=True)

    def apply():
        shared = _variables(run)
        for person in found.values():
            variables = {**shared, **mail_variables.recipient_values(
                run.ticket, audience=person.audience, recipient_name=person.name or "", recipient_email=person.email)}
            rendered = mail_templates.render(run.session, run.ticket.entity, p["template"], variables)
            if person.audience == "customer":
                rendered = mail_templates.ensure_portal_link(rendered, variables["portal_url"])
            outbox.queue_message(
                run.session, to=person.email, name=person.name, subject=rendered.subject, text=rendered.text,
                html=rendered.html, audience=person.audience, entity=run.ticket.entity, ticket=run.ticket,
                event_name="automation", template_name=p["template"],
                dedupe_key=f"rule:{run.rule_id}:{run.event_id}:{run.index}:{person.email}", now=run.now)
    return Plan(f"email {p['template']} to {', '.join(found)}", apply)


def _check_note(session, entity, params) -> dict:
    message = snippet_error("Note", params.get("body", ""))
    return {"body": message} if message else {}


@action("add_note", "Add an internal note", "Communication",
        Param("body", "Note", "textarea", help="A template: {{ ticket_number }}, {{ customer_name }}... (sandboxed)."),
        check=_check_note, words=lambda s, p: "Add an internal note")
def _add_note(run: Run, p: dict) -> Plan:
    text = _render("Note", p["body"], _variables(run))
    if run.ticket.status in tickets.FINAL:
        raise DomainError("The ticket is closed: no note can be added.")
    body = text if text.strip() else "(empty)"  # plain text, like every note: escaped when shown
    return Plan(f"add an internal note: \u201c{_short(text)}\u201d",
                lambda: tickets.add_reply(run.session, run.ticket, actor=None, body=body, internal=True, via="system",
                                          now=run.now))


def _check_sms(session, entity, params) -> dict:
    if not webhooks.sms_enabled(current_app.config):
        return {"": "SMS is off: set SMS_GATEWAY_URL to a gateway first."}
    numbers = [n for n in (params.get("to") or "").split(",") if n.strip()]
    bad = next((m for n in numbers if (m := webhooks.phone_error(n))), None)
    problems = {"to": bad} if bad else ({} if numbers else {"to": "Enter at least one phone number."})
    if message := snippet_error("Text", params.get("text", "")):
        problems["text"] = message
    return problems


@action("send_sms", "Send an SMS", "Communication",
        Param("to", "Phone numbers", "text", help="International format, comma-separated: +44 20 7946 0958."),
        Param("text", "Text", "textarea", help="A template, like the note. Cut at 1,600 characters."),
        check=_check_sms, words=lambda s, p: f"SMS {p.get('to')}")
def _send_sms(run: Run, p: dict) -> Plan:
    numbers = [webhooks.normalize_phone(n) for n in p["to"].split(",") if n.strip()]
    text = _render("Text", p["text"], _variables(run))

    def apply():
        for n, number in enumerate(numbers):
            webhooks.queue_sms(run.session, to=number, text=text, entity=run.ticket.entity, ticket=run.ticket,
                               rule_id=run.rule_id, event=run.event,
                               dedupe_key=f"rule:{run.rule_id}:{run.event_id}:{run.index}:{n}", now=run.now)
    return Plan(f"SMS to {', '.join(numbers)}: \u201c{_short(text)}\u201d", apply)


def _check_webhook(session, entity, params) -> dict:
    problems = {}
    if message := webhooks.url_error(params.get("url", "")):
        problems["url"] = message
    # Any whsec_ key length passes: migration 0025 turned each old secret S into "whsec_" + base64(S), the very key
    # its receiver holds, however short S was (the help asks for 32 random bytes).
    if (secret := params.get("secret")) and (message := webhooks.secret_error(secret, min_bytes=1)):
        problems["secret"] = message
    body = params.get("body")
    if body:
        try:
            template = json.loads(body)
        except ValueError as exc:
            return {**problems, "body": f"The body is not valid JSON ({exc.msg}, character {exc.pos})."}
        if not isinstance(template, dict):
            problems["body"] = "The body must be a JSON object: {\"key\": \"value\"}."
        elif message := next((m for s in _strings(template) if (m := snippet_error("Body", s))), None):
            problems["body"] = message
    return problems


def _strings(value):
    """Every string with a template tag in a JSON value (others need no check)."""
    if isinstance(value, str):
        return [value] if "{" in value else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _fill(value, variables: dict):
    """The JSON body with each templated string rendered (values stay strings: no JSON injection)."""
    if isinstance(value, str):
        return _render("Body", value, variables) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    return value


def _default_payload(run: Run) -> dict:
    t = run.ticket
    return {"event": run.event, "rule": {"id": run.rule_id, "name": run.rule_name}, "changes": run.changes,
            "ticket": {"number": t.number, "subject": t.subject, "status": t.status, "priority": t.priority,
                       "category": t.category, "entity": t.entity.slug, "customer_email": t.customer.email,
                       "assignee_email": t.assignee.email if t.assignee else None,
                       "escalation_level": t.escalation_level,
                       "created_at": t.created_at.isoformat(), "updated_at": t.updated_at.isoformat()}}


@action("webhook", "Call a webhook", "Communication",
        Param("url", "URL", "text", help="https://… — POSTed as JSON by a worker, retried on failure."),
        Param("body", "JSON body", "json", required=False,
              help='Leave empty for the standard payload, or a JSON object whose strings may use {{ ticket_number }}.'),
        Param("secret", "Signing secret", "secret", required=False,
              help="A Standard Webhooks secret (whsec_ and the base64 of 24 to 64 random bytes): each call then "
                   "carries webhook-id, webhook-timestamp and webhook-signature (v1, HMAC-SHA256 of "
                   "id.timestamp.body). A saved secret is never shown again: leave the dots to keep it."),
        check=_check_webhook, words=lambda s, p: f"POST to {p.get('url')}")
def _webhook(run: Run, p: dict) -> Plan:
    if p.get("body"):
        variables = _variables(run)
        with sandbox.budget():  # one budget for all the body's strings, not one each
            payload = _fill(json.loads(p["body"]), variables)
    else:
        payload = _default_payload(run)
    size = len(json.dumps(payload, ensure_ascii=False).encode())

    def apply():
        webhooks.queue_webhook(run.session, url=p["url"], payload=payload, secret=p.get("secret") or None,
                               entity=run.ticket.entity, ticket=run.ticket, rule_id=run.rule_id, event=run.event,
                               dedupe_key=f"rule:{run.rule_id}:{run.event_id}:{run.index}", now=run.now)
    return Plan(f"POST {size} bytes of JSON to {p['url']}" + (" (signed)" if p.get("secret") else ""), apply)


def _short(text: str, limit: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit - 1] + "\u2026"
