"""Daily rollups and the archive: rollup totals equal the raw rows', the archive writes exactly the removed rows to a
readable gzip CSV, and the trend charts still show the archived days (from the rollups)."""
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from mets.models import MetricRollup, ResponseMetric
from mets.models.metrics import FIRST_RESPONSE, FULL_RESOLUTION, RESPONSE
from mets.services.metrics import dashboard, rollups
from tests.factories import make_entity, make_staff, make_ticket


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def fixture(session):
    """Two entities, two agents; rows completed on Nov 10 (one just before midnight), 11 and 20, one still open."""
    acme, globex = make_entity("Acme", "acme"), make_entity("Globex", "globex")
    ann, bob = make_staff(acme), make_staff(globex)
    ticket = make_ticket(acme, now=utc(2026, 11, 1, 9))
    other = make_ticket(globex, now=utc(2026, 11, 1, 9))
    rows = [  # (ticket, entity, agent, kind, end, business, calendar, within)
        (ticket, acme, ann, FIRST_RESPONSE, utc(2026, 11, 10, 9), 30.0, 40.0, True),
        (ticket, acme, ann, RESPONSE, utc(2026, 11, 10, 23, 59, 59), 50.0, 60.0, False),
        (ticket, acme, ann, RESPONSE, utc(2026, 11, 11, 0, 0), 10.0, 10.0, None),
        (ticket, acme, ann, FULL_RESOLUTION, utc(2026, 11, 11, 12), 300.0, 600.0, True),
        (other, globex, bob, FIRST_RESPONSE, utc(2026, 11, 10, 15), 70.0, 70.0, False),
        (other, globex, bob, FULL_RESOLUTION, utc(2026, 11, 20, 8), None, 900.0, None),
        (other, globex, None, RESPONSE, utc(2026, 11, 20, 9), 5.0, 5.0, True),
    ]
    for i, (t, entity, agent, kind, end, business, calendar, within) in enumerate(rows):
        session.add(ResponseMetric(ticket_id=t.id, metric_type=kind, seq=100 + i, start_at=utc(2026, 11, 1, 9),
                                   end_at=end, business_minutes=business, duration_minutes=calendar,
                                   within_sla=within, sla_target_minutes=None if within is None else 60,
                                   entity_id=entity.id, agent_id=agent.id if agent else None, priority="normal"))
    session.add(ResponseMetric(ticket_id=other.id, metric_type=RESPONSE, seq=99, start_at=utc(2026, 11, 5),
                               entity_id=globex.id, priority="normal"))  # still open: in no rollup, never archived
    session.flush()
    return {"acme": acme, "globex": globex, "ann": ann, "bob": bob}


def _totals(session):
    """The rollups' sums: rows, rows with business minutes, their sum, with calendar minutes, their sum, within SLA,
    breached."""
    r = MetricRollup
    return session.execute(select(func.sum(r.count), func.sum(r.business_count), func.sum(r.business_minutes),
                                  func.sum(r.duration_count), func.sum(r.duration_minutes), func.sum(r.within_sla),
                                  func.sum(r.breached))).one()


def test_rollup_totals_equal_the_raw_rows(session, fixture):
    written = rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1))
    # Grouped by day, entity, type, priority and agent: Nov 10 acme's first response and response and Globex's
    # first response; Nov 11 acme's response and full resolution; Nov 20 Globex's full resolution and response.
    assert written == 7
    by_key = {(r.day, r.entity_id, r.metric_type, r.agent_id): r for r in session.scalars(select(MetricRollup))}
    acme, globex, ann, bob = (fixture[k].id for k in ("acme", "globex", "ann", "bob"))
    response_10 = by_key[(date(2026, 11, 10), acme, RESPONSE, ann)]
    assert (response_10.count, response_10.business_minutes, response_10.breached) == (1, 50.0, 1)
    # 23:59:59 is Nov 10, midnight is Nov 11
    assert by_key[(date(2026, 11, 11), acme, RESPONSE, ann)].count == 1
    full = by_key[(date(2026, 11, 20), globex, FULL_RESOLUTION, bob)]
    assert (full.business_count, full.business_minutes, full.duration_count, full.duration_minutes) == (0, 0, 1, 900)
    assert set(by_key) >= {(date(2026, 11, 20), globex, RESPONSE, None)}
    # Totals against the raw rows, computed directly.
    raw = [r for r in session.scalars(select(ResponseMetric).where(ResponseMetric.end_at.is_not(None)))]
    count, business_count, business, duration_count, duration, within, breached = _totals(session)
    assert count == len(raw) == 7
    assert business_count == sum(r.business_minutes is not None for r in raw)
    assert business == pytest.approx(sum(r.business_minutes or 0 for r in raw))
    assert duration_count == sum(r.duration_minutes is not None for r in raw)
    assert duration == pytest.approx(sum(r.duration_minutes or 0 for r in raw))
    assert within == sum(r.within_sla is True for r in raw) == 3
    assert breached == sum(r.within_sla is False for r in raw) == 2
    # Rolling up again rewrites, never doubles.
    rollups.roll_up(session, date(2026, 11, 10), date(2026, 11, 12))
    assert _totals(session)[0] == 7


def _volume(session, since, until, period="day", entity=None):
    f = dashboard.Filters(since=since, until=until, period=period)
    scope = dashboard.Scope({entity.id} if entity else None, f)
    return {p.start: p.resolved for p in dashboard.volume(session, scope) if p.resolved}


def test_the_archive_writes_exactly_the_removed_rows_and_the_trend_still_shows_them(session, fixture, tmp_path):
    before_volume = _volume(session, date(2026, 11, 1), date(2026, 12, 1))
    weekly = _volume(session, date(2026, 11, 1), date(2026, 12, 1), "week")
    acme_only = _volume(session, date(2026, 11, 1), date(2026, 12, 1), entity=fixture["acme"])
    assert before_volume == {date(2026, 11, 11): 1, date(2026, 11, 20): 1}
    old = sorted(r.id for r in session.scalars(select(ResponseMetric).where(
        ResponseMetric.end_at < utc(2026, 11, 15))))
    assert len(old) == 5
    path = tmp_path / "metrics.csv.gz"
    assert rollups.archive(session, date(2026, 11, 15), path) == 5
    written = rollups.read_archive(path)
    assert sorted(int(r["id"]) for r in written) == old
    assert set(written[0]) == set(rollups.CSV_COLUMNS)
    first = next(r for r in written if r["metric_type"] == FIRST_RESPONSE and r["business_minutes"] == "30.0")
    assert first["end_at"].startswith("2026-11-10T09:00:00") and first["within_sla"] == "true"
    remaining = session.scalars(select(ResponseMetric.id)).all()
    assert not set(old) & set(remaining)
    completed = session.scalars(select(ResponseMetric.id).where(ResponseMetric.end_at.is_not(None))).all()
    assert len(completed) == 2  # after the horizon; rows still open are all kept
    assert session.scalar(select(func.count()).select_from(ResponseMetric).where(ResponseMetric.seq == 99)) == 1
    assert rollups.archived_before(session) == date(2026, 11, 15)
    # The trend still shows the archived days, from the rollups, in every bucket and scope.
    assert _volume(session, date(2026, 11, 1), date(2026, 12, 1)) == before_volume
    assert _volume(session, date(2026, 11, 1), date(2026, 12, 1), "week") == weekly
    assert _volume(session, date(2026, 11, 1), date(2026, 12, 1), entity=fixture["acme"]) == acme_only
    # An archived day's rollups are kept when the days are rolled up again; a second archive there does nothing.
    rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1))
    assert _totals(session)[0] == 7
    assert rollups.archive(session, date(2026, 11, 14), tmp_path / "again.csv.gz") == 0


def test_the_agent_trend_counts_archived_days_from_the_rollups(session, fixture, tmp_path):
    admin = make_staff(is_admin=True)
    f = dashboard.Filters(since=date(2026, 11, 1), until=date(2026, 12, 1), period="week")
    scope = dashboard.Scope(None, f)

    def trend():
        return {p.start: (p.responses, p.resolved) for p in dashboard.agent_trend(session, admin, scope,
                                                                                    fixture["ann"].id)
                if p.responses or p.resolved}

    found = trend()
    assert found == {date(2026, 11, 9): (3, 1)}  # Nov 10 and 11 are in the week of Monday Nov 9
    rollups.archive(session, date(2026, 11, 15), tmp_path / "a.csv.gz")
    assert trend() == found
    assert dashboard.agent_trend(session, admin, scope, fixture["ann"].id)[1].median is None  # no rows to take it


def test_the_periodic_job_rolls_up_the_last_days(session, fixture):
    assert rollups.roll_up_recent(session, date(2026, 11, 20), days=1) == 2
    assert {r.day for r in session.scalars(select(MetricRollup))} == {date(2026, 11, 20)}
    assert rollups.roll_up_recent(session, date(2026, 11, 12)) == 5  # Nov 10, 11 and 12
    assert {r.day for r in session.scalars(select(MetricRollup))} == {date(2026, 11, d) for d in (10, 11, 20)}


def test_the_commands_roll_up_and_archive_rows_older_than_the_age(app, session, fixture, tmp_path):
    from mets import clock

    clock.set_now(utc(2026, 11, 30, 12))
    runner = app.test_cli_runner()
    rolled = runner.invoke(args=["mets", "metrics-rollup", "--since", "2026-11-01"])
    assert rolled.exit_code == 0 and "Wrote 7 rollup rows." in rolled.output, rolled.output
    path = tmp_path / "old.csv.gz"
    archived = runner.invoke(args=["mets", "metrics-archive", "--to", str(path), "--older-than-days", "15"])
    assert archived.exit_code == 0, archived.output
    assert "Archived 5 response metric rows completed before 2026-11-15" in archived.output
    assert len(rollups.read_archive(path)) == 5
    exists = runner.invoke(args=["mets", "metrics-archive", "--to", str(path)])
    assert exists.exit_code != 0 and "exists" in exists.output


def test_a_change_to_a_ticket_whose_rows_were_archived_does_not_write_them_again(session, tmp_path):
    from mets.services import tickets

    acme = make_entity("Acme", "acme")
    ann = make_staff(acme)
    ticket = make_ticket(acme, now=utc(2026, 11, 1, 9))
    tickets.add_reply(session, ticket, actor=ann, body="On it.", now=utc(2026, 11, 1, 10))
    tickets.change_status(session, ticket, "resolved", actor=ann, now=utc(2026, 11, 1, 11))
    session.flush()
    assert session.scalar(select(func.count()).select_from(ResponseMetric).where(
        ResponseMetric.end_at.is_(None), ResponseMetric.ticket_id == ticket.id)) == 0
    assert rollups.archive(session, date(2026, 11, 15), tmp_path / "a.csv.gz") == 3
    tickets.change_status(session, ticket, "open", actor=ann, now=utc(2026, 11, 20, 9))  # a reopen, no rows left
    tickets.change_status(session, ticket, "pending", actor=ann, now=utc(2026, 11, 20, 10))
    session.flush()
    kinds = session.scalars(select(ResponseMetric.metric_type).where(ResponseMetric.ticket_id == ticket.id)).all()
    assert kinds == ["waiting_on_customer"]  # only what happened since; the archived rows stay archived
