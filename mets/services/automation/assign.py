"""Choosing an agent for a ticket: named, round-robin, least loaded, by skill.

Candidates are always the active staff members of the ticket's entity (or an entity above it,
whose members work its tickets). "Load" is the number of the agent's tickets whose SLA clock is
running (open, not paused: `sla_nearest_due` is set exactly then).
"""
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select

from mets.models import Membership, Ticket, User
from mets.services.directory import access

STRATEGIES = (("agent", "A named agent"), ("round_robin", "Round-robin (who waited longest)"),
              ("least_loaded", "Least loaded"), ("skill", "By skill (ticket category), then least loaded"))
_NEVER = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Pick:
    """The chosen agent (None: nobody fits) and the words test mode and the log show."""

    agent: User | None
    load: int | None
    reason: str

    @property
    def text(self) -> str:
        return f"{self.agent.name} ({self.load} open)" if self.agent is not None else self.reason


def loads(session, user_ids) -> dict[int, int]:
    """Open tickets with a running SLA clock, per agent (0 for none)."""
    ids = list(user_ids)
    counts = dict(session.execute(
        select(Ticket.assignee_id, func.count()).where(Ticket.assignee_id.in_(ids), Ticket.sla_nearest_due.is_not(None))
        .group_by(Ticket.assignee_id)).all()) if ids else {}
    return {i: counts.get(i, 0) for i in ids}


def _skilled(session, ticket: Ticket, candidates: list[User]) -> list[User]:
    """Candidates with the ticket's category among their skills in the ticket's entity or above (any case)."""
    wanted = (ticket.category or "").strip().casefold()
    if not wanted:
        return []
    chain = [e.id for e in access.lineage(session, ticket.entity)]
    rows = session.execute(select(Membership.user_id, Membership.skills).where(
        Membership.entity_id.in_(chain), Membership.user_id.in_([u.id for u in candidates]))).all()
    having = {uid for uid, skills in rows if wanted in {str(s).strip().casefold() for s in skills or ()}}
    return [u for u in candidates if u.id in having]


def pick(session, ticket: Ticket, strategy: str, agent_id: int | None = None) -> Pick:
    """The agent `strategy` gives this ticket now (reads only)."""
    candidates = access.members_of(session, ticket.entity)
    if strategy == "agent":
        chosen = next((u for u in candidates if u.id == agent_id), None)
        if chosen is None:
            return Pick(None, None, "the chosen agent is not an active member of " + ticket.entity.name)
        return Pick(chosen, loads(session, [chosen.id])[chosen.id], "named")
    if strategy == "skill":
        skilled = _skilled(session, ticket, candidates)
        if not skilled:
            what = f"the skill '{ticket.category}'" if ticket.category else "a skill for a ticket without a category"
            return Pick(None, None, f"no active agent of {ticket.entity.name} has {what}")
        candidates = skilled
    if not candidates:
        return Pick(None, None, f"{ticket.entity.name} has no active agents")
    load = loads(session, [u.id for u in candidates])
    waited = lambda u: (u.last_assigned_at or _NEVER, u.id)  # noqa: E731
    if strategy == "round_robin":
        chosen = min(candidates, key=waited)
    else:  # least loaded (also among the skilled); ties go to whoever waited longest
        chosen = min(candidates, key=lambda u: (load[u.id], *waited(u)))
    return Pick(chosen, load[chosen.id], strategy)
