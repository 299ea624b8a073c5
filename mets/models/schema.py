"""What Alembic's autogenerate should compare between the models and the database."""

# Indexes created by hand in migrations that the models cannot express portably
# (PostgreSQL-only trigram and full-text indexes, and the priority rank's expression indexes, which reflect
# differently than they are written): autogenerate must neither drop nor report them.
MIGRATION_ONLY_INDEXES = {"ix_tickets_subject_trgm", "ix_tickets_number_trgm", "ix_tickets_search_vector",
                          "ix_tickets_priority_rank", "ix_tickets_priority_rank_asc"}
# Ticket search (migration 0010): PostgreSQL's trigger-kept tsvector column, and SQLite's FTS5 table
# with the shadow tables FTS5 keeps beside it (ticket_search_data, _idx, _content, _docsize, _config).
MIGRATION_ONLY_COLUMNS = {("tickets", "search_vector")}
SEARCH_TABLE = "ticket_search"


def is_migration_only_table(name: str) -> bool:
    return name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_")


def include_object(obj, name, type_, reflected, compare_to):
    """Alembic hook: skip what the migrations keep outside the models."""
    if type_ == "index":
        return name not in MIGRATION_ONLY_INDEXES
    if type_ == "table":
        return not is_migration_only_table(name)
    if type_ == "column":
        return (getattr(obj.table, "name", None), name) not in MIGRATION_ONLY_COLUMNS
    return True
