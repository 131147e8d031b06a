"""The exports from the command line, as the README shows them: every format into a new folder with a
summary of the files, a refused format or role with one clear line, an ODM file imported into a fresh trial,
and the data access register from a request to the issued package."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.exports.registry import FORMATS
from trialwright.protocol import load_protocol_text
from trialwright.services.forms import lock_trial
from trialwright.services.simulation import simulate

runner = CliRunner()
SMALL_TRIAL = FIRST_PROTOCOL.read_text(encoding="utf-8").replace(
    "quasi_identifiers: [demographics.sex, age]", "quasi_identifiers: [demographics.sex]"
)


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trial]:
    t = make_trial(f"sqlite:///{tmp_path_factory.mktemp('cli') / 'trial.db'}", load_protocol_text(SMALL_TRIAL))
    simulate(t.engine, FIRST_PROTOCOL, 14, seed=8)
    yield t
    t.engine.dispose()


def _run(trial: Trial, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, [*args, "--database", trial.url], input=input)


def test_every_format_exports_from_the_command_line(trial: Trial, tmp_path: Path) -> None:
    for fmt in sorted(FORMATS):
        result = _run(trial, "export", fmt, "--as", "data-manager", "--out", str(tmp_path / fmt))
        assert result.exit_code == 0, (fmt, result.output)
        assert f"{fmt}: " in result.output and "recorded in the audit trail" in result.output
        assert any((tmp_path / fmt).rglob("*")) and not (tmp_path / f"{fmt}.partial").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "xlsx", "--as", "data-manager"], "format: 'xlsx' is not an export format"),
        (["export", "csv", "--as", "investigator"], "role: only the data manager and the statisticians"),
        (["export", "csv", "--as", "data-manager", "--with-arms"], "with_arms: a data manager is masked in this trial"),
        (["export", "ipd", "--as", "unblinded-statistician"], "the IPD is issued only against an approved"),
    ],
)
def test_a_refused_export_says_why_in_one_line_and_writes_nothing(
    trial: Trial, tmp_path: Path, args: list[str], message: str
) -> None:
    result = _run(trial, *args, "--out", str(tmp_path / "out"))
    # A role that may not (arms asked by a masked role among them) ends with 4 (permission), any other refusal with 1
    # (docs/cli.md, "Exit codes").
    assert result.exit_code == (4 if message.startswith(("role:", "with_arms:")) else 1) and message in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.covers("REG-11")
def test_an_odm_export_imports_into_a_fresh_trial(trial: Trial, tmp_path: Path) -> None:
    assert _run(trial, "export", "odm", "--as", "data-manager", "--out", str(tmp_path / "odm")).exit_code == 0
    (path,) = (tmp_path / "odm").glob("*.odm.xml")
    fresh = make_trial(f"sqlite:///{tmp_path / 'fresh.db'}", load_protocol_text(SMALL_TRIAL))
    result = runner.invoke(cli, ["import", "odm", str(path), "--as", "data-manager", "--database", fresh.url])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert said.startswith(f"Imported {path.name} (SHA-256 ") and " participants: " in said
    assert "byte-identical re-export: yes" in said and "not restored:" in said
    assert "OdmImportReport(" not in said and "{" not in said
    again = runner.invoke(cli, ["import", "odm", str(path), "--as", "data-manager", "--database", fresh.url])
    assert again.exit_code == 1 and "error:" in again.output
    # A file whose re-export is not byte-identical imports, but the command says so and exits 1 for scripts.
    edited = tmp_path / "edited" / path.name
    edited.parent.mkdir()
    edited.write_text(path.read_text(encoding="utf-8").replace("?>\n", "?>\n<!-- by hand -->\n", 1), encoding="utf-8")
    other = make_trial(f"sqlite:///{tmp_path / 'other.db'}", load_protocol_text(SMALL_TRIAL))
    differs = runner.invoke(cli, ["import", "odm", str(edited), "--as", "data-manager", "--database", other.url])
    assert differs.exit_code == 1 and "byte-identical re-export: NO (line 2: " in " ".join(differs.output.split())


def test_the_register_from_request_to_issued_package(trial: Trial, tmp_path: Path) -> None:
    out = _run(trial, "access", "publication", "--as", "data-manager", "--citation",
               "Khedri R, et al. A pilot trial. Trials 2022;23:101.", "--published-on", "2022-01-10")  # fmt: skip
    assert out.exit_code == 0 and "opens on 2022-07-10" in out.output
    out = _run(trial, "access", "request", "--as", "data-manager", "--requester", "A. Researcher",
               "--organisation", "Uni", "--email", "a@uni.org", "--purpose", "meta-analysis", "--reasons",
               "An IPD meta-analysis of pilot trials of exosomes.", "--received-on", "2026-01-05")  # fmt: skip
    assert out.exit_code == 0 and out.output.startswith("DAR-0001")
    out = _run(trial, "access", "decide", "DAR-0001", "--as", "administrator", "--approve", "--reason", "fine",
               input=PASSWORD + "\n")  # fmt: skip
    assert out.exit_code == 0 and "approved by administrator" in out.output
    assert _run(trial, "access", "check", "--as", "data-manager").exit_code == 0
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final", password=PASSWORD)
    out = _run(trial, "access", "issue", "DAR-0001", "--as", "unblinded-statistician", "--out", str(tmp_path / "ipd"))
    assert out.exit_code == 0 and "issued to A. Researcher" in out.output, out.output
    report = json.loads((tmp_path / "ipd" / "deidentification.json").read_text())
    assert report["kanonymity"]["passes"] and report["arms_included"]
    listed = _run(trial, "access", "list", "--as", "data-manager")
    assert "DAR-0001" in listed.output and "issued" in listed.output and "2022-07-10" in listed.output


def test_what_a_command_writes_is_its_owners_alone_whatever_the_umask(trial: Trial, tmp_path: Path) -> None:
    """An export holds participant data (and, with arms, the allocation): run as `python -m trialwright.cli.main`
    from a shell whose umask is the common 022, its folder is 0700 and its files 0600."""
    import os
    import stat
    import subprocess
    import sys

    out = tmp_path / "csv"
    done = subprocess.run(
        [sys.executable, "-m", "trialwright.cli.main", "export", "csv", "--as", "data-manager", "--out", str(out),
         "--database", trial.url],
        capture_output=True, text=True, preexec_fn=lambda: os.umask(0o022), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "recorded in the audit trail" in done.stdout
    written = [out, *out.rglob("*")]
    assert len(written) > 2
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
