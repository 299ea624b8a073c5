"""Admin pages for business hours: the entity list with whose hours apply, and one entity's hours edited in place.

Each part of the page (a weekday, the holidays, the exceptions, the time zone, the preview) is
its own htmx box; every verb on a box answers with that box's partial (422 with the errors in
place when the input is refused) and, after a change, triggers "hours-changed" so the preview
recomputes. Without htmx the same forms post normally: a redirect after success, the page
with its errors otherwise.
"""
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, redirect, request, url_for

from mets import clock
from mets.extensions import db
from mets.forms.hours import ExceptionForm, HolidayForm, HolidayImportForm, IntervalForm, PreviewForm, TimezoneForm
from mets.models import BusinessHours, Entity, Holiday, HoursException
from mets.services import hours
from mets.services.directory import entities
from mets.services.hours import admin as hours_edit
from mets.services.durations import format_minutes
from mets.services.errors import DomainError
from mets.services.validation import timezones
from mets.web import Saved, admin_required, commit, is_htmx, load_entity, load_hours_row, render, show_errors

bp = Blueprint("hours", __name__, url_prefix="/admin/hours")

DEFAULT_TARGET = "4h"


@bp.get("/")
@admin_required
def index():
    rows = [(e, depth, hours.hours_source(db.session, e)) for e, depth in entities.entity_tree(db.session)]
    return render("hours/index.html", rows=rows)


@bp.get("/<int:entity_id>")
@admin_required
def page(entity_id):
    return render("hours/page.html", **_context(load_entity(entity_id)))


@bp.post("/<int:entity_id>/own")
@admin_required
def own(entity_id):
    """Define own hours (a copy of the inherited week) or go back to inheriting: the whole page changes."""
    entity = load_entity(entity_id)
    commit(lambda: hours_edit.set_custom_hours(db.session, entity, request.form.get("own") == "1"))
    return redirect(url_for("hours.page", entity_id=entity.id), 303)


@bp.post("/<int:entity_id>/timezone")
@admin_required
def timezone(entity_id):
    entity = load_entity(entity_id)
    form = TimezoneForm()
    saved = commit(lambda: hours_edit.set_timezone(db.session, entity, form.timezone.data), form)
    return _answer(entity, "hours/_timezone.html", saved, timezone_form=None if saved else form)


@bp.post("/<int:entity_id>/days/<int:weekday>")
@admin_required
def add_interval(entity_id, weekday):
    entity = load_entity(entity_id)
    if not 0 <= weekday <= 6:
        abort(404)
    form = IntervalForm(prefix=f"d{weekday}")
    saved = commit(lambda: hours_edit.add_interval(db.session, entity, weekday, form.start.data, form.end.data),
                   form)
    return _answer(entity, "hours/_day.html", saved, weekday=weekday, day_form=None if saved else form)


@bp.delete("/<int:entity_id>/intervals/<int:interval_id>")
@admin_required
def remove_interval(entity_id, interval_id):
    entity = load_entity(entity_id)
    row = load_hours_row(BusinessHours, interval_id, entity)
    weekday = row.day_of_week  # (the row is gone after the commit)
    saved = commit(lambda: hours_edit.remove_interval(db.session, entity, row))
    return _answer(entity, "hours/_day.html", saved, weekday=weekday)


@bp.post("/<int:entity_id>/holidays")
@admin_required
def add_holiday(entity_id):
    entity = load_entity(entity_id)
    form = HolidayForm(prefix="holiday")
    saved = commit(lambda: hours_edit.add_holiday(db.session, entity, form.date.data, form.name.data), form)
    return _answer(entity, "hours/_holidays.html", saved, holiday_form=None if saved else form)


@bp.post("/<int:entity_id>/holidays/import")
@admin_required
def import_holidays(entity_id):
    entity = load_entity(entity_id)
    form = HolidayImportForm(prefix="import")
    saved = commit(lambda: hours_edit.import_holidays(db.session, entity, form.country.data, form.year.data), form)
    notice = None
    if saved:
        code, year, added = form.country.data.strip().upper(), form.year.data.strip(), saved.result
        notice = (f"Imported {added} holiday{'s' if added != 1 else ''} for {code} {year}." if added else
                  f"Every holiday for {code} {year} was already listed.")
    return _answer(entity, "hours/_holidays.html", saved, import_form=form, notice=notice)


@bp.delete("/<int:entity_id>/holidays/<int:holiday_id>")
@admin_required
def remove_holiday(entity_id, holiday_id):
    entity = load_entity(entity_id)
    row = load_hours_row(Holiday, holiday_id, entity)
    saved = commit(lambda: hours_edit.remove_holiday(db.session, entity, row))
    return _answer(entity, "hours/_holidays.html", saved)


@bp.post("/<int:entity_id>/exceptions")
@admin_required
def add_exception(entity_id):
    entity = load_entity(entity_id)
    form = ExceptionForm(prefix="exception")
    saved = commit(lambda: hours_edit.add_exception(db.session, entity, form.date.data, form.start.data,
                                                    form.end.data, form.note.data), form)
    return _answer(entity, "hours/_exceptions.html", saved, exception_form=None if saved else form)


@bp.delete("/<int:entity_id>/exceptions/<int:exception_id>")
@admin_required
def remove_exception(entity_id, exception_id):
    entity = load_entity(entity_id)
    row = load_hours_row(HoursException, exception_id, entity)
    saved = commit(lambda: hours_edit.remove_exception(db.session, entity, row))
    return _answer(entity, "hours/_exceptions.html", saved)


@bp.get("/<int:entity_id>/preview")
@admin_required
def preview(entity_id):
    entity = load_entity(entity_id)
    form = PreviewForm(request.args)
    result = _preview(entity, form)
    return render("hours/page.html", "hours/_preview_result.html", status=200 if result else 422,
                  **_context(entity, preview_form=form, preview=result))


# --- helpers --------------------------------------------------------------------------------

def _answer(entity: Entity, partial: str, saved: Saved, **state):
    """The box after a change: its partial for htmx (422 when refused), else a redirect or the page with errors.

    A refusal's messages are on the box's form, or (a verb with no form) listed under the box."""
    box = partial.split("/_")[-1].removesuffix(".html") + (f"-{state['weekday']}" if "weekday" in state else "")
    context = _context(entity, box_errors={box: list(saved.errors.values())}, **state)
    if not is_htmx():
        if saved:
            return redirect(url_for("hours.page", entity_id=entity.id), 303)
        return render("hours/page.html", status=422, **context)
    body, status, headers = render("hours/page.html", partial, status=200 if saved else 422, **context)
    if saved:
        headers["HX-Trigger"] = "hours-changed"  # the preview box listens for it
    return body, status, headers


def _preview(entity: Entity, form: PreviewForm) -> dict | None:
    try:
        return hours.preview_from_text(db.session, entity, form.created_at.data, form.target.data)
    except DomainError as exc:
        show_errors(form, exc.errors)
        return None


def _context(entity: Entity, weekday: int | None = None, day_form: IntervalForm | None = None,
             timezone_form=None, holiday_form=None, import_form=None, exception_form=None, notice=None,
             preview_form=None, preview=None, box_errors=None) -> dict:
    """Everything the page shows; one box's refused form (with its errors) replaces that box's blank form."""
    session = db.session
    source = hours.hours_source(session, entity)
    week = hours.week_of(session, entity)
    days = []
    for day in range(7):
        form = day_form if (day_form is not None and day == weekday) else IntervalForm(formdata=None, prefix=f"d{day}")
        days.append({"weekday": day, "name": hours.WEEKDAYS[day], "intervals": week[day], "form": form})
    if preview_form is None:
        now_local = clock.now().astimezone(ZoneInfo(entity.timezone)).replace(second=0, microsecond=0, tzinfo=None)
        preview_form = PreviewForm(formdata=None, created_at=now_local.isoformat(timespec="minutes"),
                                   target=DEFAULT_TARGET)
        preview = _preview(entity, preview_form)
    return {
        "entity": entity, "source": source, "editable": entity.custom_hours, "days": days,
        "day": days[weekday] if weekday is not None else None,
        "holidays": hours.holidays_of(session, entity), "exceptions": hours.exceptions_of(session, entity),
        "today": clock.now().astimezone(ZoneInfo(source.timezone)).date(),
        "timezone_form": timezone_form or TimezoneForm(formdata=None, timezone=entity.timezone),
        "holiday_form": holiday_form or HolidayForm(formdata=None, prefix="holiday"),
        "import_form": import_form or HolidayImportForm(formdata=None, prefix="import", year=str(clock.now().year)),
        "exception_form": exception_form or ExceptionForm(formdata=None, prefix="exception"),
        "timezones": sorted(timezones()),
        "countries": hours_edit.holiday_countries(), "notice": notice,
        "box_errors": box_errors or {},
        "preview_form": preview_form, "preview": preview,
        "format_interval": hours_edit.format_interval, "format_minutes": format_minutes,
    }
