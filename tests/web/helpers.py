"""Small helpers shared by the web tests."""
import html
import re

from tests.conftest import text_of


def screen(response) -> str:
    """What the user reads: text_of with HTML entities decoded ("&#39;" is an apostrophe on screen)."""
    return html.unescape(text_of(response))


def vary(response) -> set[str]:
    return {v.strip() for v in response.headers.get("Vary", "").split(",")}


def textarea(page: str, name: str = "conditions") -> str:
    """The JSON the condition builder keeps in its hidden textarea, as the browser would submit it."""
    raw = re.search(rf'<textarea class="rb-json" name="{name}" hidden>(.*?)</textarea>', page, re.S).group(1)
    return html.unescape(raw)
