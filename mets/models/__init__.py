"""All models, importable from one place (Alembic sees every table through this module)."""
from mets.models.entities import Entity
from mets.models.hours import BusinessHours, HoursException, Holiday
from mets.models.sla import CLOCKS, SlaFiring, SlaPause, SlaRule
from mets.models.tickets import PRIORITIES, STATUSES, VIAS, Reply, Ticket, TicketEvent
from mets.models.users import CUSTOMER, ROLES, STAFF, Membership, User

__all__ = ["Entity", "User", "Membership", "Ticket", "Reply", "TicketEvent", "BusinessHours", "Holiday",
           "HoursException", "SlaRule", "SlaPause", "SlaFiring", "CLOCKS",
           "STATUSES", "PRIORITIES", "VIAS", "ROLES", "STAFF", "CUSTOMER"]
