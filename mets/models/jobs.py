"""Liveness of the periodic jobs: one row per job, written by `mets.jobs.periodic` around every run."""
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mets.extensions import db
from mets.models.types import UTCDateTime


class JobRun(db.Model):
    """When a periodic job (`jobs.PERIODIC`) last started, last succeeded and last failed, and why."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Kept after later successes: the operator sees the last error and when it happened.
    last_error: Mapped[str | None] = mapped_column(Text)
