"""The dashboard's read API: percentiles against a direct computation, compliance, and scoping to the viewer."""
import random
import statistics
from datetime import date, datetime, timedelta, timezone

import pytest

from mets.extensions import db
from mets.models import ResponseMetric
from mets.models.metrics import RESPONSE
from mets.services import metrics, tickets
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket, ny

SINCE, UNTIL = date(2026, 11, 1), date(2026, 12, 1)


def test_percentile_cont_interpolates_like_postgresql():
    assert metrics.percentile_cont([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert metrics.percentile_cont([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert metrics.percentile_cont([7.0], 0.9) == 7.0
    assert metrics.percentile_cont([10.0, 20.0], 0.0) == 10.0


@pytest.mark.parametrize("n", [1, 2, 10, 37])
def test_distribution_matches_a_direct_computation(session, n):
    entity = make_entity()
    ticket = make_ticket(entity, now=ny(2026, 11, 2, 9, 0))
    rng = random.Random(n)
    values = [round(rng.lognormvariate(4, 1.2), 3) for _ in range(n)]  # skewed, like response times
    for i, value in enumerate(values):
        session.add(ResponseMetric(ticket_id=ticket.id, metric_type="test", seq=i + 1, start_at=ny(2026, 11, 2, 9),
                                   end_at=ny(2026, 11, 3, 9), business_minutes=value, duration_minutes=value * 2,
                                   entity_id=entity.id, priority="normal"))
    session.add(ResponseMetric(ticket_id=ticket.id, metric_type="test", seq=n + 1, start_at=ny(2026, 11, 2, 9),
                               entity_id=entity.id, priority="normal"))  # still open: left out
    session.flush()
    found = metrics.distribution(session, ResponseMetric.business_minutes, ResponseMetric.ticket_id == ticket.id)
    assert found.count == n
    assert found.median == pytest.approx(statistics.median(values))
    p90 = statistics.quantiles(values, n=10, method="inclusive")[8] if n > 1 else values[0]
    assert found.p90 == pytest.approx(p90)
    assert found.mean == pytest.approx(statistics.fmean(values))
    empty = metrics.distribution(session, ResponseMetric.business_minutes, ResponseMetric.ticket_id == -1)
    assert (empty.count, empty.median, empty.p90, empty.mean) == (0, None, None, None)


@pytest.fixture
def two_companies(session):
    """Acme (with a Billing department) and Globex, a first response in each: 30 and 90 business minutes."""
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    billing = make_entity("Billing", "billing", parent=acme, timezone="America/New_York")
    globex = make_entity("Globex", "globex", timezone="America/New_York")
    make_rule(acme, "Acme", response_minutes=60, next_reply_minutes=60, resolution_minutes=240)
    make_rule(globex, "Globex", response_minutes=60)
    people = {"manager": make_staff(acme, role="manager"), "billing_agent": make_staff(billing),
              "globex_agent": make_staff(globex), "admin": make_staff(is_admin=True), "customer": make_customer()}
    made = {}
    for name, entity, agent, minutes in (("acme", acme, people["manager"], 30),
                                         ("billing", billing, people["billing_agent"], 45),
                                         ("globex", globex, people["globex_agent"], 90)):
        ticket = make_ticket(entity, customer=people["customer"], now=ny(2026, 11, 24, 9, 0))
        tickets.add_reply(db.session, ticket, actor=agent, body="Hi", now=ny(2026, 11, 24, 9, 0) + timedelta(minutes=minutes))
        made[name] = ticket
    return {"acme": acme, "billing": billing, "globex": globex, "tickets": made, **people}


def test_summary_gives_compliance_and_times_in_business_and_calendar_minutes(session, two_companies):
    w = two_companies
    ticket = w["tickets"]["acme"]
    tickets.add_reply(session, ticket, actor=w["customer"], body="More", now=ny(2026, 11, 24, 11, 0))
    tickets.add_reply(session, ticket, actor=w["manager"], body="Sure", now=ny(2026, 11, 24, 12, 30))  # 90 > 60
    tickets.change_status(session, ticket, "resolved", actor=w["manager"], now=ny(2026, 11, 24, 13, 1))  # 241
    # Friday 16:00 -> Monday 10:00: 2 business hours over a weekend, 66 calendar hours; resolved Monday 11:00.
    friday = make_ticket(w["billing"], customer=w["customer"], now=ny(2026, 11, 27, 16, 0), priority="urgent")
    tickets.add_reply(session, friday, actor=w["billing_agent"], body="Hi", now=ny(2026, 11, 30, 10, 0))
    tickets.change_status(session, friday, "resolved", actor=w["billing_agent"], now=ny(2026, 11, 30, 11, 0))

    found = metrics.summary(session, w["admin"], [w["acme"].id], SINCE, UNTIL)
    assert (found.compliance["response"].achieved, found.compliance["response"].breached) == (2, 1)  # 30, 45 | 120
    assert found.compliance["response"].rate == pytest.approx(2 / 3)
    assert (found.compliance["next_reply"].achieved, found.compliance["next_reply"].breached) == (0, 1)
    assert found.compliance["next_reply"].rate == 0
    assert (found.response["business"].count, found.response["business"].median) == (1, 90)  # 11:00 -> 12:30
    assert (found.compliance["resolution"].achieved, found.compliance["resolution"].breached) == (1, 1)  # 180 | 241
    first = found.first_response["business"]
    assert (first.count, first.median, first.mean) == (3, 45, (30 + 45 + 120) / 3)
    assert first.p90 == pytest.approx(45 + 0.8 * (120 - 45))
    assert found.first_response["calendar"].median == 45 and found.first_response["calendar"].p90 == pytest.approx(
        45 + 0.8 * (66 * 60 - 45))
    assert (found.resolution["business"].count, found.resolution["business"].median) == (2, (241 + 180) / 2)
    assert found.resolution["calendar"].mean == (241 + 67 * 60) / 2

    urgent = metrics.summary(session, w["admin"], None, SINCE, UNTIL, priority="urgent")
    assert urgent.first_response["business"].count == 1 and urgent.first_response["business"].median == 120
    by_agent = metrics.summary(session, w["admin"], None, SINCE, UNTIL, agent_id=w["manager"].id)
    assert by_agent.first_response["business"].count == 1 and by_agent.first_response["business"].median == 30
    assert by_agent.compliance["next_reply"].breached == 1
    december = metrics.summary(session, w["admin"], None, date(2026, 12, 1), date(2027, 1, 1))
    assert december.first_response["business"].count == 0 and december.compliance["response"].rate is None
    nov_30 = metrics.summary(session, w["admin"], None, datetime(2026, 11, 30, tzinfo=timezone.utc), UNTIL)
    assert nov_30.first_response["business"].count == 1  # ended in the period: only Monday's


@pytest.mark.parametrize("who, expected", [
    ("admin", {30, 45, 90}),  # every entity
    ("manager", {30, 45}),  # Acme and its department, never Globex
    ("billing_agent", {45}),  # their department only, not its parent
    ("globex_agent", {90}),
    ("customer", set()),  # no figures for customers
])
def test_figures_are_scoped_to_the_viewers_entities(session, two_companies, who, expected):
    w = two_companies
    user = w[who]  # first responses: 30 minutes in Acme, 45 in its department Billing, 90 in Globex

    found = metrics.summary(session, user, None, SINCE, UNTIL)
    assert found.first_response["business"].count == len(expected)
    assert found.compliance["response"].achieved + found.compliance["response"].breached == len(expected)
    if expected:
        assert found.first_response["business"].mean == pytest.approx(sum(expected) / len(expected))
    # Asking for another company's entity gives nothing, never its figures.
    for name, minute in (("acme", 30), ("billing", 45), ("globex", 90)):
        asked = metrics.summary(session, user, [w[name].id], SINCE, UNTIL).first_response["business"]
        in_scope = {30: {30, 45}, 45: {45}, 90: {90}}[minute] & expected  # an entity comes with its departments
        assert asked.count == len(in_scope), name
        if in_scope:
            assert asked.mean == pytest.approx(sum(in_scope) / len(in_scope))


def test_a_naive_or_missing_period_is_refused(session, two_companies):
    with pytest.raises(ValueError):
        metrics.summary(session, two_companies["admin"], None, datetime(2026, 11, 1), UNTIL)
    with pytest.raises(ValueError):
        metrics.summary(session, two_companies["admin"], None, None, UNTIL)


def test_breakdown_per_agent_entity_and_priority_matches_a_direct_computation(session, two_companies):
    w = two_companies
    agents = [w["manager"], w["billing_agent"], w["globex_agent"]]
    entity_of = {w["manager"].id: w["acme"].id, w["billing_agent"].id: w["billing"].id,
                 w["globex_agent"].id: w["globex"].id}
    ticket = w["tickets"]["acme"]
    rng = random.Random(14)
    expected: dict = {}
    for seq in range(1, 41):
        agent = agents[seq % 3]
        value = round(rng.expovariate(1 / 90), 2)
        priority = rng.choice(["low", "high"])
        target = 60
        session.add(ResponseMetric(ticket_id=ticket.id, metric_type=RESPONSE, seq=seq, start_at=ny(2026, 11, 25, 9),
                                   end_at=ny(2026, 11, 25, 12), business_minutes=value, duration_minutes=value,
                                   sla_target_minutes=target, within_sla=value <= target,
                                   entity_id=entity_of[agent.id], agent_id=agent.id, priority=priority))
        for by, key in (("agent", agent.id), ("entity", entity_of[agent.id]), ("priority", priority)):
            expected.setdefault(by, {}).setdefault(key, []).append(value)
    session.flush()

    for by, groups in expected.items():
        found = {g.key: g for g in metrics.breakdown(session, w["admin"], None, SINCE, UNTIL, by=by, kind=RESPONSE)}
        assert set(found) == set(groups), by
        for key, values in groups.items():
            got = found[key]
            assert got.times.count == len(values)
            assert got.times.median == pytest.approx(statistics.median(values))
            assert got.times.p90 == pytest.approx(statistics.quantiles(values, n=10, method="inclusive")[8])
            assert got.times.mean == pytest.approx(statistics.fmean(values))
            assert (got.compliance.achieved, got.compliance.breached) == (sum(v <= 60 for v in values),
                                                                          sum(v > 60 for v in values))
    # A department's agent sees only their department's group; the first responses are another kind of row.
    mine = metrics.breakdown(session, w["billing_agent"], None, SINCE, UNTIL, by="entity", kind=RESPONSE)
    assert [g.key for g in mine] == [w["billing"].id]
    first = metrics.breakdown(session, w["manager"], None, SINCE, UNTIL, by="agent")
    assert {g.key: g.times.median for g in first} == {w["manager"].id: 30, w["billing_agent"].id: 45}
    with pytest.raises(ValueError):
        metrics.breakdown(session, w["admin"], None, SINCE, UNTIL, by="customer")
