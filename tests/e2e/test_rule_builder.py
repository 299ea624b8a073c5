"""End to end, in Chromium: an admin builds nested conditions in the shared builder of a host form.

The host form here stands in for the SLA and automation rule forms: it embeds rules/_builder.html
and reads one `conditions` value. This is the only test that runs rules.js.
"""
import json
import re

import pytest
from flask import render_template_string, request

from mets.extensions import db
from mets.services import rules
from mets.services.errors import DomainError
from mets.web import admin_required
from tests.factories import PASSWORD, make_entity, make_staff
from tests.e2e.helpers import expect, settled

pytestmark = pytest.mark.e2e

HOST_PAGE = """{% extends "base.html" %}{% block content %}
<form method="post"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
{% include "rules/_builder.html" %}<button type="submit">Save rule</button></form>
{% if saved %}<pre id="saved">{{ saved }}</pre>{% endif %}{% endblock %}"""




def add_host_page(app) -> None:
    @admin_required
    def host():
        conditions, error, saved = None, None, ""
        if request.method == "POST":
            conditions = request.form["conditions"]
            try:
                saved = json.dumps(rules.parse(conditions), sort_keys=True)
            except DomainError as exc:
                error = exc.errors["conditions"]
        return render_template_string(HOST_PAGE, conditions=conditions, conditions_error=error, saved=saved)

    app.add_url_rule("/e2e-rule-host", "e2e_rule_host", host, methods=["GET", "POST"])


def test_admin_builds_nested_conditions(live_server, page):
    add_host_page(live_server.app)  # before the server's first request
    with live_server.app_context():
        make_entity("Acme", "acme")
        admin = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
        db.session.commit()
        email = admin.email

    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/e2e-rule-host")
    json_field = page.locator("textarea[name=conditions]")
    assert json.loads(json_field.input_value()) == {"all": []}

    root = page.locator(".rb-root")
    # A condition on the subject: changing the field redraws the row with text operators.
    root.locator(":scope > .rb-actions").get_by_role("button", name="+ Condition").click()
    settled(page)
    row = root.locator(".rb-row").first
    row.get_by_label("Field").select_option("subject")
    expect(row.get_by_label("Operator").locator("option[value=contains]")).to_have_count(1)
    settled(page)
    row.get_by_label("Operator").select_option("contains")
    settled(page)
    expect(row.get_by_label("Operator")).to_have_value("contains")
    row.get_by_label("Value").fill("refund")

    # A nested OR group: priority is one of high/urgent, or more than 24 hours old.
    root.locator(":scope > .rb-actions").get_by_role("button", name="+ Group").click()
    settled(page)
    group = root.locator(".rb-items .rb-group").first
    group.get_by_label("How these conditions combine").select_option("any")
    first = group.locator(".rb-row").first
    first.get_by_label("Operator").select_option("in")
    expect(first.locator(".rb-checks")).to_be_visible()
    settled(page)
    first.get_by_label("High").check()
    first.get_by_label("Urgent").check()
    settled(page)
    group.locator(":scope > .rb-actions").get_by_role("button", name="+ Condition").click()
    expect(group.locator(".rb-row")).to_have_count(2)
    settled(page)
    second = group.locator(".rb-row").nth(1)
    second.get_by_label("Field").select_option("hours_since_created")
    expect(second.get_by_label("Operator").locator("option[value=gt]")).to_have_count(1)
    settled(page)
    second.get_by_label("Operator").select_option("gt")
    settled(page)
    expect(second.get_by_label("Operator")).to_have_value("gt")

    # A wrong value is named in the row as soon as the admin leaves the box, and goes away when fixed.
    value = second.get_by_label("Value")
    value.fill("soon")
    value.press("Tab")
    expect(second.locator(".rb-row-error")).to_have_text("Hours since created needs a number, not 'soon'")
    settled(page)
    value.fill("24")
    value.press("Tab")
    expect(second.locator(".rb-row-error")).to_be_hidden()
    settled(page)

    # A throwaway condition, removed again.
    root.locator(":scope > .rb-actions").get_by_role("button", name="+ Condition").click()
    expect(root.locator(":scope > .rb-items > .rb-row")).to_have_count(2)
    settled(page)
    root.locator(":scope > .rb-items > .rb-row").nth(1).get_by_role("button", name="Remove this condition").click()
    expect(root.locator(":scope > .rb-items > .rb-row")).to_have_count(1)

    expected = {"all": [{"field": "subject", "op": "contains", "value": "refund"},
                        {"any": [{"field": "priority", "op": "in", "value": ["high", "urgent"]},
                                 {"field": "hours_since_created", "op": "gt", "value": 24}]}]}
    assert json.loads(json_field.input_value()) == expected
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator("#saved")).to_have_text(json.dumps(expected, sort_keys=True))

    # Drawn again from what was saved, the builder shows the same tree; removing the group leaves one row.
    page.locator(".rb-root .rb-group").get_by_role("button", name="Remove group").click()
    assert json.loads(json_field.input_value()) == {"all": [expected["all"][0]]}
    assert re.search(r"refund", page.locator(".rb-root").inner_html())
