"""The `flask --app wsgi mets ...` commands a newcomer and an operator run."""
from sqlalchemy import select

from mets.models import Entity, Membership, Reply, Ticket, User
from mets.services import users
from tests.conftest import count_rows



def test_seed_demo_builds_a_realistic_install_once(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mets", "seed-demo"])
    assert result.exit_code == 0, result.output
    assert "admin@mets.example / demo-password" in result.output

    acme = session.scalar(select(Entity).where(Entity.slug == "acme"))
    assert sorted(child.name for child in acme.children) == ["Acme Billing", "Acme IT"]
    assert count_rows(session, Entity, Entity.parent_id.is_(None)) == 2  # Acme and the unrelated Globex
    assert count_rows(session, Ticket) == 300
    assert count_rows(session, Reply) > 300
    assert count_rows(session, User, User.kind == "customer") >= 30
    assert {m.tier for m in session.scalars(select(Membership))} >= {1, 2, 3}
    assert users.authenticate(session, "admin@mets.example", "demo-password").is_admin
    # SLA clocks run on the demo: most tickets have a rule, and the catch-up tick found breaches.
    assert count_rows(session, Ticket, Ticket.sla_rule_id.is_not(None)) > 250
    assert count_rows(session, Ticket, Ticket.sla_response_breached.is_(True)) > 0
    # Numbers rise with creation time within each entity.
    for entity in session.scalars(select(Entity)):
        rows = session.execute(select(Ticket.seq, Ticket.created_at).where(Ticket.entity_id == entity.id)
                               .order_by(Ticket.seq)).all()
        assert [r.created_at for r in rows] == sorted(r.created_at for r in rows)

    again = runner.invoke(args=["mets", "seed-demo"])
    assert again.exit_code != 0 and "already has users" in again.output
    idempotent = runner.invoke(args=["mets", "seed-demo", "--if-empty"])
    assert idempotent.exit_code == 0 and "not seeding again" in idempotent.output
    assert count_rows(session, Ticket) == 300


def test_create_admin_makes_a_first_administrator(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mets", "create-admin", "--email", "Boss@Example.com", "--name", "Boss",
                                 "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    assert users.authenticate(session, "boss@example.com", "a-long-password").is_admin
    short = runner.invoke(args=["mets", "create-admin", "--email", "x@example.com", "--name", "X",
                                "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output
