"""What Alembic's autogenerate should compare between the models and the database."""

# Indexes created by hand in migrations that the models cannot express portably
# (PostgreSQL-only trigram indexes): autogenerate must neither drop nor report them.
MIGRATION_ONLY_INDEXES = {"ix_tickets_subject_trgm", "ix_tickets_number_trgm"}


def include_object(obj, name, type_, reflected, compare_to):
    """Alembic hook: skip the migration-only indexes."""
    return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)
