"""Escalation: policies (per entity, conditions, the clock they watch), their ordered levels, and the
record of every level fired (automatically by the tick or by hand)."""
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mets import clock as time_source  # (policies have a column named clock)
from mets.extensions import db
from mets.models.types import UTCDateTime

# The clocks a policy can watch: three SLA clocks (their targets come from the ticket's SLA rule) and two
# plain durations.
POLICY_CLOCKS = ("response", "next_reply", "resolution", "since_created", "since_customer_message")
# When a level fires: at a percent of the SLA target, some minutes before or after its breach, or some
# minutes after the clock started.
TRIGGERS = ("percent", "before_breach", "after_breach", "after_duration")


class EscalationPolicy(db.Model):
    __tablename__ = "escalation_policies"
    __table_args__ = (Index("ix_escalation_policies_entity_position", "entity_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    conditions: Mapped[dict | None] = mapped_column(JSON)  # the rule language (services/rules)
    clock: Mapped[str] = mapped_column(String(30), default="resolution")
    business_time: Mapped[bool] = mapped_column(Boolean, default=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # order within the entity: first match wins
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=time_source.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=time_source.now, onupdate=time_source.now)

    entity = relationship("Entity")
    levels: Mapped[list["EscalationLevel"]] = relationship(
        back_populates="policy", order_by="EscalationLevel.position, EscalationLevel.id", cascade="all, delete-orphan")

    def __repr__(self):
        return f"<EscalationPolicy {self.id} {self.name!r}>"


class EscalationLevel(db.Model):
    __tablename__ = "escalation_levels"
    __table_args__ = (Index("ix_escalation_levels_policy_position", "policy_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("escalation_policies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)  # level numbers are 1, 2, ... in this order
    trigger: Mapped[str] = mapped_column(String(20))  # TRIGGERS
    value: Mapped[int] = mapped_column(Integer)  # percent (percent) or minutes (the others)
    actions: Mapped[list] = mapped_column(JSON, default=list)  # [{"type": "notify", "to": ["managers"]}, ...]

    policy: Mapped[EscalationPolicy] = relationship(back_populates="levels")


class EscalationEvent(db.Model):
    """One level fired for a ticket (the timeline): the unique key makes a level fire once per clock cycle.

    `cycle` names the round of the watched clock ("0" for clocks that run once, the next-reply round, the
    customer message's instant). A manual escalation of a ticket without a policy has no level.
    """

    __tablename__ = "escalation_events"
    __table_args__ = (UniqueConstraint("ticket_id", "level_id", "cycle"),
                      Index("ix_escalation_events_ticket_fired", "ticket_id", "fired_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_policies.id", ondelete="SET NULL"))
    level_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_levels.id", ondelete="SET NULL"))
    level_number: Mapped[int] = mapped_column(Integer)  # the level reached (1, 2, ...)
    policy_name: Mapped[str] = mapped_column(String(200), default="")  # kept when the policy is renamed or removed
    clock: Mapped[str] = mapped_column(String(30), default="")
    cycle: Mapped[str] = mapped_column(String(40), default="0")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))  # manual: who
    ticket_event_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_events.id", ondelete="SET NULL"))
    outcomes: Mapped[list] = mapped_column(JSON, default=list)  # what each action did: [{type, label, result, ok}]
    # A level an SLA rule or calendar edit moved into the past: recorded (never fired later), not escalated.
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)

    actor = relationship("User")
    policy = relationship("EscalationPolicy")


class EscalationNotice(db.Model):
    """A level's mail to one person, held while the desk whose hours it follows is closed (business-time policies).

    Written when the level fires at a closed hour (`held_until`: that entity's next opening); sent at or after
    it by the tick's sender, one digest per recipient for all of theirs that are due, each notice once:
    `sent_at` is set by a conditional UPDATE (still NULL) in the transaction that writes the outbox row.
    `outcome`: "sent", or "dropped" (the ticket was resolved or closed while the notice waited).
    """

    __tablename__ = "escalation_notices"
    __table_args__ = (UniqueConstraint("escalation_event_id", "recipient_email"),
                      Index("ix_escalation_notices_held", "held_until",
                            postgresql_where=text("sent_at IS NULL"), sqlite_where=text("sent_at IS NULL")),
                      Index("ix_escalation_notices_ticket", "ticket_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    escalation_event_id: Mapped[int] = mapped_column(ForeignKey("escalation_events.id", ondelete="CASCADE"))
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))  # whose hours hold it
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recipient_email: Mapped[str] = mapped_column(String(254))
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    level_number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    template_name: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(String(500))  # the single notice, rendered when the level fired
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(200))  # the outbox key the mail would have had at once
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)
    held_until: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))  # "sent", "dropped"
    email_id: Mapped[int | None] = mapped_column(ForeignKey("email_queue.id", ondelete="SET NULL"))

    entity = relationship("Entity")
