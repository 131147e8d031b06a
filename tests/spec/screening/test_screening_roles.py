"""Who may screen, consent, enrol and read the screening log is the SERVICE's rule (docs/roles.md's route table),
so the CLI refuses exactly what the API and the pages refuse (walk finding: `screening add --as oa` and
`screening list --as oa` went through on the CLI while the API answered 403). Both databases.

| operation                         | investigator, study coordinator | administrator, monitor, data manager | others  |
|-----------------------------------|---------------------------------|--------------------------------------|---------|
| screen, change values, consent,   | allowed                         | refused                              | refused |
| non-enrolment, enrol              |                                 |                                      |         |
| list, page, get, re-consent due   | allowed                         | allowed                              | refused |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.spec.screening.test_screening_consent_enrolment import NOW, TYPED
from tests.trialfixtures import Trial, username, who
from trialwright.cli.common import ExitCode
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services import screening as svc
from trialwright.services.errors import AccessDenied

WRITE = "write"
READ = "read"
WRITERS = {Role.INVESTIGATOR, Role.STUDY_COORDINATOR}
READERS = WRITERS | {Role.ADMINISTRATOR, Role.MONITOR, Role.DATA_MANAGER}
ALLOWED = {WRITE: WRITERS, READ: READERS}
CONSENT: dict[str, Any] = {
    "form_version": "1.0",
    "given_by": "representative",
    "representative_name": "Ali",
    "representative_relationship": "son",
    "obtained_by": "Dr K",
    "obtained_at": NOW,
}

# (operation, kind, the call given the trial, the actor and a screening the coordinator made)
OPERATIONS: list[tuple[str, str, Callable[[Trial, Any, int], Any]]] = [
    ("screen", WRITE, lambda t, a, s: svc.screen(t.engine, a, site="RAZ", screened_on=None, values=TYPED)),
    ("update_screening", WRITE, lambda t, a, s: svc.update_screening(t.engine, a, s, values={"age": 61},
                                                                     reason="typo")),
    ("record_consent", WRITE, lambda t, a, s: svc.record_consent(t.engine, a, s, **CONSENT)),
    ("set_non_enrolment", WRITE, lambda t, a, s: svc.set_non_enrolment(t.engine, a, s, reason="declined")),
    ("enrol", WRITE, lambda t, a, s: svc.enrol(t.engine, a, s)),
    ("list_screenings", READ, lambda t, a, s: svc.list_screenings(t.engine, a)),
    ("page_screenings", READ, lambda t, a, s: svc.page_screenings(t.engine, a)),
    ("get_screening", READ, lambda t, a, s: svc.get_screening(t.engine, a, s)),
    ("reconsent_needed", READ, lambda t, a, s: svc.reconsent_needed(t.engine, a)),
]  # fmt: skip


def _screening(trial: Trial, *, consented: bool) -> int:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    made = svc.screen(trial.engine, coordinator, site="RAZ", screened_on=None, values=TYPED)
    if consented:
        svc.record_consent(trial.engine, coordinator, made.id, **CONSENT)
    return made.id


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_each_role_and_operation_through_the_service(trial: Trial, role: Role) -> None:
    actor = who(trial, role)
    decided: dict[str, str] = {}
    for name, _kind, call in OPERATIONS:
        screening_id = _screening(trial, consented=name == "enrol")
        try:
            call(trial, actor, screening_id)
            decided[name] = "allowed"
        except svc.ScreeningError as exc:
            assert isinstance(exc, AccessDenied) and str(exc).startswith("role: only an investigator"), exc
            decided[name] = "refused"
    expected = {name: "allowed" if role in ALLOWED[kind] else "refused" for name, kind, _ in OPERATIONS}
    assert decided == expected


def test_a_refusal_names_the_roles_and_the_action(trial: Trial) -> None:
    with pytest.raises(svc.ScreeningError) as refused:
        svc.screen(trial.engine, who(trial, Role.OUTCOME_ASSESSOR), site="RAZ", screened_on=None, values=TYPED)
    assert isinstance(refused.value, AccessDenied)
    assert str(refused.value) == "role: only an investigator or a study coordinator may screen patients"
    with pytest.raises(svc.ScreeningError) as refused:
        svc.list_screenings(trial.engine, who(trial, Role.OUTCOME_ASSESSOR))
    assert str(refused.value) == (
        "role: only an investigator, a study coordinator, an administrator, a monitor or a data manager may read "
        "the screening log"
    )


# (role, CLI command) -> exit code: 0 done, 4 (ExitCode.PERMISSION) refused for the role
CLI_TABLE = [
    (Role.OUTCOME_ASSESSOR, "add", ExitCode.PERMISSION),
    (Role.OUTCOME_ASSESSOR, "list", ExitCode.PERMISSION),
    (Role.OUTCOME_ASSESSOR, "show", ExitCode.PERMISSION),
    (Role.OUTCOME_ASSESSOR, "consent", ExitCode.PERMISSION),
    (Role.OUTCOME_ASSESSOR, "enrol", ExitCode.PERMISSION),
    (Role.MONITOR, "add", ExitCode.PERMISSION),
    (Role.MONITOR, "list", 0),
    (Role.MONITOR, "show", 0),
    (Role.MONITOR, "enrol", ExitCode.PERMISSION),
    (Role.UNBLINDED_PHARMACIST, "list", ExitCode.PERMISSION),
    (Role.BLINDED_STATISTICIAN, "show", ExitCode.PERMISSION),
    (Role.STUDY_COORDINATOR, "add", 0),
    (Role.STUDY_COORDINATOR, "list", 0),
    (Role.INVESTIGATOR, "consent", 0),
    (Role.INVESTIGATOR, "enrol", 0),
]


@pytest.mark.parametrize(("role", "command", "code"), CLI_TABLE, ids=lambda v: getattr(v, "value", str(v)))
def test_the_cli_refuses_what_the_service_refuses(trial: Trial, tmp_path: Path, role: Role, command: str,
                                                  code: int) -> None:  # fmt: skip
    label = svc.get_screening(
        trial.engine, who(trial, Role.STUDY_COORDINATOR), _screening(trial, consented=command == "enrol")
    ).label
    consent = tmp_path / "consent.json"
    consent.write_text(json.dumps({**CONSENT, "obtained_at": NOW.isoformat()}))
    db = ["--database", trial.url, "--as", username(role)]
    argv = {
        "add": ["screening", "add", "--site", "RAZ"],
        "list": ["screening", "list"],
        "show": ["screening", "show", label],
        "consent": ["consent", "record", label, "--data", str(consent)],
        "enrol": ["enrol", label],
    }[command]
    result = CliRunner().invoke(cli, [*argv, *db], input=json.dumps(TYPED))
    assert result.exit_code == code, result.output
    if code:
        assert "role: only an investigator" in result.output
