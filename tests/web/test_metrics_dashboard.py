"""The KPI dashboard and the agent page: figures against a hand count on a small fixture, every figure and CSV
scoped to the viewer's entities, filters, CSV escaping."""
import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from mets import clock
from mets.extensions import db
from mets.services import tickets
from mets.services.metrics import tables
from tests.conftest import HTMX, login, text_of
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket

TABLES = ("compliance", "times", "volume", "backlog_trend", "backlog", "workload", "agents")
NOW = datetime(2026, 11, 25, 11, 30, tzinfo=timezone.utc)  # a Wednesday
WEEK = {"from": "2026-11-23", "to": "2026-11-29"}


def at(day, hour, minute=0):
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture
def world(session):
    """Acme (with Billing) and Globex, rules of 60 minutes to respond and 240 to resolve, in calendar time:

    T1 Acme, Tue 10:00, answered 10:30 (30, met), resolved 12:00 (120, met), Ann's
    T2 Billing, high, Tue 10:00, answered 12:00 (120, breached), open: Bill's, resolution due Tue 14:00 (breached)
    T3 Globex, Wed 10:00, answered 10:10 (10, met), resolved 11:00 (60, met), Gus's
    T4 Acme, Wed 11:00, nobody's, unanswered: response due 12:00 (due within 4 hours at 11:30)
    """
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    for entity in (acme, globex):
        make_rule(entity, f"{entity.name} rule", response_minutes=60, resolution_minutes=240,
                  business_hours_only=False)
    people = {"admin": make_staff(name="Ada Admin", is_admin=True),
              "manager": make_staff(acme, role="manager", name="Maria Manager"),
              "ann": make_staff(acme, name="Ann Acme"), "bill": make_staff(billing, name="Bill Billing"),
              "gus": make_staff(globex, name="Gus Globex")}
    customer = make_customer("Carla Customer")

    def ticket(entity, agent, created, priority="normal", answered=None, resolved=None):
        t = make_ticket(entity, customer=customer, priority=priority, now=created)
        if agent is not None:
            tickets.assign(db.session, t, agent, actor=people["admin"], now=created)
        if answered:
            tickets.add_reply(db.session, t, actor=agent, body="On it", now=answered)
        if resolved:
            tickets.change_status(db.session, t, "resolved", actor=agent, now=resolved)
        return t

    made = {"t1": ticket(acme, people["ann"], at(24, 10), answered=at(24, 10, 30), resolved=at(24, 12)),
            "t2": ticket(billing, people["bill"], at(24, 10), "high", answered=at(24, 12)),
            "t3": ticket(globex, people["gus"], at(25, 10), answered=at(25, 10, 10), resolved=at(25, 11)),
            "t4": ticket(acme, None, at(25, 11))}
    session.flush()
    clock.set_now(NOW)
    yield {"acme": acme, "billing": billing, "globex": globex, **people, **made}
    clock.set_now(None)


def get_csv(client, name, agent_id=None, **args):
    path = f"/metrics/agents/{agent_id}/export/{name}.csv" if agent_id else f"/metrics/export/{name}.csv"
    response = client.get(path, query_string={**WEEK, **args})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def by_first(rows):
    return {row[0]: row[1:] for row in rows[1:]}


def test_figures_agree_with_a_hand_count(client, world):
    login(client, world["admin"])
    assert by_first(get_csv(client, "compliance")) == {
        "First response": ["2", "1", "66.7"], "Next reply": ["0", "0", ""], "Resolution": ["2", "0", "100.0"]}
    times = {(row[0], row[1]): row[2:] for row in get_csv(client, "times")[1:]}
    # First responses 30, 120, 10: median 30, p90 = 30 + 0.8 * 90 = 102, mean 53.3; resolutions 120 and 60.
    assert times["First response", "Calendar"] == ["3", "30.0", "102.0", "53.3"]
    assert times["First response", "Business"] == ["3", "30.0", "102.0", "53.3"]  # a 24/7 rule
    assert times["Resolution", "Calendar"] == ["2", "90.0", "114.0", "90.0"]
    volume = by_first(get_csv(client, "volume"))
    assert len(volume) == 7
    assert volume["2026-11-24"] == ["2", "1"] and volume["2026-11-25"] == ["2", "1"]
    assert volume["2026-11-23"] == ["0", "0"]
    # Open at the end of each day up to today: Tue +2 created -1 resolved, Wed +2 -1.
    assert by_first(get_csv(client, "backlog_trend")) == {"2026-11-23": ["0"], "2026-11-24": ["1"], "2026-11-25": ["2"]}
    backlog = by_first(get_csv(client, "backlog"))
    assert sum(int(row[0]) for row in backlog.values()) == 2  # T2 and T4
    assert backlog["New"][0] == "1"
    workload = by_first(get_csv(client, "workload"))
    assert workload == {"Bill Billing": ["1", "0", "1"], "Unassigned": ["1", "1", "0"]}
    agents = by_first(get_csv(client, "agents", measure="calendar"))
    assert agents["Ann Acme"] == ["1", "30.0", "100.0", "1", "120.0", "100.0"]
    assert agents["Bill Billing"][:3] == ["1", "120.0", "0.0"]
    assert agents["Gus Globex"][:3] == ["1", "10.0", "100.0"]

    page = client.get("/metrics/", query_string=WEEK)
    assert page.status_code == 200
    text = text_of(page)
    for title in ("SLA compliance per clock", "Response and resolution times", "Created and resolved per day",
                  "Backlog at the end of each day", "Backlog now", "Agent workload now", "Per agent", "Customer satisfaction"):
        assert title in text
    assert "66.7%" in text and "1h 42m" in text  # the compliance rate, and the p90 of first responses
    body = page.get_data(as_text=True)
    assert body.count("<canvas") == 7 and " style=" not in body  # a chart per figure (CSAT is a placeholder)
    assert "vendor/chart-4.6.1.umd.min.js" in body
    assert f'href="/metrics/agents/{world["bill"].id}?' in body  # workload rows link the agent page


@pytest.mark.parametrize("name", TABLES)
def test_every_table_of_a_manager_is_their_entities_only(client, world, name):
    """Maria manages Acme (and so Billing): each of her downloads is the admin's filtered to Acme, and asking for
    Globex does not widen it."""
    login(client, world["admin"])
    acme_only = get_csv(client, name, entity=world["acme"].id)
    client.post("/logout")
    login(client, world["manager"])
    assert get_csv(client, name) == acme_only
    assert get_csv(client, name, entity=world["globex"].id) == acme_only
    assert "Gus Globex" not in str(acme_only)


def test_the_manager_s_page_shows_none_of_another_entity(client, world):
    login(client, world["manager"])
    body = client.get("/metrics/", query_string=WEEK).get_data(as_text=True)
    assert "Gus Globex" not in body and "Globex" not in body
    volume = by_first(get_csv(client, "volume"))
    assert volume["2026-11-24"] == ["2", "1"] and volume["2026-11-25"] == ["1", "0"]
    assert by_first(get_csv(client, "compliance"))["First response"] == ["1", "1", "50.0"]
    assert by_first(get_csv(client, "backlog_trend"))["2026-11-25"] == ["2"]  # T2 and T4
    billing = by_first(get_csv(client, "volume", entity=world["billing"].id))
    assert billing["2026-11-24"] == ["1", "0"] and billing["2026-11-25"] == ["0", "0"]


def test_an_agent_sees_their_own_page_only(client, world):
    login(client, world["gus"])
    response = client.get("/metrics/", query_string=WEEK)
    assert response.status_code == 302 and response.location.startswith(f"/metrics/agents/{world['gus'].id}?")
    assert client.get(f"/metrics/agents/{world['gus'].id}", query_string=WEEK).status_code == 200
    assert client.get(f"/metrics/agents/{world['ann'].id}").status_code == 404
    assert client.get(f"/metrics/agents/{world['ann'].id}/export/agent_trend.csv").status_code == 404
    assert client.get("/metrics/export/volume.csv").status_code == 404
    trend = by_first(get_csv(client, "agent_trend", agent_id=world["gus"].id, measure="calendar"))
    assert trend["2026-11-25"] == ["1", "10.0", "1"] and trend["2026-11-24"] == ["0", "", "0"]
    assert by_first(get_csv(client, "agent_compliance", agent_id=world["gus"].id))["First response"] == \
        ["1", "0", "100.0"]


def test_a_manager_opens_the_pages_of_their_agents_only(client, world):
    login(client, world["manager"])
    assert client.get(f"/metrics/agents/{world['bill'].id}", query_string=WEEK).status_code == 200
    assert client.get(f"/metrics/agents/{world['gus'].id}").status_code == 404
    times = {(r[0], r[1]): r[2:] for r in get_csv(client, "agent_times", agent_id=world["bill"].id)[1:]}
    assert times["First response", "Calendar"] == ["1", "120.0", "120.0", "120.0"]


def test_filters_priority_agent_dates_and_period(client, world):
    login(client, world["admin"])
    assert by_first(get_csv(client, "volume", priority="high"))["2026-11-24"] == ["1", "0"]
    assert by_first(get_csv(client, "compliance", priority="high"))["First response"] == ["0", "1", "0.0"]
    assert by_first(get_csv(client, "workload", agent=world["bill"].id)) == {"Bill Billing": ["1", "0", "1"]}
    only_wednesday = by_first(get_csv(client, "volume", **{"from": "2026-11-25", "to": "2026-11-25"}))
    assert only_wednesday == {"2026-11-25": ["2", "1"]}
    weekly = by_first(get_csv(client, "volume", period="week"))
    assert weekly == {"2026-11-23": ["4", "2"]}  # the Monday of the week
    monthly = by_first(get_csv(client, "volume", period="month", **{"from": "2026-10-20", "to": "2026-11-29"}))
    assert monthly == {"2026-10-01": ["0", "0"], "2026-11-01": ["4", "2"]}


def test_filters_through_htmx_answer_the_figures_only(client, world):
    login(client, world["admin"])
    response = client.get("/metrics/", query_string={**WEEK, "priority": "high"}, headers=HTMX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert body.lstrip().startswith('<div id="dashboard"') and "<html" not in body
    assert "/metrics/export/volume.csv?" in body and "priority=high" in body  # the downloads keep the filters
    page = client.get("/metrics/", query_string={**WEEK, "priority": "high"}).get_data(as_text=True)
    assert 'hx-push-url="true"' in page and '<option value="high" selected>' in page


@pytest.mark.parametrize("args", [{"from": "garbage"}, {"to": "2026-13-45"}, {"period": "year"},
                                  {"entity": "abc"}, {"agent": "99999999999999"}, {"priority": "<b>"},
                                  {"measure": "x"}, {"from": "2026-11-29", "to": "2026-11-01"},
                                  {"from": "2000-01-01", "to": "2026-11-29"}])
def test_bad_filters_are_not_applied(client, world, args):
    login(client, world["admin"])
    assert client.get("/metrics/", query_string=args).status_code == 200
    assert client.get("/metrics/export/volume.csv", query_string=args).status_code == 200


def test_an_unknown_table_is_a_404(client, world):
    login(client, world["admin"])
    assert client.get("/metrics/export/users.csv").status_code == 404
    assert client.get(f"/metrics/agents/{world['gus'].id}/export/volume.csv").status_code == 404


def test_csv_cells_that_a_spreadsheet_would_run_get_a_quote(client, world, session):
    world["bill"].name = "=HYPERLINK(\"http://evil.example\",\"x\")"
    world["ann"].name = "@SUM(A1)"
    session.flush()
    login(client, world["admin"])
    rows = get_csv(client, "workload")
    names = [row[0] for row in rows[1:]]
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in names
    assert all(not name.startswith(("=", "+", "-", "@")) for name in names)
    agents = [row[0] for row in get_csv(client, "agents")[1:]]
    assert "'@SUM(A1)" in agents


@pytest.mark.parametrize("text, expected", [("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"),
                                             ("\tx", "'\tx"), ("plain", "plain"), ("a=b", "a=b")])
def test_csv_cell_escaping(text, expected):
    assert tables.csv_cell(text, "text") == expected


def test_the_nav_links_the_metrics(client, world):
    login(client, world["gus"])
    assert 'href="/metrics/"' in client.get("/tickets/").get_data(as_text=True)


def test_each_chart_draws_the_rows_of_its_table(client, world):
    import json
    import re

    login(client, world["admin"])
    body = client.get("/metrics/", query_string={**WEEK, "measure": "calendar"}).get_data(as_text=True)
    specs = {}
    for figure, spec in re.findall(r'id="figure-(\w+)".*?data-chart=\'([^\']*)\'', body, re.S):
        specs[figure] = json.loads(spec.replace("&#39;", "'").replace("&amp;", "&").replace("&lt;", "<")
                                   .replace("&gt;", ">").replace("&#34;", '"'))
    assert specs["volume"]["labels"][1:3] == ["2026-11-24", "2026-11-25"]
    assert [d["data"][1:3] for d in specs["volume"]["datasets"]] == [[2, 2], [1, 1]]
    assert specs["compliance"]["datasets"][0]["data"] == [66.7, None, 100.0] and specs["compliance"]["unit"] == \
        "percent"
    assert specs["times"]["labels"] == ["First response", "Later responses", "Resolution"]
    assert specs["times"]["datasets"][0]["data"] == [30.0, None, 90.0]  # calendar medians


def test_a_day_without_figures_is_an_empty_page_not_an_error(client, world):
    login(client, world["admin"])
    later = NOW + timedelta(days=300)
    text = text_of(client.get("/metrics/", query_string={"from": later.date().isoformat(),
                                                         "to": later.date().isoformat()}))
    assert "Nothing to chart" in text


def test_figures_from_rolled_up_days_are_marked_approximate_and_stay_within_the_bound(client, world, session):
    from mets.services.metrics import histograms, rollups

    login(client, world["admin"])
    exact, compliance = get_csv(client, "times"), get_csv(client, "compliance")
    assert "≈" not in text_of(client.get("/metrics/", query_string=WEEK))
    rollups.roll_up(session, datetime(2026, 11, 23).date(), datetime(2026, 11, 26).date(), now=NOW)  # Tue rolled up
    assert get_csv(client, "compliance") == compliance
    rolled = get_csv(client, "times")
    assert rolled[0][3] == "Median (minutes, approximate: within 1%)" and rolled[0][5] == "Mean (minutes)"
    for want, got in zip(exact[1:], rolled[1:]):
        assert got[:3] == want[:3] and got[5] == want[5]  # counts and means exact
        for w, g in zip(want[3:5], got[3:5]):
            assert (w == g == "") or abs(float(g) - float(w)) <= histograms.RELATIVE_ERROR * float(w) + 0.05
    text = text_of(client.get("/metrics/", query_string=WEEK))
    assert "≈" in text and "within 1% of the exact figure" in text


def test_the_page_says_whose_days_it_counts(client, world, session):
    world["acme"].timezone = "America/New_York"
    session.commit()
    login(client, world["admin"])
    assert "(UTC days)" in text_of(client.get("/metrics/", query_string=WEEK))
    one = text_of(client.get("/metrics/", query_string={**WEEK, "entity": world["acme"].id}))
    assert "(days in America/New_York)" in one
