"""The business-hours admin page: whose hours apply, in-place edits with htmx, errors in place, the live preview."""
from datetime import date, time

import pytest
from sqlalchemy import func, select

from mets.models import BusinessHours, Entity, Holiday, HoursException
from mets.services import hours
from mets.services.hours import admin as hours_edit
from tests.conftest import HTMX, login
from tests.factories import make_entity, make_staff
from tests.web.helpers import screen


@pytest.fixture
def tree(session):
    """Acme (New York, own Mon-Fri 09-17 hours) > Acme Billing (Paris, inherits); Globex (default hours)."""
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    billing = make_entity("Acme Billing", "billing", parent=acme, timezone="Europe/Paris")
    globex = make_entity("Globex", "globex", timezone="UTC")
    hours_edit.set_custom_hours(session, acme, True)
    session.commit()
    return {"acme": acme, "billing": billing, "globex": globex}


@pytest.fixture
def admin(session, client, tree):
    user = make_staff(name="Ada Admin", is_admin=True)
    session.commit()
    login(client, user)
    return user


def rows(session, model, entity) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(model.entity_id == entity.id))


def day_intervals(session, entity, weekday) -> list[tuple[time, time]]:
    session.expire_all()
    return hours.weekly_of(session, entity)[weekday]


def version(session, entity) -> int:
    session.expire_all()
    return session.scalar(select(Entity.hours_version).where(Entity.id == entity.id))


def is_partial(response, box_id: str) -> bool:
    body = response.get_data(as_text=True)
    return "<html" not in body and body.lstrip().count(f'id="{box_id}"') == 1


# --- the page -------------------------------------------------------------------------------

def test_page_shows_own_hours_with_the_week_holidays_exceptions_and_preview(client, admin, tree):
    response = client.get(f"/admin/hours/{tree['acme'].id}")
    page = screen(response)
    assert response.status_code == 200
    assert "Business hours · Acme" in page
    assert "Own hours. Acme has its own hours in America/New_York" in page
    for n, name in enumerate(hours.WEEKDAYS):
        assert f'id="day-{n}"' in response.get_data(as_text=True)
        assert name in page
    assert "Monday 09:00–17:00" in page and "Saturday Closed" in page
    assert "No holidays." in page and "No exceptions." in page
    assert "with a target of 4h → due at" in page
    assert "Inherit from" not in page and "Use the default hours instead" in page


def test_inheriting_child_shows_its_source_read_only(client, admin, tree):
    response = client.get(f"/admin/hours/{tree['billing'].id}")
    page = screen(response)
    html = response.get_data(as_text=True)
    assert "Inherited from Acme , in America/New_York." in page
    assert f'href="/admin/hours/{tree["acme"].id}"' in html
    assert "Define own hours" in page and "in Europe/Paris instead of America/New_York" in page
    assert "Monday 09:00–17:00" in page
    assert "hx-delete" not in html and "Add holiday" not in page  # nothing to edit here


def test_top_level_without_own_hours_shows_the_default(client, admin, tree):
    page = screen(client.get(f"/admin/hours/{tree['globex'].id}"))
    assert "Default hours: Monday–Friday 09:00–17:00 in UTC, no holidays." in page


def test_index_lists_whose_hours_apply_and_links_are_everywhere(client, admin, tree):
    page = screen(client.get("/admin/hours/"))
    assert "Acme Own hours America/New_York" in page
    assert "└ Acme Billing Inherited from Acme America/New_York" in page
    assert "Globex Default UTC" in page
    link = f'href="/admin/hours/{tree["billing"].id}"'
    assert link in client.get("/admin/entities").get_data(as_text=True)
    assert link in client.get(f"/admin/entities/{tree['billing'].id}").get_data(as_text=True)
    assert 'href="/admin/hours/"' in client.get("/admin/entities").get_data(as_text=True)  # the nav


def test_only_admins_see_the_page(client, session, tree):
    manager = make_staff(tree["acme"], role="manager")
    session.commit()
    assert client.get(f"/admin/hours/{tree['acme'].id}").status_code == 302
    login(client, manager)
    assert client.get(f"/admin/hours/{tree['acme'].id}").status_code == 404
    assert client.post(f"/admin/hours/{tree['acme'].id}/days/5", data={"d5-start": "10:00", "d5-end": "12:00"},
                       headers=HTMX).status_code == 404
    assert rows(session, BusinessHours, tree["acme"]) == 5


def test_unknown_entity_or_a_row_of_another_entity_is_404(client, session, admin, tree):
    hours_edit.set_custom_hours(session, tree["globex"], True)
    session.commit()
    globex_monday = hours.week_of(session, tree["globex"])[0][0].id
    assert client.get("/admin/hours/987654").status_code == 404
    assert client.delete(f"/admin/hours/{tree['acme'].id}/intervals/{globex_monday}", headers=HTMX).status_code == 404
    assert client.post(f"/admin/hours/{tree['acme'].id}/days/7", headers=HTMX).status_code == 404
    assert rows(session, BusinessHours, tree["globex"]) == 5


# --- own or inherited -----------------------------------------------------------------------

def test_define_own_hours_then_go_back_to_inheriting(client, session, admin, tree):
    billing = tree["billing"]
    response = client.post(f"/admin/hours/{billing.id}/own", data={"own": "1"})
    assert response.status_code == 303 and response.location == f"/admin/hours/{billing.id}"
    session.expire_all()
    assert billing.custom_hours and rows(session, BusinessHours, billing) == 5
    page = screen(client.get(response.location))
    assert "Own hours. Acme Billing has its own hours in Europe/Paris" in page
    assert "Inherit from Acme instead" in page

    response = client.post(f"/admin/hours/{billing.id}/own", data={"own": "0"})
    assert response.status_code == 303
    session.expire_all()
    assert not billing.custom_hours and rows(session, BusinessHours, billing) == 0


# --- the week -------------------------------------------------------------------------------

def test_add_interval_returns_the_day_box_and_saves(client, session, admin, tree):
    acme = tree["acme"]
    before = version(session, acme)
    response = client.post(f"/admin/hours/{acme.id}/days/5", data={"d5-start": "22:00", "d5-end": "02:00"},
                           headers=HTMX)
    assert response.status_code == 200
    assert is_partial(response, "day-5")
    assert response.headers["HX-Trigger"] == "hours-changed"
    assert "Saturday 22:00–02:00 (next day)" in screen(response)
    assert 'value="22:00"' not in response.get_data(as_text=True)  # a fresh form after saving
    assert day_intervals(session, acme, 5) == [(time(22), time(2))]
    assert version(session, acme) == before + 1


def test_an_interval_that_ends_at_its_start_is_saved_as_a_24_hour_shift(client, session, admin, tree):
    acme = tree["acme"]
    response = client.post(f"/admin/hours/{acme.id}/days/5", data={"d5-start": "10:00", "d5-end": "10:00"},
                           headers=HTMX)
    assert response.status_code == 200
    assert "Saturday 10:00–10:00 (next day)" in screen(response)
    assert day_intervals(session, acme, 5) == [(time(10), time(10))]


@pytest.mark.parametrize("start, end, message", [
    ("12:00", "13:00", "12:00–13:00 overlaps 09:00–17:00 on Monday."),
    ("noon", "13:00", 'Cannot read "noon" as a time: use HH:MM, such as 09:00.'),
    ("", "", "Enter a start time."),
])
def test_bad_interval_shows_the_error_in_the_box_with_422_and_saves_nothing(client, session, admin, tree,
                                                                            start, end, message):
    acme = tree["acme"]
    before = version(session, acme)
    response = client.post(f"/admin/hours/{acme.id}/days/0", data={"d0-start": start, "d0-end": end}, headers=HTMX)
    assert response.status_code == 422
    assert is_partial(response, "day-0")
    assert "HX-Trigger" not in response.headers
    assert message in screen(response)
    assert f'value="{start}"' in response.get_data(as_text=True)  # the input is kept
    assert day_intervals(session, acme, 0) == [(time(9), time(17))]
    assert version(session, acme) == before


def test_remove_interval_returns_the_day_box(client, session, admin, tree):
    acme = tree["acme"]
    row = hours.week_of(session, acme)[2][0]
    response = client.delete(f"/admin/hours/{acme.id}/intervals/{row.id}", headers=HTMX)
    assert response.status_code == 200 and is_partial(response, "day-2")
    assert "Wednesday Closed" in screen(response)
    assert day_intervals(session, acme, 2) == []


def test_editing_inherited_hours_is_refused_in_place(client, session, admin, tree):
    billing = tree["billing"]
    response = client.post(f"/admin/hours/{billing.id}/days/0", data={"d0-start": "07:00", "d0-end": "08:00"},
                           headers=HTMX)
    assert response.status_code == 422
    assert "Acme Billing has no hours of its own yet: define its own hours first." in screen(response)
    assert rows(session, BusinessHours, billing) == 0


def test_without_csrf_nothing_is_saved(client, session, admin, tree):
    acme = tree["acme"]
    response = client.post(f"/admin/hours/{acme.id}/days/5", data={"d5-start": "10:00", "d5-end": "12:00"},
                           headers=HTMX, csrf=False)
    assert response.status_code == 400
    assert client.post(f"/admin/hours/{acme.id}/own", data={"own": "0"}, csrf=False).status_code == 400
    holiday = hours_edit.add_holiday(session, acme, "2026-12-25", "Christmas Day")
    session.commit()
    assert client.delete(f"/admin/hours/{acme.id}/holidays/{holiday.id}", headers=HTMX,
                         csrf=False).status_code == 400
    assert day_intervals(session, acme, 5) == []
    assert rows(session, Holiday, acme) == 1
    session.expire_all()
    assert acme.custom_hours


def test_without_htmx_a_form_post_redirects_or_shows_the_page_with_errors(client, session, admin, tree):
    acme = tree["acme"]
    response = client.post(f"/admin/hours/{acme.id}/days/5", data={"d5-start": "10:00", "d5-end": "12:00"})
    assert response.status_code == 303 and response.location == f"/admin/hours/{acme.id}"
    response = client.post(f"/admin/hours/{acme.id}/days/5", data={"d5-start": "11:00", "d5-end": "13:00"})
    assert response.status_code == 422
    assert "<html" in response.get_data(as_text=True)
    assert "11:00–13:00 overlaps 10:00–12:00 on Saturday." in screen(response)
    assert day_intervals(session, acme, 5) == [(time(10), time(12))]


# --- holidays -------------------------------------------------------------------------------

def test_add_and_remove_a_holiday(client, session, admin, tree):
    acme = tree["acme"]
    response = client.post(f"/admin/hours/{acme.id}/holidays",
                           data={"holiday-date": "2026-07-03", "holiday-name": "Summer day"}, headers=HTMX)
    assert response.status_code == 200 and is_partial(response, "holidays")
    assert "Fri 2026-07-03 Summer day" in screen(response)
    assert response.headers["HX-Trigger"] == "hours-changed"
    holiday = session.scalar(select(Holiday).where(Holiday.entity_id == acme.id))
    assert (holiday.date, holiday.name) == (date(2026, 7, 3), "Summer day")

    response = client.delete(f"/admin/hours/{acme.id}/holidays/{holiday.id}", headers=HTMX)
    assert response.status_code == 200 and is_partial(response, "holidays")
    assert "No holidays." in screen(response)
    assert rows(session, Holiday, acme) == 0


@pytest.mark.parametrize("data, message", [
    ({"holiday-date": "2026-12-25", "holiday-name": "Again"}, "2026-12-25 is already a holiday (Christmas Day)."),
    ({"holiday-date": "25/12/2026", "holiday-name": "X"}, 'Cannot read "25/12/2026" as a date: use YYYY-MM-DD.'),
    ({"holiday-date": "2026-12-26", "holiday-name": ""}, "Name is required."),
])
def test_bad_holiday_is_refused_in_place(client, session, admin, tree, data, message):
    acme = tree["acme"]
    hours_edit.add_holiday(session, acme, "2026-12-25", "Christmas Day")
    session.commit()
    response = client.post(f"/admin/hours/{acme.id}/holidays", data=data, headers=HTMX)
    assert response.status_code == 422 and is_partial(response, "holidays")
    assert message in screen(response)
    assert rows(session, Holiday, acme) == 1


def test_import_holidays(client, session, admin, tree):
    acme = tree["acme"]
    response = client.post(f"/admin/hours/{acme.id}/holidays/import",
                           data={"import-country": "us", "import-year": "2026"}, headers=HTMX)
    assert response.status_code == 200 and is_partial(response, "holidays")
    page = screen(response)
    count = rows(session, Holiday, acme)
    assert f"Imported {count} holidays for US 2026." in page
    assert "Fri 2026-12-25 Christmas Day" in page
    again = client.post(f"/admin/hours/{acme.id}/holidays/import",
                        data={"import-country": "US", "import-year": "2026"}, headers=HTMX)
    assert "Every holiday for US 2026 was already listed." in screen(again)
    assert rows(session, Holiday, acme) == count


def test_import_from_an_unknown_country_is_refused(client, session, admin, tree):
    acme = tree["acme"]
    response = client.post(f"/admin/hours/{acme.id}/holidays/import",
                           data={"import-country": "XX", "import-year": "2026"}, headers=HTMX)
    assert response.status_code == 422 and is_partial(response, "holidays")
    assert 'No holidays list for country "XX": use a two-letter code, such as US, GB or DE.' in screen(response)
    assert 'value="XX"' in response.get_data(as_text=True)
    assert rows(session, Holiday, acme) == 0


# --- exceptions -----------------------------------------------------------------------------

def test_add_exceptions_and_remove_one(client, session, admin, tree):
    acme = tree["acme"]
    url = f"/admin/hours/{acme.id}/exceptions"
    closed = client.post(url, data={"exception-date": "2026-12-31", "exception-note": "Inventory"}, headers=HTMX)
    assert closed.status_code == 200 and is_partial(closed, "exceptions")
    assert "Thu 2026-12-31 Closed all day Inventory" in screen(closed)
    half = client.post(url, data={"exception-date": "2026-12-24", "exception-start": "09:00",
                                  "exception-end": "13:00"}, headers=HTMX)
    assert "Thu 2026-12-24 09:00–13:00" in screen(half)
    assert rows(session, HoursException, acme) == 2

    row = session.scalar(select(HoursException).where(HoursException.note == "Inventory"))
    response = client.delete(f"{url}/{row.id}", headers=HTMX)
    assert response.status_code == 200 and is_partial(response, "exceptions")
    assert "Inventory" not in screen(response)
    assert rows(session, HoursException, acme) == 1


def test_conflicting_exception_is_refused_in_place(client, session, admin, tree):
    acme = tree["acme"]
    hours_edit.add_exception(session, acme, "2026-12-24", "09:00", "13:00")
    session.commit()
    response = client.post(f"/admin/hours/{acme.id}/exceptions",
                           data={"exception-date": "2026-12-24", "exception-start": "12:00",
                                 "exception-end": "14:00"}, headers=HTMX)
    assert response.status_code == 422 and is_partial(response, "exceptions")
    assert "12:00–14:00 overlaps 09:00–13:00 on Thu 2026-12-24." in screen(response)
    assert rows(session, HoursException, acme) == 1


# --- time zone ------------------------------------------------------------------------------

def test_change_the_time_zone_in_place(client, session, admin, tree):
    acme = tree["acme"]
    bad = client.post(f"/admin/hours/{acme.id}/timezone", data={"timezone": "Mars/Olympus"}, headers=HTMX)
    assert bad.status_code == 422 and is_partial(bad, "hours-timezone")
    assert "Unknown time zone 'Mars/Olympus'. Use an IANA name such as Europe/Paris." in screen(bad)
    session.expire_all()
    assert acme.timezone == "America/New_York"
    good = client.post(f"/admin/hours/{acme.id}/timezone", data={"timezone": "Europe/Paris"}, headers=HTMX)
    assert good.status_code == 200 and good.headers["HX-Trigger"] == "hours-changed"
    session.expire_all()
    assert acme.timezone == "Europe/Paris"


# --- preview --------------------------------------------------------------------------------

def test_preview_friday_1655_plus_4h_is_due_monday_1255(client, admin, tree):
    response = client.get(f"/admin/hours/{tree['acme'].id}/preview",
                          query_string={"created_at": "2026-03-06T16:55", "target": "4h"}, headers=HTMX)
    assert response.status_code == 200 and is_partial(response, "preview-result")
    assert ("Created at Fri 2026-03-06 16:55 with a target of 4h → due at Mon 2026-03-09 12:55 EDT "
            "(2026-03-09 16:55 UTC)") in screen(response)


def test_preview_of_an_inheriting_child_in_another_zone(client, admin, tree):
    response = client.get(f"/admin/hours/{tree['billing'].id}/preview",
                          query_string={"created_at": "2026-03-06T22:55", "target": "4h 30m"}, headers=HTMX)
    page = screen(response)
    assert "with a target of 4h 30m → due at Mon 2026-03-09 18:25 CET (2026-03-09 17:25 UTC)" in page
    assert "That is Mon 2026-03-09 13:25 in America/New_York, where the hours run." in page


def test_preview_errors_show_in_the_result_with_422(client, admin, tree):
    response = client.get(f"/admin/hours/{tree['acme'].id}/preview",
                          query_string={"created_at": "2026-03-06T16:55", "target": "soon"}, headers=HTMX)
    assert response.status_code == 422 and is_partial(response, "preview-result")
    assert 'Cannot read "soon" as a duration.' in screen(response)


def test_preview_without_htmx_is_the_whole_page_with_the_inputs_kept(client, admin, tree):
    response = client.get(f"/admin/hours/{tree['acme'].id}/preview",
                          query_string={"created_at": "2026-03-06T16:55", "target": "90m"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    assert 'value="2026-03-06T16:55"' in html and 'value="90m"' in html
    assert "due at Mon 2026-03-09 10:25" in screen(response)
