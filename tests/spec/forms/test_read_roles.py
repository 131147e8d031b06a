"""Who reads a form, a participant's schedule, the participant list and the locks is the SERVICE's rule
(docs/roles.md), so the command line refuses exactly what the API and the pages refuse (audit of the edges:
`form show --as coder` and `database status --as dsmb-member` went through on the CLI while the API answered
403, and `get_form`, `participant_schedule`, `participant_rows` and `page_participants` took any role). Both
databases.

| operation                            | the service's tuple                            |
|--------------------------------------|------------------------------------------------|
| one form, a participant's schedule   | ``services.forms.READERS``                     |
| the participant list                 | ``services.randomization.PARTICIPANT_READERS`` |
| the database lock and the soft locks | ``services.lock.READERS``                      |

Each names the investigator, the study coordinator, the outcome assessor, the administrator, the monitor and
the data manager. Every other role (the unblinded pharmacist and statistician, the blinded statistician, the
DSMB member, the coder) is refused, by the service in its words, by the API with 403, and by the command line
with exit 4.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.trialfixtures import PASSWORD, Trial, username, who
from trialwright.cli.common import ExitCode
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services import forms, lock, randomization
from trialwright.services.errors import AccessDenied
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app
from trialwright.web.navigation import PARTICIPANT_READERS

READERS = {Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.OUTCOME_ASSESSOR, Role.ADMINISTRATOR, Role.MONITOR,
           Role.DATA_MANAGER}  # fmt: skip
LABS = {"crp": 4.5}

# (operation, the service's call given the trial, the actor and the participant)
OPERATIONS: list[tuple[str, Callable[[Trial, Any, str], Any]]] = [
    ("get_form", lambda t, a, p: forms.get_form(t.engine, a, p, "baseline", "labs")),
    ("participant_schedule", lambda t, a, p: forms.participant_schedule(t.engine, a, p)),
    ("participant_rows", lambda t, a, p: randomization.participant_rows(t.engine, a)),
    ("page_participants", lambda t, a, p: randomization.page_participants(t.engine, a)),
    ("soft_locks_for", lambda t, a, p: lock.soft_locks_for(t.engine, a)),
]
# (operation, the API's GET path given the participant)
API: list[tuple[str, Callable[[str], str]]] = [
    ("get_form", lambda p: f"/api/v1/participants/{p}/visits/baseline/forms/labs"),
    ("participant_schedule", lambda p: f"/api/v1/participants/{p}/visits"),
    ("page_participants", lambda p: "/api/v1/participants"),
    ("soft_locks_for", lambda p: "/api/v1/soft-locks"),
    ("lock_state", lambda p: "/api/v1/trial/lock"),
]


def _saved(trial: Trial, pid: str) -> None:
    forms.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", LABS)


def test_the_tuples_are_the_services_and_agree() -> None:
    assert set(forms.READERS) == READERS
    assert set(lock.READERS) == set(forms.READERS)  # spelled in services/lock.py (services/forms imports it)
    assert set(randomization.PARTICIPANT_READERS) == READERS
    assert PARTICIPANT_READERS is randomization.PARTICIPANT_READERS  # the page's guard reads the service's tuple


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_each_role_and_operation_through_the_service(trial: Trial, pid: str, role: Role) -> None:
    _saved(trial, pid)
    actor = who(trial, role)
    decided: dict[str, str] = {}
    for name, call in OPERATIONS:
        try:
            call(trial, actor, pid)
            decided[name] = "allowed"
        except (forms.FormError, randomization.RandomizationError) as exc:
            assert isinstance(exc, AccessDenied), exc
            assert str(exc).startswith("role: only an investigator, a study coordinator") or str(exc).startswith(
                "role: only an administrator, an investigator"
            ), exc
            decided[name] = "refused"
    assert decided == {name: "allowed" if role in READERS else "refused" for name, _ in OPERATIONS}


def test_a_refusal_names_the_roles_and_the_action(trial: Trial, pid: str) -> None:
    coder = who(trial, Role.CODER)
    with pytest.raises(forms.FormError) as refused:
        forms.get_form(trial.engine, coder, pid, "baseline", "labs")
    assert str(refused.value) == (
        "role: only an investigator, a study coordinator, an outcome assessor, an administrator, a monitor or a "
        "data manager may read forms"
    )
    assert isinstance(refused.value, AccessDenied)
    with pytest.raises(randomization.RandomizationError) as refused:
        randomization.page_participants(trial.engine, who(trial, Role.DSMB_MEMBER))
    assert str(refused.value) == (
        "role: only an administrator, an investigator, a study coordinator, a monitor, a data manager or an outcome "
        "assessor may read the participant list"
    )
    assert isinstance(refused.value, AccessDenied)
    with pytest.raises(forms.FormError) as refused:
        lock.soft_locks_for(trial.engine, who(trial, Role.UNBLINDED_PHARMACIST))
    assert isinstance(refused.value, AccessDenied)
    assert str(refused.value).endswith("may read the database lock and the soft locks")


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_the_api_refuses_what_the_service_refuses(trial: Trial, pid: str, role: Role) -> None:
    _saved(trial, pid)
    token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        codes = {name: api.get(path(pid), headers={"Authorization": f"Bearer {token}"}).status_code
                 for name, path in API}  # fmt: skip
    assert codes == {name: 200 if role in READERS else 403 for name, _ in API}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_the_cli_refuses_what_the_service_refuses(trial: Trial, pid: str, role: Role) -> None:
    _saved(trial, pid)
    db = ["--database", trial.url, "--as", username(role)]
    commands = {"form show": ["form", "show", pid, "baseline", "labs"], "database status": ["database", "status"]}
    for name, argv in commands.items():
        result = CliRunner().invoke(cli, [*argv, *db], input=PASSWORD + "\n")
        if role in READERS:
            assert result.exit_code == 0, (name, result.output)
        else:
            assert result.exit_code == ExitCode.PERMISSION, (name, result.output)
            assert "role: only an investigator, a study coordinator" in result.output, (name, result.output)
