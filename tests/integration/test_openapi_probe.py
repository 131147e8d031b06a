"""Probe every REST operation with schemathesis-generated requests: no request may end in a 500.

Requests are sent as an administrator (the widest access) and as a study coordinator (a blinded role scoped to
one site, whose requests take the masking and site-scope paths), with valid and invalid data. The run stays
bounded for CI: 30 examples per operation as administrator, 15 as coordinator.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
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


# (role, examples per operation)
PROBES = [(Role.ADMINISTRATOR, 30), (Role.STUDY_COORDINATOR, 15)]


@pytest.mark.parametrize(("role", "examples"), PROBES, ids=[r.value for r, _ in PROBES])
def test_no_request_ends_in_a_server_error(probed_trial, role: Role, examples: int) -> None:  # type: ignore[no-untyped-def]
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
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        probe()
    assert failures == []
    assert len(sent) > 6 * 5, sent  # the probe really sent requests
    assert {200, 201, 204} & set(sent) and {401, 404, 422} & set(sent)  # valid and invalid ones
    if role is not Role.ADMINISTRATOR:
        assert 403 in sent  # the coordinator's role really was refused somewhere
