"""A locked trial database takes no protocol amendment (walk 3, F8), on SQLite and PostgreSQL.

The lock freezes the data the final analysis reads; an amendment installed after it could change the estimands,
forms or analysis the data are read by. ``trialwright init --protocol newer.yaml`` (the one path that installs a
new protocol version) refuses it, naming the lock (who, when, why) and the rule (unlock it, with a reason,
first), and stores nothing: no protocol version, no audit entry. The one exception: an amendment whose only change
is ``deidentification`` (how the shared de-identified data set is made, post-lock by nature) is taken and audited
as taken while locked. After an unlock, any amendment is taken again.

| database | amendment changes                   | decision                                  |
|----------|-------------------------------------|-------------------------------------------|
| locked   | sites (a third site)                | refused, nothing stored                   |
| locked   | an outcome's description            | refused, nothing stored                   |
| locked   | deidentification.age_top 89 -> 79   | taken, audited ``while_locked``           |
| unlocked | sites (a third site)                | taken                                     |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import Trial, make_trial, who
from trialwright.cli.common import ExitCode
from trialwright.cli.main import app
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import audit
from trialwright.services.lock import lock_trial, unlock_trial
from trialwright.services.trial import AmendmentLocked, current_protocol, init_trial
from trialwright.store.engine import session_scope
from trialwright.store.tables import protocol_versions

runner = CliRunner()


def _amended(change: Callable[[Any], None]) -> Callable[[Any], None]:
    def mutate(doc: Any) -> None:
        doc["version"] = {"number": "3.0", "date": "2026-11-01"}
        doc["amendments"].append({"number": 2, "date": "2026-11-01", "version": "3.0", "reason": "Amendment 2."})
        change(doc)

    return mutate


def _third_site(doc: Any) -> None:
    doc["sites"].append({"code": "IMA", "name": "Imam Khomeini Hospital", "timezone": "Asia/Tehran",
                         "translations": {"fa": "بیمارستان امام خمینی"}})  # fmt: skip


def _description(doc: Any) -> None:
    doc["outcomes"][0]["description"] = doc["outcomes"][0]["description"] + " (amended)"


def _age_top(doc: Any) -> None:
    doc["deidentification"]["age_top"] = 79


def _earlier_amendment_rewritten(doc: Any) -> None:
    """A sharing-only amendment that also rewrites what an earlier amendment said (its reason)."""
    _age_top(doc)
    doc["amendments"][0]["reason"] = doc["amendments"][0]["reason"] + " (rewritten after the lock)"


@pytest.fixture
def trial(database_url: str) -> Trial:
    t = make_trial(database_url)
    lock_trial(t.engine, who(t, Role.DATA_MANAGER), "final analysis")
    return t


def _stored(trial: Trial) -> tuple[int, int]:
    with session_scope(trial.engine) as session:
        versions = session.execute(select(func.count()).select_from(protocol_versions)).scalar_one()
    return versions, audit.count(trial.engine)


@pytest.mark.parametrize(
    ("change", "section"),
    [
        (_third_site, "sites"),
        (_description, "outcomes"),
        (_earlier_amendment_rewritten, "amendments (an earlier amendment changed)"),
    ],
)
def test_a_locked_trial_refuses_an_amendment_and_stores_nothing(
    trial: Trial, change: Callable[[Any], None], section: str, tmp_path: Path
) -> None:
    before, sha = _stored(trial), current_protocol(trial.engine).sha256
    amended = load_protocol_text(mutated_text(_amended(change)))
    with pytest.raises(AmendmentLocked) as refused:
        init_trial(trial.engine, amended)
    message = str(refused.value)
    assert message.startswith("trial: the database is locked (since ")
    assert "by data-manager: final analysis)" in message
    assert f"protocol version 3.0 changes {section}, which the lock froze" in message
    assert "unlock it, with a reason, first" in message
    assert _stored(trial) == before and current_protocol(trial.engine).sha256 == sha
    newer = tmp_path / "newer.yaml"
    newer.write_text(mutated_text(_amended(change)), encoding="utf-8")
    cli = runner.invoke(app, ["init", "--database", trial.url, "--protocol", str(newer)])
    assert cli.exit_code == ExitCode.REFUSED, cli.output
    assert "unlock it, with a reason, first" in cli.output and "upgraded" not in cli.output
    assert _stored(trial)[0] == before[0] and current_protocol(trial.engine).sha256 == sha


def test_a_sharing_only_amendment_is_taken_while_locked_and_audited(trial: Trial) -> None:
    versions, _ = _stored(trial)
    amended = load_protocol_text(mutated_text(_amended(_age_top)))
    assert init_trial(trial.engine, amended).status == "upgraded"
    assert current_protocol(trial.engine).sha256 == amended.sha256 and _stored(trial)[0] == versions + 1
    entry = audit.entries(trial.engine, action_prefix="protocol.loaded")[0]
    assert json.loads(entry.new_value or "{}") == {
        "version": "3.0", "sha256": amended.sha256, "while_locked": "deidentification only"
    }  # fmt: skip


def test_after_the_unlock_an_amendment_is_taken(trial: Trial) -> None:
    unlock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "a protocol amendment")
    amended = load_protocol_text(mutated_text(_amended(_third_site)))
    assert init_trial(trial.engine, amended).status == "upgraded"
    entry = audit.entries(trial.engine, action_prefix="protocol.loaded")[0]
    assert "while_locked" not in json.loads(entry.new_value or "{}")
