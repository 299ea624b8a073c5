"""Business hours per entity: weekly intervals, named holidays and dated exceptions."""
from datetime import date, time

from sqlalchemy import Boolean, Date, ForeignKey, Index, String, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mets.extensions import db


class BusinessHours(db.Model):
    """One open interval on a weekday; end <= start runs past midnight (an overnight shift)."""

    __tablename__ = "business_hours"
    __table_args__ = (Index("ix_business_hours_entity_day", "entity_id", "day_of_week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    day_of_week: Mapped[int]  # Monday=0 .. Sunday=6
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Holiday(db.Model):
    """A closed date (intervals that start on it are dropped)."""

    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("entity_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(200))


class HoursException(db.Model):
    """Special hours on one date, replacing its weekly intervals; no times means closed all day."""

    __tablename__ = "hours_exceptions"
    __table_args__ = (Index("ix_hours_exceptions_entity_date", "entity_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    start_time: Mapped[time | None] = mapped_column(Time)
    end_time: Mapped[time | None] = mapped_column(Time)
    note: Mapped[str | None] = mapped_column(String(200))
