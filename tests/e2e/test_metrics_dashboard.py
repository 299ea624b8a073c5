"""The metrics dashboard in Chromium: a manager filters it (htmx, the URL pushed, Back), and downloads a table as
CSV with the filters applied; axe checks every state."""
import csv
import io
import re
from datetime import timedelta

import pytest

from mets import clock
from mets.extensions import db
from mets.services import tickets
from tests.e2e.helpers import expect, settled
from tests.factories import PASSWORD, make_customer, make_entity, make_rule, make_staff, make_ticket

pytestmark = pytest.mark.e2e


@pytest.fixture
def desk(live_server):
    """Acme (managed by Maria) and Globex: two urgent and one low ticket answered in Acme, one in Globex."""
    with live_server.app_context():
        acme = make_entity(name="Acme Support", slug="acme")
        globex = make_entity(name="Globex", slug="globex")
        make_rule(acme, "Acme", response_minutes=60, business_hours_only=False)
        maria = make_staff(acme, role="manager", name="Maria Manager", email="maria@staff.example")
        dana = make_staff(acme, name="Dana Agent")
        gus = make_staff(globex, name="Gus Globex")
        customer = make_customer("Carla Customer")
        start = clock.now() - timedelta(days=2)
        for entity, agent, priority, minutes in ((acme, dana, "urgent", 30), (acme, dana, "urgent", 90),
                                                 (acme, maria, "low", 20), (globex, gus, "urgent", 5)):
            ticket = make_ticket(entity, customer=customer, priority=priority, now=start)
            tickets.add_reply(db.session, ticket, actor=agent, body="On it", now=start + timedelta(minutes=minutes))
        db.session.commit()
        return maria.email


def sign_in(page, email):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()


def drawn(page, figure):
    """The data of the chart drawn in a figure, once Chart.js has drawn it."""
    script = f"() => Chart.getChart(document.querySelector('#figure-{figure} canvas'))"
    page.wait_for_function(script)
    return page.evaluate(script + "?.data.datasets[0].data")


def test_a_manager_filters_the_dashboard_and_downloads_a_table(page, desk):
    sign_in(page, desk)
    page.get_by_role("navigation").get_by_role("link", name="Metrics").click()
    expect(page.get_by_role("heading", name="Metrics", exact=True)).to_be_visible()
    compliance = page.locator("#table-compliance")
    expect(compliance.get_by_role("row", name=re.compile("First response"))).to_contain_text("66.7%")
    expect(page.locator("#table-agents")).not_to_contain_text("Gus Globex")  # not Maria's entity
    drawn(page, "compliance")  # the vendored Chart.js drew it from its table's rows
    settled(page)

    page.get_by_role("combobox", name="Priority").select_option(label="Urgent")
    expect(page).to_have_url(re.compile(r"[?&]priority=urgent(&|$)"))
    expect(compliance.get_by_role("row", name=re.compile("First response"))).to_contain_text("50.0%")
    assert drawn(page, "compliance") == [50.0, None, None]  # the swapped-in chart is drawn again
    settled(page)

    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Download CSV of sla compliance")).click()
    download = download_info.value
    assert download.suggested_filename.startswith("mets-compliance-")
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert rows[0] == ["Clock", "Achieved", "Breached", "Compliance (%)"]
    assert rows[1] == ["First response", "1", "1", "50.0"]  # the urgent ones only, as the page shows

    page.get_by_role("combobox", name="Priority").select_option(label="Low")
    expect(compliance.get_by_role("row", name=re.compile("First response"))).to_contain_text("100.0%")
    settled(page)
    page.go_back()
    expect(page).to_have_url(re.compile(r"[?&]priority=urgent(&|$)"))
    expect(compliance.get_by_role("row", name=re.compile("First response"))).to_contain_text("50.0%")
    expect(page.get_by_role("combobox", name="Priority")).to_have_value("urgent")

    page.locator("#table-agents").get_by_role("link", name="Dana Agent").click()
    expect(page.get_by_role("heading", name="Metrics · Dana Agent")).to_be_visible()
    expect(page.locator("#table-agent_compliance")).to_contain_text("50.0%")
