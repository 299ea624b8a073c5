"""schemathesis against the API's own OpenAPI document, in process (WSGI), with a valid token: every operation,
with generated valid and invalid input, answers no 5xx, and each answer (status, content type, headers, body)
conforms to the document. Runs in CI like every test (no skip)."""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mets import clock
from mets.services.directory import api_tokens
from tests.factories import make_entity, make_rule, make_staff, make_ticket


@pytest.fixture
def app_overrides():
    return {"API_RATE_LIMIT": "100000 per minute"}  # generated calls must not meet the throttle (tested apart)


@pytest.fixture
def api_token(session, snapshot):
    return snapshot(lambda: _build(session))


def _build(session):
    acme = make_entity("Acme", "acme")
    billing = make_entity("Acme Billing", "billing", parent=acme)
    manager = make_staff(acme, role="manager", name="Maria Manager")
    make_rule(acme, "Standard", response_minutes=240, resolution_minutes=2400)
    for n in range(3):
        make_ticket(billing, subject=f"Ticket {n}")
    token = api_tokens.create_token(session, manager, "schemathesis", clock.now()).token
    session.commit()
    return token


TOKEN = {}  # this test's token, for the auth provider (the snapshot makes one per database backend)


@pytest.fixture
def api_schema(app, api_token):
    TOKEN["value"] = api_token
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.auth(refresh_interval=None)
class BearerToken:
    """The token as schemathesis's auth: it leaves it out of the cases that test a missing or wrong one."""

    def get(self, case, context):
        return TOKEN["value"]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case):
    # Every check but "schema-valid input is accepted": the domain refuses some well-formed requests by design, with
    # a documented 422 naming the field (an entity that does not exist, a body of blanks, a closed ticket's reply).
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if (case.headers or {}).get("Authorization") == f"Bearer {TOKEN['value']}":
        assert response.status_code != 401, "the token was sent: the call must have been authenticated"
