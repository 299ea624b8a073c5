"""Helpers shared by the browser tests."""


def expect(*args, **kwargs):
    """Playwright's expect, imported on use (collecting the tests must not need Playwright)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


def settled(page) -> None:
    """Wait until htmx has swapped and processed what it fetched (a row drawn in is live after settling)."""
    page.wait_for_function("() => !document.querySelector("
                           "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")
