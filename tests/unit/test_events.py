"""The event bus: known names only, each handler once, in the order subscribed."""
import pytest

from mets import events
from mets.services import automation
from mets.services.notifications import notify


def test_an_unknown_event_name_is_refused_with_its_name():
    with pytest.raises(ValueError, match="unknown event 'ticket_creatd'"):
        events.subscribe("ticket_creatd", lambda *a: None)


def test_a_second_app_does_not_subscribe_twice_and_notifications_come_before_rules(app):
    from mets import create_app

    create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": "x" * 32})
    handlers = events._subscribers[events.TICKET_CHANGED]
    assert handlers.count(notify.ticket_changed) == 1 and handlers.count(automation.ticket_changed) == 1
    assert handlers.index(notify.ticket_changed) < handlers.index(automation.ticket_changed)
    for name in events.TICK_EVENTS:
        assert events._subscribers[name].count(notify._on_sla_event) == 1


def test_emit_calls_every_subscriber_with_the_arguments(monkeypatch):
    monkeypatch.setattr(events, "_subscribers", events.defaultdict(list))
    seen = []
    events.subscribe(events.TICKET_CHANGED, lambda *a: seen.append(("first", a)))
    events.subscribe(events.TICKET_CHANGED, lambda *a: seen.append(("second", a)))
    events.emit(events.TICKET_CHANGED, "session", "change")
    assert seen == [("first", ("session", "change")), ("second", ("session", "change"))]
