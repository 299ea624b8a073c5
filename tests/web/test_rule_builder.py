"""The shared condition builder: its htmx fragments, and a host form that embeds it."""
import html as html_module
import json
import re

import pytest
from flask import render_template_string, request

from mets.services import rules
from mets.services.errors import DomainError
from mets.web import staff_required
from tests.conftest import HTMX, login
from tests.web.helpers import textarea
from tests.factories import make_entity, make_staff
from tests.web.helpers import screen

ROW = "rbr0a1b2c3d4e"


def select_options(html: str, css_class: str) -> list[tuple[str, bool]]:
    """(value, selected) of the options of the first <select class="css_class">."""
    body = re.search(rf'<select class="{css_class}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return [(value, bool(selected)) for value, selected in re.findall(r'<option value="([^"]*)"( selected)?', body)]


def selected(html: str, css_class: str) -> str | None:
    return next((value for value, on in select_options(html, css_class) if on), None)


def widget(html: str) -> str:
    return re.search(r'data-rb-widget="([^"]+)"', html).group(1)


def row_error(html: str) -> str:
    return re.search(r'<p class="error rb-row-error"[^>]*>(.*?)</p>', html, re.S).group(1).strip()


def post_row(client, route="row", row=ROW, changed=None, field=None, op=None, value=(), widget_name="text", **extra):
    data = {"registry": "ticket", **extra}
    if row:
        data.update({"row": row, f"rb-{row}-field": field or "", f"rb-{row}-op": op or "",
                     f"rb-{row}-widget": widget_name, f"rb-{row}-value": list(value)})
    if changed:
        data["changed"] = changed
    return client.post(f"/rules/builder/{route}", data=data, headers=HTMX)


@pytest.fixture
def entities(session):
    return {"acme": make_entity("Acme", "acme"), "globex": make_entity("Globex", "globex")}


@pytest.fixture
def admin(session, client, entities):
    user = make_staff(name="Ada Admin", is_admin=True)
    session.commit()
    login(client, user)
    return user


# --- rows -------------------------------------------------------------------------------------

def test_a_new_row_offers_every_field_and_the_operators_of_the_first(client, admin):
    response = post_row(client, row=None)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert [v for v, _ in select_options(html, "rb-field")] == [f.name for f in rules.TICKET.fields()]
    assert selected(html, "rb-field") == "priority"
    assert select_options(html, "rb-op") == [("is", True), ("is_not", False), ("in", False), ("not_in", False),
                                             ("is_empty", False), ("is_not_empty", False)]
    assert widget(html) == "select"
    assert select_options(html, "rb-value") == [("", True), ("low", False), ("normal", False), ("high", False),
                                                ("urgent", False)]
    assert 'hx-post="/rules/builder/row"' in html and 'hx-post="/rules/builder/check"' in html
    assert "rb-row-error" in html and row_error(html) == ""


def test_changing_the_field_redraws_the_row_with_that_fields_operators(client, admin):
    html = post_row(client, changed="field", field="subject", op="is", value=["high"],
                    widget_name="select").get_data(as_text=True)
    assert f'id="{ROW}"' in html  # the same row, drawn again in place
    assert selected(html, "rb-field") == "subject"
    assert [v for v, _ in select_options(html, "rb-op")] == [
        "is", "is_not", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "is_empty",
        "is_not_empty"]
    assert selected(html, "rb-op") == "is"
    assert widget(html) == "text"
    assert f'name="rb-{ROW}-value" aria-label="Value" value="high"' in html  # still a fine value for text


def test_a_field_change_drops_an_operator_and_values_that_no_longer_fit(client, admin):
    html = post_row(client, changed="field", field="hours_since_created", op="contains",
                    value=["refund"]).get_data(as_text=True)
    assert selected(html, "rb-op") == "is"  # "contains" does not apply to numbers
    assert [v for v, _ in select_options(html, "rb-op")] == [
        "is", "is_not", "in", "not_in", "gt", "gte", "lt", "lte", "is_empty", "is_not_empty"]
    assert widget(html) == "number"
    assert 'value=""' in html and 'inputmode="decimal"' in html
    assert row_error(html) == ""  # a fresh choice is not an error yet

    html = post_row(client, changed="field", field="status", op="in", value=["high", "open"],
                    widget_name="checks").get_data(as_text=True)
    assert widget(html) == "checks"
    assert re.findall(r'value="(\w+)" checked', html) == ["open"]


def test_changing_the_operator_changes_the_value_widget(client, admin):
    html = post_row(client, changed="op", field="priority", op="in", value=["high"],
                    widget_name="select").get_data(as_text=True)
    assert widget(html) == "checks"
    assert re.findall(r'type="checkbox" class="rb-value" name="rb-\w+-value" value="(\w+)"( checked)?', html) == [
        ("low", ""), ("normal", ""), ("high", " checked"), ("urgent", "")]

    html = post_row(client, changed="op", field="priority", op="is_empty", value=["high"],
                    widget_name="select").get_data(as_text=True)
    assert widget(html) == "none"
    assert 'class="rb-value"' not in html

    html = post_row(client, changed="op", field="subject", op="is", value=["refund, chargeback"],
                    widget_name="text-list").get_data(as_text=True)
    assert 'value="refund"' in html  # one value from the list

    html = post_row(client, changed="op", field="customer.domain", op="in", value=["vip.example"]).get_data(as_text=True)
    assert widget(html) == "text-list" and 'placeholder="one, another"' in html


def test_an_invalid_value_shows_an_error_in_the_row(client, admin):
    response = post_row(client, "check", changed="value", field="hours_since_created", op="gt", value=["abc"],
                        widget_name="number")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.strip() == (f'<p class="error rb-row-error" id="{ROW}-error" role="alert">'
                            "Hours since created needs a number, not &#39;abc&#39;</p>")

    fixed = post_row(client, "check", changed="value", field="hours_since_created", op="gt", value=["24"],
                     widget_name="number").get_data(as_text=True)
    assert fixed.strip() == f'<p class="error rb-row-error" id="{ROW}-error" hidden></p>'

    missing = post_row(client, "check", changed="value", field="priority", op="in", value=[], widget_name="checks")
    assert row_error(missing.get_data(as_text=True)) == "&#39;is one of&#39; needs at least one value"

    # Drawn again after a change, the row keeps the wrong value and says what is wrong with it.
    html = post_row(client, changed="value", field="priority", op="is", value=["hgh"],
                    widget_name="select").get_data(as_text=True)
    assert "rb-row has-error" in html
    assert screen_text(row_error(html)) == "'hgh' is not a priority (choose from low, normal, high, urgent)"
    assert ("hgh", True) in select_options(html, "rb-value")
    # The row's controls name its error as their description, so a screen reader reads it with them.
    for control in ("field", "op", "value"):
        assert re.search(rf'id="rb-{ROW}-{control}"[^>]*aria-describedby="{ROW}-error"', html), control


def test_free_text_fields_suggest_the_entities_the_user_may_see(client, session, entities):
    agent = make_staff(entities["globex"], name="Gus Agent")
    session.commit()
    login(client, agent)
    html = post_row(client, changed="field", field="entity.slug", op="is").get_data(as_text=True)
    assert re.findall(r'<option value="(\w+)">(\w+)</option>', html.split("<datalist")[1]) == [("globex", "Globex")]


# --- groups -----------------------------------------------------------------------------------

def test_adding_a_group_gives_a_nested_group_with_one_row(client, admin):
    response = client.post("/rules/builder/group", data={"registry": "ticket", "depth": "2"}, headers=HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count("data-rb-group") == 1 and html.count("data-rb-row") == 1
    assert select_options(html, "rb-join") == [("all", True), ("any", False)]
    assert "Remove group" in html
    assert '"depth": 3' in html  # its own "+ Group" adds one level deeper

    deepest = client.post("/rules/builder/group", data={"registry": "ticket", "depth": str(rules.MAX_DEPTH)},
                          headers=HTMX).get_data(as_text=True)
    assert "rb-add-row" in deepest and "rb-add-group" not in deepest

    too_deep = client.post("/rules/builder/group", data={"registry": "ticket", "depth": str(rules.MAX_DEPTH + 1)},
                           headers=HTMX)
    assert too_deep.status_code == 422
    assert screen(too_deep).strip() == "Groups nest at most 8 deep."


def test_fragments_refuse_unknown_registries_rows_and_missing_csrf(client, admin):
    assert client.post("/rules/builder/row", data={"registry": "nope"}, headers=HTMX).status_code == 404
    assert post_row(client, row="../x", field="priority", op="is").status_code == 400
    assert client.post("/rules/builder/check", data={"registry": "ticket"}, headers=HTMX).status_code == 400
    assert client.post("/rules/builder/row", data={"registry": "ticket"}, headers=HTMX, csrf=False).status_code == 400


# --- embedding the builder in a host form ---------------------------------------------------------

TREE = {"all": [{"field": "priority", "op": "in", "value": ["high", "urgent"]},
                {"any": [{"field": "subject", "op": "contains", "value": "refund"},
                         {"field": "hours_since_created", "op": "gt", "value": 24},
                         {"field": "assignee.email", "op": "is_empty"}]}]}


def screen_text(fragment: str) -> str:
    return html_module.unescape(fragment)


def render_include(app, **context) -> str:
    with app.test_request_context("/"):
        return render_template_string('<form>{% include "rules/_builder.html" %}</form>', **context)



def test_the_builder_draws_a_stored_tree(app):
    html = render_include(app, conditions=TREE)
    assert json.loads(textarea(html)) == TREE
    assert html.count("data-rb-group") == 2 and html.count("data-rb-row") == 4
    assert [w for w in re.findall(r'data-rb-widget="([^"]+)"', html)] == ["checks", "text", "number", "none"]
    assert re.findall(r'value="(\w+)" checked', html) == ["high", "urgent"]
    assert 'value="refund"' in html and 'value="24"' in html
    assert re.findall(r'<option value="(all|any)" selected>', html) == ["all", "any"]
    assert "Remove group" in html  # only the nested group can be removed
    assert html.count("Remove group") == 1
    assert "/static/js/rules.js" in html and "rb-top-error" not in html and "role=\"alert\"" not in html


def test_an_empty_builder_holds_an_empty_group(app):
    html = render_include(app)
    assert json.loads(textarea(html)) == {"all": []}
    assert "data-rb-row" not in html and rules.parse(textarea(html)) is None


def test_the_builder_shows_each_problem_at_its_row(app):
    bad = {"all": [{"field": "prioritee", "op": "is", "value": "high"},
                   {"any": [{"field": "hours_since_created", "op": "gt", "value": "soon"}]},
                   {"any": []}]}
    with pytest.raises(DomainError) as caught:
        rules.validate(bad)
    html = render_include(app, conditions=json.dumps(bad), conditions_error=caught.value.errors["conditions"])
    # Each problem once, beside its condition, in people's words (issue 12, defect 5): not again at the top.
    assert "rb-top-error" not in html and "all[0]" not in html
    errors = [screen_text(e) for e in re.findall(r'rb-row-error" id="[\w-]+" role="alert">(.*?)</p>', html)]
    assert errors == ["Condition 1: unknown field 'prioritee'.", "Condition 2.1: hours since created needs a number, not 'soon'."]
    assert "Condition 3: this group is empty: add a condition or remove the group." in html
    assert '<option value="prioritee" selected>prioritee (unknown)</option>' in html
    assert json.loads(textarea(html)) == bad  # what was submitted stays, to be fixed


def test_text_that_is_not_json_is_kept_and_explained(app):
    html = render_include(app, conditions='{"all": [', conditions_error=None)
    assert textarea(html) == '{"all": ['
    assert "The conditions could not be read; build them again below." in html


def test_the_macro_takes_a_field_name_and_a_registry(app):
    with app.test_request_context("/"):
        html = render_template_string(
            '{% from "rules/_macros.html" import condition_builder %}'
            '{{ condition_builder({"field": "status", "op": "is", "value": "open"}, name="if_conditions") }}')
    assert json.loads(textarea(html, "if_conditions")) == {"all": [{"field": "status", "op": "is", "value": "open"}]}
    assert selected(html, "rb-value") == "open"
    with app.test_request_context("/"), pytest.raises(ValueError, match="unknown rule registry"):
        render_template_string('{% from "rules/_macros.html" import condition_builder %}'
                               '{{ condition_builder(None, registry="nope") }}')


HOST_PAGE = """{% extends "base.html" %}{% block content %}
<form method="post">{% include "rules/_builder.html" %}<button>Save</button></form>
{% if posted and not conditions_error %}<p id="saved">{{ saved|tojson }}</p>{% endif %}{% endblock %}"""


@pytest.fixture
def host(app):
    # It adds a route, which an app takes only before its first request: tests using it are `fresh_app`.
    """A host form as an SLA or automation rule form would be: it reads one `conditions` value."""
    @staff_required
    def view():
        conditions, error, saved, status = None, None, None, 200
        if request.method == "POST":
            conditions = request.form.get("conditions")
            try:
                saved = rules.parse(conditions)
            except DomainError as exc:
                error, status = exc.errors["conditions"], 422
        return render_template_string(HOST_PAGE, conditions=conditions, conditions_error=error, saved=saved,
                                      posted=request.method == "POST"), status

    app.add_url_rule("/test-host", "test_host", view, methods=["GET", "POST"])
    return "/test-host"


@pytest.mark.fresh_app
def test_a_host_form_receives_one_conditions_value_and_shows_errors_in_place(host, client, admin):
    assert client.get(host).status_code == 200

    bad = {"all": [{"field": "priority", "op": "in", "value": "high"}]}
    response = client.post(host, data={"conditions": json.dumps(bad), f"rb-{ROW}-field": "priority"})
    assert response.status_code == 422
    page = screen(response)
    assert "Condition 1: 'is one of' needs a list of values, not text." in page
    assert "'is one of' needs a list of values, not text Remove" not in page  # the row has its own message
    assert json.loads(textarea(response.get_data(as_text=True))) == bad

    response = client.post(host, data={"conditions": json.dumps(TREE)})
    assert response.status_code == 200
    assert json.loads(screen_text(re.search(r'<p id="saved">(.*?)</p>', response.get_data(as_text=True)).group(1))) == TREE
    assert json.loads(textarea(response.get_data(as_text=True))) == TREE

    response = client.post(host, data={"conditions": '{"all": []}'})
    assert '<p id="saved">null</p>' in response.get_data(as_text=True)  # no conditions: matches every ticket
