"""Guessing passwords and flooding mailboxes: the sign-in doors count attempts (with the shipped limits).

Staff sign-in: 5 failures per address and 20 per client in 15 minutes, then even the right
password is refused with a 429. A wrong address costs a password hash like a wrong password.
Portal links: 5 per address (more get the same page but no mail) and 30 per client (then a 429)
per hour.
"""
import time

import pytest

from mets.models import QueuedEmail
from mets.models import users as user_model
from tests.conftest import CSRFClient, count_rows, login, text_of
from tests.factories import PASSWORD, make_customer, make_entity, make_staff


# The timing test measures the production hash (scrypt); the others keep the suite's cheap one.
REAL_HASH = {"test_an_unknown_address_takes_as_long_as_a_wrong_password"}
# Behind one proxy that sets X-Forwarded-For.
BEHIND_PROXY = {"test_behind_a_trusted_proxy_each_client_has_its_own_limit"}


@pytest.fixture
def app_overrides(request):
    overrides = {}
    if request.function.__name__ in REAL_HASH:
        overrides["PASSWORD_HASH_METHOD"] = "scrypt"
    if request.function.__name__ in BEHIND_PROXY:
        overrides["TRUSTED_PROXY_COUNT"] = 1
    return overrides


@pytest.fixture
def sam(session):
    user = make_staff(make_entity("Acme", "acme"), name="Sam Staff", email="sam@staff.example")
    session.commit()
    return user


def signed_in(client) -> bool:
    return client.get("/tickets/").status_code == 200


def sign_in(client, email, password):
    return client.post("/login", data={"email": email, "password": password})


def test_the_shipped_limits_are_the_ones_tested(app):
    assert app.config["LOGIN_RATE_LIMIT_ACCOUNT"] == "5 per 15 minutes"
    assert app.config["LOGIN_RATE_LIMIT_CLIENT"] == "20 per 15 minutes"
    assert app.config["PORTAL_LINK_RATE_LIMIT_ADDRESS"] == "5 per hour"
    assert app.config["PORTAL_LINK_RATE_LIMIT_CLIENT"] == "30 per hour"


def test_after_five_wrong_passwords_even_the_right_one_is_refused(client, sam):
    for _ in range(5):
        assert sign_in(client, sam.email, "wrong-password-123").status_code == 422

    response = sign_in(client, sam.email, PASSWORD)

    assert response.status_code == 429
    assert "Too many failed sign-ins" in text_of(response) and "minutes" in text_of(response)
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    assert not signed_in(client)


def test_an_unknown_address_is_throttled_like_a_known_one(client, sam):
    """Otherwise the 429 would tell which addresses have accounts."""
    answers = []
    for email in ("sam@staff.example", "nobody@staff.example"):
        for _ in range(5):
            sign_in(client, email, "wrong-password-123")
        answers.append(sign_in(client, email, "wrong-password-123"))
    assert [r.status_code for r in answers] == [429, 429]
    assert text_of(answers[0]) == text_of(answers[1])


def test_the_limit_is_per_address(client, sam):
    for _ in range(5):
        sign_in(client, "someone.else@staff.example", "wrong-password-123")
    assert sign_in(client, "SAM@staff.example ", PASSWORD).status_code == 302
    assert signed_in(client)


def test_the_address_count_is_per_spelling_of_the_address_stored(client, sam):
    """Upper case and spaces are the same address: they cannot buy an attacker more guesses."""
    for spelling in ("sam@staff.example", "SAM@staff.example", " Sam@Staff.Example", "sam@STAFF.example ",
                     "sam@staff.EXAMPLE"):
        sign_in(client, spelling, "wrong-password-123")
    assert sign_in(client, sam.email, PASSWORD).status_code == 429


def test_a_right_password_starts_the_address_afresh(client, sam):
    for _ in range(4):
        sign_in(client, sam.email, "wrong-password-123")
    login(client, sam)
    client.post("/logout")
    for _ in range(4):
        sign_in(client, sam.email, "wrong-password-123")
    assert sign_in(client, sam.email, PASSWORD).status_code == 302


def test_one_client_guessing_many_addresses_is_throttled(client, sam):
    for n in range(20):
        assert sign_in(client, f"guess{n}@staff.example", "wrong-password-123").status_code == 422

    response = sign_in(client, sam.email, PASSWORD)

    assert response.status_code == 429
    assert not signed_in(client)


def test_other_clients_are_not_throttled_by_one_guessing(app, sam):
    app.test_client_class = CSRFClient
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for n in range(20):
        attacker.post("/login", data={"email": f"guess{n}@staff.example", "password": "x"})
    assert attacker.post("/login", data={"email": "guess99@staff.example", "password": "x"}).status_code == 429

    colleague = app.test_client()
    colleague.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert colleague.post("/login", data={"email": sam.email, "password": PASSWORD}).status_code == 302


# --- the timing oracle --------------------------------------------------------------------------

@pytest.fixture
def hashes_checked(monkeypatch):
    """The password hashes sign-in checks a password against, in order."""
    seen = []
    real = user_model.check_password_hash

    def spy(pwhash, password):
        seen.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(user_model, "check_password_hash", spy)
    return seen


@pytest.mark.parametrize("email, password", [
    ("sam@staff.example", "wrong-password-123"),
    ("nobody@staff.example", "wrong-password-123"),  # no such user
    ("carl@example.com", PASSWORD),  # a customer: no password at all
    ("rita@staff.example", PASSWORD),  # deactivated
])
def test_every_refused_sign_in_checks_one_hash_made_like_real_ones(app, client, session, sam, hashes_checked,
                                                                     email, password):
    make_customer("Carl Customer", "carl@example.com")
    make_staff(name="Rita Retired", email="rita@staff.example", active=False)
    session.commit()

    assert sign_in(client, email, password).status_code == 422

    assert len(hashes_checked) == 1
    method = app.config["PASSWORD_HASH_METHOD"]
    assert hashes_checked[0].startswith(method + "$") and sam.password_hash.startswith(method + "$")


def test_an_unknown_address_takes_as_long_as_a_wrong_password(client, session):
    make_staff(name="Sam Staff", email="sam@staff.example")
    session.commit()

    def seconds(email):
        start = time.perf_counter()
        assert sign_in(client, email, "wrong-password-123").status_code == 422
        return time.perf_counter() - start

    # Interleaved, and the fastest of each: other processes on the machine only ever add time.
    pairs = [(seconds("sam@staff.example"), seconds("nobody@staff.example")) for _ in range(4)]
    known, unknown = min(k for k, _ in pairs), min(u for _, u in pairs)
    # Before the fix: 228 ms against 7.5 ms (a 30x gap). Now both pay one scrypt hash.
    assert unknown > 0.3 * known, (known, unknown)


# --- portal sign-in links -----------------------------------------------------------------------

def link_request(client, email):
    return client.post("/portal/login", data={"email": email})


def test_asking_again_and_again_mails_an_address_five_times_an_hour(client, session):
    make_customer("Carl Customer", "carl@example.com")
    session.commit()

    pages = [link_request(client, "carl@example.com") for _ in range(8)]

    assert [p.status_code for p in pages] == [200] * 8
    assert len({text_of(p) for p in pages}) == 1  # the same neutral page: nothing tells the asker
    assert count_rows(session, QueuedEmail, QueuedEmail.recipient_email == "carl@example.com") == 5


def test_a_client_asking_for_many_addresses_is_refused(client, session):
    for n in range(30):
        assert link_request(client, f"person{n}@example.com").status_code == 200
    queued = count_rows(session, QueuedEmail)

    response = link_request(client, "one.more@example.com")

    assert response.status_code == 429
    assert "Too many sign-in links" in text_of(response)
    assert count_rows(session, QueuedEmail) == queued == 30


# --- client addresses behind a proxy ----------------------------------------------------------

def guess_from(client, forwarded_for: str, n: int):
    return client.post("/login", data={"email": f"guess{n}@staff.example", "password": "x"},
                       headers={"X-Forwarded-For": forwarded_for})


def test_a_client_cannot_dodge_its_limit_with_a_forwarded_for_header(client, sam):
    """No trusted proxy (the default): X-Forwarded-For is the client's own claim and is ignored."""
    for n in range(20):
        guess_from(client, f"10.0.0.{n}", n)
    assert guess_from(client, "10.0.0.99", 99).status_code == 429


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(client, sam):
    for n in range(20):
        guess_from(client, "203.0.113.9", n)
    assert guess_from(client, "203.0.113.9", 99).status_code == 429
    response = client.post("/login", data={"email": sam.email, "password": PASSWORD},
                           headers={"X-Forwarded-For": "198.51.100.7"})
    assert response.status_code == 302
