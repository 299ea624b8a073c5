"""What escalation policy conditions can test: automation's vocabulary (SLA state, tiers, replies) and the
ticket's SLA rule (the migrated policies of SLA rules' escalation targets test it)."""
from mets.services.automation.conditions import AUTOMATION

ESCALATION = AUTOMATION.extend("escalation")

ESCALATION.register_field("sla.rule_id", "SLA rule (id)", "number", lambda c: c.ticket.sla_rule_id, group="SLA",
                          help="The id of the SLA rule the ticket is under (empty: none).")
