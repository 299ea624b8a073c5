"""Issue 15's "done when", with every part real: gunicorn serving wsgi:app as the README runs it, `python worker.py`
on a private redis-server, PostgreSQL, and examples/api_walkthrough.py run as a separate program that knows only the
published OpenAPI document, a manager's token and the endpoint's secret. It lists her breached tickets, replies to
one, and receives and verifies the signed webhook for that reply on its own receiver."""
import subprocess
import sys
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import select

from mets import clock
from mets.models import Reply
from mets.services.directory import api_tokens
from mets.services.sla import tick as sla_tick
from mets.services.webhooks import endpoints
from tests.factories import make_customer, make_entity, make_rule, make_staff, make_ticket
from tests.integration.mail_helpers import (ROOT, app_overrides, end_process, mail_settings,  # noqa: F401 (fixtures)
                                            start_worker, worker_env)
from tests.servers import free_port, wait_until

pytestmark = [pytest.mark.postgresql, pytest.mark.parametrize("backend", ["postgresql"]), pytest.mark.committing]

HOOK_SETTINGS = {"WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_TIMEOUT": 3}


@pytest.fixture
def mail_config(redis_server, smtp_server) -> dict:
    return {**mail_settings(redis_server.url, smtp_server.port), **HOOK_SETTINGS, "WEBHOOK_ALLOW_PRIVATE": True}


@pytest.fixture
def web_server(app, tmp_path, mail_config):
    """gunicorn serving wsgi:app on a free port, with the app's database, secret and queues."""
    port = free_port()
    env = worker_env(app.config, mail_config, tmp_path / "instance")
    log = open(tmp_path / "gunicorn.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_until(answers, timeout=30, what="gunicorn to answer")
        yield base
    finally:
        end_process(process, group=True)
        log.close()
        print((tmp_path / "gunicorn.log").read_text(errors="replace")[-3000:])


def test_a_script_with_the_openapi_document_and_a_token_replies_to_a_breached_ticket_and_gets_the_signed_webhook(
        app, session, web_server, start_worker):
    acme, globex = make_entity("Acme", "acme"), make_entity("Globex", "globex")
    maria = make_staff(acme, role="manager", name="Maria Manager", email="maria@acme.example")
    make_rule(acme, "Standard", response_minutes=60, business_hours_only=False)
    make_rule(globex, "Globex", response_minutes=60, business_hours_only=False)
    customer = make_customer()
    with clock.freeze(clock.now() - timedelta(hours=3)):  # answered by nobody for three hours: breached
        late = make_ticket(acme, customer=customer, subject="Invoice missing")
        hidden = make_ticket(globex, customer=customer, subject="Not Maria's to see")
    fresh = make_ticket(acme, customer=customer, subject="Just arrived")
    sla_tick.tick(session, now=clock.now())
    token = api_tokens.create_token(session, maria, "walkthrough", clock.now()).token
    listen = f"127.0.0.1:{free_port()}"
    hook = endpoints.create_endpoint(session, acme, {"url": f"http://{listen}/hook",
                                                     "event_types": ["ticket.reply_added"]})
    session.commit()
    start_worker(**HOOK_SETTINGS)

    run = subprocess.run([sys.executable, "examples/api_walkthrough.py", "--base", web_server, "--token", token,
                          "--secret", hook.secret, "--listen", listen, "--reply", "On it: a new invoice is coming.",
                          "--timeout", "45"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("openapi: 3.1")
    assert lines[1] == f"breached: 1 {late.number}"  # not the fresh one, nor Globex's (not hers to see)
    assert lines[2].startswith(f"replied: {late.number} reply ")
    assert lines[-1].startswith(f"webhook: ticket.reply_added {late.number} verified (msg_")

    session.expire_all()
    [reply] = session.scalars(select(Reply).where(Reply.ticket_id == late.id, Reply.author_id == maria.id)).all()
    assert reply.body == "On it: a new invoice is coming." and not reply.internal
    assert session.scalars(select(Reply).where(Reply.ticket_id.in_([fresh.id, hidden.id]),
                                               Reply.author_id == maria.id)).all() == []
    session.rollback()
