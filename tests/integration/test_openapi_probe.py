"""Probe every REST operation with schemathesis-generated requests: no request may end in a 500, and every answer
is one the OpenAPI document declares: its status code documented for the operation, its content type the one
documented for that status (``application/problem+json`` for every error), its body valid against the documented
schema, its documented headers present (schemathesis's own conformance checks).

Requests are sent as an administrator (the widest access) and as a study coordinator (a blinded role scoped to
one site, whose requests take the masking and site-scope paths), with valid and invalid data. The run stays
bounded for CI: 30 examples per operation as administrator, 15 as coordinator; the checks run on the answers the
probe already gets, so they add no request.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from tests.trialfixtures import make_trial, username
from trialwright.domain.roles import Role
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app


@pytest.fixture(scope="module")
def probed_trial(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path: Path = tmp_path_factory.mktemp("probe") / "trial.db"
    return make_trial(f"sqlite:///{path}")


#: What every answer is checked for.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# (role, examples per operation)
PROBES = [(Role.ADMINISTRATOR, 30), (Role.STUDY_COORDINATOR, 15)]


@pytest.mark.parametrize(("role", "examples"), PROBES, ids=[r.value for r, _ in PROBES])
def test_every_answer_conforms_to_the_document(probed_trial, role: Role, examples: int) -> None:  # type: ignore[no-untyped-def]
    assert role is Role.ADMINISTRATOR or (role.site_scoped and not role.value.startswith("unblinded"))
    # Rate limits are kept in the database (shared by every worker): the previous role's probe, thousands of
    # requests many of them refused, has used this client's allowance; each role starts afresh.
    with probed_trial.engine.begin() as conn:
        conn.execute(text("DELETE FROM rate_limits"))
    token, _ = issue_token(probed_trial.engine, username(role), name="probe", actor="test")
    app, headers = create_app(Settings(database_url=probed_trial.url)), {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    failures: list[str] = []
    sent: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def probe(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            sent.append(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Failure, FailureGroup) as exc:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {exc}"[:600])

        probe()
    assert failures == [], "\n".join(failures[:20])
    assert len(sent) > 6 * 5, sent  # the probe really sent requests
    assert {200, 201, 204} & set(sent) and {401, 404, 422} & set(sent)  # valid and invalid ones
    if role is not Role.ADMINISTRATOR:
        assert 403 in sent  # the coordinator's role really was refused somewhere
