"""Satisfaction surveys: when they are due, sent once per resolution, cancelled by a reopen; answers; the figures.

Acme runs the default hours (Monday to Friday, 09:00-17:00, America/New_York). 2026-11-27 is a Friday.
"""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import CsatResponse, QueuedEmail
from mets.services import tickets
from mets.services.sla import tick as sla_tick
from mets.services.errors import DomainError
from mets.services.metrics import csat
from tests.factories import make_customer, make_entity, make_staff, make_ticket, ny

RESOLVED = ny(2026, 11, 27, 16, 0)  # Friday, an hour before closing
# 24 business hours: Friday 16-17 (1), Monday (8), Tuesday (8), Wednesday 09-16 (7).
DUE = ny(2026, 12, 2, 16, 0)


@pytest.fixture
def world(session):
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    agent = make_staff(acme, name="Dana")
    customer = make_customer("Jane Cooper", "jane@example.com")
    ticket = make_ticket(acme, customer=customer, subject="Cannot download my invoice", now=ny(2026, 11, 27, 9, 0))
    tickets.assign(session, ticket, agent, actor=agent, now=ny(2026, 11, 27, 9, 30))
    return {"acme": acme, "agent": agent, "customer": customer, "ticket": ticket}


def resolve(session, ticket, who, at):
    with clock.freeze(at):
        tickets.change_status(session, ticket, "resolved", actor=who, now=at)
    session.flush()


def surveys(session, ticket) -> list[CsatResponse]:
    session.expire_all()
    return list(session.scalars(select(CsatResponse).where(CsatResponse.ticket_id == ticket.id)
                                .order_by(CsatResponse.id)))


def survey_mails(session, ticket) -> list[QueuedEmail]:
    return list(session.scalars(select(QueuedEmail).where(QueuedEmail.ticket_id == ticket.id,
                                                          QueuedEmail.template_name == "csat-survey")
                                .order_by(QueuedEmail.id)))


def test_the_survey_is_due_24_business_hours_after_resolving_across_a_weekend(session, world):
    ticket = world["ticket"]
    resolve(session, ticket, world["agent"], RESOLVED)
    assert ticket.csat_due_at == DUE

    assert csat.tick(session, DUE - timedelta(seconds=1)) == []  # Wednesday 15:59:59: not yet
    assert surveys(session, ticket) == [] and survey_mails(session, ticket) == []

    sent = csat.tick(session, DUE)
    [row] = surveys(session, ticket)
    assert sent == [row.id]
    assert row.sent_at == DUE and row.resolved_at == RESOLVED and row.score is None
    assert row.expires_at == DUE + timedelta(days=14)
    [mail] = survey_mails(session, ticket)
    assert mail.recipient_email == "jane@example.com" and mail.audience == "customer"
    assert ticket.number in mail.subject and "Cannot download my invoice" in mail.subject
    assert "Hello Jane Cooper" in mail.body
    for score in range(1, 6):
        assert "http://mets.test/portal/survey/" in mail.body and f"?score={score}" in mail.body
        assert f"?score={score}" in mail.body_html
    assert "survey_url" not in str(mail.template_data)  # the links are credentials: not kept in the data
    assert session.get(type(ticket), ticket.id).csat_due_at is None


def test_the_minute_tick_sends_it_once(session, world):
    ticket = world["ticket"]
    resolve(session, ticket, world["agent"], RESOLVED)
    sla_tick.tick(session, DUE + timedelta(minutes=1))  # the SLA tick's `tick` event runs csat's
    assert len(surveys(session, ticket)) == 1
    sla_tick.tick(session, DUE + timedelta(minutes=2))
    ticket.csat_due_at = DUE  # even a due instant left behind (two ticks at once) sends no second survey
    session.flush()
    assert csat.tick(session, DUE + timedelta(minutes=3)) == []
    assert len(surveys(session, ticket)) == 1 and len(survey_mails(session, ticket)) == 1


def test_a_reopen_before_it_is_due_cancels_it(session, world):
    ticket, customer = world["ticket"], world["customer"]
    resolve(session, ticket, world["agent"], RESOLVED)
    tickets.add_reply(session, ticket, actor=customer, body="Still broken.", now=ny(2026, 11, 30, 10, 0))
    assert ticket.status not in ("resolved", "closed") and ticket.csat_due_at is None
    assert csat.tick(session, DUE + timedelta(days=7)) == []
    assert surveys(session, ticket) == [] and survey_mails(session, ticket) == []


def test_a_reopen_then_a_new_resolution_gives_a_new_survey_and_a_second_answer(session, world):
    ticket, customer, agent = world["ticket"], world["customer"], world["agent"]
    resolve(session, ticket, agent, RESOLVED)
    csat.tick(session, DUE)
    [first] = surveys(session, ticket)
    csat.answer(session, first, 2, "Slow.", DUE + timedelta(hours=1))

    tickets.add_reply(session, ticket, actor=customer, body="It broke again.", now=ny(2026, 12, 3, 10, 0))
    second_resolution = ny(2026, 12, 3, 11, 0)  # Thursday: + 24 business hours is Tuesday 11:00
    resolve(session, ticket, agent, second_resolution)
    assert ticket.csat_due_at == ny(2026, 12, 8, 11, 0)
    csat.tick(session, ny(2026, 12, 8, 11, 0))
    first, second = surveys(session, ticket)
    assert second.resolved_at == second_resolution and second.score is None
    csat.answer(session, second, 5, "", ny(2026, 12, 8, 12, 0))
    first, second = surveys(session, ticket)
    assert (first.score, first.comment, second.score) == (2, "Slow.", 5)
    assert len(survey_mails(session, ticket)) == 2


def test_an_answer_keeps_the_assignee_at_rating_time_and_a_second_answer_edits_it(session, world):
    ticket, agent = world["ticket"], world["agent"]
    resolve(session, ticket, agent, RESOLVED)
    csat.tick(session, DUE)
    [row] = surveys(session, ticket)
    assert row.agent_id == agent.id  # the assignee when sent, until an answer records its own

    other = make_staff(world["acme"], name="Eli")
    tickets.assign(session, ticket, other, actor=agent, now=DUE + timedelta(minutes=5))
    csat.answer(session, row, 4, "Thanks", DUE + timedelta(minutes=10))
    [row] = surveys(session, ticket)
    assert (row.score, row.comment, row.agent_id) == (4, "Thanks", other.id)
    assert row.answered_at == DUE + timedelta(minutes=10)

    csat.answer(session, row, 1, "Changed my mind", DUE + timedelta(days=1))
    [row] = surveys(session, ticket)
    assert (row.score, row.comment) == (1, "Changed my mind")


def test_an_answer_is_refused_past_the_expiry_or_out_of_range(session, world):
    ticket = world["ticket"]
    resolve(session, ticket, world["agent"], RESOLVED)
    csat.tick(session, DUE)
    [row] = surveys(session, ticket)
    for bad in (0, 6, None, "4"):
        with pytest.raises(DomainError):
            csat.answer(session, row, bad, "", DUE)
    with pytest.raises(DomainError, match="expired"):
        csat.answer(session, row, 5, "", row.expires_at)
    assert surveys(session, ticket)[0].score is None


# --- the dashboard's figures -------------------------------------------------------------------------------

def _row(session, ticket, sent_at, score=None, agent=None, **kw):
    row = CsatResponse(ticket_id=ticket.id, resolved_at=sent_at - timedelta(days=1), entity_id=ticket.entity_id,
                       customer_id=ticket.customer_id, priority=kw.get("priority", ticket.priority), sent_at=sent_at,
                       expires_at=sent_at + timedelta(days=14), score=score, comment="",
                       answered_at=sent_at if score else None, agent_id=agent.id if agent else None)
    session.add(row)
    session.flush()
    return row


def test_figures_by_hand(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    admin = make_staff(name="Ada", is_admin=True)
    manager = make_staff(acme, role="manager", name="Maria")
    dana, eli = make_staff(acme, name="Dana"), make_staff(acme, name="Eli")
    day = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
    a, b, g = make_ticket(acme), make_ticket(billing, priority="high"), make_ticket(globex)
    # Acme: sent 4 in the period, answered 5, 4, 2 (2 of 3 satisfied, mean 11/3); one outside the period.
    for n, (ticket, score, agent) in enumerate([(a, 5, dana), (a, 4, eli), (b, 2, dana), (b, None, dana)]):
        _row(session, ticket, day + timedelta(hours=n), score, agent)
    _row(session, a, day - timedelta(days=40), 1, dana)  # before the period
    _row(session, g, day, 1, None)  # Globex: the manager never sees it

    since, until = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc)
    mine = csat.figures(session, manager, None, since, until)
    assert (mine.sent, mine.answered, mine.satisfied) == (4, 3, 2)
    assert mine.score_percent == pytest.approx(200 / 3) and mine.mean == pytest.approx(11 / 3)
    assert mine.response_rate == pytest.approx(75.0)

    everyone = csat.figures(session, admin, None, since, until)
    assert (everyone.sent, everyone.answered, everyone.satisfied) == (5, 4, 2)
    assert everyone.mean == pytest.approx(12 / 4)

    billing_only = csat.figures(session, admin, [billing.id], since, until)
    assert (billing_only.sent, billing_only.answered, billing_only.mean) == (2, 1, 2.0)
    assert billing_only.score_percent == 0.0 and billing_only.response_rate == 50.0
    high = csat.figures(session, manager, None, since, until, priority="high")
    assert (high.sent, high.answered) == (2, 1)
    by_dana = csat.figures(session, admin, None, since, until, agent_id=dana.id)
    assert (by_dana.sent, by_dana.answered, by_dana.satisfied) == (3, 2, 1)

    nothing = csat.figures(session, make_customer(), None, since, until)
    assert (nothing.sent, nothing.score_percent, nothing.response_rate, nothing.mean) == (0, None, None, None)
    assert csat.figures(session, manager, [globex.id], since, until).sent == 0  # asked, but not theirs
