"""Webhooks and SMS without a receiver: URL and phone checks, the signature, what is refused when queued.
(Sending, against a real HTTP receiver, is tests/integration/test_webhook_sending.py.)"""
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


def test_signature_is_the_hmac_of_timestamp_dot_body():
    # Checked against `printf '1700000000.{}' | openssl dgst -sha256 -hmac secret`.
    assert webhooks.signature("secret", "1700000000", b"{}") == \
        "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
    assert webhooks.signature("secret", "1", b"{}") != webhooks.signature("secret", "2", b"{}")


def test_a_bad_url_is_refused_when_queued(session):
    with pytest.raises(DomainError) as refused:
        webhooks.queue_webhook(session, url="file:///etc/passwd", payload={}, secret=None)
    assert "http:// or https://" in refused.value.errors["url"]


def test_sms_is_off_by_default(app, session):
    assert not webhooks.sms_enabled(app.config)
    with pytest.raises(DomainError) as refused:
        webhooks.queue_sms(session, to="+33612345678", text="Ticket breached")
    assert refused.value.errors == {"": "SMS is off: set SMS_GATEWAY_URL."}
