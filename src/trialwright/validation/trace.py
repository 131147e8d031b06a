"""Tracing each regulatory check to the tests that cover it, and to what those tests did in one run.

The checks are the numbered promises of the project's regulatory reference, copied into
``regulatory_checks.yaml`` beside this module. A test names the checks it covers with
``@pytest.mark.covers("REG-N", ...)``; the test suite's conftest writes those ids into the JUnit XML of the run as a
``covers`` property of each test case. ``trace`` reads both and gives each check one status:

- ``passed``: at least one covering test passed and none failed;
- ``failed``: a covering test failed or errored (whatever else passed);
- ``not run``: covering tests exist in the run, but every one was skipped;
- ``uncovered``: no test case of the run names the check.

A check is only ever shown as covered by a test that ran and passed in this run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from ruamel.yaml import YAML

from trialwright.version import __version__  # not the package: it reaches the services

__all__ = [
    "Check",
    "CheckTrace",
    "EmptyRun",
    "TestCase",
    "TestRun",
    "ValidationReport",
    "load_checks",
    "read_junit",
    "source_commit",
    "trace",
]

Outcome = Literal["passed", "failed", "error", "skipped"]
Status = Literal["passed", "failed", "not run", "uncovered"]


@dataclass(frozen=True)
class Check:
    """One regulatory promise, phrased as something a test can show."""

    id: str
    title: str
    text: str


@dataclass(frozen=True)
class TestCase:
    """One test case of a JUnit XML run: its name, what it did, and the checks it names."""

    __test__ = False  # not a pytest test class

    classname: str
    name: str
    outcome: Outcome
    covers: tuple[str, ...] = ()
    message: str = ""

    @property
    def nodeid(self) -> str:
        return f"{self.classname}::{self.name}" if self.classname else self.name


@dataclass(frozen=True)
class TestRun:
    """A whole run as read from its JUnit XML."""

    __test__ = False

    cases: tuple[TestCase, ...]
    timestamp: str | None
    hostname: str | None
    path: str | None = None
    sha256: str | None = None
    timestamp_from: str = "the JUnit XML"

    @property
    def provenance(self) -> str:
        """The run, said so a filed report can be tied to it: file, SHA-256, when it ran, and where."""
        where = f"JUnit file {self.path or 'unknown'} (SHA-256 {self.sha256 or 'unknown'})"
        when = f"run at {self.timestamp} (from {self.timestamp_from})" if self.timestamp else "run at an unknown time"
        host = f" on {self.hostname}" if self.hostname else ""
        return f"{where}, {when}{host}: {len(self.cases)} test cases"


@dataclass(frozen=True)
class CheckTrace:
    """One check and the test cases that name it."""

    check: Check
    cases: tuple[TestCase, ...]

    def count(self, *outcomes: Outcome) -> int:
        return sum(1 for case in self.cases if case.outcome in outcomes)

    @property
    def status(self) -> Status:
        if not self.cases:
            return "uncovered"
        if self.count("failed", "error"):
            return "failed"
        if self.count("passed"):
            return "passed"
        return "not run"


@dataclass(frozen=True)
class ValidationReport:
    """Every check with its trace, the run it was traced in, and the ids tests named that are no check."""

    checks: tuple[CheckTrace, ...]
    run: TestRun
    source: str
    made_at: dt.datetime
    unknown_ids: tuple[str, ...] = field(default=())
    version: str = __version__
    commit: str | None = None

    @property
    def made_by(self) -> str:
        """The trialwright version, and the git commit of its source tree (or why it is not known)."""
        return f"trialwright {self.version} (commit {self.commit or 'unknown: the source is not a git checkout'})"

    def with_status(self, status: Status) -> list[CheckTrace]:
        return [item for item in self.checks if item.status == status]

    @property
    def all_passed(self) -> bool:
        return all(item.status == "passed" for item in self.checks) and not self.unknown_ids

    def summary(self) -> str:
        counts = {status: len(self.with_status(status)) for status in ("passed", "failed", "not run", "uncovered")}
        lines = [
            f"{len(self.checks)} checks: "
            + ", ".join(f"{n} {status}" for status, n in counts.items())
            + f"; {len(self.run.cases)} test cases in the run."
        ]
        for item in self.checks:
            if item.status != "passed":
                lines.append(f"  {item.check.id} {item.check.title}: {item.status}")
        if self.unknown_ids:
            lines.append("  tests name ids that are no check: " + ", ".join(self.unknown_ids))
        return "\n".join(lines)


def load_checks(path: Path | None = None) -> tuple[str, list[Check]]:
    """The checks (and the note of their source) from ``path``, by default the copy shipped with trialwright."""
    if path is None:
        text = resources.files("trialwright.validation").joinpath("regulatory_checks.yaml").read_text("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = YAML(typ="safe").load(text)
    checks = [Check(id=str(c["id"]), title=str(c["title"]), text=str(c["text"])) for c in data["checks"]]
    return str(data.get("source", "")), checks


_OUTCOME_TAGS: dict[str, Outcome] = {"failure": "failed", "error": "error", "skipped": "skipped"}


def _case(element: ET.Element) -> TestCase:
    outcome: Outcome = "passed"
    message = ""
    for child in element:
        found = _OUTCOME_TAGS.get(child.tag)
        # an error in teardown after a failure keeps "failed"; any error or failure outranks a skip
        if found is not None and (outcome in ("passed", "skipped")):
            outcome, message = found, child.get("message", "") or ""
    covers: list[str] = []
    for prop in element.iter("property"):
        if prop.get("name") == "covers":
            covers.extend((prop.get("value") or "").split())
    return TestCase(
        classname=element.get("classname", ""),
        name=element.get("name", ""),
        outcome=outcome,
        covers=tuple(dict.fromkeys(covers)),
        message=message,
    )


class EmptyRun(ValueError):
    """A JUnit XML file without a single test case: no evidence of anything, so no report is made from it."""


def read_junit(path: Path) -> TestRun:
    """Every test case of a JUnit XML file (pytest's ``--junitxml``), with the checks each names, the file's path
    and SHA-256, and the run's time (the XML's ``timestamp``, else the file's modification time, said as such).
    ``EmptyRun`` if the file holds no test case."""
    data = path.read_bytes()
    root = ET.fromstring(data)  # noqa: S314 - our own test run's report, not input from outside
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    cases = tuple(_case(element) for suite in suites for element in suite.iter("testcase"))
    if not cases:
        raise EmptyRun(f"{path} holds no test case: it is no evidence of a run, so no report is made from it")
    first = suites[0] if suites else root
    timestamp, timestamp_from = first.get("timestamp"), "the JUnit XML"
    if not timestamp:
        mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        timestamp = mtime.isoformat(timespec="seconds").replace("+00:00", "Z")
        timestamp_from = "the file's modification time; the XML gives none"
    return TestRun(
        cases=cases,
        timestamp=timestamp,
        hostname=first.get("hostname"),
        path=str(path.resolve()),
        sha256=hashlib.sha256(data).hexdigest(),
        timestamp_from=timestamp_from,
    )


def source_commit() -> str | None:
    """The git commit of the source tree trialwright runs from (``+ uncommitted changes`` if any), or None when
    it is not a git checkout (an installed package) or git is not at hand."""
    folder = Path(__file__).resolve().parent
    git = shutil.which("git")
    if git is None:
        return None
    try:
        head = subprocess.run(  # noqa: S603 - fixed arguments
            [git, "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603 - fixed arguments
            [git, "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head} + uncommitted changes" if dirty else head or None


def trace(
    checks: Sequence[Check], run: TestRun, *, source: str = "", made_at: dt.datetime, commit: str | None = None
) -> ValidationReport:
    """Each check with the test cases of ``run`` that name it; ``commit``: the source tree's (``source_commit``)."""
    known = {check.id for check in checks}
    unknown = sorted({id_ for case in run.cases for id_ in case.covers if id_ not in known})
    traces = tuple(CheckTrace(check, tuple(case for case in run.cases if check.id in case.covers)) for check in checks)
    return ValidationReport(
        checks=traces, run=run, source=source, made_at=made_at, unknown_ids=tuple(unknown), commit=commit
    )
