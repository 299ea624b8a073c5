"""Benchmark: 1,000 automation rules on one trigger against one ticket event, next to business-rules and rule-engine.

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/python bench/rules.py

1,000 active rules on `ticket_created`, each with four conditions: priority is P, category is C,
subject contains W, hours since created > N (seeded random P of 4 priorities, C of 20
categories, W of 10 words, N of 0-48). 200 ticket events (seeded random priority, category,
three-word subject, age 0-72 h). No database: the rules and tickets are transient model objects.

What is timed, per event:
  - METS: building the evaluation context (`automation.context_for_event`), asking the rule
    index for the candidates on (trigger, entity) and evaluating each (
    `rule.matches`). The rules are compiled and indexed once, before: the index files each rule
    under the value of its most selective top-level "is" condition (here the category).
  - business-rules 1.1.1 (venmo): building the Variables object and `run_all` over the same
    1,000 rules in its JSON format (no-op action). Variables are computed once per event.
  - rule-engine 5.1.0: building the data dict and `Rule.matches` for each of the 1,000 rules,
    each compiled once before timing (one shared Context).
Text comparisons in METS ignore case; for the peers the values are lowercased once per event
and in the rules, so all three answer the same question. The three must agree on which rules
match for every event (checked, not timed); the run stops with a message if they do not.

Each engine is timed once per event per round, in a shuffled order per event (so machine noise
and cold caches fall on all three alike); the figure per engine is the median over all of them.
"""
import argparse
import dataclasses
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import business_rules  # noqa: E402
import rule_engine  # noqa: E402
from business_rules.actions import BaseActions, rule_action  # noqa: E402
from business_rules.engine import run_all  # noqa: E402
from business_rules.variables import BaseVariables, numeric_rule_variable, string_rule_variable  # noqa: E402

from mets.models import PRIORITIES, AutomationRule, Ticket  # noqa: E402
from mets.services import automation  # noqa: E402

TARGET = 5
TRIGGER = "ticket_created"
ENTITY_ID = 1
CATEGORIES = ["billing", "refunds", "hardware", "software", "network", "accounts", "shipping", "returns",
              "warranty", "security", "onboarding", "training", "licensing", "integrations", "mobile", "email",
              "printing", "storage", "backup", "other"]
WORDS = ["refund", "invoice", "broken", "password", "urgent", "delivery", "login", "crash", "upgrade", "error"]
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=timezone.utc)


# --- the rules, three ways ----------------------------------------------------------------------

def make_specs(rng: random.Random, count: int) -> list[dict]:
    return [{"id": i + 1, "priority": rng.choice(PRIORITIES), "category": rng.choice(CATEGORIES),
             "word": rng.choice(WORDS), "hours": rng.randint(0, 48)} for i in range(count)]


def mets_rule(spec: dict, entity_id) -> AutomationRule:
    conditions = {"all": [{"field": "priority", "op": "is", "value": spec["priority"]},
                          {"field": "category", "op": "is", "value": spec["category"]},
                          {"field": "subject", "op": "contains", "value": spec["word"]},
                          {"field": "hours_since_created", "op": "gt", "value": spec["hours"]}]}
    return AutomationRule(id=spec["id"], name=f"rule {spec['id']}", entity_id=entity_id, trigger_event=TRIGGER,
                          conditions=conditions, actions=[{"type": "close"}], is_active=True,
                          stop_processing=False, execution_order=spec["id"])


def business_rule(spec: dict) -> dict:
    return {"conditions": {"all": [
        {"name": "priority", "operator": "equal_to", "value": spec["priority"]},
        {"name": "category", "operator": "equal_to", "value": spec["category"]},
        {"name": "subject", "operator": "contains", "value": spec["word"]},
        {"name": "hours_since_created", "operator": "greater_than", "value": spec["hours"]}]},
        "actions": [{"name": "matched", "params": {"rule_id": spec["id"]}}]}


def rule_engine_text(spec: dict) -> str:
    return (f"priority == {spec['priority']!r} and category == {spec['category']!r} and "
            f"{spec['word']!r} in subject and hours_since_created > {spec['hours']}")


class TicketVariables(BaseVariables):
    """business-rules' view of a ticket: values computed once per event, lowercased like METS compares."""

    def __init__(self, ticket: Ticket, now: datetime):
        self._priority = ticket.priority.casefold()
        self._category = (ticket.category or "").casefold()
        self._subject = ticket.subject.casefold()
        self._hours = (now - ticket.created_at).total_seconds() / 3600

    @string_rule_variable
    def priority(self):
        return self._priority

    @string_rule_variable
    def category(self):
        return self._category

    @string_rule_variable
    def subject(self):
        return self._subject

    @numeric_rule_variable
    def hours_since_created(self):
        return self._hours


class NoActions(BaseActions):
    @rule_action(params={"rule_id": "numeric"})
    def matched(self, rule_id):
        pass


class RecordingActions(BaseActions):
    def __init__(self):
        self.ids = set()

    @rule_action(params={"rule_id": "numeric"})
    def matched(self, rule_id):
        self.ids.add(rule_id)


# --- the events ---------------------------------------------------------------------------------

def make_tickets(rng: random.Random, count: int) -> list[Ticket]:
    tickets = []
    for n in range(count):
        words = rng.sample(WORDS, 3)
        subject = " ".join(w.upper() if rng.random() < 0.3 else w.capitalize() for w in words) + f" #{n}"
        created = NOW - timedelta(seconds=rng.uniform(0, 72 * 3600))
        tickets.append(Ticket(id=n + 1, entity_id=ENTITY_ID, number=f"ACME-{n + 1}", subject=subject,
                              priority=rng.choice(PRIORITIES),
                              category=rng.choice(CATEGORIES).capitalize() if rng.random() < 0.5
                              else rng.choice(CATEGORIES),
                              status="new", created_at=created, updated_at=created, escalation_level=0))
    return tickets


CHANGES = {"status": [None, "new"], "priority": [None, "normal"]}  # no assignee_id: no session lookups


def mets_event(index, ticket: Ticket) -> list:
    ctx = automation.context_for_event(None, ticket, TRIGGER, CHANGES, actor=None, kind="system", reply=None, now=NOW)
    return [rule.id for rule in index.candidates(TRIGGER, [ENTITY_ID], ctx) if rule.matches(ctx)]


def business_event(rule_list, ticket: Ticket, actions) -> None:
    run_all(rule_list=rule_list, defined_variables=TicketVariables(ticket, NOW), defined_actions=actions,
            stop_on_first_trigger=False)


def rule_engine_event(compiled, ticket: Ticket) -> list:
    data = {"priority": ticket.priority.casefold(), "category": (ticket.category or "").casefold(),
            "subject": ticket.subject.casefold(),
            "hours_since_created": (NOW - ticket.created_at).total_seconds() / 3600}
    return [rule_id for rule_id, rule in compiled if rule.matches(data)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over all events, interleaved")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    specs = make_specs(rng, args.rules)
    tickets = make_tickets(rng, args.events)

    started = time.perf_counter()
    index = automation.RuleIndex([automation.compile_rule(mets_rule(s, ENTITY_ID)) for s in specs])
    mets_build = time.perf_counter() - started
    # The same rules split between "all entities" and the ticket's entity: the index merges two buckets.
    split = automation.RuleIndex([automation.compile_rule(mets_rule(s, None if s["id"] % 2 else ENTITY_ID))
                                  for s in specs])
    # No field index (every rule evaluated, as the peers do): what the closures alone are worth.
    flat = automation.RuleIndex([dataclasses.replace(automation.compile_rule(mets_rule(s, ENTITY_ID)), keys=())
                                 for s in specs])
    business_list = [business_rule(s) for s in specs]
    shared = rule_engine.Context()
    started = time.perf_counter()
    compiled = [(s["id"], rule_engine.Rule(rule_engine_text(s), context=shared)) for s in specs]
    rule_engine_build = time.perf_counter() - started

    # Correctness: every engine picks the same rules for every event.
    total = 0
    for ticket in tickets:
        ours = mets_event(index, ticket)
        recorder = RecordingActions()
        business_event(business_list, ticket, recorder)
        theirs = rule_engine_event(compiled, ticket)
        if not (set(ours) == recorder.ids == set(theirs)) or sorted(mets_event(split, ticket)) != sorted(ours) \
                or mets_event(flat, ticket) != ours:
            print(f"engines disagree on ticket {ticket.number} ({ticket.priority}, {ticket.category!r}, "
                  f"{ticket.subject!r}): METS {sorted(ours)}, business-rules {sorted(recorder.ids)}, "
                  f"rule-engine {sorted(theirs)}")
            return 1
        total += len(ours)

    no_actions = NoActions()
    runners = {"mets": lambda t: mets_event(index, t), "split": lambda t: mets_event(split, t),
               "flat": lambda t: mets_event(flat, t),
               "business": lambda t: business_event(business_list, t, no_actions),
               "rule_engine": lambda t: rule_engine_event(compiled, t)}
    samples = {k: [] for k in runners}
    clock = time.perf_counter
    order = list(runners)
    for _ in range(args.rounds):
        for ticket in tickets:
            rng.shuffle(order)  # whoever runs right after another engine finds colder caches: share that out
            for key in order:
                run = runners[key]
                started = clock()
                run(ticket)
                samples[key].append(clock() - started)

    med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    p90 = {k: statistics.quantiles(v, n=10)[-1] * 1e6 for k, v in samples.items()}
    candidates = statistics.mean(len(index.candidates(TRIGGER, [ENTITY_ID], automation.context_for_event(
        None, t, TRIGGER, CHANGES, actor=None, kind="system", reply=None, now=NOW))) for t in tickets)
    n = args.rules
    print(f"{n} rules on {TRIGGER}, 4 conditions each; {args.events} ticket events x {args.rounds} rounds; "
          f"business-rules {getattr(business_rules, '__version__', '1.1.1')}, rule-engine {rule_engine.__version__}")
    print(f"rules matched: {total} over {args.events} events ({total / args.events:.2f} per event); "
          f"all three engines agree on every event")
    print(f"METS compile + index {n} rules once: {mets_build * 1000:.1f} ms; "
          f"rule-engine compile {n} rules once: {rule_engine_build * 1000:.1f} ms")
    print(f"METS: about {candidates:.0f} of {n} rules reach their conditions "
          "(the index files each under its most selective pinned field)")
    print(f"{'engine':<52}{'median':>12}{'p90':>12}")
    rows = [("METS (context + index + evaluate)", "mets"),
            ("METS, rules split over all-entities and the entity", "split"),
            ("METS without the field index (all 1,000 evaluated)", "flat"),
            ("business-rules run_all (Variables + 1,000 rules)", "business"),
            ("rule-engine (data dict + 1,000 Rule.matches)", "rule_engine")]
    for label, key in rows:
        print(f"{label:<52}{med[key]:>9.1f} us{p90[key]:>9.1f} us")
    ratio = med["business"] / med["mets"]
    print(f"METS vs rule-engine: {med['rule_engine'] / med['mets']:.1f}x faster")
    print(f"bench rules: {ratio:.1f}x faster than business-rules (target >= {TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
