"""The staff list's search box: words in any order, customers' names and emails, the conversation,
with an excerpt of where each ticket matched."""
import html
import re

import pytest

from mets.services import tickets as ticket_service
from tests.conftest import HTMX, login, text_of
from tests.factories import make_customer, make_entity, make_staff, make_ticket
from tests.web.helpers import screen


@pytest.fixture
def desk(session, client):
    acme, globex = make_entity("Acme", "acme"), make_entity("Globex", "globex")
    agent = make_staff(acme, name="Ann Agent")
    kemi = make_customer("Kemi Adeyemi", "kemi@lagos.example")
    bill = make_ticket(acme, customer=kemi, subject="Question about my bill", body="Last week's invoice is wrong.")
    ticket_service.add_reply(session, bill, actor=agent, body="Which VAT rate did they charge you?")
    make_ticket(acme, subject="VPN drops hourly", body="The tunnel falls over.")
    make_ticket(globex, customer=make_customer("Kemi Globex", "kemi@globex.example"), subject="Globex VAT invoice",
                body="invoice vat")
    session.commit()
    login(client, agent)
    return {"bill": bill}


def search(client, q, **headers):
    return client.get("/tickets/", query_string={"q": q, "status": "all"}, headers=headers)


@pytest.mark.parametrize("q", ["Kemi", "kemi@lagos.example", "invoice vat", "VAT invoice", "charge"])
def test_a_customer_name_an_email_or_words_in_any_order_find_the_ticket(client, desk, q):
    page = screen(search(client, q))
    assert "Question about my bill" in page
    assert "VPN drops hourly" not in page
    assert "Globex VAT invoice" not in page  # another entity's ticket with the same words: never
    assert "1 ticket" in page


def test_the_excerpt_shows_where_it_matched(client, desk):
    response = search(client, "vat invoice", **HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    row = re.search(r"Question about my bill</a>(.*?)</td>", html, re.S).group(1)
    assert 'class="snippet' in row
    # the body matched "invoice": its sentence, the word marked
    assert "<mark>invoice</mark>" in row and "Last week&#39;s" in row


def test_the_excerpt_of_typed_markup_is_shown_as_text(client, session, desk):
    acme = desk["bill"].entity
    make_ticket(acme, subject="Strange page", body='<script>alert("x")</script> <mark>fake</mark> <b>zebra</b> crossing')
    session.commit()
    response = search(client, "zebra crossing")
    html = response.get_data(as_text=True)
    row = re.search(r"Strange page</a>(.*?)</td>", html, re.S).group(1)
    assert "<script>" not in row and "<b>" not in row and "<mark>fake" not in row
    assert "&lt;script&gt;" in row and "&lt;mark&gt;fake&lt;/mark&gt;" in row
    assert "<mark>zebra</mark>" in row and "<mark>crossing</mark>" in row
    assert '<script>alert("x")</script> <mark>fake</mark> <b>' in screen(response)  # what the customer typed


def test_no_excerpt_without_a_search(client, desk):
    assert 'class="snippet' not in client.get("/tickets/?status=all").get_data(as_text=True)


def test_the_search_box_keeps_the_query(client, desk):
    html = search(client, 'vat "invoice').get_data(as_text=True)
    assert 'value="vat &#34;invoice"' in html or 'value="vat &quot;invoice"' in html


@pytest.mark.parametrize("q", ["' OR 1=1 --", '"unclosed', "NEAR(a b", "a:* | !b", "x" * 5000, "kemi " * 300])
def test_odd_or_oversized_queries_answer_a_page(client, desk, q):
    response = search(client, q)
    assert response.status_code == 200
    assert "Globex VAT invoice" not in text_of(response)


def test_a_search_with_more_hits_than_it_counts_says_more_than_and_its_pages_work(app, client, session, desk,
                                                                                  monkeypatch):
    from mets.services.tickets import search as search_service

    monkeypatch.setattr(search_service, "COUNT_LIMIT", 4)  # 1,000 in production: four here, two a page
    app.config["TICKETS_PER_PAGE"] = 2
    for n in range(6):
        make_ticket(desk["bill"].entity, subject=f"Zebra crossing {n}")
    session.commit()
    first = client.get("/tickets/", query_string={"q": "zebra", "status": "all", "sort": "number", "dir": "asc"})
    shown = screen(first)
    assert "More than 4 tickets" in shown and "6 tickets" not in shown
    assert "Page 1 of the first 2" in shown
    assert "Zebra crossing 0" in shown and "Zebra crossing 1" in shown and "Zebra crossing 2" not in shown
    assert "All of the more than 4 matching this filter" in shown
    following = re.search(r'<a rel="next" href="([^"]+)"', first.get_data(as_text=True)).group(1)
    second = client.get(html.unescape(following))
    shown = screen(second)
    assert "Page 2 of the first 2" in shown
    assert "Zebra crossing 2" in shown and "Zebra crossing 3" in shown and "Zebra crossing 0" not in shown
    assert 'rel="next"' not in second.get_data(as_text=True)  # no page past the cap is offered
    assert "Zebra crossing 4" not in screen(client.get(html.unescape(following).replace("page=2", "page=3")))


def test_a_small_search_shows_its_exact_count_and_the_best_match_first(client, session, desk):
    make_ticket(desk["bill"].entity, subject="Invoice copy needed", body="Please resend it.")
    session.commit()
    shown = screen(client.get("/tickets/", query_string={"q": "invoice", "status": "all", "sort": "subject"}))
    assert "2 tickets" in shown and "More than" not in shown
    # "invoice" in the subject ranks first; the chosen sort (subject, Z to A) alone would put it last
    assert shown.index("Invoice copy needed") < shown.index("Question about my bill")
