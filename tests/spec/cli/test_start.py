"""What a command loads at its start (docs/benchmarks.md, "Command start and the per-value cost"; issue 22 item 5).

* Importing the command line and ``trialwright --help`` (the root's, every group's and every command's) load no
  library of the analysis, the exports, the reports or the units: statsmodels, lifelines, scipy, numpy, pandas, pyarrow,
  fhir.resources, odmlib, pyreadstat, matplotlib, weasyprint, pint and the UCUM library, nor Alembic or argon2.
* A command that neither analyses nor exports (``form import``) loads none of the analysis', exports' or reports'
  libraries, nor Alembic (only ``init`` and the commands that migrate need it): it pays only for what it uses. The
  protocol's unit checks do need the UCUM library (and pint, numpy), built once per process.

Each is checked in a fresh interpreter, by the names in ``sys.modules`` when it ends, so it cannot rot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.trialfixtures import PASSWORD, Trial, make_trial, username
from trialwright.domain.roles import Role

ROOT = Path(__file__).resolve().parents[3]

#: The analysis', exports' and reports' libraries, by their top-level package.
ANALYSIS_AND_EXPORTS = frozenset({
    "statsmodels", "lifelines", "pandas", "pyarrow", "fhir", "odmlib", "pyreadstat", "matplotlib", "weasyprint",
    "alembic",
})  # fmt: skip
#: What only the protocol's unit checks or a password need.
UNITS_AND_PASSWORDS = frozenset({"scipy", "numpy", "pint", "ucumvert", "argon2"})

#: Run in the fresh interpreter: the command line (its arguments after ``--``), then the top-level packages loaded.
_PROBE = """
import atexit, json, sys
atexit.register(lambda: print("LOADED " + json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr))
from trialwright.cli.main import main
sys.argv = ["trialwright", *sys.argv[1:]]
main()
"""


def loaded_by(*args: str) -> set[str]:
    """The top-level packages loaded by ``trialwright ARGS`` run in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TRIALWRIGHT_PASSWORD": PASSWORD}
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, check=False)
    line = [x for x in done.stderr.splitlines() if x.startswith("LOADED ")]
    assert line, done.stdout + done.stderr
    return set(json.loads(line[-1].removeprefix("LOADED ")))


def test_the_command_line_and_its_help_load_no_heavy_library() -> None:
    heavy = ANALYSIS_AND_EXPORTS | UNITS_AND_PASSWORDS
    assert loaded_by("--help") & heavy == set()
    from trialwright.cli.main import app

    names = sorted({g.name for g in app.registered_groups} | {c.name for c in app.registered_commands} - {None})
    assert {"analyse", "export", "form", "protocol", "serve"} <= set(names)  # those that need the libraries
    for name in names:
        assert loaded_by(name, "--help") & heavy == set(), name


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def test_a_command_that_neither_analyses_nor_exports_loads_none_of_their_libraries(
    trial: Trial, tmp_path: Path
) -> None:
    empty = tmp_path / "rows.json"
    empty.write_text("[]", encoding="utf-8")
    loaded = loaded_by(
        "form", "import", "--data", str(empty), "--as", username(Role.STUDY_COORDINATOR), "--database", trial.url
    )
    assert "trialwright" in loaded and "sqlalchemy" in loaded  # it ran against the database
    assert loaded & ANALYSIS_AND_EXPORTS == set()
    assert "ucumvert" in loaded  # the protocol's unit checks (protocol/codes.py) need it, built once
