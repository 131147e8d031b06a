"""`trialwright init`: creates or upgrades a trial database, idempotent, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.spec.protocol.conftest import mutated_text
from trialwright.cli.main import app
from trialwright.protocol import load_protocol, load_protocol_text
from trialwright.services import audit
from trialwright.services.trial import (
    ProtocolVersionConflict,
    TrialMismatch,
    TrialNotInitialised,
    current_protocol,
    init_trial,
)
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.tables import protocol_versions, sites

runner = CliRunner()


def test_init_twice_creates_then_changes_nothing(database_url: str, first_protocol_path: Path) -> None:
    engine = make_engine(database_url)
    loaded = load_protocol(first_protocol_path)
    first = init_trial(engine, loaded)
    entries_after_first = audit.count(engine)
    second = init_trial(engine, loaded)
    assert (first.status, second.status) == ("created", "unchanged")
    assert first.trial_id == second.trial_id == "IRCT20190101042197N2"
    assert audit.count(engine) == entries_after_first
    actions = [e.action for e in reversed(audit.entries(engine))]
    assert actions == ["trial.created", "protocol.loaded", "site.added", "site.added"]
    assert audit.verify(engine).ok


def test_the_database_keeps_the_exact_protocol_and_its_sites(database_url: str, first_protocol_path: Path) -> None:
    engine = make_engine(database_url)
    loaded = load_protocol(first_protocol_path)
    init_trial(engine, loaded)
    stored = current_protocol(engine)
    assert stored.source_text == loaded.source_text and stored.sha256 == loaded.sha256
    with session_scope(engine) as session:
        assert [(r.code, r.timezone) for r in session.execute(select(sites).order_by(sites.c.code))] == [
            ("GOL", "Asia/Tehran"),
            ("RAZ", "Asia/Tehran"),
        ]


def test_an_empty_database_holds_no_trial(database_url: str) -> None:
    with pytest.raises(TrialNotInitialised, match="trialwright init"):
        current_protocol(make_engine(database_url))


def test_another_trials_protocol_is_refused(database_url: str, first_protocol_path: Path) -> None:
    engine = make_engine(database_url)
    init_trial(engine, load_protocol(first_protocol_path))
    other = load_protocol_text(mutated_text(lambda d: d["trial"]["ids"][0].__setitem__("id", "NCT00000001")))
    with pytest.raises(
        TrialMismatch, match="holds trial IRCT20190101042197N2; the protocol file is for trial NCT00000001"
    ):
        init_trial(engine, other)


def _amend(doc):  # type: ignore[no-untyped-def]
    doc["version"] = {"number": "3.0", "date": "2026-11-01"}
    doc["amendments"].append(
        {"number": 2, "date": "2026-11-01", "version": "3.0", "reason": "Add a third site after slow recruitment."}
    )
    doc["sites"].append({"code": "IMA", "name": "Imam Khomeini Hospital", "timezone": "Asia/Tehran",
                         "translations": {"fa": "بیمارستان امام خمینی"}})  # fmt: skip


def test_an_amendment_is_stored_as_a_new_version_and_audited(database_url: str, first_protocol_path: Path) -> None:
    engine = make_engine(database_url)
    init_trial(engine, load_protocol(first_protocol_path))
    amended = load_protocol_text(mutated_text(_amend))
    result = init_trial(engine, amended)
    assert result.status == "upgraded" and result.protocol_version == "3.0"
    assert current_protocol(engine).sha256 == amended.sha256
    loaded_entry = next(e for e in audit.entries(engine) if e.action == "protocol.loaded")
    assert loaded_entry.old_value == '"2.0"' and loaded_entry.reason == "Add a third site after slow recruitment."
    assert any(e.action == "site.added" and e.site == "IMA" for e in audit.entries(engine))
    with session_scope(engine) as session:
        assert len(session.execute(select(protocol_versions)).all()) == 2
    with pytest.raises(ProtocolVersionConflict, match="superseded"):
        init_trial(engine, load_protocol(first_protocol_path))


def test_a_changed_file_must_bump_its_version(database_url: str, first_protocol_path: Path) -> None:
    engine = make_engine(database_url)
    init_trial(engine, load_protocol(first_protocol_path))
    edited = load_protocol_text(mutated_text(lambda d: d["sample_size"].__setitem__("justification", "edited")))
    with pytest.raises(ProtocolVersionConflict, match="needs a new version"):
        init_trial(engine, edited)


def test_init_from_the_command_line_twice(database_url: str, first_protocol_path: Path) -> None:
    args = ["init", "--protocol", str(first_protocol_path), "--database", database_url]
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "created" in first.output and "already up to date" in second.output


def test_init_on_an_unreachable_database_is_one_clear_line(first_protocol_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    result = runner.invoke(app, ["init", "--protocol", str(first_protocol_path), "--database", url])
    assert result.exit_code == 2  # a database that cannot be used: the --database given (docs/cli.md, "Exit codes")
    assert result.output.startswith(f"error: cannot reach database {url}:")
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_init_refuses_a_broken_protocol_without_touching_the_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(mutated_text(lambda d: d["arms"][1].__setitem__("ratio", 0)), encoding="utf-8")
    db = tmp_path / "t.db"
    result = runner.invoke(app, ["init", "--protocol", str(bad), "--database", f"sqlite:///{db}"])
    assert result.exit_code == 1 and "arms[1].ratio" in result.output
    assert not db.exists()


def test_the_password_never_appears_in_messages() -> None:
    from trialwright.store.engine import redact

    assert redact("postgresql+psycopg://alice:s3cret@db.example:5432/trial") == (
        "postgresql+psycopg://alice:***@db.example:5432/trial"
    )
