"""What the two outbox pages (the mail queue, /admin/mail/, and webhooks, /admin/webhooks/) share:
the list, a row's status box and its verbs (retry, cancel), and the pause switch.

Each blueprint names its `Pages` (its channel, endpoints and words) and keeps only what is its
own (mail's settings, test email and notification settings; a delivery's request headers).
The shared templates are in templates/outbox/: `_status.html` (a row's box: every verb answers
with it, and it refreshes itself while the row is on its way), `_pause.html`, `_tabs.html`
and `_pager.html`.
"""
from dataclasses import dataclass

from flask import flash, redirect, request, url_for

from mets.extensions import db
from mets.models import MAIL_STATUSES
from mets.services.outbox import admin
from mets.services.outbox.core import Channel
from mets.web import commit, is_htmx, load_outbox_row, render


@dataclass(frozen=True)
class Pages:
    channel: Channel
    blueprint: str  # "mail", "webhooks"
    show: str  # the row page's endpoint ("mail.message")
    id_arg: str  # its URL argument ("message_id")
    box_id: str  # the status box's element id
    noun: str  # "message", "delivery"
    plural: str  # "messages", "deliveries"

    def endpoint(self, name: str) -> str:
        return f"{self.blueprint}.{name}"

    def row_url(self, row, verb: str | None = None) -> str:
        return url_for(self.endpoint(verb) if verb else self.show, **{self.id_arg: row.id})


def list_page(pages: Pages, f, template: str, partial: str, *, with_names: bool = False, **extra):
    """The list page (or, for htmx, the list alone) for filters `f` (`names`: entity id -> name, if asked)."""
    rows, total = admin.search(pages.channel, db.session, f)
    if with_names:
        extra["names"] = admin.entity_names(db.session, rows)
    return render(template, partial, f=f, rows=rows, total=total, pages=admin.page_count(total),
                  counts=admin.status_counts(pages.channel, db.session, f), statuses=MAIL_STATUSES,
                  pause=admin.pause_state(pages.channel, db.session), ob=pages, **extra)


def row_page(pages: Pages, template: str, partial: str, row, status: int = 200, error: str | None = None,
             notice: str | None = None, **extra):
    """A row's page (or, for htmx, its status box)."""
    links = {"show": pages.row_url(row), "retry": pages.row_url(row, "retry"), "cancel": pages.row_url(row, "cancel"),
             "index": url_for(pages.endpoint("index"))}
    return render(template, partial, status=status, row=row, error=error, notice=notice, ob=pages, links=links,
                  can_act=admin.can_act(row), paused=admin.pause_state(pages.channel, db.session).paused, **extra)


def act(pages: Pages, row_id: int, verb, done: str, page):
    """Run retry or cancel on one row: 303 (or the box) when done, the refusal in place (422) if not.

    `page(row, status=, error=, notice=)` draws the row's page."""
    row = load_outbox_row(pages.channel, row_id)
    saved = commit(lambda: verb(pages.channel, db.session, row))
    if not saved:
        return page(row, 422, error=saved.summary)
    if is_htmx():
        return page(row, notice=done)
    flash(done)
    return redirect(pages.row_url(row), 303)


def pause(pages: Pages, what: str):
    """The pause switch's POST: pause or resume the channel (resuming hands due rows on after commit)."""
    paused = request.form.get("paused") == "1"
    commit(lambda: admin.set_paused(pages.channel, db.session, paused))
    flash(f"{what} is paused: {pages.plural} keep queueing." if paused else f"{what} resumed.")
    return redirect(url_for(pages.endpoint("index")), 303)
