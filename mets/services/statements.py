"""Statements built once and kept by key: on the API's hot paths building a select (and SQLAlchemy's cache key for
it) cost more than running it. For statements that take every value as a parameter, so their shape depends on the
key alone."""


class Built:
    """Statements by key, at most `size` of them (then they are built afresh: a bound, not an eviction policy)."""

    def __init__(self, size: int):
        self.size = size
        self._found: dict = {}

    def get(self, key, build):
        """The statement kept for `key`, or `build()`'s, kept."""
        found = self._found.get(key)
        if found is None:
            if len(self._found) >= self.size:
                self._found.clear()
            found = self._found[key] = build()
        return found
