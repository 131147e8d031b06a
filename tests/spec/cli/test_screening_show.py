"""`trialwright screening show` prints every consent record of the screening, as its help says ("with its decision,
consents and participant") and as `--json` lists them (both databases).

| the screening's consents, in the order recorded                    | the text output                          |
|--------------------------------------------------------------------|------------------------------------------|
| 1: initial, consent, by a representative (name, relationship)      | `consent 1: initial, consent, given by   |
|    witnessed, obtained by Dr Khedri                                 | representative (name, relationship), ...`|
| 2: regained_capacity, continue, by the participant, by Dr Khedri   | `consent 2: regained_capacity, continue, |
|                                                                    | given by participant, ...`               |

Each line is built here from the `--json` output of the same command (kind, decision, given by, the representative,
obtained when in UTC and by whom, the form version), so the two cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.spec.screening.test_screening_consent_enrolment import NOW, TODAY, TYPED, lar_consent
from tests.trialfixtures import Trial, make_trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services.screening import enrol, record_consent, screen


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _expected(c: dict[str, str]) -> str:
    """A consent record's line, from its JSON (its time converted to UTC here)."""
    given = c["given_by"]
    if c.get("representative_name"):
        given += f" ({c['representative_name']}, {c['representative_relationship']})"
    at = dt.datetime.fromisoformat(c["obtained_at"])
    at = at.astimezone(dt.UTC) if at.tzinfo is not None else at
    witness = f", witness {c['witness']}" if c.get("witness") else ""
    return (f"consent {c['n']}: {c['kind']}, {c['decision']}, given by {given}, obtained {at:%Y-%m-%d %H:%M} UTC by "
            f"{c['obtained_by']}{witness}, form {c['form_version']}")  # fmt: skip


def test_screening_show_lists_every_consent_record_in_order(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    s = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=TYPED)
    lar_consent(trial, s.id)
    enrol(trial.engine, coordinator, s.id)
    record_consent(trial.engine, who(trial, Role.INVESTIGATOR), s.id, form_version="1.0", given_by="participant",
                   obtained_by="Dr Khedri", obtained_at=NOW, kind="regained_capacity", decision="continue")  # fmt: skip
    runner = CliRunner()
    args = ["screening", "show", s.label, "--as", username(Role.STUDY_COORDINATOR), "--database", trial.url]
    shown = runner.invoke(cli, args)
    as_json = runner.invoke(cli, [*args, "--json"])
    assert shown.exit_code == as_json.exit_code == 0, shown.output + as_json.output
    consents = json.loads(as_json.stdout)["consents"]
    assert [(c["kind"], c["decision"], c["given_by"]) for c in consents] == [
        ("initial", "consent", "representative"), ("regained_capacity", "continue", "participant")]  # fmt: skip
    lines = [line.strip() for line in shown.output.splitlines() if line.strip().startswith("consent")]
    assert lines == [_expected({**c, "n": str(n)}) for n, c in enumerate(consents, 1)]
    assert "representative (Maryam Ahmadi, daughter)" in lines[0] and "witness Nurse Karimi" in lines[0]
    assert "participant: RAZ-001" in shown.output
