"""The `snapshot` fixture: a module's tests share rows built once, and each starts from exactly those rows."""
import pytest

from mets.models import Entity
from tests.conftest import count_rows
from tests.factories import make_entity


def _build():
    acme = make_entity("Acme", "acme")
    return {"acme": acme.id}


@pytest.mark.parametrize("attempt", range(3))
def test_each_test_starts_from_the_snapshot_and_leaves_nothing(session, snapshot, attempt):
    values = snapshot(_build)
    # What an earlier test of this module committed is gone; the snapshot's rows are there.
    assert [e.slug for e in session.query(Entity)] == ["acme"]
    assert session.get(Entity, values["acme"]).name == "Acme"

    make_entity("Leak", f"leak{attempt}")
    session.commit()
    assert count_rows(session, Entity) == 2


def test_a_second_builder_in_one_module_is_refused(session, snapshot):
    snapshot(_build)
    with pytest.raises(AssertionError, match="one snapshot per module"):
        snapshot(lambda: {})
