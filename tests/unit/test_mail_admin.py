"""services.mail_admin's pure parts: the filters, masking secrets, and how times and priorities read."""
from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.datastructures import MultiDict

from mets.services import mail_admin
from mets.services.outbox import admin as outbox_admin
from mets.services.outbox.admin import MailFilters

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def test_filters_read_known_values_and_drop_the_rest():
    f = MailFilters.from_args(MultiDict({"status": "failed", "entity": "7", "recipient": "  Ann ", "template": "x",
                                         "page": "3"}))
    assert (f.status, f.entity_id, f.recipient, f.template, f.page) == ("failed", 7, "Ann", "x", 3)
    f = MailFilters.from_args(MultiDict({"status": "exploded", "entity": "seven", "page": "-1"}))
    assert (f.status, f.entity_id, f.page) == ("", None, 1)


def test_filter_links_keep_the_other_filters_and_leave_out_empty_ones():
    f = MailFilters(status="failed", entity_id=3, recipient="ann", page=2)
    assert f.as_args() == {"status": "failed", "entity": 3, "recipient": "ann", "page": 2}
    assert f.as_args(status="", page="") == {"entity": 3, "recipient": "ann"}


@pytest.mark.parametrize("url, shown", [
    ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
    ("rediss://user:p%40ss@cache.internal/1", "rediss://user:***@cache.internal/1"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("redis://user@host", "redis://user@host"),
    (None, None),
])
def test_mask_url_hides_only_the_password(url, shown):
    assert outbox_admin.mask_url(url) == shown


def test_smtp_settings_show_whether_a_password_is_set_never_the_password():
    config = {"MAIL_SERVER": "smtp.example.net", "MAIL_PORT": 465, "MAIL_USE_SSL": True, "MAIL_USE_TLS": False,
              "MAIL_USERNAME": "bot", "MAIL_PASSWORD": "s3cret"}
    settings = dict(mail_admin.smtp_settings(config))
    assert settings["Password"] == "set" and settings["Security"] == "SSL"
    assert "s3cret" not in repr(settings)
    assert dict(mail_admin.smtp_settings({**config, "MAIL_PASSWORD": None}))["Password"] == "not set"
    assert dict(mail_admin.smtp_settings({"MAIL_SERVER": None, "MAILDIR": "/tmp/md"}))["Maildir"] == "/tmp/md"


@pytest.mark.parametrize("delta, shown", [
    (timedelta(seconds=-5), "now"), (timedelta(0), "now"), (timedelta(seconds=40), "in 40s"),
    (timedelta(minutes=4, seconds=10), "in 4m"), (timedelta(hours=2), "in 2h"), (timedelta(days=3), "in 3d"),
])
def test_due_in(delta, shown):
    assert outbox_admin.due_in(NOW + delta, NOW) == shown


def test_priority_labels():
    assert [outbox_admin.priority_label(p) for p in (1, 3, 5, 7)] == ["1 (critical)", "3 (warning)", "5 (normal)", "7"]


def test_page_count():
    assert [outbox_admin.page_count(n) for n in (0, 1, 25, 26, 50, 51)] == [1, 1, 1, 2, 2, 3]
