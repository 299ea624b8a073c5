"""METS: a multi-entity support ticket system. `from mets import create_app` builds the app (mets/app.py)."""


def __getattr__(name: str):
    # `create_app` is looked up lazily (PEP 562) so that importing a model or a service does not
    # build the whole web layer: every module imports on its own, in any order (tests/unit/test_imports.py).
    if name == "create_app":
        from mets.app import create_app
        return create_app
    raise AttributeError(f"module 'mets' has no attribute {name!r}")
