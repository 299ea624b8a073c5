"""All models, importable from one place (Alembic sees every table through this module)."""
from mets.models.entities import Entity
from mets.models.tickets import PRIORITIES, STATUSES, VIAS, Reply, Ticket, TicketEvent
from mets.models.users import CUSTOMER, ROLES, STAFF, Membership, User

__all__ = ["Entity", "User", "Membership", "Ticket", "Reply", "TicketEvent",
           "STATUSES", "PRIORITIES", "VIAS", "ROLES", "STAFF", "CUSTOMER"]
