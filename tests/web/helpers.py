"""Small helpers shared by the web tests."""
import html

from tests.conftest import text_of


def screen(response) -> str:
    """What the user reads: text_of with HTML entities decoded ("&#39;" is an apostrophe on screen)."""
    return html.unescape(text_of(response))


def vary(response) -> set[str]:
    return {v.strip() for v in response.headers.get("Vary", "").split(",")}
