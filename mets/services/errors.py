"""The one error type services raise for bad input; the UI shows its messages by field."""


class DomainError(Exception):
    """Input the domain refuses. `errors` maps a field name (or "" for the form) to a message."""

    def __init__(self, errors: dict[str, str] | str):
        self.errors = {"": errors} if isinstance(errors, str) else dict(errors)
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in self.errors.items()))

    def for_field(self, field: str) -> str | None:
        return self.errors.get(field)

    @property
    def summary(self) -> str:
        """Every message, without field names, in one line (for a box or a log that has no fields)."""
        return "; ".join(self.errors.values())


def check(errors: dict[str, str]) -> None:
    """Raise a DomainError if any message was collected."""
    if errors:
        raise DomainError(errors)
