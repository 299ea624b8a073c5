"""ticket search: full-text index over subject, body, customer and conversation

The staff list's search finds every word of the query (any order) in a ticket's subject, body,
customer name or email, replies or internal notes, ranked by relevance; numbers and fragments
still go through the trigram indexes of 0002.

PostgreSQL: one `tickets.search_vector` tsvector per ticket, kept by triggers (on tickets, on
replies and on a customer's name/email change) and served by a GIN index. One vector per ticket,
rather than a vector per reply behind an EXISTS, because "every word somewhere" is then one
`@@` against one index: the words of one query may sit in the subject and in three different
replies, which per-row vectors could only answer with one EXISTS per word.
SQLite (the embedded run): an FTS5 table `ticket_search` (rowid = ticket id), kept by triggers.

Text is indexed as `search_text` makes it: lower case, ASCII punctuation as spaces, `_` removed
(so `user_name` is one word), with the 'simple' configuration (no stemming, no stop words:
names and codes match as typed). services.tickets.search tokenises queries the same way.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
import string

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PUNCT = string.punctuation.replace("_", "")  # becomes spaces; "_" (last in the from-list) is deleted
_PG_FROM = (_PUNCT + "_").replace("'", "''")
_PG_TO = " " * len(_PUNCT)

PG_UP = [
    f"""CREATE FUNCTION mets_search_text(value text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT translate(lower(left(coalesce(value, ''), 200000)), '{_PG_FROM}', '{_PG_TO}') $$""",
    """CREATE FUNCTION mets_ticket_vector(ticket_id integer, subject text, body text, customer_id integer)
        RETURNS tsvector LANGUAGE sql STABLE AS $$
        SELECT setweight(to_tsvector('simple', mets_search_text($2)), 'A')
            || setweight(to_tsvector('simple', mets_search_text(
                   (SELECT u.name || ' ' || u.email FROM users u WHERE u.id = $4))), 'B')
            || to_tsvector('simple', mets_search_text($3))
            || to_tsvector('simple', mets_search_text(
                   (SELECT string_agg(r.body, ' ' ORDER BY r.id) FROM replies r WHERE r.ticket_id = $1))) $$""",
    """CREATE FUNCTION mets_tickets_search() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        NEW.search_vector := mets_ticket_vector(NEW.id, NEW.subject, NEW.body, NEW.customer_id);
        RETURN NEW; END $$""",
    """CREATE FUNCTION mets_replies_search() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        UPDATE tickets t SET search_vector = mets_ticket_vector(t.id, t.subject, t.body, t.customer_id)
         WHERE t.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.ticket_id ELSE NEW.ticket_id END;
        RETURN NULL; END $$""",
    """CREATE FUNCTION mets_users_search() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        UPDATE tickets t SET search_vector = mets_ticket_vector(t.id, t.subject, t.body, t.customer_id)
         WHERE t.customer_id = NEW.id;
        RETURN NULL; END $$""",
    "ALTER TABLE tickets ADD COLUMN search_vector tsvector",
    # Existing tickets and their replies (the triggers below keep them from now on).
    "UPDATE tickets SET search_vector = mets_ticket_vector(id, subject, body, customer_id)",
    "CREATE INDEX ix_tickets_search_vector ON tickets USING gin (search_vector)",
    """CREATE TRIGGER tickets_search BEFORE INSERT OR UPDATE OF subject, body, customer_id ON tickets
        FOR EACH ROW EXECUTE FUNCTION mets_tickets_search()""",
    """CREATE TRIGGER replies_search AFTER INSERT OR DELETE OR UPDATE OF body, ticket_id ON replies
        FOR EACH ROW EXECUTE FUNCTION mets_replies_search()""",
    """CREATE TRIGGER users_search AFTER UPDATE OF name, email ON users FOR EACH ROW
        WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email)
        EXECUTE FUNCTION mets_users_search()""",
]
PG_DOWN = [
    "DROP TRIGGER IF EXISTS users_search ON users",
    "DROP TRIGGER IF EXISTS replies_search ON replies",
    "DROP TRIGGER IF EXISTS tickets_search ON tickets",
    "DROP INDEX IF EXISTS ix_tickets_search_vector",
    "ALTER TABLE tickets DROP COLUMN IF EXISTS search_vector",
    "DROP FUNCTION IF EXISTS mets_users_search()",
    "DROP FUNCTION IF EXISTS mets_replies_search()",
    "DROP FUNCTION IF EXISTS mets_tickets_search()",
    "DROP FUNCTION IF EXISTS mets_ticket_vector(integer, text, text, integer)",
    "DROP FUNCTION IF EXISTS mets_search_text(text)",
]


def _sqlite_refresh(where: str) -> str:
    """Statements that rebuild the FTS rows of the tickets `where` selects (aliased t)."""
    def norm(expr):
        return f"replace(coalesce({expr}, ''), '_', '')"
    return f"""DELETE FROM ticket_search WHERE rowid IN (SELECT t.id FROM tickets t WHERE {where});
        INSERT INTO ticket_search (rowid, subject, customer, body, replies)
        SELECT t.id, {norm('t.subject')},
               (SELECT {norm("u.name || ' ' || u.email")} FROM users u WHERE u.id = t.customer_id),
               {norm('t.body')},
               (SELECT {norm("group_concat(r.body, ' ')")} FROM replies r WHERE r.ticket_id = t.id)
        FROM tickets t WHERE {where};"""


SQLITE_UP = [
    "CREATE VIRTUAL TABLE ticket_search USING fts5(subject, customer, body, replies, tokenize='unicode61')",
    # Existing tickets and their replies.
    _sqlite_refresh("1 = 1").split(";")[1],
    f"CREATE TRIGGER ticket_search_ai AFTER INSERT ON tickets BEGIN {_sqlite_refresh('t.id = NEW.id')} END",
    f"""CREATE TRIGGER ticket_search_au AFTER UPDATE OF subject, body, customer_id ON tickets BEGIN
        {_sqlite_refresh('t.id = NEW.id')} END""",
    "CREATE TRIGGER ticket_search_ad AFTER DELETE ON tickets BEGIN DELETE FROM ticket_search WHERE rowid = OLD.id; END",
    f"CREATE TRIGGER replies_search_ai AFTER INSERT ON replies BEGIN {_sqlite_refresh('t.id = NEW.ticket_id')} END",
    f"""CREATE TRIGGER replies_search_au AFTER UPDATE OF body, ticket_id ON replies BEGIN
        {_sqlite_refresh('t.id IN (OLD.ticket_id, NEW.ticket_id)')} END""",
    f"CREATE TRIGGER replies_search_ad AFTER DELETE ON replies BEGIN {_sqlite_refresh('t.id = OLD.ticket_id')} END",
    f"""CREATE TRIGGER users_search_au AFTER UPDATE OF name, email ON users BEGIN
        {_sqlite_refresh('t.customer_id = NEW.id')} END""",
]
SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "users_search_au", "replies_search_ad", "replies_search_au", "replies_search_ai",
    "ticket_search_ad", "ticket_search_au", "ticket_search_ai")] + ["DROP TABLE IF EXISTS ticket_search"]


def upgrade():
    dialect = op.get_bind().dialect.name
    for statement in PG_UP if dialect == "postgresql" else SQLITE_UP if dialect == "sqlite" else []:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for statement in PG_DOWN if dialect == "postgresql" else SQLITE_DOWN if dialect == "sqlite" else []:
        op.execute(statement)
