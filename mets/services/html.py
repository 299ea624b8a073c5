"""Message bodies: plain text as people typed it, and real HTML sanitised with nh3 (Ammonia).

What people type in a text box is plain text: it is stored exactly as typed and escaped on the
way out, so `Use <Ctrl> + <Alt> + <Del>` and `<b>won't</b>` come back as written. Only real HTML
(bodies written before plain text was kept, later an inbound HTML mail) is sanitised, and it is
sanitised again on output, so a row can never carry markup past the allow-list.
"""
import html as html_lib
import re

import nh3
from markupsafe import Markup, escape

TEXT = "text"
HTML = "html"
FORMATS = (TEXT, HTML)

ALLOWED_TAGS = {
    "a", "b", "strong", "i", "em", "u", "s", "p", "br", "ul", "ol", "li", "blockquote",
    "code", "pre", "h1", "h2", "h3", "h4", "hr", "table", "thead", "tbody", "tr", "th", "td", "span",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
_BLOCK_END = re.compile(r"</(p|div|li|h[1-6]|tr|blockquote|pre|table|ul|ol)>|<br\s*/?>|<hr\s*/?>", re.I)
_LINK = re.compile(r'<a [^>]*href="([^"]*)"[^>]*>(.*?)</a>', re.I | re.S)


def clean_html(html: str | None) -> str:
    """Strip scripts, event handlers, styles and unsafe URLs from real HTML; keep simple formatting."""
    return nh3.clean(
        (html or "").strip(),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def typed_text(value: str | None) -> str:
    """A text box's value as stored: exactly as typed, but with one kind of line break and no
    blank lines or trailing spaces around it (leading spaces of the first line are kept)."""
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip().lstrip("\n")


def message_html(body: str | None, body_format: str = TEXT) -> Markup:
    """A message body as safe HTML for a page or a mail's HTML part: text escaped, line breaks kept."""
    if body_format == HTML:
        return Markup(clean_html(body))
    return Markup("<br>").join(escape(line) for line in (body or "").split("\n"))


def message_text(body: str | None, body_format: str = TEXT) -> str:
    """A message body as plain text (a mail's text part, rule conditions, previews)."""
    return html_to_text(body) if body_format == HTML else (body or "")


def html_to_text(body_html: str | None) -> str:
    """Sanitised HTML as readable plain text: paragraphs and line breaks kept, links as "text (url)"."""
    text = _LINK.sub(lambda m: m.group(2) if html_lib.unescape(m.group(1)) in m.group(2) else
                     f"{m.group(2)} ({m.group(1)})", body_html or "")
    text = re.sub(r"<li[^>]*>", "- ", _BLOCK_END.sub(lambda m: "\n" if m.group(0)[1] in "bBhH" else "\n\n", text))
    text = html_lib.unescape(nh3.clean(text, tags=set()))
    text = "\n".join(line.strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip()
