"""The email template pages (list, editor, live preview, reset) and the portal ticket links the emails carry."""
import html as html_module
import re
import time
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner

from mets.extensions import db
from mets.models import EmailTemplate
from mets.services.notifications import templates as mail_templates
from mets.services.directory import portal_auth
from mets.services.directory import portal_mail
from tests.conftest import HTMX, count_rows, login, text_of
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.web.helpers import screen

BASE = "/admin/mail/templates"
ATTACKS = [
    ("{{ ''.__class__.__mro__ }}", "Line 1: access to attribute '__class__' of 'str' object is unsafe"),
    ("{{ cycler.__init__.__globals__ }}", "Line 1: unknown variable 'cycler'"),
    ("Hello\n{{ ticket_subject.__class__ }}", "Line 2: access to attribute '__class__' of 'str' object is unsafe"),
    ("{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
     "Line 1: access to attribute '__class__' of 'tuple' object is unsafe"),
]


@pytest.fixture
def world(session, client):
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    admin = make_staff(name="Ada Admin", is_admin=True)
    carl = make_customer("Carl Customer", "carl@example.com")
    ticket = make_ticket(billing, customer=carl, subject="Charged twice", body="Please refund order 7.")
    far = make_ticket(globex, customer=make_customer("Gina Globex"), subject="Secret merger plans",
                      body="Confidential numbers.")
    db.session.commit()
    login(client, admin)
    return {"acme": acme, "billing": billing, "globex": globex, "admin": admin, "carl": carl, "ticket": ticket,
            "far": far}


def form(**kw) -> dict:
    data = {"subject": "[{{ ticket_number }}] Assigned: {{ ticket_subject }}",
            "body_text": "Hello {{ recipient_name }},\n\nPlease look at {{ ticket_url }}",
            "body_html": "<p>Hello {{ recipient_name }}, please look at {{ ticket_subject }}.</p>", "ticket": ""}
    data.update(kw)
    return data


def srcdoc(response) -> str:
    """The HTML part as the sandboxed iframe gets it."""
    match = re.search(r'<iframe class="mt-html" sandbox="" srcdoc="([^"]*)"', response.get_data(as_text=True))
    return html_module.unescape(match.group(1))


def states(response) -> dict[str, str]:
    rows = re.findall(r'<tr id="mt-([a-z-]+)">(.*?)</tr>', response.get_data(as_text=True), re.S)
    return {name: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).split(".")[-1].replace("Edit", "").strip()
            for name, body in rows}


# --- the list ---------------------------------------------------------------------------------

def test_the_list_shows_where_each_template_comes_from(client, session, world):
    response = client.get(f"{BASE}/")
    assert response.status_code == 200
    assert set(states(response)) == set(mail_templates.NAMES)
    assert set(states(response).values()) == {"Default"}
    assert "Sent to an agent when a ticket is assigned to them." in screen(response)

    client.post(f"{BASE}/{world['acme'].id}/ticket-assigned", data=form())
    assert states(client.get(f"{BASE}/?entity_id={world['acme'].id}"))["ticket-assigned"] == "Own override"
    page = client.get(f"{BASE}/?entity_id={world['billing'].id}")
    assert states(page)["ticket-assigned"] == "Inherited from Acme"
    assert states(page)["ticket-reply-agent"] == "Default"
    assert states(client.get(f"{BASE}/?entity_id={world['globex'].id}"))["ticket-assigned"] == "Default"


def test_unknown_entities_and_names_are_not_found(client, world):
    assert client.get(f"{BASE}/?entity_id=99999").status_code == 404
    assert client.get(f"{BASE}/99999/ticket-assigned").status_code == 404
    assert client.get(f"{BASE}/{world['acme'].id}/ticket-deleted").status_code == 404
    assert client.post(f"{BASE}/{world['acme'].id}/nope/preview", data=form(), headers=HTMX).status_code == 404
    assert client.post(f"{BASE}/{world['acme'].id}/nope/reset").status_code == 404


# --- the editor -------------------------------------------------------------------------------

def test_the_editor_starts_from_the_effective_source_with_a_sample_preview(client, world):
    response = client.get(f"{BASE}/{world['billing'].id}/ticket-created-customer")
    assert response.status_code == 200
    page = screen(response)
    default = mail_templates.default_source("ticket-created-customer")
    assert html_module.escape(default.body_text, quote=False) in response.get_data(as_text=True)
    assert "Default Saving gives Acme Billing its own version." in page
    assert "ticket_content_html The ticket's first message as (sanitised) HTML; for the HTML part." in page
    assert "With sample data." in page
    assert "Subject: [ACME-1042] We have received your request: Cannot download my March invoice" in page
    assert "Thank you for contacting Acme Support." in srcdoc(response)
    assert "Reset to inherited" not in page


def test_saving_an_override_redirects_back_and_is_used(client, session, world):
    url = f"{BASE}/{world['billing'].id}/ticket-assigned"
    response = client.post(url, data=form())
    assert response.status_code == 303 and response.location == url
    page = client.get(url)
    assert "Saved ticket-assigned for Acme Billing." in screen(page)
    assert "Own override" in screen(page) and "Reset to inherited" in screen(page)
    row = session.scalar(db.select(EmailTemplate))
    assert (row.entity_id, row.name, row.updated_by_id) == (world["billing"].id, "ticket-assigned", world["admin"].id)
    assert mail_templates.source_for(session, world["billing"], "ticket-assigned")[0].subject == form()["subject"]


@pytest.mark.parametrize("field", ["subject", "body_text", "body_html"])
@pytest.mark.parametrize("source, message", ATTACKS)
def test_sandbox_escapes_are_refused_at_save_and_nothing_is_saved(client, session, world, field, source, message):
    if field == "subject":
        source = source.replace("\n", " ")
        message = message.replace("Line 2", "Line 1")
    response = client.post(f"{BASE}/{world['acme'].id}/ticket-assigned", data=form(**{field: source}))
    assert response.status_code == 422
    assert message in screen(response)
    field_box = re.search(rf'<div class="field mt-source has-error">\s*<label for="{field}">.*?</div>',
                          response.get_data(as_text=True), re.S)
    assert field_box and html_module.escape(message, quote=True).replace("&#x27;", "&#39;") in field_box.group(0)
    assert count_rows(session, EmailTemplate) == 0


OVER_BUDGET = [
    ("{% if ((((9**64)**64)**64)**64) > 0 %}x{% endif %}", "Line 1: This template computes a number larger than 4,096 bits"),
    ("{{ ticket_subject|center(10**8) }}", "Line 1: This template pads or formats text wider than 1,000 characters"),
    ("{{ '%100000000s' % ticket_subject }}", "Line 1: This template pads or formats text wider than 1,000 characters"),
    ("{% for a in ticket_subject %}" * 8 + "x" + "{% endfor %}" * 8, "Line 1: This template loops more than 10,000 times"),
    ("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
     "Line 1: This template takes too long to render (over 0.2 s)"),
]


@pytest.mark.parametrize("source, message", OVER_BUDGET)
def test_templates_over_budget_are_refused_at_save_quickly_with_the_reason_on_the_field(client, session, world,
                                                                                        source, message):
    started = time.perf_counter()
    response = client.post(f"{BASE}/{world['acme'].id}/ticket-assigned", data=form(body_text=source))
    assert time.perf_counter() - started < 5.0  # unbounded: minutes; budget: 0.2 s; slack for a loaded machine
    assert response.status_code == 422
    field_box = re.search(r'<div class="field mt-source has-error">\s*<label for="body_text">.*?</div>',
                          response.get_data(as_text=True), re.S)
    assert field_box and html_module.escape(message, quote=True).replace("&#x27;", "&#39;") in field_box.group(0)
    assert count_rows(session, EmailTemplate) == 0


def test_unknown_variables_and_syntax_errors_are_refused_with_their_line(client, session, world):
    response = client.post(f"{BASE}/{world['acme'].id}/ticket-assigned",
                           data=form(body_text="Hello\n\n{{ ticket_number }} {{ foo }}", body_html="<p>\n{% if x %}"))
    assert response.status_code == 422
    page = screen(response)
    assert "Line 3: unknown variable 'foo'" in page
    assert "Line 2: Unexpected end of template." in page
    assert "Hello\n\n{{ ticket_number }} {{ foo }}" in html_module.unescape(response.get_data(as_text=True))  # kept
    assert count_rows(session, EmailTemplate) == 0


def test_reset_goes_back_to_the_inherited_version(client, session, world):
    client.post(f"{BASE}/{world['acme'].id}/ticket-assigned", data=form(subject="Acme version"))
    client.post(f"{BASE}/{world['billing'].id}/ticket-assigned", data=form(subject="Billing version"))
    response = client.post(f"{BASE}/{world['billing'].id}/ticket-assigned/reset")
    assert response.status_code == 303
    page = client.get(response.location)
    assert "Acme Billing now uses Acme's version." in screen(page)
    assert "Inherited from Acme" in screen(page)
    assert 'value="Acme version"' in page.get_data(as_text=True)
    assert count_rows(session, EmailTemplate) == 1
    client.post(f"{BASE}/{world['acme'].id}/ticket-assigned/reset")
    assert "Acme now uses the default." in screen(client.get(f"{BASE}/{world['acme'].id}/ticket-assigned"))


# --- the live preview -------------------------------------------------------------------------

def preview(client, world, name="ticket-assigned", entity="billing", **kw):
    return client.post(f"{BASE}/{world[entity].id}/{name}/preview", data=form(**kw), headers=HTMX)


def test_preview_renders_unsaved_sources_against_a_picked_ticket(client, session, world):
    ticket = world["ticket"]
    response = preview(client, world, ticket=ticket.number.lower())
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="mt-preview"') and "<html" not in body  # just the box
    page = screen(response)
    assert f"With ticket {ticket.number}, as its staff recipient would get it." in page
    assert f"Subject: [{ticket.number}] Assigned: Charged twice" in page
    assert f"Please look at http://mets.test/tickets/{ticket.number}" in page
    assert "Hello Ada Admin, please look at Charged twice." in srcdoc(response)
    assert count_rows(session, EmailTemplate) == 0  # a preview saves nothing


def test_preview_of_another_entitys_ticket_shows_none_of_its_data(client, world):
    response = preview(client, world, ticket=world["far"].number)
    page = screen(response)
    assert f"{world['far'].number} is not a ticket of Acme Billing or the entities below it" in page
    assert "Secret merger plans" not in response.get_data(as_text=True)
    assert "Gina Globex" not in response.get_data(as_text=True)
    assert "Subject: [ACME-1042] Assigned: Cannot download my March invoice" in page  # sample data instead


def test_preview_of_a_parents_page_may_use_its_childrens_tickets(client, world):
    response = preview(client, world, entity="acme", ticket=world["ticket"].number)
    assert "Charged twice" in screen(response)
    assert "No ticket NOPE-1: showing sample data." in screen(preview(client, world, ticket="NOPE-1"))


def test_preview_shows_errors_with_their_lines_instead_of_rendering(client, world):
    response = preview(client, world, body_html="<p>\n{{ ticket_subject.__class__ }}</p>")
    assert response.status_code == 200
    page = screen(response)
    assert "This template cannot be used as it stands: HTML part: Line 2: access to attribute '__class__' of " \
           "'str' object is unsafe" in page
    assert "<iframe" not in response.get_data(as_text=True)


def test_preview_against_a_ticket_too_costly_for_the_template_says_why(client, session, world):
    ticket = world["ticket"]
    ticket.subject = ("Refund " * 40)[:250]
    session.commit()
    loops = "Hi\n{% for a in ticket_subject %}{% for b in ticket_subject %}.{% endfor %}{% endfor %}"
    assert "cannot be used" not in screen(preview(client, world, body_text=loops))  # fine on the sample's subject
    started = time.perf_counter()
    response = preview(client, world, ticket=ticket.number, body_text=loops)
    assert time.perf_counter() - started < 5.0  # unbounded: minutes; budget: 0.2 s; slack for a loaded machine
    assert ("This template cannot be used as it stands: Text part: Line 2: This template loops more than "
            "10,000 times") in screen(response)


def test_ticket_html_in_the_preview_is_escaped_and_never_reaches_the_page(client, session, world):
    ticket = world["ticket"]
    ticket.subject = "<script>alert(1)</script>"  # as if it came in by email, before any check
    session.commit()
    response = preview(client, world, ticket=ticket.number, body_text="{{ ticket_subject }}",
                       body_html="<p>{{ ticket_subject }}</p>")
    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    assert "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in srcdoc(response)
    assert re.search(r'<pre class="mt-text">&lt;script&gt;alert\(1\)&lt;/script&gt;</pre>',
                     response.get_data(as_text=True))  # the text part, literal on screen


def test_customer_previews_show_the_portal_link_but_never_a_working_sign_in_link(client, world):
    ticket = world["ticket"]
    response = preview(client, world, name="ticket-created-customer", ticket=ticket.number,
                       body_text="Hello {{ recipient_name }}", body_html="<p>Hello</p>")
    page = screen(response)
    assert f"With ticket {ticket.number}, as its customer would get it." in page
    link = f"http://mets.test/portal/tickets/{ticket.number}"
    assert f"Hello Carl Customer View your request: {link}" in page  # added: the admin's text left it out
    assert f'<a href="{link}">View your request</a>' in srcdoc(response)
    assert "/portal/auth/" not in response.get_data(as_text=True)


def test_the_editor_page_wires_the_preview_to_the_form(client, world):
    body = client.get(f"{BASE}/{world['billing'].id}/ticket-assigned").get_data(as_text=True)
    form_html = re.search(r'<form method="post" id="mt-form".*?</form>', body, re.S).group(0)
    box = re.search(r'<section id="mt-preview"[^>]*>', form_html, re.S).group(0)  # inside the form
    assert f'hx-post="{BASE}/{world["billing"].id}/ticket-assigned/preview"' in box
    assert 'hx-trigger="input changed delay:400ms from:closest form"' in box
    assert 'hx-target="this"' in box and 'hx-swap="outerHTML"' in box
    assert 'name="csrf_token"' in form_html


# --- portal ticket links ----------------------------------------------------------------------

def _link_path(app, make_link, hours_ago: float, monkeypatch) -> str:
    with monkeypatch.context() as m:  # the email was sent `hours_ago`
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time() - hours_ago * 3600))
        with app.test_request_context():
            return urlsplit(make_link()).path


def test_a_ticket_link_works_after_two_hours_but_a_sign_in_link_does_not(app, client, session, world, monkeypatch):
    client.post("/logout")
    number = world["ticket"].number
    ticket_link = _link_path(app, lambda: portal_mail.ticket_link("carl@example.com", number), 2, monkeypatch)
    sign_in = _link_path(app, lambda: portal_mail.sign_in_url("carl@example.com"), 2, monkeypatch)

    response = client.get(sign_in)
    assert response.status_code == 400 and "This sign-in link has expired" in text_of(response)
    response = client.get(ticket_link)
    assert response.status_code == 302 and response.location == f"/portal/tickets/{number}"
    assert "Charged twice" in screen(client.get(response.location))


def test_a_ticket_link_expires_after_fourteen_days(app, client, session, world, monkeypatch):
    client.post("/logout")
    number = world["ticket"].number
    fresh = _link_path(app, lambda: portal_mail.ticket_link("carl@example.com", number), 13.9 * 24, monkeypatch)
    old = _link_path(app, lambda: portal_mail.ticket_link("carl@example.com", number), 14 * 24 + 0.1, monkeypatch)
    response = client.get(old)
    assert response.status_code == 400 and "This sign-in link has expired" in text_of(response)
    assert client.get(fresh).status_code == 302


def test_a_tampered_ticket_link_is_refused(app, client, session, world):
    client.post("/logout")
    with app.test_request_context():
        path = urlsplit(portal_mail.ticket_link("carl@example.com", world["ticket"].number)).path
    payload, stamp, signature = path.rsplit("/", 1)[1].split(".")
    # A sign-in token's payload with the ticket kind's lifetime cannot be forged without the key.
    forged = portal_auth.make_token("another-secret", "carl@example.com", kind=portal_auth.TICKET)
    # (The first character: the last one of a signature carries two padding bits, which may not change it.)
    for token in (f"{payload}.{stamp}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}",
                  f"{forged.split('.')[0]}.{stamp}.{signature}", forged):
        response = client.get(f"/portal/auth/{token}")
        assert response.status_code == 400 and "This sign-in link is not valid" in text_of(response)
    assert client.get("/portal/").status_code == 302


def test_the_survey_template_previews_with_a_ticket_and_no_working_survey_link(client, session, world):
    ticket = world["ticket"]
    response = preview(client, world, name="csat-survey", ticket=ticket.number,
                       body_text="Hello {{ recipient_name }}: rate {{ ticket_number }} at {{ survey_url_4 }}")
    page = screen(response)
    assert response.status_code == 200 and "as its customer would get it" in page
    assert f"rate {ticket.number} at http://mets.test/portal/survey/preview?score=4" in page
    # The editor lists it among the editable templates.
    listed = screen(client.get(f"{BASE}/?entity_id={world['billing'].id}"))
    assert "csat-survey" in listed and "the satisfaction survey" in listed


def test_the_digest_editor_lists_the_digests_own_variables(client, session):
    """The escalation digest is edited like the others, with the variables it has (its notices and their fields)."""
    acme = make_entity("Acme Digest", "acmedigest")
    login(client, make_staff(name="Ada Admin", email="ada-digest@example.com", is_admin=True))
    page = screen(client.get(f"/admin/mail/templates/{acme.id}/escalation-digest"))
    assert "escalation-digest" in page and "n.escalated_at" in page and "ticket_numbers" in page
    assert "customer_name" not in page
