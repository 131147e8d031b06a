"""The runtime dependencies in pyproject.toml are exactly what src/ imports: every third-party module src/ imports
comes from a declared dependency, and every declared dependency is imported somewhere in src/ (but the two
named below, with why). The map from a distribution to the modules it installs is the installed packages' own
(``importlib.metadata.packages_distributions``); the imports are read from the source with ``ast``."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src" / "trialwright"

#: Declared and needed at run time, though no module of src/ imports them by name.
NOT_IMPORTED_BY_NAME = {
    "python-multipart": "FastAPI imports it itself to read the pages' form posts (Form(...) parameters)",
}


def _name(requirement: str) -> str:
    """The distribution's canonical name (PEP 503) from a requirement like ``psycopg[binary]>=3.1``."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _runtime() -> set[str]:
    return {_name(r) for r in _pyproject()["project"]["dependencies"]}


def _imported_top_level_modules() -> dict[str, Path]:
    """Every absolute import's top-level module in src/, with one file that imports it."""
    found: dict[str, Path] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], path)
    return found


def _third_party() -> dict[str, Path]:
    return {m: p for m, p in _imported_top_level_modules().items() if m not in sys.stdlib_module_names
            and m != "trialwright"}  # fmt: skip


@functools.cache
def _installed() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distributions_of(module: str) -> set[str]:
    return {_name(d) for d in _installed().get(module, [])}


def test_every_third_party_import_in_src_is_a_declared_runtime_dependency() -> None:
    runtime = _runtime()
    undeclared = {
        module: f"{path.relative_to(ROOT)} (from {sorted(_distributions_of(module)) or 'no installed distribution'})"
        for module, path in _third_party().items()
        if not _distributions_of(module) & runtime
    }
    assert not undeclared, f"imported by src/ but not in [project] dependencies: {undeclared}"


def test_every_runtime_dependency_is_imported_by_src() -> None:
    imported = set().union(*(_distributions_of(m) for m in _third_party()))
    unused = _runtime() - imported - set(NOT_IMPORTED_BY_NAME)
    assert not unused, f"declared in [project] dependencies but imported nowhere in src/: {sorted(unused)}"
    assert set(NOT_IMPORTED_BY_NAME) <= _runtime(), "an exception above is no longer a dependency: drop it"


def test_postgresql_s_driver_is_an_extra_that_the_tests_and_the_demo_install() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    assert "psycopg" not in _runtime()
    assert "psycopg" in {_name(r) for r in extras["postgres"]}
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    # The README's two commands: `./dev start` (the demo, with PostgreSQL's driver for --database postgresql+...)
    # and `./dev test` (every spec on both databases); CI runs `./dev check` and `./dev test`.
    for command in ("start", "test", "check"):
        block = re.search(rf"\n  {command}\)\n    install \"([^\"]*)\"", dev)
        assert block, f"./dev {command} installs nothing?"
        assert "postgres" in block.group(1).split(","), f"./dev {command} installs {block.group(1)!r}"
    for command in ("test", "check"):
        block = re.search(rf"\n  {command}\)\n    install \"([^\"]*)\"", dev)
        assert block and "test" in block.group(1).split(",")


def test_the_checker_sees_an_undeclared_import() -> None:
    """The map the two tests rely on is the installed packages' own: a module from a distribution that is not
    declared (pytest, here) is told apart from one that is."""
    assert _distributions_of("pytest") == {"pytest"} and "pytest" not in _runtime()
    assert _distributions_of("ruamel") == {"ruamel-yaml"} and _distributions_of("argon2") == {"argon2-cffi"}
    assert "sqlalchemy" in _distributions_of("sqlalchemy") and "sqlalchemy" in _runtime()
