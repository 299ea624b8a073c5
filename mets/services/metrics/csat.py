"""Customer satisfaction: the survey after each resolution, its answer, and the dashboard's CSAT figures.

Timing follows the escalation pattern: resolving a ticket sets `tickets.csat_due_at` (CSAT_SURVEY_DELAY_HOURS of the
entity's business hours later, 24 by default), reopening it clears it, and the minute tick (`tick`, on the SLA tick's
`tick` event) reads only tickets whose instant has passed (an index; SKIP LOCKED on PostgreSQL). Sending inserts the
`csat_responses` row with ON CONFLICT DO NOTHING on (ticket, resolved_at), and mails only when the row is new: one
survey per resolution, however many ticks run. The mail (template `csat-survey`) carries one signed link per score;
the link opens a form with that score preselected, and only its POST records (mail scanners follow links). The answer
can be changed through the same link until the row's `expires_at`; each answer keeps the assignee of that moment.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from mets import clock, events, transaction
from mets.models import Ticket
from mets.models.csat import MAX_COMMENT, SCORES, CsatResponse
from mets.services import outbox
from mets.services.directory import access, portal_auth, portal_mail
from mets.services.errors import DomainError
from mets.services.hours import calendar_for
from mets.services.metrics.recorder import MUTED
from mets.services.notifications import templates as mail_templates
from mets.services.notifications import variables as mail_variables
from mets.services.sla import tick as sla_tick
from mets.services.validation import normalize_email

log = logging.getLogger("mets.csat")
FINISHED = ("resolved", "closed")
TEMPLATE = "csat-survey"
DEFAULT_DELAY_HOURS = 24
DEFAULT_LINK_MAX_AGE = 14 * 24 * 3600


def _config(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


# --- keeping the due instant ---------------------------------------------------------------------------------

def due_after(session, ticket: Ticket, resolved_at: datetime) -> datetime:
    """When the survey of a resolution at `resolved_at` is due: the delay in the entity's business hours (calendar
    time if the entity has no open hours at all)."""
    delay = timedelta(hours=_config("CSAT_SURVEY_DELAY_HOURS", DEFAULT_DELAY_HOURS))
    try:
        return calendar_for(session, ticket.entity).add(resolved_at, delay)
    except ValueError:
        return resolved_at + delay


def ticket_changed(session, change, actor, now: datetime) -> None:
    """Resolving schedules the survey; reopening before it is sent cancels it."""
    if transaction.is_muted(session, MUTED):
        return
    ticket = change.ticket
    for event in change.events:
        if event.event != "status_changed":
            continue
        old, new = ((event.changes or {}).get("status") or [None, None])[:2]
        if new in FINISHED and old not in FINISHED:
            ticket.csat_due_at = due_after(session, ticket, ticket.resolved_at or event.at)
        elif new not in FINISHED:
            ticket.csat_due_at = None


# --- sending ---------------------------------------------------------------------------------------------------

def tick(session, now: datetime | None = None, batch_size: int = 200) -> list[int]:
    """Send every survey due at `now` (commits after each batch); returns the ids of the surveys sent."""
    now = now or clock.now()
    sent: list[int] = []
    for batch in sla_tick.due_batches(session, Ticket.csat_due_at, now, batch_size,
                                      selectinload(Ticket.entity), selectinload(Ticket.customer)):
        for ticket in batch:
            ticket.csat_due_at = None  # done, whatever happens: a survey is never retried into a storm
            try:
                with session.begin_nested():
                    row_id = send(session, ticket, now)
            except Exception:  # one ticket's survey never stops the others'
                log.exception("ticket %s: satisfaction survey not sent", ticket.number)
                continue
            if row_id is not None:
                sent.append(row_id)
    return sent


def send(session, ticket: Ticket, now: datetime) -> int | None:
    """Write the survey row of the ticket's current resolution and queue its mail; None if it was sent before,
    the ticket is open again, or its customer cannot receive it."""
    customer = ticket.customer
    if ticket.status not in FINISHED or ticket.resolved_at is None or customer is None or not customer.active \
            or not customer.email:
        return None
    max_age = _config("CSAT_LINK_MAX_AGE", DEFAULT_LINK_MAX_AGE)
    values = {"ticket_id": ticket.id, "resolved_at": ticket.resolved_at, "entity_id": ticket.entity_id,
              "customer_id": customer.id, "priority": ticket.priority, "sent_at": now,
              "expires_at": now + timedelta(seconds=max_age), "comment": "",
              "agent_id": ticket.assignee_id}  # the assignee when it was sent, until an answer records its own
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(CsatResponse.__table__).values(**values)
                 .on_conflict_do_nothing(index_elements=["ticket_id", "resolved_at"]).returning(CsatResponse.id))
    row_id = session.execute(statement).scalar()
    if row_id is None:
        return None
    variables = survey_variables(ticket, survey_token(row_id, customer.email), now)
    rendered = mail_templates.render(session, ticket.entity, TEMPLATE, variables)
    outbox.queue_message(
        session, to=customer.email, name=customer.name, subject=rendered.subject, text=rendered.text,
        html=rendered.html, audience="customer", entity=ticket.entity, ticket=ticket, event_name="csat_survey",
        template_name=TEMPLATE, template_data={k: v for k, v in variables.items()  # links are credentials: not kept
                                               if not k.endswith(("_url", "_html")) and not k.startswith("survey_url")},
        dedupe_key=f"csat:{row_id}", now=now)
    return row_id


def survey_token(row_id: int, email: str) -> str:
    return portal_auth.make_survey_token(current_app.config["SECRET_KEY"], row_id, email)


def survey_variables(ticket: Ticket, token: str, now: datetime) -> dict:
    """The template's values: every customer mail's (the ticket's, the customer's) and the survey links."""
    customer = ticket.customer
    values = mail_templates.variables_for(ticket, audience="customer", recipient_name=customer.name or "",
                                          recipient_email=customer.email, now=now)
    values.update(mail_variables.survey_values(portal_mail.absolute_url("portal.survey", token=token)))
    return values


# --- answering -------------------------------------------------------------------------------------------------

@dataclass
class Survey:
    response: CsatResponse | None = None
    error: str | None = None  # "invalid" or "expired"


def open_survey(session, token: str, now: datetime) -> Survey:
    """The survey row a link opens, or why it does not: a bad signature, another customer's address, a row that
    is gone, or a link past its row's `expires_at` (and, for defence, the token's own age)."""
    max_age = _config("CSAT_LINK_MAX_AGE", DEFAULT_LINK_MAX_AGE)
    loaded = portal_auth.load_survey_token(current_app.config["SECRET_KEY"], token, max_age)
    if isinstance(loaded, str):
        return Survey(error=loaded)
    row_id, email = loaded
    response = session.get(CsatResponse, row_id)
    if response is None or response.customer is None or normalize_email(response.customer.email) != email \
            or response.ticket.customer_id != response.customer_id:
        return Survey(error="invalid")
    if now >= response.expires_at:
        return Survey(response=response, error="expired")
    return Survey(response=response)


def answer(session, response: CsatResponse, score, comment: str | None, now: datetime) -> CsatResponse:
    """Record (or change) the customer's answer; the ticket's assignee now is kept with it."""
    if now >= response.expires_at:
        raise DomainError({"": "This survey link has expired."})
    if score not in SCORES:
        raise DomainError({"score": "Pick a score from 1 to 5."})
    comment = (comment or "").replace("\r\n", "\n")
    if len(comment) > MAX_COMMENT:
        raise DomainError({"comment": f"The comment is at most {MAX_COMMENT} characters."})
    response.score = score
    response.comment = comment
    response.answered_at = now
    response.agent_id = response.ticket.assignee_id
    session.flush()
    events.emit(events.CSAT_ANSWERED, session, response, now)  # webhooks' csat.answered, in this transaction
    return response


# --- the dashboard's figures -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figures:
    sent: int
    answered: int
    satisfied: int  # answers of 4 or 5
    mean: float | None

    @property
    def score_percent(self) -> float | None:
        """CSAT: the share of answers that are 4 or 5."""
        return 100.0 * self.satisfied / self.answered if self.answered else None

    @property
    def response_rate(self) -> float | None:
        return 100.0 * self.answered / self.sent if self.sent else None


def figures(session, user, entity_ids, since: datetime, until: datetime, priority: str = "",
            agent_id: int | None = None) -> Figures:
    """Surveys sent in [since, until) and their answers, in the entities asked (None: all) that `user` may see,
    narrowed by the priority the ticket had and the agent who was assigned when the customer rated."""
    visible = access.visible_entity_ids(session, user)  # None: all (admins); customers: none
    conditions = [CsatResponse.sent_at >= since, CsatResponse.sent_at < until]
    for ids in (visible, None if entity_ids is None else set(entity_ids)):
        if ids is not None:
            conditions.append(CsatResponse.entity_id.in_(sorted(ids)) if ids else CsatResponse.id.is_(None))
    if priority:
        conditions.append(CsatResponse.priority == priority)
    if agent_id is not None:
        conditions.append(CsatResponse.agent_id == agent_id)
    row = session.execute(select(
        func.count(CsatResponse.id), func.count(CsatResponse.score),
        func.coalesce(func.sum(case((CsatResponse.score >= 4, 1), else_=0)), 0),
        func.avg(CsatResponse.score)).where(*conditions)).one()
    return Figures(sent=row[0], answered=row[1], satisfied=int(row[2]),
                   mean=float(row[3]) if row[3] is not None else None)


def dashboard_figures(session, user, scope, agent_id: int | None = None) -> Figures:
    """`figures` for a dashboard `Scope`: its entities and filters (`agent_id`: the agent page's agent), surveys
    sent on its days (the scope's zone's)."""
    f = scope.filters
    since, until = scope.instant(f.since), scope.instant(f.until)
    return figures(session, user, scope.asked, since, until, priority=f.priority,
                   agent_id=agent_id if agent_id is not None else f.agent_id)
