"""services.tickets.live's presence: who counts as viewing is decided at read time (rows older than the window are
ignored, pruned or not), and the periodic job, not a page, deletes rows nobody refreshed."""
from datetime import datetime, timedelta, timezone

from mets import jobs
from mets.models import TicketViewer
from mets.services.tickets import live
from tests.conftest import count_rows
from tests.factories import make_entity, make_staff, make_ticket

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
WINDOW = live.presence_window(10)  # the default poll: a minute


def test_a_viewer_counts_until_the_window_has_passed_whether_or_not_the_row_was_pruned(session):
    acme = make_entity()
    dana, bea = make_staff(acme, name="Dana"), make_staff(acme, name="Bea")
    first, second = make_ticket(acme), make_ticket(acme)
    live.record_viewer(session, first, bea, T0)
    live.record_viewer(session, second, bea, T0)
    inside, past = T0 + WINDOW - timedelta(seconds=1), T0 + WINDOW + timedelta(seconds=1)
    assert live.viewers(session, first, dana, inside, WINDOW) == [(bea.id, "Bea")]
    assert live.viewers_by_ticket(session, [first.id, second.id], dana, inside, WINDOW) == {
        first.id: ["Bea"], second.id: ["Bea"]}
    assert live.viewers(session, first, dana, past, WINDOW) == []
    assert live.viewers_by_ticket(session, [first.id, second.id], dana, past, WINDOW) == {}
    assert live.check_in(session, first, dana, past, WINDOW) == []
    assert count_rows(session, TicketViewer, TicketViewer.user_id == bea.id) == 2  # still there: reads decide


def test_the_prune_deletes_rows_older_than_ten_minutes_or_the_window_if_longer(session):
    acme = make_entity()
    bea, cy = make_staff(acme), make_staff(acme)
    ticket = make_ticket(acme)
    live.record_viewer(session, ticket, bea, T0)
    live.record_viewer(session, ticket, cy, T0 + timedelta(minutes=5))
    now = T0 + live.PRUNE_AFTER + timedelta(seconds=1)
    slow_polls = live.presence_window(300)  # polls every 5 minutes: a viewer counts for 15
    assert live.prune_viewers(session, now, slow_polls) == 0  # Bea is still inside that window
    assert live.prune_viewers(session, now, WINDOW) == 1
    assert [r.user_id for r in session.query(TicketViewer)] == [cy.id]


def test_the_prune_is_a_periodic_job_run_by_every_scheduler(app, session):
    # rq cron (mets.cron_config) and worker.py's embedded loop both run every job in jobs.PERIODIC.
    job, period_key = jobs.PERIODIC["presence_prune"]
    assert period_key == "PRESENCE_PRUNE_SECONDS" and app.config[period_key] == 300
    acme = make_entity()
    ticket = make_ticket(acme)
    live.record_viewer(session, ticket, make_staff(acme), T0)
    assert job() == "presence: 1 stale viewers removed"
    assert count_rows(session, TicketViewer) == 0
    assert job() == ""  # an idle run stays quiet
