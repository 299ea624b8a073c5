"""Email templates: the defaults shipped in mets/email_templates/, per-entity overrides, sandboxed rendering.

An entity's override of a template applies to it and to every entity below it that has none of
its own (entity -> parent -> ... -> default). Templates are Jinja run in the immutable sandbox
with StrictUndefined and plain values only (no model objects reach a template); the HTML part
autoescapes, the subject and text parts do not (they are not HTML), and the subject is folded
to one line so neither a template nor ticket data can add a mail header. A template is checked
when saved (syntax, known variables, a sandboxed test render on the render budget of
services.notifications.sandbox: time, loops, sizes); one that still fails when a notification
renders is logged and the default is used instead: a template never loses a mail. One that runs
out of budget then (ticket data made it costly) is remembered, and the default used at once,
until it is saved again.
"""
import logging
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import TemplateSyntaxError, meta, nodes
from markupsafe import Markup, escape
from sqlalchemy import select

from mets import clock, transaction
from mets.models import EmailTemplate, Entity, Ticket, User
from mets.services.directory import access
from mets.services.errors import DomainError
from mets.services.notifications.settings import EVENTS
from mets.services.html import clean_html
from mets.services.notifications.variables import digest_sample, preview_variables, sample_variables, variables_for
from mets.services.notifications.sandbox import Sandbox, TemplateBudgetError, TemplateTimeoutError, budget, trusted

__all__ = ["NAMES", "DESCRIPTIONS", "VARIABLES", "Rendered", "Source", "default_source", "source_for", "validate",
           "sample_variables", "render_source", "render", "variables_for", "ensure_portal_link", "save_override",
           "reset_override", "overview", "preview", "preview_for", "Preview", "in_scope", "audience_of", "one_line",
           "TemplateBudgetError", "validate_parts", "runtime_message", "check_snippet", "render_snippet", "DIGEST",
           "DIGEST_VARIABLES", "TICKET_NAMES", "variables_of"]

log = logging.getLogger(__name__)

DEFAULTS_DIR = Path(__file__).resolve().parents[2] / "email_templates"  # mets/email_templates
NAMES = ("ticket-created-customer", "ticket-created-agent", "ticket-reply-customer", "ticket-reply-agent",
         "ticket-assigned", "ticket-status-changed", "sla-breach-warning", "sla-breach-notification",
         "escalation-notification", "escalation-digest", "csat-survey")
DESCRIPTIONS = {
    "ticket-created-customer": "Sent to the customer when their ticket is created.",
    "ticket-created-agent": "Sent to the entity's agents when a new ticket comes in.",
    "ticket-reply-customer": "Sent to the customer when an agent replies publicly.",
    "ticket-reply-agent": "Sent to the assignee when the customer replies.",
    "ticket-assigned": "Sent to an agent when a ticket is assigned to them.",
    "ticket-status-changed": "Sent to the customer when their ticket's status changes.",
    "sla-breach-warning": "Sent to staff when an SLA target is about to be breached.",
    "sla-breach-notification": "Sent to staff when an SLA target has been breached.",
    "escalation-notification": "Sent to staff when a ticket is escalated.",
    "escalation-digest": "Sent to a person when the desk opens, for the escalations held for them while it was "
                         "closed (two or more; a single one goes as its escalation notification).",
    "csat-survey": "Sent to the customer after their ticket is resolved (24 business hours later): the "
                   "satisfaction survey.",
}
FIELDS = ("subject", "body_text", "body_html")
FIELD_LABELS = {"subject": "Subject", "body_text": "Text part", "body_html": "HTML part"}
VARIABLES = {
    "ticket_number": "The ticket's number, e.g. ACME-1042.",
    "customer_name": "The customer's name.",
    "agent_name": "The assignee's name (empty if nobody is assigned).",
    "entity_name": "The name of the ticket's entity.",
    "ticket_subject": "The ticket's subject.",
    "ticket_content": "The ticket's first message, as plain text.",
    "ticket_content_html": "The ticket's first message as (sanitised) HTML; for the HTML part.",
    "reply_content": "The reply this email is about, as plain text (empty if none).",
    "reply_content_html": "The reply as (sanitised) HTML; for the HTML part (empty if none).",
    "ticket_url": "Link to the ticket (staff: the ticket page; customers: their signed portal link).",
    "portal_url": "Link to the customer portal (customers: their signed link to this ticket).",
    "due_date": "The nearest SLA due time, in the entity's time zone (empty if none).",
    "priority": "The ticket's priority (Low, Normal, High, Urgent).",
    "status": "The ticket's status (New, Open, Pending, On hold, Resolved, Closed).",
    "old_status": "The status before this change (status emails; empty otherwise).",
    "actor_name": "Who made the change (\"METS\" when the system did).",
    "recipient_name": "The name of the person this email is sent to.",
    "sla_rule": "The name of the SLA rule on the ticket (empty if none).",
    "sla_status": "The SLA state in words, e.g. \"Resolution due in 3h 10m (business time)\".",
    "sla_response_due": "When the first response is due (empty if that clock is not running).",
    "sla_resolution_due": "When resolution is due (empty if that clock is not running).",
    "sla_breached": "True if any SLA target of the ticket has been breached.",
    "sla_clock": "SLA emails: which clock, e.g. \"resolution\" or \"first response\".",
    "sla_point": "SLA emails: \"warning\" or \"breach\".",
    "escalation_level": "Escalation emails: the level reached (empty otherwise).",
    "escalation_reason": "Escalation emails: why, e.g. \"75% of the resolution target used\" (empty otherwise).",
    "escalation_policy": "Escalation emails: the name of the escalation policy (empty for a manual escalation "
                         "without one).",
    "survey_url": "Survey emails: the customer's link to the satisfaction survey (empty otherwise).",
    **{f"survey_url_{n}": f"Survey emails: the survey link with the score {n} of 5 preselected (empty otherwise)."
       for n in range(1, 6)},
}
DIGEST = "escalation-digest"
# The digest is about several tickets: its own variables (the editor lists these, checks and samples with them).
DIGEST_VARIABLES = {
    "recipient_name": "The name of the person this email is sent to.",
    "count": "How many escalations were held (2 or more).",
    "ticket_numbers": "The tickets' numbers, comma-separated, e.g. \"ACME-1042, ACME-1043\".",
    "notices": "The held escalations, oldest first: write {% for n in notices %}…{% endfor %} and, inside, "
               "n.ticket_number, n.ticket_subject, n.escalation_level, n.escalation_reason, n.escalation_policy "
               "(empty for none), n.escalated_at (when, in the desk's time zone), n.priority and n.ticket_url.",
}


# The templates a ticket's mail can use (a rule's or level's "send with template" choices): all but the digest.
TICKET_NAMES = tuple(n for n in NAMES if n != DIGEST)


def variables_of(name: str | None) -> dict[str, str]:
    """The variables template `name` can use, with what each holds (None: the ticket mails')."""
    return DIGEST_VARIABLES if name == DIGEST else VARIABLES


# The templates customers receive, as the notification events define them.
CUSTOMER_NAMES = frozenset({e.customer_template for e in EVENTS.values() if e.customer_template} | {"csat-survey"})
SAFE_HTML = ("ticket_content_html", "reply_content_html")  # trusted markup, in the HTML part only
MAX_SOURCE = 20_000
MAX_SUBJECT = 250


@dataclass
class Rendered:
    subject: str
    text: str
    html: str


@dataclass
class Source:
    subject: str
    body_text: str
    body_html: str


def audience_of(name: str) -> str:
    """"customer" for the templates customers receive, else "staff"."""
    return "customer" if name in CUSTOMER_NAMES else "staff"


# --- the sandbox ------------------------------------------------------------------------------

# Admin templates render in mets.services.notifications.sandbox: no globals, and every render on a budget
# (time, loops, sizes), so no saved template can hold up the request that sends its mail.
_TEXT_ENV = Sandbox(autoescape=False)
_HTML_ENV = Sandbox(autoescape=True)


def _env(field: str) -> Sandbox:
    return _HTML_ENV if field == "body_html" else _TEXT_ENV


def _compile(source: Source) -> tuple:
    return tuple(_env(f).from_string(getattr(source, f)) for f in FIELDS)


def _run(compiled: tuple, variables: dict, *, default: bool = False) -> Rendered:
    """The three parts, under one budget (an admin's) or none (the shipped defaults, whatever the ticket data).

    A TemplateBudgetError carries `field`: the part that was rendering when the budget ran out.
    """
    html_vars = {**variables, **{k: _clean(variables.get(k) or "") for k in SAFE_HTML}}
    parts = []
    # Its own budget, always: a failure is then this template's doing (render() remembers it as such).
    with trusted() if default else budget(fresh=True):
        for part, template in zip(FIELDS, compiled):
            try:
                parts.append(template.render(html_vars if part == "body_html" else variables))
            except TemplateBudgetError as exc:
                exc.field = part
                raise
    subject, text, body_html = parts
    return Rendered(one_line(subject), text, body_html)


@lru_cache(maxsize=256)
def _clean(html: str) -> Markup:
    # A pure function of the text: the tick mails a ticket's content several times (warning, levels).
    return Markup(clean_html(html))


def one_line(subject: str) -> str:
    """Every run of whitespace (line breaks included) as one space, stripped, at most 250 characters."""
    return " ".join(subject.split())[:MAX_SUBJECT]


def render_source(source: Source, variables: dict) -> Rendered:
    """Render one source (not cached: the editor's preview)."""
    return _run(_compile(source), variables)


def check_snippet(source: str) -> str | None:
    """Why a one-field text template (a rule's note, SMS or webhook value) cannot be saved, or None."""
    return validate_parts({"body_text": source or ""}).get("body_text")


@lru_cache(maxsize=1024)
def _compiled_snippet(source: str):
    return _TEXT_ENV.from_string(source)


def render_snippet(source: str, variables: dict) -> str:
    """Render a checked snippet in the text sandbox, on the active budget or its own (TemplateBudgetError if spent)."""
    return _compiled_snippet(source).render(variables)


# --- checking a source ------------------------------------------------------------------------

def validate(subject: str, body_text: str, body_html: str, name: str | None = None) -> dict[str, str]:
    """Field -> "Line N: reason" for every part that cannot be saved; {} when all three are fine (`name`: the
    template, whose variables are checked: the digest has its own)."""
    return validate_parts(dict(zip(FIELDS, (subject or "", body_text or "", body_html or ""))), name)


def validate_parts(sources: dict[str, str], name: str | None = None) -> dict[str, str]:
    """validate() for any of the three parts; their test renders share one budget, as when a mail is sent."""
    errors, compiled = {}, {}
    sample = _sample(name)
    for part, source in sources.items():
        message, template, tree = _compile_checked(part, source, variables_of(name))
        if message:
            errors[part] = message
        else:
            compiled[part] = template, tree
    with budget(fresh=True):
        for part, (template, tree) in compiled.items():
            try:
                template.render(sample if part != "body_html" else _html_sample(sample))
            except Exception as exc:  # any failure on sample data would fail on real data too
                errors[part] = runtime_message(exc)
                if isinstance(exc, TemplateBudgetError):
                    break  # the budget is spent: the parts after this one were not tried
                continue
            if message := _hidden_attribute(tree):
                errors[part] = message
    return {part: errors[part] for part in sources if part in errors}


def _compile_checked(field: str, source: str, known=VARIABLES) -> tuple[str | None, object, object]:
    """(why the part cannot be saved, None, None), or (None, template, parsed tree) to test-render."""
    if not source.strip():
        return f"Write the {FIELD_LABELS[field].lower()}.", None, None
    if len(source) > MAX_SOURCE:
        return f"At most {MAX_SOURCE:,} characters (this has {len(source):,}).", None, None
    if field == "subject" and ("\n" in source or "\r" in source):
        return "The subject must be one line.", None, None
    env = _env(field)
    try:
        tree = env.parse(source)
        template = env.from_string(source)
    except TemplateSyntaxError as exc:
        return f"Line {exc.lineno}: {(exc.message or 'syntax error').rstrip('.')}", None, None
    unknown = meta.find_undeclared_variables(tree) - set(known)
    if unknown:
        name = min(unknown, key=lambda n: (_first_line(tree, n), n))
        return f"Line {_first_line(tree, name)}: unknown variable '{name}'", None, None
    return None, template, tree


def runtime_message(exc: BaseException) -> str:
    """"Line N: reason" for a render failure (just the reason when no template line was running)."""
    line, reason = _template_line(exc), str(exc).rstrip(".")
    if line is None and isinstance(exc, TemplateBudgetError):
        return reason  # e.g. the output cap, counted outside the template's own code
    return f"Line {line or 1}: {reason}"


def _first_line(tree, name: str) -> int:
    return min((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), default=1)


def _template_line(exc: BaseException) -> int | None:
    """The template line of a runtime error: Jinja rewrites its traceback into "<template>" frames."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<template>"]
    return lines[-1] if lines else None


def _hidden_attribute(tree) -> str | None:
    """The sandbox refuses "_" attributes at render time; catch them in branches the sample did not reach."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(name, str) and name.startswith("_"):
            return f"Line {node.lineno}: access to attribute '{name}' is unsafe"
    return None


def _sample(name: str | None) -> dict:
    return digest_sample() if name == DIGEST else sample_variables()


def _html_sample(values: dict) -> dict:
    return {**values, **{k: Markup(values[k]) for k in SAFE_HTML if k in values}}


# --- where a template comes from --------------------------------------------------------------

def _known(name: str) -> None:
    if name not in NAMES:
        raise DomainError({"": f"Unknown email template '{name}'."})


def default_source(name: str) -> Source:
    """The shipped default (files in mets/email_templates/)."""
    _known(name)
    read = lambda ext: (DEFAULTS_DIR / f"{name}.{ext}").read_text(encoding="utf-8")  # noqa: E731
    return Source(read("subject").strip(), read("txt"), read("html"))


def _chain(session, entity: Entity | None) -> list[Entity]:
    return [] if entity is None else access.lineage(session, entity)


def _overrides(session, chain: list[Entity], names) -> dict[tuple[int, str], EmailTemplate]:
    if not chain:
        return {}
    rows = session.scalars(select(EmailTemplate).where(EmailTemplate.entity_id.in_([e.id for e in chain]),
                                                       EmailTemplate.name.in_(list(names))))
    return {(r.entity_id, r.name): r for r in rows}


_OVERRIDES = "notifications.template_overrides"  # transaction.cache: (entity id, name) -> (row, owner)


def _override(session, entity: Entity | None, name: str) -> tuple[EmailTemplate | None, Entity | None]:
    # Looked up once per transaction and entity: a tick renders thousands of mails for a few entities.
    cache = transaction.cache(session)
    if _OVERRIDES not in cache:
        cache[_OVERRIDES] = {}
        transaction.before_flush(session, _OVERRIDES, _forget_overrides_on_change)
    key = (entity.id if entity is not None else None, name)
    if key not in cache[_OVERRIDES]:
        chain = _chain(session, entity)
        rows = _overrides(session, chain, [name])
        cache[_OVERRIDES][key] = next(((rows[(c.id, name)], c) for c in chain if (c.id, name) in rows), (None, None))
    return cache[_OVERRIDES][key]


def _forget_overrides_on_change(session) -> None:
    # A template saved or reset in this very transaction (the editor, a test) is used by the next mail.
    if any(isinstance(obj, EmailTemplate) for obj in (*session.new, *session.dirty, *session.deleted)):
        transaction.cache(session).pop(_OVERRIDES, None)


def source_for(session, entity: Entity | None, name: str) -> tuple[Source, Entity | None]:
    """The effective source for the entity and the entity whose override it is (None: the default)."""
    _known(name)
    row, owner = _override(session, entity, name)
    if row is None:
        return default_source(name), None
    return Source(row.subject, row.body_text, row.body_html), owner


def overview(session, entity: Entity) -> list[dict]:
    """Each template for the list page: name, description and where it comes from ("own", "inherited", "default")."""
    chain = _chain(session, entity)
    rows = _overrides(session, chain, NAMES)
    out = []
    for name in NAMES:
        owner = next((e for e in chain if (e.id, name) in rows), None)
        state = "default" if owner is None else ("own" if owner.id == entity.id else "inherited")
        out.append({"name": name, "description": DESCRIPTIONS[name], "state": state, "owner": owner})
    return out


# --- rendering for a notification -------------------------------------------------------------

_default_cache: dict[str, tuple] = {}
_override_cache: dict[tuple, tuple] = {}
_cache_lock = threading.Lock()
_OVERRIDE_CACHE_MAX = 512


def _compiled_default(name: str) -> tuple:
    if name not in _default_cache:
        compiled = _compile(default_source(name))
        with _cache_lock:
            _default_cache[name] = compiled
    return _default_cache[name]


def _override_key(row: EmailTemplate) -> tuple:
    # The sources are in the key too: a frozen clock (tests) or a reused SQLite id must not serve stale text.
    return row.id, row.updated_at, hash((row.subject, row.body_text, row.body_html))


def _compiled_override(row: EmailTemplate) -> tuple:
    key = _override_key(row)
    compiled = _override_cache.get(key)
    if compiled is None:
        compiled = _compile(Source(row.subject, row.body_text, row.body_html))
        with _cache_lock:
            if len(_override_cache) >= _OVERRIDE_CACHE_MAX:
                _override_cache.clear()
            _override_cache[key] = compiled
    return compiled


# Overrides that ran out of time at send time (ticket data made them too costly), by _override_key:
# later mails use the default at once rather than paying the budget again, until the override is saved anew.
_over_budget: dict[tuple, str] = {}


def _remember_over_budget(row: EmailTemplate, reason: str) -> None:
    with _cache_lock:
        if len(_over_budget) >= _OVERRIDE_CACHE_MAX:
            _over_budget.clear()
        _over_budget[_override_key(row)] = reason


def render(session, entity: Entity | None, name: str, variables: dict) -> Rendered:
    """The entity's effective template rendered; a broken or over-budget override is logged and the default used."""
    _known(name)
    row, owner = _override(session, entity, name)
    if row is not None and _override_key(row) not in _over_budget:
        try:
            return _run(_compiled_override(row), variables)
        except TemplateBudgetError as exc:
            # Only a time-out is remembered: it cost the whole budget and would again. A size or loop
            # limit fails fast, and one ticket's huge data must not switch the override off for all.
            if isinstance(exc, TemplateTimeoutError):
                _remember_over_budget(row, str(exc))
            log.warning("email template %r of entity %s is over its rendering budget (%s: %s); sending the default "
                        "instead%s", name, owner.id, FIELD_LABELS[exc.field], exc,
                        ", and until it is saved again" if isinstance(exc, TemplateTimeoutError) else "")
        except Exception:
            log.exception("email template %r of entity %s failed; sending the default instead", name, owner.id)
    return _run(_compiled_default(name), variables, default=True)


# Shipped templates that admins do not edit (a system notice about an endpoint, not about a ticket).
SHIPPED_ONLY = ("webhook-endpoint-disabled",)


def render_shipped(name: str, variables: dict) -> Rendered:
    """A shipped-only template (`SHIPPED_ONLY`: the webhook endpoint disabled) rendered like
    a default."""
    if name not in SHIPPED_ONLY:
        raise DomainError({"": f"Unknown email template '{name}'."})
    if name not in _default_cache:
        read = lambda ext: (DEFAULTS_DIR / f"{name}.{ext}").read_text(encoding="utf-8")  # noqa: E731
        compiled = _compile(Source(read("subject").strip(), read("txt"), read("html")))
        with _cache_lock:
            _default_cache[name] = compiled
    return _run(_default_cache[name], variables, default=True)


def ensure_portal_link(rendered: Rendered, link: str) -> Rendered:
    """Append the link to any part that lacks it, so every customer email carries its portal link."""
    text, body_html = rendered.text, rendered.html
    if link not in text:
        text = text.rstrip("\n") + f"\n\nView your request: {link}\n"
    if link not in body_html and str(escape(link)) not in body_html:
        body_html += f'\n<p><a href="{escape(link)}">View your request</a></p>\n'
    return Rendered(rendered.subject, text, body_html)


# --- saving -----------------------------------------------------------------------------------

def save_override(session, entity: Entity, name: str, *, subject: str, body_text: str, body_html: str,
                  actor: User | None) -> EmailTemplate:
    """Validate and store the entity's own version of the template (DomainError by field when refused)."""
    _known(name)
    errors = validate(subject, body_text, body_html, name)
    if errors:
        raise DomainError(errors)
    row = session.scalar(select(EmailTemplate).where(EmailTemplate.entity_id == entity.id,
                                                     EmailTemplate.name == name))
    if row is None:
        row = EmailTemplate(entity_id=entity.id, name=name)
        session.add(row)
    row.subject, row.body_text, row.body_html = subject, body_text, body_html
    row.updated_at = clock.now()
    row.updated_by_id = actor.id if actor is not None else None
    session.flush()
    return row


def reset_override(session, entity: Entity, name: str) -> bool:
    """Delete the entity's own version (it then inherits again); False if it had none."""
    _known(name)
    row, owner = _override(session, entity, name)
    if row is None or owner.id != entity.id:
        return False
    session.delete(row)
    session.flush()
    return True


# --- the editor's preview ---------------------------------------------------------------------

@dataclass
class Preview:
    """What the editor's preview box shows: the rendered parts, or the errors; and whose data it used."""

    rendered: Rendered | None = None
    errors: dict[str, str] = field(default_factory=dict)
    ticket_number: str = ""  # the ticket whose data is shown; "" for sample data
    notice: str = ""  # why sample data is shown instead of the ticket asked for


def in_scope(session, entity: Entity, ticket: Ticket) -> bool:
    """Whether the ticket belongs to the entity or one below it (the only tickets its templates reach)."""
    return ticket.entity_id in access.with_descendants(session, [entity.id])


def preview(session, name: str, source: Source, ticket: Ticket | None = None, now: datetime | None = None) -> Rendered:
    """Unsaved sources rendered against a ticket (or sample data) as its recipient would get them.

    DomainError if they are invalid.
    """
    _known(name)
    errors = validate(source.subject, source.body_text, source.body_html, name)
    if errors:
        raise DomainError(errors)
    variables = (_sample(name) if ticket is None or name == DIGEST
                 else preview_variables(session, ticket, name, audience_of(name), now))
    try:
        rendered = render_source(source, variables)
    except TemplateBudgetError as exc:  # this ticket's data makes it too costly (the sample passed)
        raise DomainError({exc.field: runtime_message(exc)}) from None
    return ensure_portal_link(rendered, variables["portal_url"]) if audience_of(name) == "customer" else rendered


def preview_for(session, user: User, entity: Entity, name: str, source: Source, number: str = "") -> Preview:
    """The editor's preview: against ticket `number` if `user` may see it and it is the entity's (or below),
    else sample data."""
    ticket, notice = None, ""
    if number and name == DIGEST:
        notice = "The digest is about several tickets: showing sample data."
    elif number:
        found = access.find_ticket(session, user, number)
        if found is None:
            notice = f"No ticket {number}: showing sample data."
        elif not in_scope(session, entity, found):
            # Its data stays out of this page: only tickets these templates can reach are previewed.
            notice = (f"{number} is not a ticket of {entity.name} or the entities below it: "
                      "showing sample data. Pick one of its tickets.")
        else:
            ticket = found
    try:
        rendered = preview(session, name, source, ticket)
    except DomainError as exc:
        return Preview(errors=exc.errors, notice=notice)
    return Preview(rendered, ticket_number=ticket.number if ticket else "", notice=notice)
