"""The outbox: one state machine (`core`) and two channels that plug into it, mail (`smtp`, the
`email_queue` table) and webhooks/SMS (`http`, `webhook_deliveries`); `admin` is what the admin
pages read and do for either.

Mail is the outbox callers mean by default: `outbox.queue_message(...)` (notify, automation,
the portal's sign-in links) and the mail verbs below are `smtp`'s. Webhooks are queued with
`outbox.http.queue_webhook` / `queue_sms`.
"""
from mets.services.outbox.smtp import (  # noqa: F401 - the mail outbox's public face
    ACTIONABLE, MAIL, PAUSED_KEY, cancel, due_rows, is_paused, own_addresses, queue_message, reclaim_stale, refusal,
    retry, retry_failed, sender_domain, sender_for, set_paused, single_line, sweep)

__all__ = ["ACTIONABLE", "MAIL", "PAUSED_KEY", "cancel", "due_rows", "is_paused", "own_addresses", "queue_message",
           "reclaim_stale", "refusal", "retry", "retry_failed", "sender_domain", "sender_for", "set_paused",
           "single_line", "sweep"]
