"""services.tickets.search: finding tickets by words, names and numbers, on SQLite and PostgreSQL."""
import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import text

from mets.services import tickets
from mets.services.tickets.search import TicketFilters, search_tickets, search_words
from tests.factories import make_customer, make_entity, make_staff, make_ticket


@pytest.fixture
def desk(session):
    """Acme with an agent and a few tickets; Globex next door with the same words."""
    acme, globex = make_entity("Acme", "acme"), make_entity("Globex", "globex")
    agent = make_staff(acme, name="Ann Agent")
    kemi = make_customer("Kemi Adeyemi", "kemi.adeyemi@lagos.example")
    invoice = make_ticket(acme, customer=kemi, subject="Question about my bill",
                          body="The invoice I got last week is wrong.")
    tickets.add_reply(session, invoice, actor=agent, body="Which VAT rate did they charge?")
    vpn = make_ticket(acme, subject="VPN drops hourly", body="Since Monday the tunnel falls over.")
    tickets.add_reply(session, vpn, actor=agent, body="Escalated to netops: quokka firmware bug.", internal=True)
    printer = make_ticket(acme, subject="Printer offline", body="Invoice printing fails; vat numbers missing.")
    make_ticket(globex, customer=make_customer("Kemi Other", "kemi@globex.example"),
                subject="Globex invoice", body="invoice vat quokka")
    session.flush()
    return {"agent": agent, "invoice": invoice, "vpn": vpn, "printer": printer, "kemi": kemi}


def found(session, user, q, **args):
    page = search_tickets(session, user, TicketFilters.from_args({"q": q, "status": "all", **args}))
    return [t.subject for t in page.items]


@pytest.mark.parametrize("q, subjects", [
    ("Kemi", ["Question about my bill"]),  # the customer's name
    ("adeyemi", ["Question about my bill"]),
    ("kemi.adeyemi@lagos.example", ["Question about my bill"]),  # the email address
    ("lagos.example", ["Question about my bill"]),
    ("vat invoice", ["Question about my bill", "Printer offline"]),  # any order, body + reply
    ("invoice vat", ["Question about my bill", "Printer offline"]),
    ("charge", ["Question about my bill"]),  # a word of a reply
    ("quokka", ["VPN drops hourly"]),  # an internal note: staff search notes too
    ("tunnel quokka vpn", ["VPN drops hourly"]),  # subject + body + note
    ("invoice quokka", []),  # every word must match in the same ticket
    ("inv", ["Question about my bill", "Printer offline"]),  # the last word is a prefix while typing
])
def test_words_names_and_emails(session, desk, q, subjects):
    assert sorted(found(session, desk["agent"], q)) == sorted(subjects)


def test_another_entitys_ticket_with_the_same_words_is_never_found(session, desk):
    for q in ("Kemi", "invoice vat", "quokka", "Globex", "kemi@globex.example"):
        assert "Globex invoice" not in found(session, desk["agent"], q)


def test_numbers_and_fragments_still_work(session, desk):
    number = desk["vpn"].number
    assert found(session, desk["agent"], number) == ["VPN drops hourly"]
    assert found(session, desk["agent"], number.split("-")[1]) == ["VPN drops hourly"]
    assert found(session, desk["agent"], "rops hour") == ["VPN drops hourly"]  # a part of a word


def test_a_fragment_of_several_words_is_found_only_as_typed(session, desk):
    """Each piece of "rops hour" is looked up by the trigram index; the whole must still be in the subject."""
    assert found(session, desk["agent"], "rops hour") == ["VPN drops hourly"]
    assert found(session, desk["agent"], "hour rops") == []  # both pieces are in the subject, not so


def test_the_best_match_comes_first(session, desk):
    """'invoice' in the subject weighs more than in the body; the chosen sort only breaks ties."""
    acme = desk["invoice"].entity
    make_ticket(acme, subject="Invoice copy needed", body="Please resend the invoice.")
    session.flush()
    for sort in ("updated", "subject"):
        assert found(session, desk["agent"], "invoice", sort=sort)[0] == "Invoice copy needed"


def test_the_index_follows_changes(session, desk):
    agent, invoice = desk["agent"], desk["invoice"]
    tickets.add_reply(session, invoice, actor=agent, body="Refunded by wombat transfer.")
    session.flush()
    assert found(session, agent, "wombat") == ["Question about my bill"]
    desk["kemi"].name = "Kemi Okafor"  # any way a row changes, the database's triggers follow
    session.flush()
    assert found(session, agent, "okafor") == ["Question about my bill"]
    assert found(session, agent, "okafor lagos") == ["Question about my bill"]
    invoice.subject = "Billing platypus"
    session.flush()
    assert found(session, agent, "platypus") == ["Billing platypus"]


def test_tickets_from_before_the_index_are_backfilled(session, desk, backend):
    """The migration's backfill statement, run on rows whose index entry is gone, restores it."""
    path = Path(__file__).parents[3] / "migrations/versions/0010_ticket_full_text_search.py"
    spec = importlib.util.spec_from_file_location("migration_0010", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    if backend == "postgresql":
        session.execute(text("UPDATE tickets SET search_vector = NULL"))
        assert found(session, desk["agent"], "charge") == []
        session.execute(text(migration.PG_UP[6]))
    else:
        session.execute(text("DELETE FROM ticket_search"))
        assert found(session, desk["agent"], "charge") == []
        session.execute(text(migration.SQLITE_UP[1]))
    assert found(session, desk["agent"], "charge") == ["Question about my bill"]


@pytest.mark.parametrize("q", ["' OR 1=1 --", '"', "*", "NEAR(", "a:* | b", "\\", "%_%", "AND", "—", "x" * 100,
                               "one two three four five six seven eight nine ten"])
def test_odd_input_is_just_text(session, desk, q):
    found(session, desk["agent"], q)  # no error: quotes, FTS syntax and tsquery operators are plain text


def test_search_words():
    assert search_words("Invoice VAT") == (["invoice", "vat"], True)
    assert search_words("100%") == (["100"], False)
    assert search_words("user_name") == (["username"], True)
    assert search_words("kemi@lagos.example") == (["kemi", "lagos", "example"], True)


def test_the_excerpt_shows_the_words_and_escapes_the_text(session, desk):
    acme = desk["invoice"].entity
    ticket = make_ticket(acme, subject="Odd markup", body="<script>alert(1)</script> and <mark>fake</mark> zebra here")
    session.flush()
    page = search_tickets(session, desk["agent"], TicketFilters.from_args({"q": "zebra", "status": "all"}))
    excerpt = str(page.snippets[ticket.id])
    assert "<script>" not in excerpt and "<mark>fake" not in excerpt
    assert "&lt;script&gt;" in excerpt and "&lt;mark&gt;fake&lt;/mark&gt;" in excerpt
    assert "<mark>zebra</mark>" in excerpt


def test_the_excerpt_comes_from_the_reply_that_matched(session, desk):
    page = search_tickets(session, desk["agent"], TicketFilters.from_args({"q": "quokka", "status": "all"}))
    assert str(page.snippets[desk["vpn"].id]) == "Note: Escalated to netops: <mark>quokka</mark> firmware bug."


def test_past_the_count_limit_the_chosen_sort_orders_the_hits(session, desk, monkeypatch):
    from mets.services.tickets import search

    acme = desk["invoice"].entity
    make_ticket(acme, subject="Invoice copy needed", body="Please resend the invoice.")
    session.flush()
    monkeypatch.setattr(search, "COUNT_LIMIT", 1)
    assert found(session, desk["agent"], "invoice", sort="subject", dir="desc") == [
        "Question about my bill", "Printer offline", "Invoice copy needed"]


# --- past the count limit: "more than 1,000", the chosen sort, no page beyond the cap -----------------------------

def test_a_search_with_more_hits_than_it_counts_is_capped_and_pages_stop_at_the_cap(session, desk, monkeypatch):
    from mets.services.tickets import search

    monkeypatch.setattr(search, "COUNT_LIMIT", 3)
    made = [make_ticket(desk["invoice"].entity, subject=f"Zebra crossing {n}") for n in range(5)]
    session.flush()
    args = {"q": "zebra", "status": "all", "sort": "number", "dir": "asc"}
    first = search_tickets(session, desk["agent"], TicketFilters.from_args(args), per_page=2)
    assert (first.total, first.capped, first.pages) == (3, True, 2)
    assert [t.id for t in first.items] == [made[0].id, made[1].id]
    last = search_tickets(session, desk["agent"], TicketFilters.from_args({**args, "page": "99"}), per_page=2)
    assert last.page == 2  # the last page within the cap (the fifth would be on a third)
    assert [t.id for t in last.items] == [made[2].id, made[3].id]


def test_a_search_with_as_many_hits_as_it_counts_is_exact_and_ranked(session, desk, monkeypatch):
    from mets.services.tickets import search

    monkeypatch.setattr(search, "COUNT_LIMIT", 3)
    make_ticket(desk["invoice"].entity, subject="Invoice copy needed", body="Please resend it.")
    session.flush()
    page = search_tickets(session, desk["agent"], TicketFilters.from_args({"q": "invoice", "status": "all",
                                                                            "sort": "subject", "dir": "desc"}))
    assert (page.total, page.capped) == (3, False)
    # ranked: "invoice" in the subject first, though the chosen sort alone would put it last
    assert page.items[0].subject == "Invoice copy needed"


def test_past_the_cap_the_ticket_asked_for_by_number_still_leads(session, desk, monkeypatch):
    from mets.services.tickets import search

    monkeypatch.setattr(search, "COUNT_LIMIT", 1)
    vpn = desk["vpn"]
    make_ticket(vpn.entity, subject="Follow-up", body=f"About {vpn.number} again.")  # newer, found by the number too
    session.flush()
    page = search_tickets(session, desk["agent"], TicketFilters.from_args({"q": vpn.number, "status": "all"}))
    assert page.capped
    assert [t.subject for t in page.items][:2] == ["VPN drops hourly", "Follow-up"]


def test_a_list_without_a_search_is_counted_exactly(session, desk, monkeypatch):
    from mets.services.tickets import search

    monkeypatch.setattr(search, "COUNT_LIMIT", 1)
    page = search_tickets(session, desk["agent"], TicketFilters.from_args({"status": "all"}))
    assert (page.total, page.capped) == (3, False)


def test_all_matching_stays_exact_past_the_cap_and_a_views_count_says_more_than(session, desk, monkeypatch):
    from mets.services.tickets import search, views

    monkeypatch.setattr(search, "COUNT_LIMIT", 1)
    agent, wanted = desk["agent"], TicketFilters.from_args({"q": "invoice", "status": "all"})
    assert sorted(search.matching_ids(session, agent, wanted, 500)) == sorted([desk["invoice"].id,
                                                                                desk["printer"].id])
    saved = views.save_view(session, agent, "Invoices", wanted)
    assert [(link.count, link.capped) for link in views.view_links(session, agent, TicketFilters())
            if link.saved is saved] == [(1, True)]  # "1+": more than the cap
    monkeypatch.setattr(search, "COUNT_LIMIT", 2)
    assert [(link.count, link.capped) for link in views.view_links(session, agent, TicketFilters())
            if link.saved is saved] == [(2, False)]  # exact up to the cap
