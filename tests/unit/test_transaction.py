"""mets.transaction: what lives as long as a transaction (through its savepoints), and what as long as a block."""
import pytest
from sqlalchemy import select

from mets import queueing, transaction
from mets.models import Entity, QueuedEmail, RuleExecution
from tests.conftest import count_rows
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.unit.automation.test_automation_engine import add_rule


@pytest.fixture
def enqueued(monkeypatch) -> list[list[tuple]]:
    """What the mail outbox hands to RQ after each commit (recorded instead)."""
    calls = []
    monkeypatch.setattr(queueing, "enqueue_sends", lambda items: calls.append(list(items)) or len(items))
    return calls


def fail_in_a_savepoint(session) -> None:
    with pytest.raises(RuntimeError):
        with session.begin_nested():
            make_entity()
            raise RuntimeError("undone")


# --- state and cache -------------------------------------------------------------------------------

@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_state_and_cache_end_with_the_transaction_however_it_ends(session, end):
    transaction.state(session)["test.done"] = "queued"
    transaction.cache(session)["test.read"] = "rows"
    getattr(session, end)()
    assert transaction.state(session) == {} and transaction.cache(session) == {}


def test_a_released_savepoint_keeps_the_transactions_state_and_cache(session):
    transaction.state(session)["test.done"] = "queued"
    transaction.cache(session)["test.read"] = "rows"
    with session.begin_nested():
        make_entity()
    assert transaction.state(session) == {"test.done": "queued"}
    assert transaction.cache(session) == {"test.read": "rows"}


def test_a_rolled_back_savepoint_keeps_the_state_and_empties_the_cache(session):
    transaction.state(session)["test.done"] = "queued"
    transaction.cache(session)["test.read"] = "rows"
    fail_in_a_savepoint(session)
    assert transaction.state(session) == {"test.done": "queued"}
    assert transaction.cache(session) == {}


# --- callbacks ------------------------------------------------------------------------------------

def test_commit_callbacks_wait_for_the_real_commit_and_never_run_after_a_rollback(session):
    ran = []
    transaction.after_commit(session, "test.commit", lambda: ran.append("first"))
    transaction.after_commit(session, "test.commit", lambda: ran.append("again"))  # once per key
    with session.begin_nested():
        make_entity()
    fail_in_a_savepoint(session)
    assert ran == []
    session.commit()
    assert ran == ["first"]

    transaction.after_commit(session, "test.commit", lambda: ran.append("rolled back"))
    session.rollback()
    session.commit()
    assert ran == ["first"]


def test_before_flush_callbacks_see_what_is_about_to_be_written_for_this_transaction_only(session):
    seen = []
    transaction.before_flush(session, "test.flush", lambda s: seen.extend(o.slug for o in s.new
                                                                            if isinstance(o, Entity)))
    make_entity(slug="first")  # the service flushes
    assert seen == ["first"]
    session.commit()
    make_entity(slug="second")
    assert seen == ["first"]


# --- scopes and muting -------------------------------------------------------------------------------

def test_a_scoped_value_holds_for_its_block_across_commits_and_rollbacks_and_nests(session):
    assert transaction.current(session, "test.who", "nobody") == "nobody"
    with transaction.scoped(session, "test.who", "outer"):
        session.commit()
        with transaction.scoped(session, "test.who", "inner"):
            session.rollback()
            assert transaction.current(session, "test.who") == "inner"
        assert transaction.current(session, "test.who") == "outer"
    assert transaction.current(session, "test.who") is None


def test_muted_notifications_and_rules_queue_no_mail_and_run_no_rule_until_the_block_ends(session, enqueued):
    acme = make_entity("Acme", "acme")
    make_staff(acme, email="agent@acme.example")
    rule = add_rule(session, acme, actions=[{"type": "set_priority", "priority": "high"}])
    with transaction.muted(session, "notifications", "automation"):
        quiet = make_ticket(acme)
        session.commit()
        assert transaction.is_muted(session, "notifications") and transaction.is_muted(session, "automation")
    assert count_rows(session, QueuedEmail) == 0 and enqueued == []
    assert quiet.priority != "high" and count_rows(session, RuleExecution) == 0

    with transaction.muted(session, "automation"):
        make_ticket(acme)
    assert count_rows(session, QueuedEmail) > 0 and count_rows(session, RuleExecution) == 0
    assert make_ticket(acme).priority == "high"
    assert count_rows(session, RuleExecution, RuleExecution.rule_id == rule.id) == 1


# --- what it means for the outbox -----------------------------------------------------------------

def test_a_rules_mail_like_the_changes_is_handed_to_the_workers_only_once_the_change_commits(session, enqueued):
    acme = make_entity("Acme", "acme")
    make_staff(acme, role="manager", email="mara@acme.example")
    add_rule(session, acme, actions=[{"type": "send_email", "template": "ticket-assigned", "to": ["managers"]}])
    make_ticket(acme)  # each action runs in a savepoint: releasing it is not the commit
    assert enqueued == []
    session.commit()
    rows = session.scalars(select(QueuedEmail).order_by(QueuedEmail.id)).all()
    assert any(r.event == "automation" for r in rows)
    assert [item[0] for call in enqueued for item in call] == [r.id for r in rows]


def test_a_failing_rule_action_does_not_lose_the_changes_mail(session, enqueued):
    acme = make_entity("Acme", "acme")
    rule = add_rule(session, acme, actions=[{"type": "assign", "strategy": "skill"}])
    make_ticket(acme, customer=make_customer(), category="plumbing")  # nobody has the skill: the action fails
    assert "Assign" in session.scalars(select(RuleExecution.error).where(RuleExecution.rule_id == rule.id)).one()
    session.commit()
    rows = session.scalars(select(QueuedEmail.id).order_by(QueuedEmail.id)).all()
    assert rows and [item[0] for call in enqueued for item in call] == rows
