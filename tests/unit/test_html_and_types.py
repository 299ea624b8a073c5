"""Message bodies (typed text kept, real HTML sanitised), the UTC datetime column type and the test clock."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import html as html_lib

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from mets import clock
from mets.models import Ticket
from mets.services.html import HTML, TEXT, clean_html, message_html, message_text, typed_text
from tests.factories import make_entity, make_ticket

# --- clean_html -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dirty, clean", [
    ('<p onclick="steal()">Hi<script>alert(1)</script></p>', "<p>Hi</p>"),
    ("<img src=x onerror=alert(1)>after", "after"),
    ('<svg onload="alert(1)"><circle/></svg>text', "text"),
    ("<iframe src='https://evil.example'></iframe><style>body{display:none}</style>ok", "ok"),
    ('<p style="position:fixed;top:0">styled</p>', "<p>styled</p>"),
    ('<form action="/login"><input name=password></form>x', "x"),
])
def test_scripts_handlers_and_embeds_are_removed(dirty, clean):
    assert clean_html(dirty) == clean


@pytest.mark.parametrize("href", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "java&#09;script:alert(1)",
                                  "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)"])
def test_unsafe_link_targets_are_dropped(href):
    out = clean_html(f'<a href="{href}">click</a>')
    assert "href" not in out
    assert "script" not in out.lower().replace("noopener", "")
    assert ">click</a>" in out


@pytest.mark.parametrize("href", ["https://docs.example/a?b=1&amp;c=2", "http://example.com/", "mailto:help@acme.example"])
def test_safe_links_keep_their_target_and_get_rel_noopener(href):
    out = clean_html(f'<a href="{href}" target="_blank" onclick="x()">docs</a>')
    assert out == f'<a href="{href}" rel="noopener noreferrer nofollow">docs</a>'


def test_a_links_own_rel_is_replaced():
    out = clean_html('<a href="https://example.com/" rel="opener">x</a>')
    assert 'rel="noopener noreferrer nofollow"' in out
    assert 'rel="opener"' not in out


def test_allowed_formatting_survives():
    html = ("<h2>Steps</h2><p><b>bold</b> <strong>strong</strong> <i>i</i> <em>em</em> <u>u</u> <s>s</s><br>"
            "<code>x = 1</code></p><ul><li>one</li></ul><ol><li>two</li></ol><blockquote>quoted</blockquote>"
            "<pre>pre</pre><hr><table><thead><tr><th colspan=\"2\">head</th></tr></thead>"
            "<tbody><tr><td rowspan=\"2\">cell</td></tr></tbody></table><span>span</span>")
    assert clean_html(html) == html


def test_text_is_escaped_not_interpreted():
    assert clean_html("  if a < b && c > d then  ") == "if a &lt; b &amp;&amp; c &gt; d then"
    assert clean_html(None) == ""


TYPED = ["Use <Ctrl> + <Alt> + <Del>", "The printer shows <error 42>", "<b>won't</b>",
         "<script>alert('x')</script> & co", "a < b > c &amp; d", "  indented\n\n  two blank-separated lines"]


@pytest.mark.parametrize("typed", TYPED)
def test_typed_text_comes_back_exactly_as_typed_and_is_escaped_for_html(typed):
    assert typed_text(typed) == typed
    assert message_text(typed, TEXT) == typed
    shown = str(message_html(typed, TEXT))
    assert "<b>" not in shown and "<script" not in shown and "<Ctrl>" not in shown
    assert html_lib.unescape(shown.replace("<br>", "\n")) == typed


def test_typed_text_normalises_line_breaks_and_surrounding_blank_lines_only():
    assert typed_text("\r\n\r\n  first\r\nsecond  \r\n\r\n") == "  first\nsecond"
    assert typed_text(None) == ""


def test_old_html_bodies_are_sanitised_again_when_shown_and_read_as_text():
    old = '<p>Hi <b>there</b></p><p>you &amp; me <a href="https://x.example/">docs</a></p>'
    assert str(message_html(old + "<script>alert(1)</script>", HTML)) == clean_html(old)
    assert message_text(old, HTML) == "Hi there\n\nyou & me docs (https://x.example/)"


# --- UTCDateTime ----------------------------------------------------------------------------------

def test_naive_datetimes_are_refused_on_write(session):
    ticket = make_ticket(make_entity())
    session.commit()
    ticket.updated_at = datetime(2026, 1, 1, 12, 0)
    with pytest.raises(StatementError) as exc:
        session.flush()
    assert isinstance(exc.value.orig, ValueError)
    assert "naive datetime" in str(exc.value.orig)
    session.rollback()
    assert session.get(Ticket, ticket.id).updated_at.tzinfo is not None


def test_naive_datetimes_are_refused_in_queries(session):
    with pytest.raises(StatementError) as exc:
        session.scalars(select(Ticket).where(Ticket.created_at < datetime(2026, 1, 1))).all()
    assert isinstance(exc.value.orig, ValueError)


def test_aware_datetimes_in_any_zone_are_stored_as_the_same_instant(session):
    ticket = make_ticket(make_entity())
    tokyo = datetime(2026, 7, 1, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    ticket.updated_at = tokyo
    session.commit()
    session.expire_all()
    stored = session.get(Ticket, ticket.id).updated_at
    assert stored == tokyo
    assert stored.tzinfo == timezone.utc
    assert (stored.hour, stored.day) == (0, 1)


# --- clock ----------------------------------------------------------------------------------------

def test_clock_is_real_time_when_not_frozen():
    before = datetime.now(timezone.utc)
    now = clock.now()
    assert before <= now <= datetime.now(timezone.utc)
    assert now.utcoffset() == timedelta(0)


def test_freeze_sets_and_restores_nested():
    outer = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=-5)))
    inner = datetime(2027, 1, 1, tzinfo=timezone.utc)
    with clock.freeze(outer):
        assert clock.now() == outer
        assert clock.now().tzinfo == timezone.utc
        assert clock.now().hour == 7
        with clock.freeze(inner):
            assert clock.now() == inner
        assert clock.now() == outer
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)


def test_freeze_restores_even_when_the_block_fails():
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(RuntimeError):
        with clock.freeze(at):
            raise RuntimeError("boom")
    assert clock.now() != at


def test_naive_instants_are_refused_by_the_clock():
    with pytest.raises(ValueError):
        clock.set_now(datetime(2026, 1, 1, 12, 0))
    with pytest.raises(ValueError):
        with clock.freeze(datetime(2026, 1, 1, 12, 0)):
            pass  # pragma: no cover - never reached
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)


def test_set_now_none_unfreezes():
    clock.set_now(datetime(2020, 1, 1, tzinfo=timezone.utc))
    try:
        assert clock.now().year == 2020
    finally:
        clock.set_now(None)
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)
