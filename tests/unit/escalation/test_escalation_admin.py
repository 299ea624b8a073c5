"""Editing escalation policies (services.escalation.admin): levels keep their identity through edits and moves
(what fired this round stays fired), order within an entity, and the preview reads without writing."""
import json
from datetime import datetime, timezone

import pytest

from mets import clock
from mets.models import EscalationPolicy
from mets.services import escalation
from mets.services.errors import DomainError
from mets.services.escalation import admin
from tests.conftest import count_rows
from tests.factories import make_customer, make_entity, make_rule, make_ticket

UTC = timezone.utc


def utc(day, hour, minute=0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def row(trigger, value, actions=(), level_id=""):
    return {"row": admin.new_row_id(), "id": str(level_id), "trigger": trigger, "value": str(value),
            "actions": json.dumps(list(actions))}


DATA = {"name": "Urgent", "clock": "resolution", "business_time": "", "is_active": "y", "position": "",
        "conditions": ""}


@pytest.fixture
def acme(session):
    acme = make_entity("Acme", "acme")
    make_rule(acme, "Standard", resolution_minutes=4 * 60, business_hours_only=False)
    return acme


def test_an_edit_keeps_the_levels_and_what_fired_this_round_stays_fired(session, acme):
    policy = admin.create_policy(session, acme, DATA, [row("percent", 50), row("percent", 100)], now=utc(10, 12))
    with clock.freeze(utc(10, 12)):
        ticket = make_ticket(acme, customer=make_customer())
    assert escalation.tick(session, utc(10, 14, 1)) == [(ticket.id, 1)]  # 50% of 4h
    first, second = policy.levels
    admin.update_policy(session, policy, acme, {**DATA, "name": "Urgent ones"},
                        [row("percent", 50, level_id=first.id), row("percent", 90, level_id=second.id)],
                        now=utc(10, 14, 2))
    assert [lv.id for lv in policy.levels] == [first.id, second.id] and policy.name == "Urgent ones"
    pending = escalation.pending(session, ticket, utc(10, 14, 2))
    assert [(d.level.id, d.number, d.at) for d in pending] == [(second.id, 2, utc(10, 15, 36))]
    assert ticket.escalation_due_at == utc(10, 15, 36)
    assert escalation.tick(session, utc(10, 14, 3)) == []  # level 1 is not due again


def test_a_new_policy_goes_where_its_order_says_and_the_others_move_down(session, acme):
    a = admin.create_policy(session, acme, {**DATA, "name": "A"}, [row("percent", 50)])
    b = admin.create_policy(session, acme, {**DATA, "name": "B", "position": "1"}, [row("percent", 50)])
    assert [p.name for p in admin.policies_of(session, acme)] == ["B", "A"]
    admin.move(session, b, 1)
    assert [p.name for p in admin.policies_of(session, acme)] == ["A", "B"] and a.position == 0


def test_errors_are_keyed_by_field_and_level(session, acme):
    with pytest.raises(DomainError) as refused:
        admin.create_policy(session, acme, {**DATA, "name": "", "position": "first"},
                            [row("percent", "x"), row("after_breach", 5, [{"type": "nope"}])])
    errors = refused.value.errors
    assert errors["position"] == "Enter the place as a whole number: 1 is tried first."
    assert errors["levels[0].value"] == "Enter a percent from 1 to 1000."
    assert errors["levels[1].actions[0]"] == "Unknown action 'nope'."
    assert "name" in errors and count_rows(session, EscalationPolicy) == 0


def test_the_preview_of_a_draft_writes_nothing(session, acme):
    with clock.freeze(utc(10, 12)):
        ticket = make_ticket(acme, customer=make_customer())
    session.flush()
    result = admin.preview(session, ticket, acme, DATA, [row("percent", 75), row("after_breach", 30)],
                           now=utc(10, 13))
    assert [(lv.number, lv.due.at) for lv in result.levels] == [(1, utc(10, 15)), (2, utc(10, 16, 30))]
    assert result.draft and result.follows is None and count_rows(session, EscalationPolicy) == 0
    assert not session.new and not session.dirty
