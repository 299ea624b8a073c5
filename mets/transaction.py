"""Per-transaction hooks: work a change leaves for after its flush or its commit.

`state(session)` is a dict that lives as long as the session's transaction; `after_flush` and
`after_commit` register a callback (once per key) to run after every flush of that transaction /
once it has committed. A rollback forgets all of it: nothing queued in a rolled-back change is
ever handed on. One set of SQLAlchemy listeners serves every user (the outbox's channels).
"""
from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "mets_transaction"


def _hooks(session) -> dict:
    return session.info.setdefault(_KEY, {"state": {}, "flush": {}, "commit": {}})


def state(session) -> dict:
    """A dict for this transaction only (cleared at commit and rollback)."""
    return _hooks(session)["state"]


def after_flush(session, key: str, callback) -> None:
    """Call `callback(session)` after each flush of this transaction (once registered per key)."""
    _hooks(session)["flush"].setdefault(key, callback)


def after_commit(session, key: str, callback) -> None:
    """Call `callback()` once this transaction has committed (once registered per key); never on rollback."""
    _hooks(session)["commit"].setdefault(key, callback)


@event.listens_for(Session, "after_flush_postexec")
def _run_after_flush(session, _flush_context) -> None:
    hooks = session.info.get(_KEY)
    if hooks:
        for callback in list(hooks["flush"].values()):
            callback(session)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session) -> None:
    hooks = session.info.pop(_KEY, None)
    if hooks:
        for callback in hooks["commit"].values():
            callback()


@event.listens_for(Session, "after_rollback")
def _forget(session) -> None:
    session.info.pop(_KEY, None)
