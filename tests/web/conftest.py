"""Fixtures for the web tests."""
import pytest
from sqlalchemy import update

from mets.extensions import db
from mets.models import Entity


@pytest.fixture(autouse=True)
def _detach_departments(app):
    """Unlink departments from their parents before the shared teardown empties the tables.

    tests/conftest.py empties SQLite with one DELETE per table, and `entities.parent_id` is
    ON DELETE RESTRICT, which SQLite checks row by row: a parent deleted before its child fails.
    """
    yield
    db.session.rollback()
    db.session.execute(update(Entity).values(parent_id=None))
    db.session.commit()
