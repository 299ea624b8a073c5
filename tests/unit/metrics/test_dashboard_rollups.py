"""The dashboard read from the rollups (migration 0026) says what it says from the raw rows: ticket counts, the
backlog trend, the open tickets and every count exactly, under every filter, also for tickets changed after the
roll-up; the coarse metric levels' percentiles within the histograms' bound."""
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from mets.models import AppSetting, SlaRule
from mets.services import tickets
from mets.services.sla import admin as sla_admin
from mets.services.metrics import dashboard, histograms, rollups, tables
from tests.factories import make_entity, make_staff, make_ticket

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def desk(session):
    acme, globex = make_entity("Acme", "acme"), make_entity("Globex", "globex")
    ann, bob, admin = make_staff(acme), make_staff(globex), make_staff(is_admin=True)
    made = []
    for day in range(20, 30):  # Nov 20..29, one ticket a day in each entity, some answered, resolved, assigned
        for entity, agent in ((acme, ann), (globex, bob)):
            at = utc(2026, 11, day, 9 + day % 5)
            ticket = make_ticket(entity, now=at, priority="high" if day % 3 == 0 else "normal")
            if day % 2 == 0:
                tickets.assign(session, ticket, agent, actor=agent, now=at + timedelta(minutes=5))
                tickets.add_reply(session, ticket, actor=agent, body="On it.", now=at + timedelta(minutes=7 * day))
            if day % 4 == 0:
                tickets.change_status(session, ticket, "resolved", actor=agent, now=at + timedelta(hours=day))
            made.append(ticket)
    session.flush()
    return {"acme": acme, "globex": globex, "ann": ann, "bob": bob, "admin": admin, "tickets": made}


ARGS = [{}, {"priority": "high"}, {"agent": "ann"}, {"entity": "acme"}, {"period": "week"},
        {"to": "2026-11-26"}]


def _page(session, desk, args):
    args = {"from": "2026-11-20", "to": "2026-11-30", **args}
    for name in ("ann", "bob"):
        if args.get("agent") == name:
            args["agent"] = str(desk[name].id)
    if args.get("entity") == "acme":
        args["entity"] = str(desk["acme"].id)
    scope = dashboard.scope_for(session, None, dashboard.Filters.from_args(args, NOW.date()))
    return tables.dashboard_tables(session, desk["admin"], scope, NOW)


def _compare(raw, rolled):
    for name in ("compliance", "volume", "backlog_trend", "backlog", "workload"):
        assert rolled[name].rows == raw[name].rows, name
    for name, medians in (("times", (3, 4)), ("agents", (2, 5))):
        assert len(rolled[name].rows) == len(raw[name].rows), name
        for want, got in zip(raw[name].rows, rolled[name].rows):
            for i, (w, g) in enumerate(zip(want, got)):
                if i in medians and w is not None:
                    assert abs(g - w) <= histograms.RELATIVE_ERROR * w + 0.01, (name, want, got)
                else:
                    assert g == w, (name, want, got)


@pytest.mark.parametrize("args", ARGS)
def test_the_rollups_give_the_raw_figures_under_every_filter(session, desk, args):
    raw = _page(session, desk, args)
    rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1), now=NOW)
    assert rollups.tickets_rolled_up(session)[0] == date(2026, 11, 30)
    _compare(raw, _page(session, desk, args))


def test_tickets_changed_after_the_roll_up_are_read_raw_until_the_next(session, desk):
    rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1), now=NOW - timedelta(hours=2))
    first, second = desk["tickets"][0], desk["tickets"][5]
    tickets.assign(session, first, desk["ann"], actor=desk["ann"], now=NOW - timedelta(minutes=30))
    tickets.change_status(session, second, "closed", actor=desk["bob"], now=NOW - timedelta(minutes=20))
    resolved = next(t for t in desk["tickets"] if t.status == "resolved")
    tickets.change_status(session, resolved, "open", actor=desk["admin"], now=NOW - timedelta(minutes=10))
    session.flush()
    assert rollups.changed_days(session, *rollups.tickets_rolled_up(session)) >= {
        first.created_at.date(), second.created_at.date(), resolved.created_at.date()}
    rolled = [_page(session, desk, args) for args in ARGS]  # the rollups as they were, the changed days raw
    setting = session.get(AppSetting, rollups.TICKETS_KEY)
    kept, setting.value = setting.value, ""  # no ticket rollups: every ticket raw
    session.flush()
    for args, page in zip(ARGS, rolled):
        raw = _page(session, desk, args)
        for name in ("volume", "backlog_trend", "backlog", "workload"):
            assert page[name].rows == raw[name].rows, (args, name)
    setting.value = kept
    session.flush()
    # The next roll-up (the hourly job's three days) re-rolls the changed days: nothing left to read raw.
    rollups.roll_up(session, date(2026, 11, 28), date(2026, 12, 1), now=NOW)
    assert rollups.changed_days(session, *rollups.tickets_rolled_up(session)) == set()
    for args, page in zip(ARGS, rolled):
        again = _page(session, desk, args)
        for name in ("volume", "backlog_trend", "backlog", "workload"):
            assert page[name].rows == again[name].rows, (args, name)


def _workload_raw(session, desk, args):
    """The workload as the tickets alone say it (no ticket rollups), the setting put back after."""
    setting = session.get(AppSetting, rollups.TICKETS_KEY)
    kept, setting.value = setting.value, ""
    session.flush()
    rows = _page(session, desk, args)["workload"].rows
    setting.value = kept
    session.flush()
    return rows


@pytest.fixture
def timed(session, desk):
    """A 24/7 resolution target of 3 days on Acme (its open tickets fall due Nov 23 to Dec 2), and two more Acme
    tickets: one falling due between the roll-up (NOW - 2h) and NOW, one due within 4 hours of NOW."""
    sla_admin.create_rule(session, desk["acme"], {"name": "Three days", "resolution": "3d",
                                                  "business_hours_only": False}, now=utc(2026, 11, 20))
    between = make_ticket(desk["acme"], now=utc(2026, 11, 27, 10, 30))
    soon = make_ticket(desk["acme"], now=utc(2026, 11, 27, 14))
    tickets.assign(session, between, desk["ann"], actor=desk["ann"], now=utc(2026, 11, 27, 11))
    tickets.assign(session, soon, desk["ann"], actor=desk["ann"], now=utc(2026, 11, 27, 14, 5))
    session.flush()
    return between, soon


def test_clocks_falling_due_after_the_roll_up_are_counted_as_breached(session, desk, timed):
    between, soon = timed
    assert NOW - timedelta(hours=2) < between.sla_nearest_due <= NOW < soon.sla_nearest_due <= NOW + timedelta(hours=4)
    rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1), now=NOW - timedelta(hours=2))
    for args in ARGS:
        rows = _page(session, desk, args)["workload"].rows
        assert rows == _workload_raw(session, desk, args), args
    ann = next(r for r in _page(session, desk, {})["workload"].rows if r[0] == desk["ann"].name)
    breached = sum(1 for t in desk["tickets"] + [between, soon] if t.assignee_id == desk["ann"].id
                   and t.status not in ("resolved", "closed") and t.sla_nearest_due and t.sla_nearest_due <= NOW)
    assert ann[2:] == (1, breached) and breached >= 2  # `between` breached since the roll-up, `soon` due soon


def test_an_sla_edit_after_the_roll_up_retimes_the_workload(session, desk, timed):
    rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1), now=NOW - timedelta(hours=2))
    before = _page(session, desk, {})["workload"].rows
    rule = session.scalar(select(SlaRule).where(SlaRule.name == "Three days"))
    # Five days: Acme's tickets of Nov 25-29 are no longer breached, with no ticket changed (updated_at stays).
    sla_admin.update_rule(session, rule, {"name": "Five days", "resolution": "5d", "business_hours_only": False},
                          now=NOW)
    assert rollups.changed_days(session, *rollups.tickets_rolled_up(session))
    after = _page(session, desk, {})["workload"].rows
    assert after == _workload_raw(session, desk, {}) and after != before
    # The next roll-up writes the retimed days again: nothing left raw, the same figures.
    rollups.roll_up(session, date(2026, 11, 28), date(2026, 12, 1), now=NOW)
    assert rollups.changed_days(session, *rollups.tickets_rolled_up(session)) == set()
    assert _page(session, desk, {})["workload"].rows == after


def test_a_page_timed_before_the_roll_up_counts_its_clocks_due_then(session, desk, timed):
    earlier = NOW - timedelta(hours=3)  # before the roll-up's mark (NOW - 2h05)
    before_mark = make_ticket(desk["acme"], now=utc(2026, 11, 27, 9, 30))  # due between `earlier` and the mark
    tickets.assign(session, before_mark, desk["ann"], actor=desk["ann"], now=utc(2026, 11, 27, 9, 40))
    session.flush()
    rollups.roll_up(session, date(2026, 11, 1), date(2026, 12, 1), now=NOW - timedelta(hours=2))
    scope = dashboard.scope_for(session, None, dashboard.Filters.from_args(
        {"from": "2026-11-20", "to": "2026-11-30"}, NOW.date()))
    rows = tables.dashboard_tables(session, desk["admin"], scope, earlier)["workload"].rows
    ann = next(r for r in rows if r[0] == desk["ann"].name)
    breached = sum(1 for t in desk["tickets"] + [*timed, before_mark] if t.assignee_id == desk["ann"].id
                   and t.status not in ("resolved", "closed") and t.sla_nearest_due and t.sla_nearest_due <= earlier)
    assert earlier < before_mark.sla_nearest_due <= NOW - timedelta(hours=2, minutes=5)
    assert ann[3] == breached
