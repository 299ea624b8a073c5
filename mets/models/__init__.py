"""All models, importable from one place (Alembic sees every table through this module)."""
from mets.models.api_tokens import ApiToken
from mets.models.automation import SMS, TRIGGERS, WEBHOOK, AutomationRule, RuleExecution, WebhookDelivery
from mets.models.catalog import Macro, TicketCategory
from mets.models.csat import CsatResponse
from mets.models.entities import Entity
from mets.models.metrics import (METRIC_TYPES, MetricAgentRollup, MetricEntityRollup, MetricRollup, ResponseMetric,
                                 TicketRollup)
from mets.models.escalation import (POLICY_CLOCKS, EscalationEvent, EscalationLevel, EscalationNotice,
                                    EscalationPolicy)
from mets.models.mail import (CANCELLED, CRITICAL, FAILED, MAIL_STATUSES, NORMAL, PENDING, SENDING, SENT,
                              WARNING, AppSetting, EmailTemplate, NotificationSetting, QueuedEmail)
from mets.models.hours import BusinessHours, HoursException, Holiday
from mets.models.jobs import JobRun
from mets.models.sla import CLOCKS, SlaFiring, SlaPause, SlaRule
from mets.models.tickets import PRIORITIES, STATUSES, VIAS, Reply, Ticket, TicketAlias, TicketEvent, TicketViewer
from mets.models.users import CUSTOMER, ROLES, STAFF, Membership, RedeemedLink, User
from mets.models.views import SavedView
from mets.models.webhooks import WebhookEndpoint

__all__ = ["Entity", "User", "Membership", "RedeemedLink", "Ticket", "TicketAlias", "Reply", "TicketEvent",
           "TicketViewer",
           "BusinessHours", "Holiday",
           "HoursException", "EmailTemplate", "NotificationSetting", "QueuedEmail", "AppSetting",
           "MAIL_STATUSES", "PENDING", "SENDING", "SENT", "FAILED", "CANCELLED", "CRITICAL", "WARNING", "NORMAL",
           "SlaRule", "SlaPause", "SlaFiring", "CLOCKS",
           "AutomationRule", "RuleExecution", "WebhookDelivery", "TRIGGERS", "WEBHOOK", "SMS", "JobRun",
           "TicketCategory", "Macro", "STATUSES", "PRIORITIES", "VIAS", "ROLES", "STAFF", "CUSTOMER"]
__all__ += ["SavedView", "ResponseMetric", "MetricRollup", "MetricEntityRollup", "MetricAgentRollup",
            "TicketRollup", "METRIC_TYPES",
            "EscalationPolicy", "EscalationLevel", "EscalationEvent", "EscalationNotice", "POLICY_CLOCKS",
            "CsatResponse", "WebhookEndpoint", "ApiToken"]
