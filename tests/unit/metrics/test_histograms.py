"""Percentiles from the rollups' histograms: within the bins' bound of a direct computation, counts, means and
compliance exact; rolled-up days plus today's raw rows; archived days stay in the summary."""
import random
from datetime import date, datetime, timedelta, timezone

import pytest

from mets import clock
from mets.models import ResponseMetric
from mets.models.metrics import FIRST_RESPONSE, FULL_RESOLUTION, RESPONSE
from mets.services import metrics
from mets.services.metrics import histograms, rollups
from tests.factories import make_entity, make_staff, make_ticket

BOUND = histograms.RELATIVE_ERROR
SMALL = histograms.FLOOR * histograms.RATIO  # values under FLOOR share bin 1: an absolute bound there


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def close(approx, exact):
    """Within the bins' bound: relative, or absolute for values under the first bin's floor."""
    if exact is None:
        return approx is None
    return abs(approx - exact) <= BOUND * abs(exact) + 1e-9 or abs(approx - exact) <= SMALL


@pytest.mark.parametrize("seed", range(6))
def test_histogram_percentiles_are_within_the_bound_of_percentile_cont(seed):
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 10, 101, 2000])
    values = [rng.lognormvariate(4, 1.5) for _ in range(n)]
    values += [0.0] * rng.randint(0, 3) + [rng.uniform(0, 0.02) for _ in range(rng.randint(0, 2))]
    h = histograms.Histogram()
    for v in values:
        h.add_value(v)
    ordered = sorted(values)
    for fraction in (0.0, 0.5, 0.9, 1.0):
        assert close(h.percentile(fraction), metrics.percentile_cont(ordered, fraction)), fraction
    assert h.count == len(values) and h.total == pytest.approx(sum(values))


def test_stored_bins_merge_by_adding_counts():
    a, b, both = histograms.Histogram(), histograms.Histogram(), histograms.Histogram()
    for v in (1.0, 5.0, 5.01, 700.0):
        a.add_value(v)
        both.add_value(v)
    for v in (0.0, 5.0, 3000.0):
        b.add_value(v)
        both.add_value(v)
    merged = histograms.Histogram()
    merged.add_bins(*a.stored())
    merged.add_bins(*b.stored())
    assert merged.bins == both.bins
    assert a.stored()[0] == sorted(a.stored()[0]) and sum(a.stored()[1]) == 4


@pytest.fixture
def history(session):
    """Two entities, three agents, 400 skewed response times of each kind over Nov 1-10, some of them on Nov 30 (the
    day of the frozen clock, not rolled up: read raw)."""
    acme, globex = make_entity("Acme", "acme"), make_entity("Globex", "globex")
    agents = [make_staff(acme), make_staff(acme), make_staff(globex)]
    ticket = make_ticket(acme, now=utc(2026, 11, 1, 9))
    rng = random.Random(14)
    seq = 100  # after the ticket's own rows
    for kind in (FIRST_RESPONSE, RESPONSE, FULL_RESOLUTION):
        for i in range(400):
            seq += 1
            agent = agents[i % 3]
            day = utc(2026, 11, 30, 8) if i % 10 == 0 else utc(2026, 11, 1 + i % 10, 9)
            business = 0.0 if i % 37 == 0 else rng.lognormvariate(4, 1.3)
            session.add(ResponseMetric(
                ticket_id=ticket.id, metric_type=kind, seq=seq, start_at=utc(2026, 11, 1, 8),
                end_at=day + timedelta(minutes=i), business_minutes=None if i % 53 == 0 else business,
                duration_minutes=business * 1.7 + 3, sla_target_minutes=None if i % 7 == 0 else 120,
                within_sla=None if i % 7 == 0 else business <= 120,
                entity_id=(globex if agent is agents[2] else acme).id, agent_id=agent.id,
                priority=("normal", "high")[i % 2]))
    session.flush()
    clock.set_now(utc(2026, 11, 30, 12))
    return {"acme": acme, "globex": globex, "agents": agents, "admin": make_staff(is_admin=True)}


def _assert_close(rolled, exact):
    assert rolled.compliance == exact.compliance
    for part in ("first_response", "response", "resolution"):
        for measure in ("business", "calendar"):
            got, want = getattr(rolled, part)[measure], getattr(exact, part)[measure]
            assert got.count == want.count and got.mean == pytest.approx(want.mean)
            assert close(got.median, want.median) and close(got.p90, want.p90), (part, measure, got, want)
            assert got.approximate and not want.approximate


@pytest.mark.parametrize("filters", [{}, {"priority": "high"}, {"entity": "globex"}, {"agent": 0}])
def test_the_summary_from_rollups_is_within_the_bound_of_the_raw_rows(session, history, filters):
    admin = history["admin"]
    entity_ids = [history[filters["entity"]].id] if "entity" in filters else None
    args = dict(priority=filters.get("priority"),
                agent_id=history["agents"][filters["agent"]].id if "agent" in filters else None)
    exact = metrics.summary(session, admin, entity_ids, date(2026, 11, 1), date(2026, 12, 1), **args)
    assert exact.first_response["business"].count > 0
    rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1))
    assert rollups.covered_until(session, date(2026, 11, 1), date(2026, 12, 1)) == date(2026, 11, 30)
    rolled = metrics.summary(session, admin, entity_ids, date(2026, 11, 1), date(2026, 12, 1), **args)
    _assert_close(rolled, exact)


def test_the_breakdown_from_rollups_is_within_the_bound_of_the_raw_rows(session, history):
    admin = history["admin"]
    for by in ("agent", "entity", "priority"):
        for measure in ("business", "calendar"):
            exact = metrics.breakdown(session, admin, None, date(2026, 11, 1), date(2026, 12, 1), by,
                                      FULL_RESOLUTION, measure)
            rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1))
            rolled = metrics.breakdown(session, admin, None, date(2026, 11, 1), date(2026, 12, 1), by,
                                       FULL_RESOLUTION, measure)
            assert [g.key for g in rolled] == [g.key for g in exact]
            for got, want in zip(rolled, exact):
                assert got.compliance == want.compliance and got.times.count == want.times.count
                assert got.times.mean == pytest.approx(want.times.mean)
                assert close(got.times.median, want.times.median) and close(got.times.p90, want.times.p90)


def test_a_range_starting_before_the_rolled_days_is_read_raw_and_exact(session, history):
    rollups.roll_up(session, date(2026, 11, 5), date(2026, 12, 1))
    found = metrics.summary(session, history["admin"], None, date(2026, 11, 1), date(2026, 12, 1))
    assert not found.first_response["business"].approximate
    inside = metrics.summary(session, history["admin"], None, date(2026, 11, 5), date(2026, 12, 1))
    assert inside.first_response["business"].approximate


def test_archived_days_stay_in_the_summary(session, history, tmp_path):
    admin = history["admin"]
    exact = metrics.summary(session, admin, None, date(2026, 11, 1), date(2026, 12, 1))
    per_agent = metrics.breakdown(session, admin, None, date(2026, 11, 1), date(2026, 12, 1), "agent")
    assert rollups.archive(session, date(2026, 11, 15), tmp_path / "old.csv.gz") > 0
    clock.set_now(utc(2026, 11, 30, 12))
    assert rollups.archived_before(session) == date(2026, 11, 15)
    _assert_close(metrics.summary(session, admin, None, date(2026, 11, 1), date(2026, 12, 1)), exact)
    after = metrics.breakdown(session, admin, None, date(2026, 11, 1), date(2026, 12, 1), "agent")
    assert [(g.key, g.times.count, g.compliance) for g in after] == [(g.key, g.times.count, g.compliance)
                                                                       for g in per_agent]


def test_a_day_rolled_up_before_it_ended_is_not_covered(session, history):
    rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1), now=utc(2026, 11, 5, 12))
    assert rollups.rolled_up(session) == (date(2026, 11, 1), date(2026, 11, 5))
    rollups.roll_up(session, date(2026, 11, 4), date(2026, 11, 8), now=utc(2026, 11, 30, 12))
    assert rollups.rolled_up(session) == (date(2026, 11, 1), date(2026, 11, 8))
    rollups.roll_up(session, date(2026, 11, 20), date(2026, 11, 21), now=utc(2026, 11, 30, 12))  # apart: the later
    assert rollups.rolled_up(session) == (date(2026, 11, 20), date(2026, 11, 21))
