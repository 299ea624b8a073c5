"""Helpers shared by the browser tests."""


def expect(*args, **kwargs):
    """Playwright's expect, imported on use (collecting the tests must not need Playwright)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


def settled(page) -> None:
    """Wait until htmx has swapped and processed what it fetched (a row drawn in is live after settling); then axe
    checks the page as it now is (the `page` fixture's Accessibility)."""
    page.wait_for_function("() => !document.querySelector("
                           "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")
    checker = getattr(page, "accessibility_check", None)
    if checker is not None:
        checker.check(page)


# What fails a page: axe's two worst impacts (WCAG 2.1 AA rules; "moderate" and "minor" are reported by axe but
# do not fail the suite).
FAILING_IMPACTS = ("serious", "critical")
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
               "resultTypes": ["violations"]}


class Accessibility:
    """axe-core (axe-playwright-python) on every page a browser test visits and after the swaps it waits for: each
    distinct state of a page (its address and markup) is checked once; serious and critical violations are kept,
    and the `page` fixture fails the test on any."""

    def __init__(self):
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()
        self.seen: set = set()
        self.problems: list[str] = []

    def check(self, page) -> None:
        try:
            state = page.evaluate("() => location.href + ' ' + document.documentElement.outerHTML.length + ' '"
                                  " + document.documentElement.outerHTML.slice(-2000)")
            if state in self.seen or page.url.startswith("about:"):
                return
            self.seen.add(state)
            results = self.axe.run(page, options=AXE_OPTIONS)
        except Exception as exc:  # the page navigated meanwhile: the next page is checked in its turn
            if "context was destroyed" in str(exc) or "navigat" in str(exc):
                return
            raise
        for violation in results.response["violations"]:
            if violation.get("impact") in FAILING_IMPACTS:
                nodes = "; ".join(" ".join(n["target"]) for n in violation["nodes"][:5])
                self.problems.append(f"{page.url}: {violation['impact']} {violation['id']} "
                                     f"({violation['help']}): {nodes}")
