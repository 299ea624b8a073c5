"""Webhooks and SMS without a receiver: URL and phone checks, the signature, what is refused when queued.
(Sending, against a real HTTP receiver, is tests/integration/test_webhook_sending.py.)"""
import base64
from datetime import datetime, timezone

import pytest

from mets import clock
from mets.services.outbox import http as webhooks
from mets.services.errors import DomainError

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def app_overrides():
    return {"REDIS_URL": None, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_BASE_SECONDS": 60,
            "WEBHOOK_RETRY_MAX_SECONDS": 3600, "WEBHOOK_MAX_ATTEMPTS": 6, "WEBHOOK_TIMEOUT": 5,
            "SMS_GATEWAY_URL": "", "SMS_GATEWAY_TOKEN": "", "SMS_FROM": "METS"}


@pytest.fixture(autouse=True)
def frozen(app):
    clock.set_now(T0)


@pytest.mark.parametrize("url, problem", [
    ("https://hooks.example.com/in?x=1", None),
    ("http://127.0.0.1:8080/", None),  # refused at send time, not here: no DNS at save time
    ("ftp://example.com/x", "http:// or https://"),
    ("hooks.example.com/in", "http:// or https://"),
    ("https:///path", "host name"),
    ("https://user:pw@example.com/", "user name or password"),
    ("https://token@example.com/", "user name or password"),
    ("https://example.com/a b", "spaces"),
    ("https://example.com:99999/", "not a valid URL"),
    ("https://example.com/" + "a" * 2000, "too long"),
    ("", "Enter the URL"),
])
def test_url_error_explains_what_is_wrong(url, problem):
    message = webhooks.url_error(url)
    assert (message is None) if problem is None else (problem in message)


def test_phone_numbers_are_international_and_normalized():
    assert webhooks.normalize_phone("+33 6 12-34-56-78") == "+33612345678"
    assert webhooks.phone_error("+33 6 12-34-56-78") is None
    assert webhooks.phone_error("+1 (555) 010-9999") is None
    for bad in ("0612345678", "+1234567", "+1234567890123456", "+33 6 12 34 ab", ""):
        assert "international form" in webhooks.phone_error(bad)


def test_signature_is_standard_webhooks_v1_over_id_dot_timestamp_dot_body():
    # Standard Webhooks' own test vector (the spec's repository, and the standardwebhooks package's tests).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    at = datetime.fromtimestamp(1614265330, timezone.utc)
    assert webhooks.signature([secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", at, '{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    other = webhooks.new_secret()
    two = webhooks.signature([secret, other], "msg_1", at, "{}")  # during a rotation: both, space-separated
    assert two.split(" ")[0] == webhooks.signature([secret], "msg_1", at, "{}") and len(two.split(" ")) == 2


def test_secrets_are_whsec_base64_of_random_bytes():
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert webhooks.new_secret() != secret and webhooks.secret_error(secret) is None
    for bad in ("s3cret", "whsec_", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()):
        assert "whsec_" in webhooks.secret_error(bad)
    assert webhooks.secret_error("whsec_" + base64.b64encode(b"short").decode(), min_bytes=1) is None


def test_the_retry_schedule_reads_durations():
    assert webhooks.parse_schedule("5s,5m,30m,2h,5h,10h,10h") == [5, 300, 1800, 7200, 18000, 36000, 36000]
    with pytest.raises(ValueError, match="soon"):
        webhooks.parse_schedule("5s,soon")


def test_a_bad_url_is_refused_when_queued(session):
    with pytest.raises(DomainError) as refused:
        webhooks.queue_webhook(session, url="file:///etc/passwd", payload={}, secret=None)
    assert "http:// or https://" in refused.value.errors["url"]


def test_sms_is_off_by_default(app, session):
    assert not webhooks.sms_enabled(app.config)
    with pytest.raises(DomainError) as refused:
        webhooks.queue_sms(session, to="+33612345678", text="Ticket breached")
    assert refused.value.errors == {"": "SMS is off: set SMS_GATEWAY_URL."}
