"""Automation: placeholder until the engine lands (this commit wires the hook)."""


def ticket_changed(session, change, actor, now) -> None:
    """Run the automation rules for a change's events (the engine comes next)."""
    return None
