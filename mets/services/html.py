"""Sanitising user-written HTML on the way in (nh3, the Ammonia sanitizer)."""
import re

import nh3

ALLOWED_TAGS = {
    "a", "b", "strong", "i", "em", "u", "s", "p", "br", "ul", "ol", "li", "blockquote",
    "code", "pre", "h1", "h2", "h3", "h4", "hr", "table", "thead", "tbody", "tr", "th", "td", "span",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
_TAG = re.compile(r"<[^>]*>")


def clean_html(text: str | None) -> str:
    """Strip scripts, event handlers, styles and unsafe URLs; keep simple formatting."""
    return nh3.clean(
        (text or "").strip(),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def is_blank(html: str) -> bool:
    """True when sanitised HTML holds no visible text."""
    return not _TAG.sub("", html).replace("&nbsp;", "").strip()


def plain_text(html: str) -> str:
    """A rough text rendering, for previews and search snippets."""
    return re.sub(r"\s+", " ", nh3.clean(html, tags=set())).strip()
