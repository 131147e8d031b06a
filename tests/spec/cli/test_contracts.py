"""The scripting contracts that hold for every command, checked over all of them: each service exception has an
exit code, each command that prints data takes ``--json``, the JSON serializer never falls back to a repr,
shell completion is installable, and ``trialwright`` is a typed library (docs/cli.md, docs/api.md "Python")."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import trialwright
from tests.trialfixtures import PASSWORD, Trial, make_trial, username
from trialwright.cli.common import EXIT_CODES, ExitCode, _exception_type, exit_code_for, to_json, to_jsonable
from trialwright.cli.main import app as cli
from trialwright.cli.reference import _walk
from trialwright.domain.roles import Role
from trialwright.services.screening import list_screenings

ROOT = Path(__file__).resolve().parents[3]

#: The commands that take no --json, and why: they print no data (they run a server, or print text made to be
#: pasted), or print their checks as they go. Any other command, one-line actions included, must take --json.
WITHOUT_JSON = {
    "demo": "runs the web app until stopped",
    "serve": "runs the web app until stopped",
    "start": "runs the web app until stopped",
    "restore": "checks the restored copy step by step, refusing at the first difference",
    "recruitment registry-update": "prints the text to paste into the registry record",
}


def _commands() -> dict[str, object]:
    root = typer.main.get_command(cli)
    return {" ".join(path): c for path, c in _walk(root, ()) if path and not hasattr(c, "commands")}


def test_every_command_that_prints_data_takes_json() -> None:
    commands = _commands()
    assert set(WITHOUT_JSON) <= set(commands), set(WITHOUT_JSON) - set(commands)
    for name, command in commands.items():
        options = {o for p in command.params for o in getattr(p, "opts", [])}  # type: ignore[attr-defined]
        if name in WITHOUT_JSON:
            assert "--json" not in options, f"trialwright {name} takes --json: drop it from WITHOUT_JSON"
        else:
            assert "--json" in options, f"trialwright {name} prints data: give it --json (or say why not above)"


def _exception_classes() -> Iterator[type[BaseException]]:
    """Every exception class defined in the engine's layers below the edges (imported fresh, found by walking)."""
    for package in ("protocol", "domain", "store", "services", "analysis", "exports"):
        root = importlib.import_module(f"trialwright.{package}")
        for info in pkgutil.walk_packages(root.__path__, f"trialwright.{package}."):
            if ".migrations" in info.name:  # Alembic's scripts run only under Alembic
                continue
            module = importlib.import_module(info.name)
            for _, value in inspect.getmembers(module, inspect.isclass):
                mine = value.__module__ == info.name and not value.__name__.startswith("_")
                if mine and issubclass(value, Exception):
                    yield value


def test_every_exception_a_service_raises_ends_a_command_with_a_documented_code() -> None:
    found = sorted(set(_exception_classes()), key=lambda c: f"{c.__module__}.{c.__qualname__}")
    assert len(found) > 20  # the walk found the services' exceptions
    unmapped = [f"{c.__module__}.{c.__qualname__}" for c in found if exit_code_for(c.__new__(c)) is None]
    assert not unmapped, f"add these to trialwright.cli.common.EXIT_CODES: {unmapped}"
    for dotted, code in EXIT_CODES:
        assert _exception_type(dotted) is not None, f"EXIT_CODES names {dotted}, which does not exist"
        assert code in ExitCode
    # A bare ValueError is a defect, not a refusal: it is not given a code (it leaves with its traceback).
    assert exit_code_for(ValueError("oops")) is None and exit_code_for(KeyError("x")) is None


def test_the_exit_code_table_in_docs_is_the_code_s() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {code.value} | `{code.name}` |" in text
    assert [c.value for c in ExitCode] == [0, 1, 2, 3, 4]
    for dotted, code in EXIT_CODES:
        assert f"| `{dotted}` | {code.value} `{code.name}` |" in text


class _Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class _Result:
    when: dt.date
    colour: _Colour
    parts: tuple[int, ...]
    secret: str = dataclasses.field(default="hunter2", repr=False)


def test_the_serializer_writes_fields_and_refuses_what_it_does_not_know() -> None:
    doc = json.loads(to_json(_Result(dt.date(2021, 5, 20), _Colour.RED, (1, 2))))
    assert doc == {"when": "2021-05-20", "colour": "red", "parts": [1, 2]}  # no secret: kept out of repr, so out
    assert to_jsonable({"at": dt.datetime(2021, 5, 20, 10, 30, tzinfo=dt.UTC), "x": float("nan")}) == {
        "at": "2021-05-20T10:30:00+00:00", "x": None}  # fmt: skip

    class Opaque:
        pass

    with pytest.raises(TypeError, match="no JSON form for a Opaque"):
        to_json({"thing": Opaque()})


def test_shell_completion_is_installable_and_completes_commands() -> None:
    runner = CliRunner()
    helped = runner.invoke(cli, ["--help"], prog_name="trialwright")
    assert "--install-completion" in helped.output and "--show-completion" in helped.output
    script = runner.invoke(cli, ["--show-completion", "bash"], prog_name="trialwright")
    assert script.exit_code == 0 and "complete -o default -F _trialwright_completion trialwright" in script.output
    completed = runner.invoke(cli, [], prog_name="trialwright", env={
        "_TRIALWRIGHT_COMPLETE": "complete_bash", "COMP_WORDS": "trialwright scre", "COMP_CWORD": "1"})  # fmt: skip
    assert completed.output.split() == ["screening"]


# The library --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    yield t
    t.engine.dispose()


def test_open_trial_reads_through_the_services_as_the_named_user(trial: Trial) -> None:
    with trialwright.open_trial(trial.url, username(Role.STUDY_COORDINATOR)) as opened:
        assert opened.protocol.trial_id == "IRCT20190101042197N2"
        assert opened.actor.role is Role.STUDY_COORDINATOR and opened.actor.sites == ("RAZ",)
        assert opened.screenings() == list_screenings(trial.engine, opened.actor) == []
        with pytest.raises(ValueError, match="role:"):  # the same rule as everywhere: the lock readiness is not theirs
            opened.readiness()
    with pytest.raises(PermissionError, match="no active user"):
        trialwright.open_trial(trial.url, "ghost")
    # An account that reads the arms is opened by its holder only.
    with pytest.raises(PermissionError, match="its password"):
        trialwright.open_trial(trial.url, username(Role.UNBLINDED_STATISTICIAN))
    with pytest.raises(PermissionError, match="its password"):
        trialwright.open_trial(trial.url, username(Role.UNBLINDED_STATISTICIAN), password="not-" + PASSWORD)
    with trialwright.open_trial(trial.url, username(Role.UNBLINDED_STATISTICIAN), password=PASSWORD) as opened:
        assert opened.actor.role is Role.UNBLINDED_STATISTICIAN


def test_import_trialwright_is_light_and_typed() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, trialwright; print(sorted(m for m in sys.modules if 'trialwright' in m))"],
        capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    # the package and its version only: no service, no database driver, until open_trial is called
    assert loaded.stdout.strip() == "['trialwright', 'trialwright.version']"
    assert set(trialwright.__all__) == {"__version__", "open_trial", "load_protocol"}
    assert (ROOT / "src" / "trialwright" / "py.typed").is_file()
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["build"]["targets"]
    assert wheel["wheel"]["packages"] == ["src/trialwright"] and "exclude" not in wheel["wheel"]  # the whole package


@pytest.mark.parametrize(
    "command",
    [["export", "sdtm", "--as", "data-manager", "--out", "{out}"], ["user", "list"], ["coding", "list", "--as", "x"]],
    ids=["export", "user-list", "coding-list"],
)
def test_a_database_that_is_not_there_is_said_in_one_line_and_not_created(tmp_path: Path, command: list[str]) -> None:
    """A mistyped --database path is "not found" (exit 3) in one line naming it, with no traceback, and no empty
    database file is left behind by connecting to it."""
    missing = tmp_path / "nowhere.db"
    args = [a.replace("{out}", str(tmp_path / "out")) for a in command]
    result = CliRunner().invoke(cli, [*args, "--database", f"sqlite:///{missing}"])
    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    assert f"no trial database at {missing}" in result.output and "Traceback" not in result.output
    assert not missing.exists()
