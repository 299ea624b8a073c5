"""Settings from the environment, with defaults for the embedded (SQLite, no Redis) run."""
import os
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("METS_INSTANCE_DIR", Path(__file__).resolve().parent.parent / "instance"))


def _bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Read once at app creation; `create_app(config)` overrides any key for tests."""

    # Unset: the embedded run makes and keeps a random key in the instance dir; a server database
    # (anything but SQLite) refuses to start without one (mets/security.py).
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'mets.db'}")
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL") or None
    METS_BASE_URL = os.environ.get("METS_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    METS_INSTANCE_DIR = str(INSTANCE_DIR)

    # Customer portal sign-in links: lifetime in seconds.
    PORTAL_LINK_MAX_AGE = int(os.environ.get("PORTAL_LINK_MAX_AGE", 3600))
    # Whether an unknown address may get a sign-in link (creating the customer on first use).
    PORTAL_OPEN_SIGNUP = _bool("PORTAL_OPEN_SIGNUP", True)

    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = int(os.environ.get("MAIL_PORT", 25))
    MAIL_USE_TLS = _bool("MAIL_USE_TLS")
    MAIL_USE_SSL = _bool("MAIL_USE_SSL")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "METS <support@mets.localhost>")
    # Maildir used when no MAIL_SERVER is configured (embedded run).
    MAILDIR = os.environ.get("METS_MAILDIR", str(INSTANCE_DIR / "maildir"))

    # Extra addresses of this install (support inboxes) that METS must never mail: the loop guard.
    # MAIL_DEFAULT_SENDER is always included.
    METS_OWN_ADDRESSES = [a.strip() for a in os.environ.get("METS_OWN_ADDRESSES", "").split(",") if a.strip()]
    # Portal links in customer notifications stay valid this long (sign-in links: PORTAL_LINK_MAX_AGE).
    PORTAL_TICKET_LINK_MAX_AGE = int(os.environ.get("PORTAL_TICKET_LINK_MAX_AGE", 14 * 24 * 3600))
    # Satisfaction surveys (services/metrics/csat.py): sent this many business hours after a resolution; the
    # survey's link takes (and changes) an answer for CSAT_LINK_MAX_AGE seconds after it is sent.
    CSAT_SURVEY_DELAY_HOURS = int(os.environ.get("CSAT_SURVEY_DELAY_HOURS", 24))
    CSAT_LINK_MAX_AGE = int(os.environ.get("CSAT_LINK_MAX_AGE", 14 * 24 * 3600))

    # The outbox (services/outbox/: core.py and the mail channel, smtp.py).
    MAIL_MAX_ATTEMPTS = int(os.environ.get("MAIL_MAX_ATTEMPTS", 5))
    MAIL_RETRY_BASE_SECONDS = int(os.environ.get("MAIL_RETRY_BASE_SECONDS", 60))  # doubles per attempt
    MAIL_RETRY_MAX_SECONDS = int(os.environ.get("MAIL_RETRY_MAX_SECONDS", 3600))
    MAIL_BATCH_SIZE = int(os.environ.get("MAIL_BATCH_SIZE", 50))  # messages per SMTP connection
    MAIL_RATE_PER_RECIPIENT_HOUR = int(os.environ.get("MAIL_RATE_PER_RECIPIENT_HOUR", 30))  # 0: no limit
    MAIL_RATE_PER_MINUTE = int(os.environ.get("MAIL_RATE_PER_MINUTE", 0))  # the SMTP provider's cap; 0: none
    MAIL_CLAIM_STALE_SECONDS = int(os.environ.get("MAIL_CLAIM_STALE_SECONDS", 300))  # a killed worker's claim
    MAIL_SWEEP_SECONDS = int(os.environ.get("MAIL_SWEEP_SECONDS", 30))  # the embedded loop sends this often
    SLA_TICK_SECONDS = int(os.environ.get("SLA_TICK_SECONDS", 60))
    MAIL_SMTP_TIMEOUT = int(os.environ.get("MAIL_SMTP_TIMEOUT", 20))
    # RQ queue names start with this (lets several installs, or the tests, share one Redis).
    RQ_QUEUE_PREFIX = os.environ.get("RQ_QUEUE_PREFIX", "mets")

    # Automation (services/automation.py).
    AUTOMATION_MAX_DEPTH = int(os.environ.get("AUTOMATION_MAX_DEPTH", 5))  # rules reacting to rules' changes
    AUTOMATION_LOG_DAYS = int(os.environ.get("AUTOMATION_LOG_DAYS", 90))  # the execution log is pruned after
    AUTOMATION_PRUNE_SECONDS = int(os.environ.get("AUTOMATION_PRUNE_SECONDS", 3600))
    # Webhooks and SMS (services/outbox/http.py, the HTTP channel): sent by workers through webhook_deliveries.
    WEBHOOK_TIMEOUT = int(os.environ.get("WEBHOOK_TIMEOUT", 10))
    WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", 6))
    WEBHOOK_RETRY_BASE_SECONDS = int(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", 30))  # doubles per attempt
    WEBHOOK_RETRY_MAX_SECONDS = int(os.environ.get("WEBHOOK_RETRY_MAX_SECONDS", 3600))
    # Endpoint deliveries retry on Standard Webhooks' schedule (the first try at once, then after each delay);
    # an endpoint failing every try for WEBHOOK_DISABLE_AFTER_DAYS is disabled, and its managers mailed.
    WEBHOOK_RETRY_SCHEDULE = os.environ.get("WEBHOOK_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h")
    WEBHOOK_DISABLE_AFTER_DAYS = float(os.environ.get("WEBHOOK_DISABLE_AFTER_DAYS", 5))
    # After a rotation the previous secret also signs for this long, so receivers can switch without a gap.
    WEBHOOK_SECRET_GRACE_HOURS = float(os.environ.get("WEBHOOK_SECRET_GRACE_HOURS", 24))
    # Webhooks to loopback, private and link-local addresses are refused unless this is on
    # (a rule author must not reach the install's own network through it).
    WEBHOOK_ALLOW_PRIVATE = _bool("WEBHOOK_ALLOW_PRIVATE")
    # The SMS provider: an HTTP gateway taking POST {"to", "from", "text"} with a bearer token. Off when empty.
    SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")
    SMS_GATEWAY_TOKEN = os.environ.get("SMS_GATEWAY_TOKEN", "")
    SMS_FROM = os.environ.get("SMS_FROM", "METS")

    # werkzeug's method string; tests lower the work factor, production keeps scrypt.
    PASSWORD_HASH_METHOD = os.environ.get("PASSWORD_HASH_METHOD", "scrypt")

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE")
    REMEMBER_COOKIE_HTTPONLY = True
    # The remember cookie signs its user in as surely as the session cookie: the same protections
    # (REMEMBER_COOKIE_SECURE follows SESSION_COOKIE_SECURE unless set itself: mets/security.py).
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # tied to the session instead of a clock

    TICKETS_PER_PAGE = 25
    # An open ticket page asks this often whether the ticket changed (replies, notes, status...) and who else
    # has it open; a viewer counts as gone after three missed polls (at least a minute).
    TICKET_POLL_SECONDS = int(os.environ.get("TICKET_POLL_SECONDS", 10))
    # Viewers gone for ten minutes are deleted this often (a periodic job; reads ignore them long before).
    PRESENCE_PRUNE_SECONDS = int(os.environ.get("PRESENCE_PRUNE_SECONDS", 300))
    # The response metrics' daily rollups (metric_rollups) of the last few days are rewritten this often; raw
    # metric rows older than METRICS_RAW_RETENTION_DAYS are what `flask mets metrics-archive` archives by default.
    METRICS_ROLLUP_SECONDS = int(os.environ.get("METRICS_ROLLUP_SECONDS", 3600))
    METRICS_RAW_RETENTION_DAYS = int(os.environ.get("METRICS_RAW_RETENTION_DAYS", 730))

    # Request size (bytes). No attachments yet, so 2 MB is far above any form a person sends
    # (a 50,000-character reply is at most 600 kB even URL-encoded). Bigger requests get a 413.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", 2 * 1024 * 1024))

    # Sign-in throttles ("N per M minutes", the `limits` notation; empty: off). Failed staff sign-ins
    # count per address tried and per client address; portal link requests count per address asked for
    # and per client. Kept in Redis when REDIS_URL is set (shared by every web process), else in memory.
    LOGIN_RATE_LIMIT_ACCOUNT = os.environ.get("LOGIN_RATE_LIMIT_ACCOUNT", "5 per 15 minutes")
    LOGIN_RATE_LIMIT_CLIENT = os.environ.get("LOGIN_RATE_LIMIT_CLIENT", "20 per 15 minutes")
    PORTAL_LINK_RATE_LIMIT_ADDRESS = os.environ.get("PORTAL_LINK_RATE_LIMIT_ADDRESS", "5 per hour")
    PORTAL_LINK_RATE_LIMIT_CLIENT = os.environ.get("PORTAL_LINK_RATE_LIMIT_CLIENT", "30 per hour")
    # The API's requests per token (the same limiter and storage as the sign-in throttles); a 429 says when to
    # come back (Retry-After).
    API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "600 per minute")
    # The limit store (Redis) down: the API keeps answering, unthrottled, as the sign-in throttles do (throttle.py).
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_ENABLED = True  # Flask-Limiter keeps the last app's value otherwise (one limiter per process)
    RATELIMIT_STRATEGY = "moving-window"  # exact counts: a fixed window lets twice the limit through at its edge
    # How many proxies in front of the app set X-Forwarded-For / -Proto (0: none, trust the socket's address).
    # Behind one TLS-terminating proxy set 1, or every client shares the proxy's address (and its throttle).
    TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", 0))
