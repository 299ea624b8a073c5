"""Which teams the portal offers (and its default), and each entity's ticket categories: the admin pages that
choose them, the portal's and staff's forms that offer them, and the field errors for anything else."""
import re

import pytest
from sqlalchemy import select

from mets.models import Entity, Ticket, TicketCategory
from mets.services.directory import categories
from tests.conftest import HTMX, count_rows, login, login_customer, text_of
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.web.helpers import screen


@pytest.fixture
def desk(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    globex = make_entity("Globex", "globex")
    admin = make_staff(name="Ada Admin", email="ada@staff.example", is_admin=True)
    agent = make_staff(acme, name="Andy Agent")
    carl = make_customer("Carl Customer")
    session.commit()
    return {"acme": acme, "billing": billing, "globex": globex, "admin": admin, "agent": agent, "carl": carl}


def entity_form(entity, **changes) -> dict:
    data = {"name": entity.name, "parent_id": str(entity.parent_id or ""), "timezone": entity.timezone,
            "sender_name": "", "sender_email": "", "active": "y", "portal_enabled": "y"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def options(page: str, name: str) -> list[str]:
    select_html = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", o).strip() for o in re.findall(r"<option[^>]*>.*?</option>", select_html, re.S)]


def selected(page: str, name: str) -> str | None:
    select_html = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S).group(1)
    found = re.search(r"<option[^>]*selected[^>]*>(.*?)</option>", select_html, re.S)
    return found.group(1).strip() if found else None


# --- portal entities ------------------------------------------------------------------------

def test_admin_chooses_the_portal_teams_and_the_default(client, session, desk):
    login(client, desk["admin"])
    assert client.post(f"/admin/entities/{desk['globex'].id}",
                       data=entity_form(desk["globex"], portal_enabled=None)).status_code == 303
    assert client.post(f"/admin/entities/{desk['billing'].id}",
                       data=entity_form(desk["billing"], portal_default="y")).status_code == 303
    client.post("/logout")
    login_customer(client, desk["carl"])
    page = client.get("/portal/tickets/new").get_data(as_text=True)
    assert options(page, "entity_id") == ["Acme", "Acme Billing"]  # Globex takes no portal requests
    assert selected(page, "entity_id") == "Acme Billing"


def test_a_default_that_takes_no_portal_requests_is_refused(client, session, desk):
    login(client, desk["admin"])
    response = client.post(f"/admin/entities/{desk['globex'].id}",
                           data=entity_form(desk["globex"], portal_enabled=None, portal_default="y"))
    assert response.status_code == 422
    assert "The portal's default team must take portal requests" in screen(response)
    session.expire_all()
    assert (desk["globex"].portal_enabled, desk["globex"].portal_default) == (True, False)  # nothing saved


def test_one_default_per_install(client, session, desk):
    login(client, desk["admin"])
    client.post(f"/admin/entities/{desk['acme'].id}", data=entity_form(desk["acme"], portal_default="y"))
    client.post(f"/admin/entities/{desk['globex'].id}", data=entity_form(desk["globex"], portal_default="y"))
    session.expire_all()
    assert session.scalars(select(Entity.slug).where(Entity.portal_default.is_(True))).all() == ["globex"]


@pytest.mark.parametrize("which", ["disabled", "unknown"])
def test_a_request_naming_a_team_not_offered_is_refused(client, session, desk, which):
    desk["globex"].portal_enabled = False
    session.commit()
    login_customer(client, desk["carl"])
    entity_id = desk["globex"].id if which == "disabled" else 999_999
    response = client.post("/portal/tickets/new", data={"entity_id": str(entity_id), "subject": "Hello",
                                                        "body": "Let me in.", "priority": "normal"})
    assert response.status_code == 422
    assert "Not a valid choice." in text_of(response)
    assert 'value="Hello"' in response.get_data(as_text=True)  # nothing typed is lost
    assert count_rows(session, Ticket) == 0


# --- categories -----------------------------------------------------------------------------

def add_categories(client, entity, *names):
    for name in names:
        assert client.post(f"/admin/entities/{entity.id}/categories", data={"name": name}).status_code == 303


def test_admin_manages_categories_and_departments_inherit(client, session, desk):
    login(client, desk["admin"])
    add_categories(client, desk["acme"], "Billing", "Hardware")
    response = client.post(f"/admin/entities/{desk['acme'].id}/categories", data={"name": " billing "})
    assert response.status_code == 422
    assert "Acme already has the category 'billing'." in screen(response)
    page = screen(client.get(f"/admin/entities/{desk['billing'].id}/categories"))
    assert "Acme Billing uses the list of Acme (Billing, Hardware)" in page
    assert categories.categories_for(session, desk["billing"]).names == ("Billing", "Hardware")
    add_categories(client, desk["billing"], "Refunds")  # its own list now
    assert categories.categories_for(session, desk["billing"]).names == ("Refunds",)
    hardware = session.scalar(select(TicketCategory).where(TicketCategory.name == "Hardware"))
    client.post(f"/admin/entities/{desk['acme'].id}/categories/{hardware.id}/move", data={"step": "up"})
    assert categories.categories_for(session, desk["acme"]).names == ("Hardware", "Billing")
    client.post(f"/admin/entities/{desk['acme'].id}/categories/{hardware.id}",
                data={"name": "Devices"})  # renamed, and unticked: no longer offered
    assert categories.categories_for(session, desk["acme"]).names == ("Billing",)


def test_category_pages_refuse_others(client, session, desk):
    login(client, desk["admin"])
    add_categories(client, desk["globex"], "Shipping")
    shipping = session.scalar(select(TicketCategory))
    # Another entity's category through this entity's URL: not found, and nothing changes.
    assert client.post(f"/admin/entities/{desk['acme'].id}/categories/{shipping.id}/delete").status_code == 404
    assert client.post(f"/admin/entities/{desk['globex'].id}/categories", data={"name": "Returns"},
                       csrf=False).status_code == 400
    client.post("/logout")
    login(client, desk["agent"])
    assert client.get(f"/admin/entities/{desk['acme'].id}/categories").status_code == 404
    assert [c.name for c in session.scalars(select(TicketCategory))] == ["Shipping"]


def test_portal_asks_the_teams_categories_and_refuses_others(client, session, desk):
    categories.add_category(session, desk["acme"], "Billing")
    categories.add_category(session, desk["acme"], "Hardware")
    session.commit()
    login_customer(client, desk["carl"])
    fragment = client.get(f"/portal/tickets/new/category?entity_id={desk['billing'].id}", headers=HTMX)
    assert options(fragment.get_data(as_text=True), "category") == ["— none —", "Billing", "Hardware"]
    assert 'name="category"' not in client.get(
        f"/portal/tickets/new/category?entity_id={desk['globex'].id}").get_data(as_text=True)  # no list: not asked
    data = {"entity_id": str(desk["billing"].id), "subject": "Charged twice", "body": "Order 7.",
            "priority": "normal"}
    response = client.post("/portal/tickets/new", data={**data, "category": "Lottery"})
    assert response.status_code == 422
    assert "'Lottery' is not a category of Acme Billing: choose one of Billing, Hardware." in screen(response)
    assert count_rows(session, Ticket) == 0
    assert client.post("/portal/tickets/new", data={**data, "category": "billing"}).status_code == 303
    assert session.scalar(select(Ticket.category)) == "Billing"  # as the list spells it
    # A team without a list takes no made-up category from the portal either.
    response = client.post("/portal/tickets/new", data={**data, "entity_id": str(desk["globex"].id),
                                                        "category": "VIP"})
    assert response.status_code == 422 and "Globex has no categories to choose from." in screen(response)


def test_staff_new_ticket_and_properties_offer_the_entitys_categories(client, session, desk):
    categories.add_category(session, desk["acme"], "Billing")
    categories.add_category(session, desk["acme"], "Hardware")
    session.commit()
    login(client, desk["agent"])
    page = client.get("/tickets/new").get_data(as_text=True)
    assert options(page, "category") == ["— none —", "Billing", "Hardware"]
    data = {"entity_id": str(desk["acme"].id), "customer_email": "kemi@example.com", "subject": "Laptop",
            "body": "It will not boot.", "priority": "normal", "category": "Plumbing"}
    response = client.post("/tickets/new", data=data)
    assert response.status_code == 422
    assert "'Plumbing' is not a category of Acme" in screen(response)
    assert client.post("/tickets/new", data={**data, "category": "Hardware"}).status_code == 303
    ticket = session.scalar(select(Ticket))
    show = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert options(show, "category") == ["— none —", "Billing", "Hardware"]
    assert selected(show, "category") == "Hardware"
    box = client.post(f"/tickets/{ticket.number}/fields/category", data={"category": "Plumbing"}, headers=HTMX)
    assert box.status_code == 422 and "is not a category of Acme" in screen(box)
    assert client.post(f"/tickets/{ticket.number}/fields/category", data={"category": "Billing"},
                       headers=HTMX).status_code == 200
    session.expire_all()
    assert ticket.category == "Billing"


def test_a_ticket_keeps_a_category_that_left_the_list(client, session, desk):
    ticket = make_ticket(desk["acme"], category="legacy")  # from before the list
    categories.add_category(session, desk["acme"], "Billing")
    session.commit()
    login(client, desk["agent"])
    show = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert selected(show, "category") == "legacy (not in the list)"
    # Changing something else leaves it alone.
    assert client.post(f"/tickets/{ticket.number}/fields/priority", data={"priority": "high"},
                       headers=HTMX).status_code == 200
    session.expire_all()
    assert (ticket.priority, ticket.category) == ("high", "legacy")
