"""The only way tickets change (changes: create, reply, status, assign, fields, move, escalate, SLA
extension) and the list's search.

May import: directory, sla, models and the shared service modules. It tells notifications and
automation of each change through mets.events, never by importing them.
"""
# The package's API is its main module's: `from mets.services import tickets; tickets.<name>`.
from mets.services.tickets.changes import (  # noqa: F401
    FINAL, EDITABLE_FIELDS, Change, acting_rule, NOT_ASSIGNABLE, MAX_BODY, BODY_TOO_LONG_MESSAGE, create_ticket,
    add_reply, change_status, assign, update_fields, KEEP, edit_ticket, escalate, escalate_many, extend_sla,
    switch_sla_rule,
    find_by_number,
)
