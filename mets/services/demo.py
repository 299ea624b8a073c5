"""Demo data: a company with two departments, an unrelated entity, staff, customers and ~300 tickets."""
import random
from datetime import timedelta

from sqlalchemy import func, select

from mets import clock, transaction
from mets.models import CsatResponse, Entity, Ticket, User
from mets.models import SlaRule
from mets.services import automation, escalation, macros, metrics, tickets
from mets.services.directory import access
from mets.services.directory import categories, entities
from mets.services.hours import admin as hours_edit
from mets.services.notifications import notify
from mets.services.sla import tick as sla_tick
from mets.services.directory import users

DEMO_PASSWORD = "demo-password"
ADMIN_EMAIL = "admin@mets.example"

ENTITIES = [
    # slug, name, parent slug, time zone, sender, portal (False: takes no portal requests; "default": preselected)
    ("acme", "Acme Corp", None, "America/New_York", "support@acme.example", "default"),
    ("billing", "Acme Billing", "acme", "America/New_York", "billing@acme.example", True),
    ("it", "Acme IT", "acme", "Europe/London", "it@acme.example", True),
    ("globex", "Globex", None, "Europe/Berlin", "help@globex.example", False),  # its customers write by email
]
STAFF = [
    # email, name, [(entity slug, role, tier, skills)]
    ("maria@acme.example", "Maria Manager", [("acme", "manager", 3, ["billing", "escalations"])]),
    ("bill@acme.example", "Bill Agent", [("billing", "agent", 1, ["billing", "refunds"])]),
    ("bea@acme.example", "Bea Senior", [("billing", "agent", 2, ["billing", "invoices"])]),
    ("ian@acme.example", "Ian Agent", [("it", "agent", 1, ["hardware"])]),
    ("nora@acme.example", "Nora Network", [("it", "agent", 2, ["network", "hardware"])]),
    ("greta@globex.example", "Greta Manager", [("globex", "manager", 2, [])]),
    ("gus@globex.example", "Gus Agent", [("globex", "agent", 1, ["shipping"])]),
]
FIRST = ["Alice", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Liam",
         "Mia", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wen", "Yusuf"]
LAST = ["Smith", "Okafor", "Novak", "Garcia", "Lindqvist", "Tanaka", "Rossi", "Dubois", "Khan", "Meyer"]
DOMAINS = ["example.com", "example.org", "mail.example", "vip.example", "bigcustomer.example"]
SUBJECTS = {
    "billing": ["Charged twice for {m}", "Refund for order #{n}", "Invoice {n} shows the wrong VAT",
                "Cannot update my card", "Why did my plan price change?"],
    "it": ["Laptop will not boot after update", "VPN drops every {n} minutes", "Printer on floor {d} offline",
           "Need access to the {m} share", "Monitor flickers"],
    "acme": ["Question about my account", "Feedback on your service", "Password reset link not arriving"],
    "globex": ["Parcel {n} not delivered", "Damaged item in order #{n}", "Change delivery address",
               "Customs fees on order #{n}"],
}
CATEGORIES = {"billing": ["billing", "refunds"], "it": ["hardware", "network", "access"], "acme": ["general"],
              "globex": ["shipping", "returns"]}
AGENT_REPLIES = ["Thanks for reaching out. I'm looking into this now.",
                 "Could you send a screenshot of what you see?",
                 "I've applied a fix on our side. Can you check again?",
                 "This is resolved now. Let us know if anything else comes up."]
CUSTOMER_REPLIES = ["Thanks, here is the screenshot.", "Still happening, unfortunately.",
                    "That worked, thank you!", "Any update on this?"]
NOTES = ["Looks like the known issue from last week.", "Escalating internally to tier 2."]


def seed(session, tickets_count: int = 300, seed_value: int = 7) -> dict:
    """Create the demo install in an empty database and return what to print."""
    if session.scalar(select(func.count()).select_from(User)):
        raise RuntimeError("the database already has users; seed-demo only fills an empty one")
    rng = random.Random(seed_value)
    now = clock.now()
    by_slug: dict[str, Entity] = {}
    for slug, name, parent, tz, sender, portal in ENTITIES:
        by_slug[slug] = entities.create_entity(session, {
            "slug": slug, "name": name, "parent_id": by_slug[parent].id if parent else None, "timezone": tz,
            "sender_name": f"{name} Support", "sender_email": sender, "active": True,
            "portal_enabled": bool(portal), "portal_default": portal == "default"})
        for name_ in CATEGORIES[slug]:
            categories.add_category(session, by_slug[slug], name_)
    _hours_and_rules(session, by_slug, now)
    macros.create_macro(session, by_slug["acme"], {
        "name": "Ask for a screenshot", "status": "pending",
        "body": "Hello {{ customer_name }},\n\nCould you send a screenshot of what you see? That helps us find "
                "it quickly.\n\n{{ actor_name }}"})
    macros.create_macro(session, by_slug["billing"], {
        "name": "Refund issued", "status": "resolved", "category": "refunds",
        "body": "Hello {{ customer_name }},\n\nWe have refunded the charge ({{ ticket_number }}): it shows on your "
                "statement within 5 working days.\n\n{{ actor_name }}, {{ entity_name }}"})
    admin = users.create_user(session, {"email": ADMIN_EMAIL, "name": "Ada Admin", "kind": "staff",
                                        "password": DEMO_PASSWORD, "is_admin": True})
    staff = []
    for email, name, memberships in STAFF:
        user = users.create_user(session, {"email": email, "name": name, "kind": "staff", "password": DEMO_PASSWORD})
        for slug, role, tier, skills in memberships:
            users.set_membership(session, user, by_slug[slug], role, tier, skills)
        staff.append(user)
    customers = []
    for i in range(36):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        email = f"{first}.{last}{i}@{DOMAINS[i % len(DOMAINS)]}".lower()
        customers.append(users.get_or_create_customer(session, email, f"{first} {last}"))
    members = {slug: access.members_of(session, entity) for slug, entity in by_slug.items()}
    # 30 days of history: nobody is mailed about it and no rule acts on it (new tickets from here on do); its
    # response metrics are written afterwards from its ticket events, as `flask mets metrics-rebuild` does.
    since = now - timedelta(days=30)
    with transaction.muted(session, notify.MUTED, automation.MUTED, metrics.MUTED):
        # Oldest first, so ticket numbers rise with creation time as they would in real life.
        for created in sorted(now - timedelta(days=rng.uniform(0, 30)) for _ in range(tickets_count)):
            _demo_ticket(session, rng, now, created, by_slug, members, admin, customers)
        session.commit()
        metrics.rebuild(session, since)
        _demo_surveys(session, random.Random(seed_value + 14), now)
        session.commit()
        sla_tick.tick(session, now=now)  # act on the points the last 30 days passed, as the worker would have
    return {"admin": ADMIN_EMAIL, "password": DEMO_PASSWORD, "staff": [u.email for u in staff],
            "customer": customers[0].email, "tickets": tickets_count}


def _hours_and_rules(session, by_slug, now):
    """Own hours and public holidays for Acme, Acme IT and Globex; SLA rules for Acme (its departments
    inherit them) and a 24/7 rule for Globex."""
    years = (now.year - 1, now.year, now.year + 1)
    for slug, country, week in (("acme", "US", {d: [("09:00", "17:00")] for d in range(5)}),
                                ("it", "GB", {d: [("08:00", "18:00")] for d in range(5)}),
                                ("globex", "DE", {d: [("08:00", "12:00"), ("13:00", "17:00")] for d in range(5)})):
        entity = by_slug[slug]
        hours_edit.set_custom_hours(session, entity, True)
        for day in range(7):
            hours_edit.set_weekday(session, entity, day, week.get(day, []))
        for year in years:
            hours_edit.import_holidays(session, entity, country, year)
    acme, globex = by_slug["acme"], by_slug["globex"]
    session.add_all([
        SlaRule(entity_id=acme.id, name="Urgent", priority="urgent", position=0, response_minutes=60,
                next_reply_minutes=120, resolution_minutes=8 * 60,
                warnings=[{"percent": 80}, {"minutes_before": 15}]),
        SlaRule(entity_id=acme.id, name="VIP customers", position=1, response_minutes=2 * 60,
                next_reply_minutes=4 * 60, resolution_minutes=16 * 60,
                conditions={"all": [{"field": "customer.domain", "op": "is", "value": "vip.example"}]}),
        SlaRule(entity_id=acme.id, name="Standard", position=2, response_minutes=4 * 60,
                next_reply_minutes=8 * 60, resolution_minutes=24 * 60),
        SlaRule(entity_id=globex.id, name="Globex 24/7", position=0, business_hours_only=False,
                response_minutes=2 * 60, next_reply_minutes=4 * 60, resolution_minutes=24 * 60),
    ])
    session.flush()
    # Escalation for Acme (its departments inherit it): urgent tickets go to the assignee and the managers at 75%
    # of the resolution target, then one level up and to a senior agent at the breach; others after 16 business
    # hours without resolution.
    escalation.create_policy(session, acme, name="Urgent tickets", clock="resolution", now=now,
                             conditions={"all": [{"field": "priority", "op": "is", "value": "urgent"}]}, levels=[
                                 {"trigger": "percent", "value": 75,
                                  "actions": [{"type": "notify", "to": ["assignee", "managers"]}]},
                                 {"trigger": "percent", "value": 100,
                                  "actions": [{"type": "notify", "to": ["parent_managers", "managers"]},
                                              {"type": "reassign_tier", "tier": "next"}]}])
    escalation.create_policy(session, acme, name="Unresolved tickets", clock="since_created", now=now, levels=[
        {"trigger": "after_duration", "value": 16 * 60, "actions": [{"type": "notify", "to": ["settings"]}]}])


def _demo_ticket(session, rng, now, created, by_slug, members_by_slug, admin, customers):
    slug = rng.choices(["billing", "it", "acme", "globex"], weights=[4, 4, 1, 3])[0]
    entity = by_slug[slug]
    customer = rng.choice(customers)
    subject = rng.choice(SUBJECTS[slug]).format(m=rng.choice(["March", "April", "May"]), n=rng.randint(1000, 9999),
                                                d=rng.randint(1, 9))
    priority = rng.choices(["low", "normal", "high", "urgent"], weights=[2, 6, 3, 1])[0]
    ticket = tickets.create_ticket(
        session, actor=customer, entity=entity, customer=customer, subject=subject,
        body=f"Hello,\n\n{subject}. Could you help?\n\nThanks,\n{customer.name}", priority=priority,
        category=rng.choice(CATEGORIES[slug]),
        via=rng.choice(["portal", "email"]) if entity.portal_enabled else "email", now=created).ticket
    members = members_by_slug[slug]
    at = created
    if members and rng.random() < 0.85:
        at += timedelta(minutes=rng.randint(5, 240))
        agent = rng.choice(members)
        tickets.assign(session, ticket, agent, actor=admin, now=min(at, now))
        for step in range(rng.randint(0, 4)):
            at += timedelta(minutes=rng.randint(10, 600))
            if at >= now:
                break
            if step % 2 == 0:
                internal = rng.random() < 0.15
                body = rng.choice(NOTES if internal else AGENT_REPLIES)
                tickets.add_reply(session, ticket, actor=agent, body=body, internal=internal, now=at)
                if not internal and rng.random() < 0.5:
                    tickets.change_status(session, ticket, "pending", actor=agent, now=at)
            else:
                tickets.add_reply(session, ticket, actor=customer, body=rng.choice(CUSTOMER_REPLIES), now=at)
        final = rng.choices(["keep", "resolved", "closed", "on_hold"], weights=[5, 3, 2, 1])[0]
        at += timedelta(minutes=rng.randint(30, 900))
        if final != "keep" and at < now and ticket.status != "closed":
            tickets.change_status(session, ticket, final, actor=agent, now=at)



def _demo_surveys(session, rng, now) -> None:
    """The history's satisfaction surveys, as the tick would have sent them a day after each resolution (no mail):
    about 60% answered, mostly satisfied."""
    resolved = session.scalars(select(Ticket).where(Ticket.status.in_(("resolved", "closed")),
                                                    Ticket.resolved_at.is_not(None)).order_by(Ticket.id))
    for ticket in resolved:
        sent = ticket.resolved_at + timedelta(days=1)
        if sent >= now:
            continue
        answered = rng.random() < 0.6
        score = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 2, 4, 5])[0] if answered else None
        session.add(CsatResponse(
            ticket_id=ticket.id, resolved_at=ticket.resolved_at, entity_id=ticket.entity_id,
            customer_id=ticket.customer_id, priority=ticket.priority, sent_at=sent,
            expires_at=sent + timedelta(days=14), score=score, comment="",
            answered_at=min(sent + timedelta(hours=rng.randint(1, 48)), now) if answered else None,
            agent_id=ticket.assignee_id))
    session.flush()
