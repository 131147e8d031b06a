"""`trialwright init` creates the audit key (0600, never replaced); `trialwright audit verify` and
`trialwright audit anchor` check and checkpoint the trail. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from trialwright.cli.main import app
from trialwright.store.audit_keys import default_anchor_file, default_key_file

runner = CliRunner()


def _init(database_url: str, protocol: Path) -> None:
    result = runner.invoke(app, ["init", "--protocol", str(protocol), "--database", database_url])
    assert result.exit_code == 0, result.output


def test_init_creates_a_private_key_once_and_the_trail_is_keyed(database_url: str, first_protocol_path: Path) -> None:
    key_file = default_key_file(database_url)
    assert key_file is not None and not key_file.exists()
    _init(database_url, first_protocol_path)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    _init(database_url, first_protocol_path)
    assert key_file.read_bytes() == key
    result = runner.invoke(app, ["audit", "verify", "--database", database_url])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output and "keyed from entry 1" in result.output
    assert "Anchor: entry" in result.output


def test_audit_anchor_appends_a_signed_checkpoint_and_prints_it(database_url: str, first_protocol_path: Path) -> None:
    _init(database_url, first_protocol_path)
    key_file = default_key_file(database_url)
    assert key_file is not None
    result = runner.invoke(app, ["audit", "anchor", "--database", database_url])
    assert result.exit_code == 0, result.output
    at_init, line = default_anchor_file(key_file).read_text(encoding="utf-8").splitlines()
    assert json.loads(at_init)["keyed_from"] == 1  # init anchors: where keying began is kept outside the database
    anchor = json.loads(line)
    assert anchor["keyed_from"] == 1 and len(anchor["mac"]) == 64
    assert f"entry {anchor['seq']} hash {anchor['hash']}" in result.output and anchor["mac"] in result.output


def test_verify_names_the_tampering_and_fails(database_url: str, first_protocol_path: Path) -> None:
    _init(database_url, first_protocol_path)
    from trialwright.store.engine import make_engine

    engine = make_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_entries_no_change ON audit_entries"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
        conn.execute(text("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    result = runner.invoke(app, ["audit", "verify", "--database", database_url])
    assert result.exit_code == 1
    assert "(altered)" in result.output and "entry 2" in result.output


def test_the_web_app_anchors_the_head_when_it_starts_and_refuses_a_keyed_trial_without_its_key(
    database_url: str, first_protocol_path: Path
) -> None:
    from trialwright.services.audit import AuditKeyError
    from trialwright.settings import Settings
    from trialwright.web.app import create_app

    _init(database_url, first_protocol_path)
    key_file = default_key_file(database_url)
    assert key_file is not None
    anchors = default_anchor_file(key_file)
    before = len(anchors.read_text(encoding="utf-8").splitlines())
    create_app(Settings(database_url=database_url)).state.engine.dispose()
    assert len(anchors.read_text(encoding="utf-8").splitlines()) == before + 1
    key_file.rename(key_file.with_name("moved.key"))
    with pytest.raises(AuditKeyError, match="no audit key was found"):
        create_app(Settings(database_url=database_url))


def test_side_files_name_the_key_and_anchor_files_a_backup_must_hold(tmp_path: Path) -> None:
    from trialwright.services.audit import side_files
    from trialwright.settings import Settings

    url = f"sqlite:///{tmp_path / 'trial.db'}"
    assert side_files(Settings(database_url=url)) == [tmp_path / "trial.db.key", tmp_path / "trial.db.anchors"]
    named = Settings(database_url=url, audit_key_file=tmp_path / "k" / "a.key", audit_anchor_file=tmp_path / "x.txt")
    assert side_files(named) == [tmp_path / "k" / "a.key", tmp_path / "x.txt"]
    secret = Settings(database_url=url, audit_key="ab" * 32)  # type: ignore[arg-type]
    assert side_files(secret) == [tmp_path / "trial.db.anchors"]  # the secret is the operator's to keep


def test_a_command_on_a_keyed_trial_without_its_key_is_one_clear_refusal(
    database_url: str, first_protocol_path: Path
) -> None:
    _init(database_url, first_protocol_path)
    key_file = default_key_file(database_url)
    assert key_file is not None
    key_file.rename(key_file.with_name("moved.key"))
    result = runner.invoke(app, ["user", "list", "--database", database_url])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "no audit key was found" in said and str(key_file) in said and "audit_key_file" in said
    assert "Traceback" not in result.output
