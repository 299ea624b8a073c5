"""SLA rules as admins edit them: validation, order, (de)activation, re-timing open tickets, test mode."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import SlaFiring, SlaPause, TicketEvent
from mets.services import sla, tickets
from mets.services.sla import admin as sla_rules
from mets.services.sla import test_mode as sla_test_mode
from mets.services.sla import tick as sla_tick
from mets.services.errors import DomainError
from tests.factories import make_customer, make_entity, make_staff, make_ticket, ny

UTC = timezone.utc




@pytest.fixture
def world(session):
    acme = make_entity("Acme", "acme", timezone="America/New_York")  # default hours: Mon-Fri 09-17
    billing = make_entity("Acme Billing", "billing", parent=acme, timezone="America/New_York")
    globex = make_entity("Globex", "globex", timezone="Europe/Paris")
    return {"acme": acme, "billing": billing, "globex": globex, "agent": make_staff(acme, name="Dana"),
            "customer": make_customer()}


def open_ticket(world, at: datetime, entity=None, **kw):
    with clock.freeze(at):
        return make_ticket(entity or world["billing"], customer=world["customer"], **kw)


def form(**kw) -> dict:
    """Form values as the rule form sends them."""
    data = {"name": "Standard", "priority": "", "response": "4h", "next_reply": "", "resolution": "",
            "business_hours_only": True, "warnings": "80%", "pause_statuses": ["pending"], "conditions": ""}
    data.update(kw)
    return data


def errors_of(data: dict) -> dict:
    with pytest.raises(DomainError) as caught:
        sla_rules.validate_rule(data)
    return caught.value.errors


# --- validation -------------------------------------------------------------------------------

def test_form_text_becomes_column_values(session):
    values = sla_rules.validate_rule(form(name=" Gold ", priority="urgent", response="4h 30m", resolution="2d",
                                          warnings="80%, 30m before, 80%", pause_statuses=["on_hold", "pending"],
                                          business_hours_only=False,
                                          conditions='{"all": [{"field": "subject", "op": "contains", "value": "x"}]}'))
    assert values == {
        "name": "Gold", "priority": "urgent", "response_minutes": 270, "next_reply_minutes": None,
        "resolution_minutes": 2880, "business_hours_only": False,
        "warnings": [{"percent": 80}, {"minutes_before": 30}],  # the repeated 80% once
        "pause_statuses": ["pending", "on_hold"],
        "conditions": {"all": [{"field": "subject", "op": "contains", "value": "x"}]}}


def test_defaults_and_empty_values(session):
    values = sla_rules.validate_rule({"name": "Minimal", "resolution": "90"})
    assert values["warnings"] == [{"percent": 80}] and values["pause_statuses"] == ["pending"]
    assert values["priority"] is None and values["conditions"] is None and values["business_hours_only"] is True
    values = sla_rules.validate_rule(form(warnings="", pause_statuses=[], conditions='{"all": []}'))
    assert values["warnings"] == [] and values["pause_statuses"] == [] and values["conditions"] is None


def test_every_field_at_fault_is_named(session):
    errors = errors_of(form(name="  ", priority="critical", response="4 hours-ish", resolution="0m",
                            warnings="120%", pause_statuses=["closed"],
                            conditions='{"all": [{"field": "prioritee", "op": "is", "value": "high"}]}'))
    assert errors == {
        "name": "Name is required.",
        "priority": "Choose low, normal, high, urgent or any priority.",
        "response": 'Cannot read "4 hours-ish" as a duration. Write it like "4h 30m", "90m" or "2d 4h".',
        "resolution": "A duration must be longer than 0 minutes.",
        "warnings": '"120%": a percent warning is a whole number from 1% to 99%.',
        "pause_statuses": "Resolved and closed tickets always stop the clocks: leave them out.",
        "conditions": "Condition 1: unknown field 'prioritee'.",
    }


def test_at_least_one_target(session):
    assert errors_of(form(response="")) == {
        "response": "Set at least one target: first response, next reply or resolution."}
    values = sla_rules.validate_rule(form(response="", next_reply="2d", warnings="30m before"))
    assert values["next_reply_minutes"] == 2880
    assert "escalation_minutes" not in values  # who hears of a ticket at risk is an escalation policy's business


@pytest.mark.parametrize("text, message", [
    ("soon", 'Cannot read "soon" as a warning. Write each warning as a percent of the target ("80%") or a time '
             'before due ("30m before").'),
    ("0%", '"0%": a percent warning is a whole number from 1% to 99%.'),
    ("12.5%", '"12.5%": a percent warning is a whole number from 1% to 99%.'),
    ("xyz before", '"xyz before": Cannot read "xyz" as a duration. Write it like "4h 30m", "90m" or "2d 4h".'),
    ("10%, 20%, 30%, 40%, 50%, 60%", "At most 5 warnings per rule."),
    # Before due must fall inside the shortest warned target (the response clock's 4h here).
    ("4h before", "A warning 4h before due would come before the first response clock starts (its target is 4h): "
                  "use less than 4h."),
])
def test_warning_messages(session, text, message):
    assert errors_of(form(warnings=text, resolution="2d")) == {"warnings": message}


def test_warnings_read_and_written_back(session):
    assert sla_rules.parse_warnings("50% ; 1h 30m before due, 2h before") == [
        {"percent": 50}, {"minutes_before": 90}, {"minutes_before": 120}]
    assert sla_rules.format_warnings([{"percent": 50}, {"minutes_before": 90}]) == "50%, 1h 30m before"
    assert sla_rules.parse_warnings([{"percent": 75}]) == [{"percent": 75}]
    assert sla_rules.validate_rule(form(response="1h", resolution="1d", warnings="45m before"))["warnings"] == [
        {"minutes_before": 45}]


def test_pause_statuses(session):
    assert errors_of(form(pause_statuses=["new"]))["pause_statuses"] == (
        "The clocks of a new ticket always run: leave New out.")
    assert errors_of(form(pause_statuses=["sleeping"]))["pause_statuses"] == "Unknown status 'sleeping'."
    assert sla_rules.PAUSABLE_STATUSES == ("open", "pending", "on_hold")


def test_form_values_round_trip(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form(response="4h 30m", resolution="2d",
                                                              warnings="80%, 30m before"))
    shown = sla_rules.form_values(rule)
    assert shown["response"] == "4h 30m" and shown["resolution"] == "2d" and shown["next_reply"] == ""
    assert shown["warnings"] == "80%, 30m before"
    assert sla_rules.validate_rule(shown)["resolution_minutes"] == 2880


# --- order and activation ---------------------------------------------------------------------

def names(rules) -> list[str]:
    return [r.name for r in rules]


def test_new_rules_go_to_the_end_of_their_entity(session, world):
    for name in ("A", "B", "C"):
        sla_rules.create_rule(session, world["acme"], form(name=name))
    sla_rules.create_rule(session, world["billing"], form(name="Own"))
    assert names(sla_rules.rules_of(session, world["acme"])) == ["A", "B", "C"]
    assert [(e.name, depth, names(rs)) for e, depth, rs in sla_rules.rules_by_entity(session)] == [
        ("Acme", 0, ["A", "B", "C"]), ("Acme Billing", 1, ["Own"]), ("Globex", 0, [])]


def test_reorder_and_move(session, world):
    a, b, c = (sla_rules.create_rule(session, world["acme"], form(name=n)) for n in "ABC")
    assert names(sla_rules.reorder(session, world["acme"], [c.id, a.id, b.id])) == ["C", "A", "B"]
    assert names(sla_rules.rules_of(session, world["acme"])) == ["C", "A", "B"]
    sla_rules.move(session, b, -1)
    assert names(sla_rules.rules_of(session, world["acme"])) == ["C", "B", "A"]
    sla_rules.move(session, c, -1)  # already first: nothing changes
    sla_rules.move(session, a, 1)  # already last
    assert names(sla_rules.rules_of(session, world["acme"])) == ["C", "B", "A"]


def test_reorder_must_list_exactly_the_entitys_rules(session, world):
    a, b = (sla_rules.create_rule(session, world["acme"], form(name=n)) for n in "AB")
    other = sla_rules.create_rule(session, world["billing"], form(name="Other"))
    message = "The new order must list each of Acme's rules exactly once: reload the page and try again."
    for ids in ([a.id], [a.id, b.id, other.id], [a.id, a.id], [b.id, other.id], ["x", a.id]):
        with pytest.raises(DomainError) as caught:
            sla_rules.reorder(session, world["acme"], ids)
        assert caught.value.errors == {"": message}
    assert names(sla_rules.rules_of(session, world["acme"])) == ["A", "B"]


def test_deactivating_gives_tickets_the_next_matching_rule(session, world):
    first = sla_rules.create_rule(session, world["acme"], form(name="First", response="1h"))
    sla_rules.create_rule(session, world["acme"], form(name="Second", response="2h"))
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    assert ticket.sla_rule.name == "First"
    with clock.freeze(ny(2026, 11, 24, 9, 10)):
        sla_rules.deactivate(session, first)
    assert not first.is_active and ticket.sla_rule.name == "Second"
    assert ticket.sla_response_due == ny(2026, 11, 24, 11, 0)
    with clock.freeze(ny(2026, 11, 24, 9, 20)):
        sla_rules.activate(session, first)
    assert ticket.sla_rule.name == "First" and ticket.sla_response_due == ny(2026, 11, 24, 10, 0)


def test_moving_a_rule_first_makes_it_win(session, world):
    sla_rules.create_rule(session, world["acme"], form(name="Slow", response="8h"))
    fast = sla_rules.create_rule(session, world["acme"], form(name="Fast", response="1h"))
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    assert ticket.sla_rule.name == "Slow"
    sla_rules.move(session, fast, -1, now=ny(2026, 11, 24, 9, 5))
    assert ticket.sla_rule.name == "Fast" and ticket.sla_response_due == ny(2026, 11, 24, 10, 0)


# --- re-timing --------------------------------------------------------------------------------

def test_editing_a_rule_retimes_open_tickets_and_leaves_resolved_ones(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form(response="", resolution="8h"))
    open_one = open_ticket(world, ny(2026, 11, 24, 9, 0))
    elsewhere = open_ticket(world, ny(2026, 11, 24, 9, 0), entity=world["globex"])
    done = open_ticket(world, ny(2026, 11, 24, 9, 0))
    tickets.change_status(session, done, "resolved", actor=world["agent"], now=ny(2026, 11, 24, 10, 0))
    assert open_one.sla_resolution_due == done.sla_resolution_due == ny(2026, 11, 24, 17, 0)

    sla_rules.update_rule(session, rule, form(response="", resolution="16h"), now=ny(2026, 11, 24, 11, 0))
    assert open_one.sla_resolution_due == ny(2026, 11, 25, 17, 0)  # a department's ticket, re-timed
    assert done.sla_resolution_due == ny(2026, 11, 24, 17, 0)  # resolved: untouched
    assert elsewhere.sla_rule is None


def test_moving_a_rule_to_another_entity_retimes_both(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form(response="1h"))
    sla_rules.create_rule(session, world["globex"], form(name="Globex first"))
    acme_ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    globex_ticket = open_ticket(world, ny(2026, 11, 24, 9, 0), entity=world["globex"])
    assert acme_ticket.sla_rule is rule and globex_ticket.sla_rule.name == "Globex first"
    sla_rules.update_rule(session, rule, form(response="1h"), entity=world["globex"], now=ny(2026, 11, 24, 9, 5))
    assert rule.entity_id == world["globex"].id
    assert names(sla_rules.rules_of(session, world["globex"])) == ["Globex first", "Standard"]  # at the end
    assert acme_ticket.sla_rule is None and acme_ticket.sla_response_due is None


def test_a_tightened_rule_causes_no_storm_of_overdue_events(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form(response="", resolution="8h",
                                                              warnings="50%, 1h before"))
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    edit_at = ny(2026, 11, 24, 14, 0)  # 5h used: the 50% warning (13:00) fired; 1h before (16:00) not yet
    result = sla_tick.tick(session, now=edit_at)
    assert [p for _, _, p in result.fired] == ["warning:50%"]

    # Tightened to 4h: due 13:00, warnings 11:00 and 12:00 - all in the past now.
    with clock.freeze(edit_at):
        sla_rules.update_rule(session, rule, form(response="", resolution="4h", warnings="50%, 1h before"))
    session.commit()
    assert ticket.sla_resolution_due == ny(2026, 11, 24, 13, 0) and ticket.sla_resolution_breached
    before = session.scalar(select(TicketEvent.id).order_by(TicketEvent.id.desc()))
    assert sla_tick.tick(session, now=edit_at + timedelta(minutes=1)).fired == []
    new_events = session.scalars(select(TicketEvent.event).where(TicketEvent.id > before)).all()
    assert not [e for e in new_events if e.startswith("sla_breach")]
    suppressed = session.scalars(select(SlaFiring.point).where(SlaFiring.ticket_id == ticket.id,
                                                               SlaFiring.suppressed.is_(True))).all()
    assert sorted(suppressed) == ["breach", "warning:60m"]
    assert ticket.sla_next_check_at is None  # nothing left to fire on this clock


def test_a_loosened_rule_fires_its_points_later_as_usual(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form(response="", resolution="2h", warnings=""))
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    sla_rules.update_rule(session, rule, form(response="", resolution="4h", warnings=""), now=ny(2026, 11, 24, 10, 0))
    session.commit()
    assert sla_tick.tick(session, now=ny(2026, 11, 24, 11, 30)).fired == []
    assert sla_tick.tick(session, now=ny(2026, 11, 24, 13, 0)).fired == [(ticket.id, "resolution", "breach")]


def test_changing_pause_statuses_pauses_or_resumes_from_now(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form(response="", resolution="8h"))
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    tickets.change_status(session, ticket, "on_hold", actor=world["agent"], now=ny(2026, 11, 24, 10, 0))
    assert ticket.sla_resolution_due == ny(2026, 11, 24, 17, 0)  # on hold does not pause under this rule

    sla_rules.update_rule(session, rule, form(response="", resolution="8h", pause_statuses=["pending", "on_hold"]),
                          now=ny(2026, 11, 24, 11, 0))
    assert ticket.sla_resolution_due is None  # paused from the edit on, not from 10:00
    sla_rules.update_rule(session, rule, form(response="", resolution="8h"), now=ny(2026, 11, 24, 12, 0))
    assert ticket.sla_resolution_due == ny(2026, 11, 25, 10, 0)  # the hour paused moves it by one hour
    pauses = session.execute(select(SlaPause.started_at, SlaPause.ended_at)
                             .where(SlaPause.ticket_id == ticket.id)).all()
    assert [tuple(p) for p in pauses] == [(ny(2026, 11, 24, 11, 0), ny(2026, 11, 24, 12, 0))]
    tickets.change_status(session, ticket, "open", actor=world["agent"], now=ny(2026, 11, 24, 13, 0))
    assert ticket.sla_resolution_due == ny(2026, 11, 25, 10, 0)


def test_retiming_runs_in_batches(session, world):
    sla_rules.create_rule(session, world["acme"], form(response="1h"))
    many = [open_ticket(world, ny(2026, 11, 24, 9, 0)) for _ in range(5)]
    rule = sla_rules.rules_of(session, world["acme"])[0]
    rule.response_minutes = 120
    assert sla.retime_entities(session, [world["acme"].id], ny(2026, 11, 24, 9, 30), batch_size=2) == 5
    assert {t.sla_response_due for t in many} == {ny(2026, 11, 24, 11, 0)}


# --- test mode --------------------------------------------------------------------------------

def test_friday_1655_with_4h_is_due_monday_1255_new_york(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form(response="4h", resolution="2d"))
    ticket = open_ticket(world, ny(2026, 11, 27, 16, 55))  # a Friday
    result = sla_test_mode.test_against_ticket(session, rule, ticket, ny(2026, 11, 27, 17, 30))
    assert result.applies is rule and result.matches and result.in_scope and not result.draft
    assert result.explain is None and result.timezone == "America/New_York"
    response, resolution = result.clocks
    assert (response.name, response.state, response.label) == ("response", "due", "First response")
    assert response.due == ny(2026, 11, 30, 12, 55)
    assert response.due.astimezone(UTC) == datetime(2026, 11, 30, 17, 55, tzinfo=UTC)
    assert resolution.due == ny(2026, 12, 7, 16, 55)  # 48 business hours: 5m + five 8h days + 7h55m


def test_testing_form_values_explains_each_condition(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form(name="Standard"))
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0), subject="Refund please", priority="high")
    conditions = ('{"all": [{"field": "subject", "op": "contains", "value": "refund"},'
                  ' {"field": "customer.domain", "op": "is", "value": "vip.example"}]}')
    result = sla_test_mode.test_against_ticket(session, form(conditions=conditions, response="1h"), ticket,
                                           ny(2026, 11, 24, 9, 30), editing=rule)
    assert result.draft and result.priority_matches and not result.matches
    assert result.applies is rule and result.would_apply is None
    leaves = result.explain["children"]
    assert [(c["field"], c["result"]) for c in leaves] == [("subject", True), ("customer.domain", False)]
    assert leaves[0]["actual"] == "Refund please" and leaves[1]["actual"] == "example.com"
    assert result.clocks[0].due == ny(2026, 11, 24, 10, 0)  # the edited 1h target
    assert rule.response_minutes == 240 and rule in session and result.rule not in session  # nothing saved


def test_a_matching_rule_behind_an_earlier_one_is_reported(session, world):
    sla_rules.create_rule(session, world["billing"], form(name="Billing", response="2h"))
    parent = sla_rules.create_rule(session, world["acme"], form(name="Parent", response="8h"))
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    result = sla_test_mode.test_against_ticket(session, parent, ticket, ny(2026, 11, 24, 9, 0))
    assert result.matches and result.applies.name == "Billing"
    urgent_only = sla_test_mode.test_against_ticket(session, form(name="Parent", priority="urgent"), ticket,
                                                ny(2026, 11, 24, 9, 0), editing=parent)
    assert not urgent_only.priority_matches and urgent_only.would_apply.name == "Billing"


def test_invalid_form_values_test_the_saved_rule(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form())
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    result = sla_test_mode.test_against_ticket(session, form(response="whenever"), ticket, ny(2026, 11, 24, 9, 0),
                                           editing=rule)
    assert result.rule is rule and not result.draft and "response" in result.errors
    assert result.clocks[0].due == ny(2026, 11, 24, 13, 0)


def test_a_ticket_outside_the_rules_entity_is_out_of_scope(session, world):
    rule = sla_rules.create_rule(session, world["billing"], form())
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0), entity=world["acme"])  # the parent: not below Billing
    result = sla_test_mode.test_against_ticket(session, rule, ticket, ny(2026, 11, 24, 9, 0))
    assert not result.in_scope and result.applies is None


def test_clock_states_met_paused_and_waiting(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form(response="1h", next_reply="2h", resolution="8h"))
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    tickets.add_reply(session, ticket, actor=world["agent"], body="Hi", now=ny(2026, 11, 24, 9, 30))
    tickets.change_status(session, ticket, "pending", actor=world["agent"], now=ny(2026, 11, 24, 10, 0))
    result = sla_test_mode.test_against_ticket(session, rule, ticket, ny(2026, 11, 24, 11, 0))
    states = {c.name: c for c in result.clocks}
    assert states["response"].state == "met" and states["response"].stopped_at == ny(2026, 11, 24, 9, 30)
    assert states["next_reply"].state == "waiting"
    assert states["resolution"].state == "paused" and states["resolution"].left == timedelta(hours=7)


def test_naive_now_is_refused(session, world):
    rule = sla_rules.create_rule(session, world["acme"], form())
    ticket = open_ticket(world, ny(2026, 11, 24, 9, 0))
    with pytest.raises(ValueError):
        sla_test_mode.test_against_ticket(session, rule, ticket, datetime(2026, 11, 24, 10, 0))


def test_conditions_in_words(session):
    tree = {"all": [{"field": "priority", "op": "in", "value": ["high", "urgent"]},
                    {"any": [{"field": "subject", "op": "contains", "value": "refund"},
                             {"field": "assignee.email", "op": "is_empty"}]}]}
    assert sla_rules.describe_conditions(tree) == (
        "Priority is one of high, urgent and (Subject contains refund or Assignee email is empty)")
    assert sla_rules.describe_conditions(None) == ""
