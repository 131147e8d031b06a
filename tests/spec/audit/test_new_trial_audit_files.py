"""A new trial never adopts another trial's audit files (walk 4, F4): after its database is deleted (a SQLite file
removed, a PostgreSQL schema dropped), the old trial's key file and anchor file stay where the next trial at the
same place would look for them. `trialwright init` creating the new trial refuses while the anchor file holds
anchors, naming the file, how many and the rule; `--new-audit-files` renames the old files aside and says so, and
the new trial's trail then verifies. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from trialwright.cli.main import app
from trialwright.store.audit_keys import default_anchor_file, default_key_file
from trialwright.store.engine import make_engine

runner = CliRunner()


def _delete_the_trial(database_url: str) -> None:
    """What a user does to start again: the database goes, the files beside it (or under ~/.local/share) stay."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        return
    engine = make_engine(database_url)
    with engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


def _init(database_url: str, protocol: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["init", "--protocol", str(protocol), "--database", database_url, *extra])
    return result.exit_code, " ".join(result.output.split())


def test_init_of_a_new_trial_refuses_the_anchors_a_deleted_trial_left(
    database_url: str, first_protocol_path: Path
) -> None:
    assert _init(database_url, first_protocol_path)[0] == 0
    runner.invoke(app, ["audit", "anchor", "--database", database_url])
    key_file = default_key_file(database_url)
    assert key_file is not None
    anchor_file = default_anchor_file(key_file)
    old_key, old_anchors = key_file.read_bytes(), anchor_file.read_text(encoding="utf-8")
    _delete_the_trial(database_url)

    code, said = _init(database_url, first_protocol_path)

    assert code == 1, said
    assert str(anchor_file) in said and "holds 2 anchor(s) of another trial's trail" in said
    assert "a new trial's trail cannot be checked against another trial's anchors" in said
    assert str(key_file) in said and "--new-audit-files" in said
    assert key_file.read_bytes() == old_key and anchor_file.read_text(encoding="utf-8") == old_anchors


def test_new_audit_files_renames_the_old_ones_aside_and_the_new_trail_verifies(
    database_url: str, first_protocol_path: Path
) -> None:
    assert _init(database_url, first_protocol_path)[0] == 0
    key_file = default_key_file(database_url)
    assert key_file is not None
    anchor_file = default_anchor_file(key_file)
    old_key = key_file.read_bytes()
    _delete_the_trial(database_url)

    code, said = _init(database_url, first_protocol_path, "--new-audit-files")

    assert code == 0, said
    aside = sorted(key_file.parent.glob(f"{key_file.name}.before-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == old_key
    assert len(sorted(anchor_file.parent.glob(f"{anchor_file.name}.before-*"))) == 1
    assert f"{key_file} (another trial's) renamed aside to {aside[0]}" in said
    assert key_file.read_bytes() != old_key
    verified = runner.invoke(app, ["audit", "verify", "--database", database_url])
    assert verified.exit_code == 0 and "intact" in verified.output, verified.output


def test_an_existing_trial_is_not_a_new_one_init_again_uses_its_files(
    database_url: str, first_protocol_path: Path
) -> None:
    assert _init(database_url, first_protocol_path)[0] == 0
    code, said = _init(database_url, first_protocol_path)
    assert code == 0 and "renamed aside" not in said and "existed before this trial" not in said, said
