"""Response headers, and the secret key every cookie and link is signed with.

The attacker frames the app on their site (clickjacking), injects markup that would run script,
or signs a session cookie with the key the code used to ship with.
"""
import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
from flask.json.tag import TaggedJSONSerializer
from flask_login.utils import _create_identifier
from itsdangerous import URLSafeTimedSerializer

from mets import create_app
from mets.config import Config
from mets.extensions import db
from tests.conftest import login, login_customer
from tests.factories import make_customer, make_entity, make_staff, make_ticket

TEMPLATES = Path(__file__).resolve().parents[2] / "mets" / "templates"


@pytest.fixture
def world(session):
    acme = make_entity("Acme", "acme")
    admin = make_staff(name="Ada Admin", is_admin=True)
    carl = make_customer("Carl Customer")
    ticket = make_ticket(acme, customer=carl, subject="Charged twice")
    session.commit()
    return admin, carl, ticket


def policy(response) -> dict[str, str]:
    csp = response.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in csp.split(";") if part.strip()}


def assert_protected(response):
    csp = policy(response)
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/login", "/portal/login", "/no-such-page", "/static/css/mets.css"])
def test_every_answer_carries_the_headers_even_anonymous_and_errors(client, path):
    assert_protected(client.get(path))


def test_staff_and_customer_pages_carry_them(client, world):
    admin, carl, ticket = world
    login(client, admin)
    for path in ("/tickets/", f"/tickets/{ticket.number}", "/admin/users", "/admin/automation/new"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_protected(response)
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    client.post("/logout")
    login_customer(client, carl)
    assert_protected(client.get(f"/portal/tickets/{ticket.number}"))


def test_only_pages_that_show_email_html_allow_inline_styles(client, world, session):
    """Mail HTML is styled inline and its sandboxed srcdoc iframe inherits the page's policy."""
    admin, _, ticket = world
    login(client, admin)
    entity_id = ticket.entity_id
    page = client.get(f"/admin/mail/templates/{entity_id}/ticket-created-customer")
    assert page.status_code == 200
    csp = policy(page)
    assert csp["style-src"] == "'self' 'unsafe-inline'" and csp["script-src"] == "'self'"
    assert '<iframe class="mt-html" sandbox=""' in page.get_data(as_text=True)
    assert policy(client.get("/tickets/"))["style-src"] == "'self'"


def test_templates_have_no_inline_script_or_handlers_the_policy_would_block():
    found = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\son[a-z]+\s*=", r"\sstyle\s*=", r"<style\b",
                        r"javascript:"):
            found += [f"{path.relative_to(TEMPLATES)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert found == []


def test_htmx_is_told_not_to_inject_styles_or_evaluate_code(client):
    page = client.get("/login").get_data(as_text=True)
    config = re.search(r'<meta name="htmx-config" content=\'(.*?)\'>', page).group(1)
    assert '"includeIndicatorStyles": false' in config and '"allowEval": false' in config


# --- the secret key ---------------------------------------------------------------------------

OLD_DEFAULT = "dev-only-change-me"


def forge_session(secret_key: str, data: dict) -> str:
    """A session cookie as Flask signs it, with `secret_key`."""
    serializer = URLSafeTimedSerializer(secret_key, salt="cookie-session", serializer=TaggedJSONSerializer(),
                                        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1})
    return serializer.dumps(data)


def embedded_app(url: str, instance: Path, **overrides):
    """The app as `make run` starts it: SQLite, and whatever key the settings give without SECRET_KEY."""
    if os.environ.get("SECRET_KEY"):
        pytest.skip("SECRET_KEY is set in this environment: there is no embedded run to test")
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "SECRET_KEY": Config.SECRET_KEY,
                       "METS_INSTANCE_DIR": str(instance), "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
                       **overrides})


def test_a_session_forged_with_the_old_default_key_signs_nobody_in(database_urls, tmp_path):
    app = embedded_app(database_urls("sqlite"), tmp_path / "instance")
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        admin = make_staff(name="Ada Admin", is_admin=True)
        db.session.commit()
        client = app.test_client()
        with app.test_request_context(environ_base=client.environ_base):
            identifier = _create_identifier()  # what session protection checks: the forger's own address and browser
        # Even knowing the user's session token, and the id as the old code wrote it.
        for user_id in (admin.get_id(), str(admin.id)):
            forged = {"_user_id": user_id, "_fresh": True, "_id": identifier}
            client.set_cookie("session", forge_session(OLD_DEFAULT, forged))
            response = client.get("/admin/users")
            assert response.status_code == 302 and response.location.startswith("/login")
        db.session.remove()
        db.engine.dispose()


def test_the_embedded_run_makes_its_own_key_once_and_keeps_it(tmp_path):
    instance = tmp_path / "instance"
    url = f"sqlite:///{tmp_path / 'mets.db'}"

    first = embedded_app(url, instance)
    key_file = instance / "secret_key"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.secret_key == key_file.read_text().strip() and len(first.secret_key) >= 64
    assert first.secret_key != OLD_DEFAULT

    # Another process (the worker, the next start) reads the same key: its links and cookies stay valid.
    second = embedded_app(url, instance)
    assert second.secret_key == first.secret_key


def test_a_production_start_without_a_key_refuses_loudly(tmp_path):
    with pytest.raises(RuntimeError, match=r"SECRET_KEY is not set.*secrets\.token_hex"):
        create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://mets@db.invalid/mets", "SECRET_KEY": None,
                    "METS_INSTANCE_DIR": str(tmp_path)})
    assert not (tmp_path / "secret_key").exists()  # no key file for a production install


@pytest.mark.parametrize("url", ["postgresql+psycopg://mets@db.invalid/mets", "sqlite:///{tmp}/mets.db"])
@pytest.mark.parametrize("weak", [OLD_DEFAULT, "secret", " Change-Me "])
def test_a_known_weak_key_is_refused_everywhere(tmp_path, url, weak):
    with pytest.raises(RuntimeError, match="known, published value"):
        create_app({"SQLALCHEMY_DATABASE_URI": url.format(tmp=tmp_path), "SECRET_KEY": weak,
                    "METS_INSTANCE_DIR": str(tmp_path)})


def test_a_weak_key_file_is_refused_too(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "secret_key").write_text(OLD_DEFAULT + "\n")
    with pytest.raises(RuntimeError, match="known, published value"):
        embedded_app(f"sqlite:///{tmp_path / 'mets.db'}", instance)


def test_a_production_start_with_a_real_key_starts(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://mets@db.invalid/mets",
                      "SECRET_KEY": "3f1c0a7e9b2d4c6e8a0b1c2d3e4f5a6b", "METS_INSTANCE_DIR": str(tmp_path)})
    assert app.secret_key == "3f1c0a7e9b2d4c6e8a0b1c2d3e4f5a6b"

