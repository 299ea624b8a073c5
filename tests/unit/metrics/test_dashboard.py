"""The dashboard's own figures and rules: who sees which entities, the filters, buckets in SQL on both databases."""
from datetime import date, datetime, timezone

import pytest

from mets.services.directory import users
from mets.services.metrics import dashboard
from tests.factories import make_customer, make_entity, make_staff, make_ticket

TODAY = date(2026, 11, 30)


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def org(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    maria = make_staff(acme, role="manager")
    users.set_membership(session, maria, globex, "agent", 1, [])  # works in Globex, manages only Acme
    return {"acme": acme, "billing": billing, "globex": globex, "maria": maria, "gus": make_staff(globex),
            "bill": make_staff(billing), "admin": make_staff(is_admin=True)}


def test_the_dashboard_is_the_managed_entities_with_their_departments(session, org):
    assert dashboard.dashboard_scope(session, org["admin"]) is None
    assert dashboard.dashboard_scope(session, org["maria"]) == {org["acme"].id, org["billing"].id}
    assert dashboard.dashboard_scope(session, org["gus"]) == set()
    assert dashboard.dashboard_scope(session, make_customer()) == set()
    assert not dashboard.can_view_dashboard(session, org["gus"])


def test_who_opens_an_agent_page_and_over_which_entities(session, org):
    assert dashboard.agent_scope(session, org["admin"], org["gus"]) is None
    assert dashboard.agent_scope(session, org["gus"], org["gus"]) == {org["globex"].id}
    assert dashboard.agent_scope(session, org["gus"], org["bill"]) is False
    assert dashboard.agent_scope(session, org["maria"], org["bill"]) == {org["billing"].id}
    # Maria works beside Gus in Globex, but manages only Acme: his page is not hers.
    assert dashboard.agent_scope(session, org["maria"], org["gus"]) is False


def test_an_entity_filter_out_of_scope_is_not_applied(session, org):
    allowed = dashboard.dashboard_scope(session, org["maria"])
    asked = dashboard.Filters.from_args({"entity": str(org["globex"].id)}, TODAY)
    scope = dashboard.scope_for(session, allowed, asked)
    assert scope.entity_ids == allowed and scope.filters.entity_id is None
    billing = dashboard.scope_for(session, allowed, dashboard.Filters.from_args({"entity": org["billing"].id}, TODAY))
    assert billing.entity_ids == {org["billing"].id}
    everything = dashboard.scope_for(session, None, dashboard.Filters.from_args({"entity": org["acme"].id}, TODAY))
    assert everything.entity_ids == {org["acme"].id, org["billing"].id}


def test_filters_read_the_query_string_and_drop_what_does_not_parse():
    f = dashboard.Filters.from_args({}, TODAY)
    assert (f.since, f.until, f.period, f.measure) == (date(2026, 11, 1), date(2026, 12, 1), "day", "business")
    assert f.as_args() == {"from": "2026-11-01", "to": "2026-11-30", "period": "day", "measure": "business"}
    f = dashboard.Filters.from_args({"from": "2026-11-10", "to": "2026-11-01", "priority": "nope", "period": "hour",
                                     "agent": "x"}, TODAY)
    assert f.errors and (f.since, f.last_day) == (date(2026, 11, 1), TODAY)
    assert (f.priority, f.period, f.agent_id) == ("", "day", None)
    f = dashboard.Filters.from_args({"from": "2020-01-01", "to": "2026-11-30"}, TODAY)
    assert f.errors and (f.last_day - f.since).days + 1 == dashboard.MAX_DAYS


def test_buckets_cover_the_range():
    assert dashboard.buckets(date(2026, 11, 25), date(2026, 12, 3), "week") == [date(2026, 11, 23),
                                                                                 date(2026, 11, 30)]
    assert dashboard.buckets(date(2026, 11, 25), date(2027, 1, 2), "month") == [date(2026, 11, 1), date(2026, 12, 1),
                                                                                  date(2027, 1, 1)]
    assert len(dashboard.buckets(date(2026, 11, 1), date(2026, 12, 1), "day")) == 30


@pytest.mark.parametrize("period, expected", [
    ("day", {date(2026, 11, 29): 1, date(2026, 11, 30): 2, date(2026, 12, 1): 1}),
    ("week", {date(2026, 11, 23): 1, date(2026, 11, 30): 3}),  # Sunday 23:59 is the week before Monday 00:00
    ("month", {date(2026, 11, 1): 3, date(2026, 12, 1): 1}),
])
def test_sql_buckets_are_utc_days_weeks_from_monday_and_months(session, period, expected):
    entity = make_entity()
    for at in (utc(2026, 11, 29, 23, 59), utc(2026, 11, 30, 0, 0), utc(2026, 11, 30, 23, 59, 59),
               utc(2026, 12, 1, 0, 0)):
        make_ticket(entity, now=at)
    f = dashboard.Filters.from_args({"from": "2026-11-01", "to": "2026-12-31", "period": period}, TODAY)
    points = dashboard.volume(session, dashboard.Scope({entity.id}, f))
    assert {p.start: p.created for p in points if p.created} == expected
    assert dashboard.volume(session, dashboard.Scope(set(), f))[0].created == 0  # an empty scope reads nothing


@pytest.mark.parametrize("period, local_expected, utc_expected", [
    # New York is UTC-5 in November: 03:00 UTC on the 24th is 22:00 on the 23rd there; 04:30 UTC on the 25th is
    # 23:30 on the 24th. Monday Nov 30 00:30 UTC is Sunday 19:30 in New York: the week before.
    ("day", ({date(2026, 11, 23): 1, date(2026, 11, 29): 1}, {date(2026, 11, 24): 1}),
            ({date(2026, 11, 24): 1, date(2026, 11, 30): 1}, {date(2026, 11, 25): 1})),
    ("week", ({date(2026, 11, 23): 2}, {date(2026, 11, 23): 1}),
             ({date(2026, 11, 23): 1, date(2026, 11, 30): 1}, {date(2026, 11, 23): 1})),
])
def test_one_entity_s_dashboard_counts_its_own_time_zone_s_days(session, period, local_expected, utc_expected):
    from mets.services import tickets

    ny_entity = make_entity("Acme NY", "acme-ny", timezone="America/New_York")
    agent = make_staff(ny_entity)
    late = make_ticket(ny_entity, now=utc(2026, 11, 24, 3, 0))
    make_ticket(ny_entity, now=utc(2026, 11, 30, 0, 30))
    tickets.change_status(session, late, "resolved", actor=agent, now=utc(2026, 11, 25, 4, 30))
    session.flush()
    args = {"from": "2026-11-23", "to": "2026-11-30", "period": period, "entity": str(ny_entity.id)}
    for local, (created, resolved) in ((True, local_expected), (False, utc_expected)):
        scope = dashboard.scope_for(session, None, dashboard.Filters.from_args(args, TODAY), local=local)
        assert scope.zone == ("America/New_York" if local else "UTC")
        points = dashboard.volume(session, scope)
        assert {p.start: p.created for p in points if p.created} == created, local
        assert {p.start: p.resolved for p in points if p.resolved} == resolved, local
        trend = {p.start: p.open for p in dashboard.backlog_trend(session, scope, utc(2026, 12, 1, 12))}
        if period == "day":  # open at the end of each local day: the late ticket from its creation to its resolution
            assert trend[date(2026, 11, 23 if local else 24)] == 1


def test_a_zoned_scope_reads_the_raw_rows_exactly(session):
    from mets.services import tickets
    from mets.services.metrics import rollups

    ny_entity = make_entity("Acme NY", "acme-ny", timezone="America/New_York")
    agent, admin = make_staff(ny_entity), make_staff(is_admin=True)
    ticket = make_ticket(ny_entity, now=utc(2026, 11, 24, 3, 0))  # Nov 23 in New York
    tickets.add_reply(session, ticket, actor=agent, body="On it.", now=utc(2026, 11, 24, 3, 40))
    session.flush()
    rollups.roll_up(session, date(2026, 11, 1), date(2026, 11, 30), now=utc(2026, 11, 30, 12))
    args = {"from": "2026-11-23", "to": "2026-11-23", "entity": str(ny_entity.id)}
    local = dashboard.scope_for(session, None, dashboard.Filters.from_args(args, TODAY), local=True)
    found = dashboard.summary(session, admin, local).first_response["calendar"]
    assert (found.count, found.median, found.approximate) == (1, 40, False)
    utc_scope = dashboard.scope_for(session, None, dashboard.Filters.from_args(args, TODAY))
    assert dashboard.summary(session, admin, utc_scope).first_response["calendar"].count == 0  # Nov 24 in UTC
