"""Per-transaction hooks and session scopes: the one owner of what services keep in `session.info`.

What lives as long as the session's transaction (its outermost one):

- `state(session)`: a dict for what the transaction has done and must hand on (the outbox's new
  rows, the entities whose hours it changed);
- `cache(session)`: a dict for what it has read or built from its rows (the rule index, settings,
  calendars); also emptied when a savepoint rolls back, since the rows it came from may be gone;
- `before_flush`, `after_flush`, `after_commit`: callbacks, registered once per key.

All of it is dropped when the transaction ends, however it ends (commit, rollback, close):
nothing queued in a rolled-back change is ever handed on, nothing read in one transaction is
trusted in the next. A savepoint (`begin_nested`: each automation action runs in one) does not
end it: a released savepoint's work is the transaction's, so commit callbacks wait for the real
commit; a rolled-back one keeps `state`, since what the transaction did before it still stands.

What lives as long as a `with` block, across commits and rollbacks: `scoped(session, name,
value)` / `current(session, name)` (the running automation chain, the acting rule), and
`muted(session, *names)` / `is_muted(session, name)` (the demo's history: no mail, no rules).

Keys and names are "<package>.<what>" ("outbox.mail.new", "automation.index"). One set of
SQLAlchemy listeners serves every user.
"""
from contextlib import ExitStack, contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

_HOOKS = "mets.transaction"  # session.info: this transaction's state, cache and callbacks
_SCOPES = "mets.scopes"  # session.info: the values of the `scoped` blocks in progress
_UNSET = object()


def _hooks(session) -> dict:
    if isinstance(session, scoped_session):  # (Flask-SQLAlchemy's db.session) the session it stands for
        session = session()
    if not session.in_transaction():
        # What is registered belongs to a transaction: begun here (as any query would), so that a
        # rollback before the first query forgets it too, and it never slips into a later one.
        session.begin()
    return session.info.setdefault(_HOOKS, {"state": {}, "cache": {}, "before_flush": {}, "after_flush": {},
                                            "after_commit": {}})


# --- the transaction's state and callbacks ---------------------------------------------------------

def state(session) -> dict:
    """A dict for this transaction only (dropped when it ends; kept through savepoints)."""
    return _hooks(session)["state"]


def cache(session) -> dict:
    """A dict for this transaction only, also emptied when one of its savepoints rolls back."""
    return _hooks(session)["cache"]


def before_flush(session, key: str, callback) -> None:
    """Call `callback(session)` before each flush of this transaction (once registered per key)."""
    _hooks(session)["before_flush"].setdefault(key, callback)


def after_flush(session, key: str, callback) -> None:
    """Call `callback(session)` after each flush of this transaction (once registered per key)."""
    _hooks(session)["after_flush"].setdefault(key, callback)


def after_commit(session, key: str, callback) -> None:
    """Call `callback()` once this transaction has committed (once registered per key); never on rollback."""
    _hooks(session)["after_commit"].setdefault(key, callback)


@event.listens_for(Session, "before_flush")
def _run_before_flush(session, _flush_context, _instances) -> None:
    hooks = session.info.get(_HOOKS)
    if hooks:
        for callback in list(hooks["before_flush"].values()):
            callback(session)


@event.listens_for(Session, "after_flush_postexec")
def _run_after_flush(session, _flush_context) -> None:
    hooks = session.info.get(_HOOKS)
    if hooks:
        for callback in list(hooks["after_flush"].values()):
            callback(session)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session) -> None:
    # SQLAlchemy calls this for a released savepoint too (still the session's nested transaction
    # here): that work commits, or not, with the transaction around it.
    if session.in_nested_transaction():
        return
    hooks = session.info.pop(_HOOKS, None)
    if hooks:
        for callback in hooks["after_commit"].values():
            callback()


@event.listens_for(Session, "after_rollback")
def _forget(session) -> None:
    if session.in_nested_transaction():  # a savepoint: its rows are gone, the transaction goes on
        hooks = session.info.get(_HOOKS)
        if hooks:
            hooks["cache"].clear()
        return
    session.info.pop(_HOOKS, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session, transaction) -> None:
    # Session.close() ends a transaction without a rollback event: it must not leak into the next.
    if transaction.parent is None:
        session.info.pop(_HOOKS, None)


# --- reading without a transaction -----------------------------------------------------------------

def autocommit(session) -> None:
    """Before the session's first statement: each of its statements commits by itself (the database's autocommit)
    until its transaction ends, so a request that only reads sends no BEGIN and no ROLLBACK. Under READ COMMITTED,
    PostgreSQL's default, each statement of a transaction sees what was committed when it began: a read-only
    request sees what it did before. A commit (an API request marking its token used) hands the connection back;
    the session's next statement begins an ordinary transaction. A session in a transaction already stays in it."""
    if isinstance(session, scoped_session):
        session = session()
    if not session.in_transaction():
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


# --- scopes: values for the length of a block ------------------------------------------------------

@contextmanager
def scoped(session, name: str, value):
    """`current(session, name)` is `value` inside the block (commits included), the outer value after it."""
    scopes = session.info.setdefault(_SCOPES, {})
    outer = scopes.get(name, _UNSET)
    scopes[name] = value
    try:
        yield value
    finally:
        if outer is _UNSET:
            scopes.pop(name, None)
        else:
            scopes[name] = outer


def current(session, name: str, default=None):
    """The value of the innermost `scoped(session, name, ...)` block in progress, or `default`."""
    return session.info.get(_SCOPES, {}).get(name, default)


@contextmanager
def muted(session, *names: str):
    """Inside the block, `is_muted(session, name)` holds for each name (the demo writes history silently)."""
    with ExitStack() as stack:
        for name in names:
            stack.enter_context(scoped(session, f"muted.{name}", True))
        yield


def is_muted(session, name: str) -> bool:
    return current(session, f"muted.{name}", False)
