"""`trialwright consent record --data`: a JSON key the command does not know (walk 3, F6).

`{"version": "1.0", ...}` printed `record_consent() got an unexpected keyword argument 'version'`, a Python
signature. The command refuses (exit 2) naming the unknown key and listing the known ones, as it refuses a missing
one, and records nothing; the JSON of docs/screening.md's example is recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.spec.screening.test_screening_consent_enrolment import NOW, TYPED
from tests.trialfixtures import Trial, username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role

KNOWN = "form_version, given_by, obtained_by, obtained_at, representative_name"
CONSENT = {"form_version": "1.0", "given_by": "participant", "obtained_by": "Dr K", "obtained_at": NOW.isoformat()}


def test_an_unknown_or_missing_key_is_refused_by_name_with_the_known_ones(trial: Trial, tmp_path: Path) -> None:
    runner = CliRunner()
    db = ["--database", trial.url, "--as", username(Role.STUDY_COORDINATOR)]
    assert runner.invoke(cli, ["screening", "add", "--site", "RAZ", *db], input=json.dumps(TYPED)).exit_code == 0
    record = ["consent", "record", "RAZ-S0001", "--data", "-", *db]
    wrong = {**{k: v for k, v in CONSENT.items() if k != "form_version"}, "version": "1.0"}
    unknown = runner.invoke(cli, record, input=json.dumps(wrong))
    assert unknown.exit_code == 2, unknown.output
    assert "--data: unknown key 'version'; the known keys: " + KNOWN in unknown.output
    assert "keyword argument" not in unknown.output
    missing = runner.invoke(cli, record, input=json.dumps({k: v for k, v in CONSENT.items() if k != "given_by"}))
    assert missing.exit_code == 2 and "--data: missing 'given_by'; the known keys: " in missing.output
    shown = runner.invoke(cli, ["screening", "show", "RAZ-S0001", *db])
    assert "missing: informed_consent" in shown.output, shown.output  # nothing recorded
    recorded = runner.invoke(cli, record, input=json.dumps(CONSENT))
    assert recorded.exit_code == 0 and "eligible" in recorded.output, recorded.output
