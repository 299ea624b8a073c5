"""The render budget of admin templates: what cannot be saved, and what happens when ticket data makes one too costly.

Every attack is refused when the admin saves it, with a reason they can act on, well within a
second (the time is what a customer waiting on a portal request notices); an override that only
runs out of budget on real ticket data falls back to the default mail, once per process.
"""
import logging
import time
from datetime import timedelta

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup
from sqlalchemy import select

from mets import clock
from mets.models import AutomationRule, EmailTemplate, QueuedEmail, RuleExecution, WebhookDelivery
from mets.services.automation import actions as automation_actions
from mets.services.notifications import templates as mt
from mets.services.errors import DomainError
from mets.services.notifications.sandbox import LIMITS, Sandbox
from tests.conftest import count_rows, login_customer
from tests.factories import make_customer, make_entity, make_ticket

HTML_OK = "<p>Hello {{ recipient_name }}</p>"
TOO_LONG = "This template takes too long to render (over 0.2 s)"
TOO_WIDE = "This template pads or formats text wider than 1,000 characters"
TOO_BIG = "This template builds a text or list larger than 256 KB"
TOO_MANY = "This template loops more than 10,000 times"
LONG_SUBJECT = ("Printer " * 32)[:250]  # a subject as long as the portal takes

NESTED_8 = "{% for a in ticket_subject %}" * 8 + "x" + "{% endfor %}" * 8
DOUBLINGS = "{% set a = ticket_subject %}\n" + "{% set a = a ~ a %}\n" * 40 + "{{ a|length }}"
EXPONENTIAL = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
ATTACKS = [
    ("{% if ((((9**64)**64)**64)**64) > 0 %}x{% endif %}",
     "Line 1: This template computes a number larger than 4,096 bits"),
    ("{{ ticket_subject|center(10**8) }}", f"Line 1: {TOO_WIDE}"),
    ("{{ ticket_subject.ljust(10**8) }}", f"Line 1: {TOO_WIDE}"),
    ("{{ '%100000000s'|format(ticket_subject) }}", f"Line 1: {TOO_WIDE}"),
    ("{{ '%100000000s' % ticket_subject }}", f"Line 1: {TOO_WIDE}"),
    ("{{ '%*s' % (100000000, ticket_subject) }}", f"Line 1: {TOO_WIDE}"),
    ("Hi\n{{ '{:>100000000}'.format(ticket_subject) }}", f"Line 2: {TOO_WIDE}"),
    ("{{ '{:>{w}}'.format(ticket_subject, w=100000000) }}", f"Line 1: {TOO_WIDE}"),
    ("{{ ticket_subject|indent(10**8) }}", f"Line 1: {TOO_WIDE}"),
    (NESTED_8, f"Line 1: {TOO_MANY}"),
    (EXPONENTIAL, f"Line 1: {TOO_LONG}"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
     "Line 1: This template nests macro calls more than 50 deep"),
    ("{{ ticket_subject * 100000 }}", f"Line 1: {TOO_BIG}"),
    ("{{ [ticket_subject] * 100000 }}", f"Line 1: {TOO_BIG}"),
    ("{{ ticket_subject|replace('', ticket_subject * 300) }}", f"Line 1: {TOO_BIG}"),
    ("{{ (ticket_subject * 2500)|list|sort|join }}", f"Line 1: {TOO_MANY}"),
    ("{{ ticket_subject|slice(10**9)|list }}", f"Line 1: {TOO_MANY}"),
    ("{% set x %}{% for a in ticket_subject %}{% for b in ticket_subject %}" + "y" * 15_000
     + "{% endfor %}{% endfor %}{% endset %}{{ x|length }}", "Line 1: This template builds more than 8 MB of text in all"),
    ("{% for a in ticket_subject %}{{ ticket_subject * 8000 }}{% endfor %}", "This template produces more than 256 KB"),
    ("{{ 5|round(-10**6, 'floor') }}", "Line 1: This template rounds to more than 1,000 digits"),
    ("{{ sla_breached.to_bytes(10**9, 'big') }}", "Line 1: calling 'to_bytes' is not allowed in a template"),
    ("{{ [[1]]|sum(start=[]) }}", "Line 1: sum adds up numbers only"),
    ("{{ ticket_subject|pprint }}", "Line 1: No filter named 'pprint'"),
]


@pytest.fixture(autouse=True)
def _forget_over_budget_overrides():
    mt._over_budget.clear()  # the memory is per process: each test starts without one
    yield
    mt._over_budget.clear()


# What "does not hang" means here: unbounded, these renders take minutes (the 9**64 chain took 34.8 s);
# bounded, they stop at the 0.2 s budget. 5 s keeps a loaded CI machine from making that flaky.
PROMPT = 5.0

def timed(call, *args, **kwargs):
    started = time.perf_counter()
    result = call(*args, **kwargs)
    return result, time.perf_counter() - started


# --- refused at save --------------------------------------------------------------------------

@pytest.mark.parametrize("source, message", ATTACKS)
def test_each_attack_is_refused_at_save_with_its_reason_in_well_under_a_second(source, message):
    errors, elapsed = timed(mt.validate, "Hi", source, HTML_OK)
    assert errors == {"body_text": message}
    assert elapsed < PROMPT


def test_forty_doublings_are_stopped_where_the_text_gets_too_big():
    errors, elapsed = timed(mt.validate, "Hi", DOUBLINGS, HTML_OK)
    # 32 characters of sample subject doubled: the 14th doubling (line 15) passes 256 KB.
    assert errors == {"body_text": f"Line 15: {TOO_BIG}"}
    assert elapsed < PROMPT


@pytest.mark.parametrize("field", ["subject", "body_html"])
def test_the_subject_and_html_part_are_bounded_too(field):
    values = {"subject": "Hi", "body_text": "Hello", "body_html": HTML_OK,
              field: "{{ ticket_subject|center(10**8) }}"}
    errors, elapsed = timed(mt.validate, **values)
    assert errors == {field: f"Line 1: {TOO_WIDE}"}
    assert elapsed < PROMPT


def test_the_three_parts_share_one_budget_when_saved_as_when_sent():
    half = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    errors, elapsed = timed(mt.validate, half, half, half)
    assert errors == {"subject": f"Line 1: {TOO_LONG}"}  # the others were not given a fresh 0.2 s each
    assert elapsed < PROMPT


def test_an_attack_in_a_note_snippet_is_refused_when_the_rule_is_saved(session):
    acme = make_entity("Acme", "acme")
    started = time.perf_counter()
    with pytest.raises(DomainError) as caught:
        automation_actions.validate(session, acme, [{"type": "add_note", "body": EXPONENTIAL}])
    assert time.perf_counter() - started < PROMPT
    assert caught.value.errors == {"actions[0].body": f"Note: Line 1: {TOO_LONG}"}


# --- normal templates -------------------------------------------------------------------------

NORMAL = [
    "{{ ticket_subject|upper }} {{ ticket_number ~ ' / ' ~ '<b>' ~ customer_name }}",
    "{% for w in ticket_subject.split() %}{{ loop.index }}/{{ loop.length }}:{{ w|title }}{{ loop.cycle(',', ';') }}"
    "{% if loop.last %}.{% endif %}{% endfor %}",
    "{% for k, v in {'a': 1, 'b': '<x>'}.items() %}{{ k }}={{ v }} {% endfor %}",
    "{% macro row(label) %}<td>{{ label }}: {{ caller() }}</td>{% endmacro %}{% call row('Subject') %}"
    "{{ ticket_subject }}{% endcall %}",
    "{% block a %}A{{ ticket_number }}{% endblock %}|{{ self.a() }}",
    "{% filter upper %}hello {{ customer_name }}{% endfilter %}",
    "{{ ['<a>', ticket_subject]|join(', ') }} {{ ticket_subject|replace('March', '<March>') }}",
    "{{ '{} owes {:>8.2f}'.format(customer_name, 12.5) }} {{ '%-10s|%5d' % (priority, 42) }} {{ '%s'|format(status) }}",
    "{{ ticket_content|truncate(40) }} {{ ticket_content|wordwrap(20) }} {{ ticket_content|indent(2) }}",
    "{% set parts = [ticket_number, status, priority] %}{{ parts|length }} {{ parts|sort|first }} {{ parts|reverse|list }}",
    "{% if sla_breached %}late{% elif status == 'Open' and priority in ['High', 'Urgent'] %}hot{% else %}ok{% endif %}",
    "{{ ticket_content_html }} {{ ticket_content_html|striptags }} {{ (ticket_content_html ~ '<i>')|safe }}",
    "{{ 2 ** 10 }} {{ 7 * 6 }} {{ 'ab' * 3 }} {{ 10 // 3 }} {{ 10 % 3 }} {{ 1 + 2 }} {{ [1] + [2] }} {{ 'a' + 'b' }}",
    "{{ ticket_subject|center(50) }}|{{ ticket_subject.ljust(40, '.') }}|{{ ticket_number.zfill(12) }}",
    "{% for x in [[1, [2, [3]]]] recursive %}[{{ x[0] }}{% if x|length > 1 %}{{ loop([x[1]]) }}{% endif %}]{% endfor %}",
    "{{ ticket_content|urlize(target='_blank') }} {{ ticket_content|wordcount }} {{ 1234567|filesizeformat }}",
    "{{ (ticket_subject ~ '&')|e }} {{ '%s & %s'|format('<', '>') }} {{ '<%s>' % customer_name }}",
    "{{ ticket_subject[:10] }} {{ ticket_subject[::-1] }} {{ {'a': 1}.get('a') }} {{ [3, 1, 2]|sort|join('-') }}",
    "{{ [1, 2, 3, 4, 5]|batch(2, 0)|list }} {{ [1, 2, 3, 4, 5]|slice(2)|list }} {{ ticket_subject|list|unique|list|length }}",
    "{% for r in ticket_content.splitlines() if r %}{{ loop.index }} {{ r }}\n{% else %}none{% endfor %}",
    "{% set x %}{% for a in 'abc' %}<{{ a }}>{% endfor %}{% endset %}{{ x }}{% with y = x|length %}{{ y }}{% endwith %}",
    "{{ '{name} <{mail}>'.format_map({'name': customer_name, 'mail': 'a@b'}) }} {{ 3.14159|round(2) }} {{ '42'|int + 1 }}",
    "{% autoescape false %}{{ '<b>' ~ customer_name }}{% endautoescape %} {{ ticket_subject|map('upper')|join }}",
    "{{ [1, 2, 3]|sum }} {{ [3, 1]|max }} {{ ticket_subject|list|groupby(0)|length }} {{ {'b': 1, 'a': 2}|dictsort }}",
]


@pytest.mark.parametrize("autoescape", [False, True])
def test_normal_templates_render_exactly_as_in_the_plain_sandbox(autoescape):
    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=autoescape, trim_blocks=True,
                                          lstrip_blocks=True)
    plain.globals.clear()
    budgeted = Sandbox(autoescape)
    values = {**mt.sample_variables(), "ticket_content_html": Markup(mt.sample_variables()["ticket_content_html"])}
    for source in NORMAL:
        assert budgeted.from_string(source).render(values) == plain.from_string(source).render(values), source


@pytest.mark.parametrize("name", mt.NAMES)
def test_every_default_renders_the_same_as_an_override_on_the_budget(name):
    source = mt.default_source(name)
    compiled = mt._compile(source)
    values = mt.digest_sample() if name == mt.DIGEST else mt.sample_variables()
    assert mt._run(compiled, values) == mt._run(compiled, values, default=True)


def test_a_long_customer_message_still_fits_an_overrides_budget(session):
    """The size limits count what the template adds: a customer's 300 KB paste is theirs, not the template's."""
    acme = make_entity("Acme", "acme")
    mt.save_override(session, acme, "ticket-assigned", subject="Yours: {{ ticket_subject }}",
                     body_text="Message:\n{{ ticket_content|upper }}", body_html="<pre>{{ ticket_content }}</pre>",
                     actor=None)
    values = {**mt.sample_variables(), "ticket_content": "log line\n" * 33_000}  # 297 KB
    rendered, elapsed = timed(mt.render, session, acme, "ticket-assigned", values)
    assert rendered.subject == "Yours: Cannot download my March invoice"
    assert rendered.text == "Message:\n" + "LOG LINE\n" * 33_000
    assert elapsed < PROMPT


# --- at send time -----------------------------------------------------------------------------

# Fine on the sample's 32-character subject (2^5 calls); 2^41 calls on a 250-character one.
DATA_DEPENDENT = ("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
                  "Thanks for writing{{ f(ticket_subject|length // 6) }}.")


def over_budget_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "over its rendering budget" in r.getMessage()]


def test_a_portal_request_does_not_wait_for_an_override_too_costly_for_its_data(client, session, caplog, monkeypatch):
    monkeypatch.setattr(mt.log, "disabled", False)  # the migrations' fileConfig disables loggers already created
    billing = make_entity("Acme Billing", "billing")
    carl = make_customer("Carl Customer", "carl@example.com")
    mt.save_override(session, billing, "ticket-created-customer", subject="Got it: {{ ticket_subject }}",
                     body_text=DATA_DEPENDENT, body_html=f"<p>{DATA_DEPENDENT}</p>", actor=None)  # passes its check
    session.commit()
    login_customer(client, carl)

    def open_request(subject):
        response, elapsed = timed(client.post, "/portal/tickets/new", data={
            "entity_id": billing.id, "subject": subject, "body": "It jams.", "priority": "normal"})
        assert response.status_code == 303
        return elapsed

    with caplog.at_level(logging.WARNING, logger="mets.services.notifications.templates"):
        first = open_request(LONG_SUBJECT)
        second = open_request(LONG_SUBJECT[:-1] + "?")
    assert first < PROMPT and second < PROMPT
    receipts = session.scalars(select(QueuedEmail).where(QueuedEmail.recipient_email == "carl@example.com")
                               .order_by(QueuedEmail.id)).all()
    assert len(receipts) == 2  # two requests, two receipts: no mail lost
    for receipt in receipts:  # each from the default, not the override
        assert receipt.subject.startswith(f"[{receipt.template_data['ticket_number']}] We have received your request: ")
        assert "Thank you for contacting Acme Billing." in receipt.body
    # The override was tried once; the later requests went straight to the default.
    assert over_budget_warnings(caplog) == [
        f"email template 'ticket-created-customer' of entity {billing.id} is over its rendering budget (Text part: "
        f"{TOO_LONG}); sending the default instead, and until it is saved again"]


def test_a_short_subject_still_gets_the_override_and_saving_again_retries_it(session):
    acme = make_entity("Acme", "acme")
    mt.save_override(session, acme, "ticket-assigned", subject="Yours: {{ ticket_subject }}", body_text=DATA_DEPENDENT,
                     body_html=HTML_OK, actor=None)
    long_data = {**mt.sample_variables(), "ticket_subject": LONG_SUBJECT}
    assert mt.render(session, acme, "ticket-assigned", mt.sample_variables()).text == "Thanks for writing."
    assert mt.render(session, acme, "ticket-assigned", long_data).subject.startswith("[ACME-1042] Assigned to you:")
    # Remembered: even the short subject gets the default now, at no cost...
    rendered, elapsed = timed(mt.render, session, acme, "ticket-assigned", mt.sample_variables())
    assert rendered.subject == "[ACME-1042] Assigned to you: Cannot download my March invoice"
    assert elapsed < LIMITS.seconds  # less than paying the budget again
    # ...until the admin saves the template again.
    with clock.freeze(clock.now() + timedelta(minutes=1)):
        mt.save_override(session, acme, "ticket-assigned", subject="Yours: {{ ticket_subject }}",
                         body_text=DATA_DEPENDENT, body_html=HTML_OK, actor=None)
    assert mt.render(session, acme, "ticket-assigned", mt.sample_variables()).subject == (
        "Yours: Cannot download my March invoice")


def test_one_tickets_data_over_a_size_limit_does_not_switch_the_override_off_for_the_next(session):
    """A size or loop limit fails fast: that mail gets the default, the next ticket the override again."""
    acme = make_entity("Acme", "acme")
    mt.save_override(session, acme, "ticket-assigned", subject="Yours: {{ ticket_subject }}",
                     body_text="{% for c in ticket_subject %}{{ c }}{% endfor %}", body_html=HTML_OK, actor=None)
    huge = {**mt.sample_variables(), "ticket_subject": "x" * 20_000}  # 20,000 iterations: over the loop limit
    assert mt.render(session, acme, "ticket-assigned", huge).subject.startswith("[ACME-1042] Assigned to you:")
    assert mt.render(session, acme, "ticket-assigned", mt.sample_variables()).subject == (
        "Yours: Cannot download my March invoice")


def test_the_editor_preview_against_a_ticket_shows_why_its_data_is_too_costly(session):
    acme = make_entity("Acme", "acme")
    ticket = make_ticket(acme, subject=LONG_SUBJECT)
    source = mt.Source("Hi", "Hello\n{% for a in ticket_subject %}{% for b in ticket_subject %}.{% endfor %}{% endfor %}",
                       HTML_OK)
    assert mt.validate(source.subject, source.body_text, source.body_html) == {}  # 32 x 32 on the sample
    with pytest.raises(DomainError) as caught:
        mt.preview(session, "ticket-assigned", source, ticket)
    assert caught.value.errors == {"body_text": f"Line 2: {TOO_MANY}"}


# --- rule actions -----------------------------------------------------------------------------

def add_rule(session, entity, actions):
    rule = AutomationRule(name="budget", entity_id=entity.id, trigger_event="ticket_created", conditions=None,
                          actions=automation_actions.validate(session, entity, actions), is_active=True,
                          stop_processing=False, execution_order=10, created_at=clock.now(), updated_at=clock.now())
    session.add(rule)
    session.commit()
    return rule


def last_log(session, rule) -> RuleExecution:
    return session.scalars(select(RuleExecution).where(RuleExecution.rule_id == rule.id)
                           .order_by(RuleExecution.id.desc())).first()


def test_a_note_over_budget_fails_only_its_action(session):
    acme = make_entity("Acme", "acme")
    quadratic = "Seen: {% for a in ticket_subject %}{% for b in ticket_subject %}.{% endfor %}{% endfor %}"
    rule = add_rule(session, acme, [{"type": "add_note", "body": quadratic},  # 1,024 loops on the sample
                                    {"type": "set_priority", "priority": "high"}])
    ticket, elapsed = timed(make_ticket, acme, subject=LONG_SUBJECT)  # 62,500 on this one
    assert elapsed < PROMPT
    assert ticket.priority == "high"  # the next action ran
    assert not [r for r in ticket.replies if r.internal]  # no note, not even a partial one
    assert last_log(session, rule).error == f"Add an internal note: Note: {TOO_MANY}."


def test_a_webhook_bodys_strings_share_one_budget(session):
    acme = make_entity("Acme", "acme")
    loops = "{% for a in ticket_subject %}{% for b in ticket_subject[:24] %}.{% endfor %}{% endfor %}"
    body = '{"first": "%s", "second": "%s", "number": "{{ ticket_number }}"}' % (loops, loops)
    rule = add_rule(session, acme, [{"type": "webhook", "url": "https://hooks.example/mets", "body": body}])
    make_ticket(acme, subject=LONG_SUBJECT)  # 6,000 loops in each string: 12,000 together
    assert count_rows(session, WebhookDelivery) == 0
    assert last_log(session, rule).error == f"Call a webhook: Body: {TOO_MANY}."
    make_ticket(acme, subject="Short")  # 5 x 5 in each: sent
    assert count_rows(session, WebhookDelivery) == 1


def test_nothing_over_budget_is_saved(session):
    acme = make_entity("Acme", "acme")
    with pytest.raises(DomainError) as caught:
        mt.save_override(session, acme, "ticket-assigned", subject="Hi", body_text=NESTED_8, body_html=HTML_OK,
                         actor=None)
    assert caught.value.errors == {"body_text": f"Line 1: {TOO_MANY}"}
    assert count_rows(session, EmailTemplate) == 0
