"""`trialwright validation-report` traces each regulatory check to the tests that name it and their result in one
run: a check is covered only by a test that ran and passed; a failing, skipped-only or missing test is flagged.

Read on a small JUnit XML written by hand (one check passed, one failed beside a pass, one with its only test
skipped, one with no test at all, and a test naming an id that is no check), and on a real pytest run of this
folder, which shows the conftest writes the markers into the JUnit XML.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT
from trialwright.cli.main import app
from trialwright.validation import Check, load_checks, read_junit, render_html, trace, write_report

MADE = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)

CHECKS = [
    Check("REG-1", "Audit trail", "Every change leaves an entry."),
    Check("REG-2", "Reason for change everywhere", "No change without a reason."),
    Check("REG-3", "User administration audited", "Accounts are audited."),
    Check("REG-4", "Access control", "Every route enforces role and site."),
]

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="5"
 timestamp="2026-12-03T11:00:00+00:00" hostname="ci-runner">
<testcase classname="tests.spec.audit.test_trail" name="test_append_only[sqlite]" time="0.1">
 <properties><property name="covers" value="REG-1" /></properties></testcase>
<testcase classname="tests.spec.forms.test_reason" name="test_api_needs_reason" time="0.1">
 <properties><property name="covers" value="REG-2 REG-1" /></properties></testcase>
<testcase classname="tests.spec.forms.test_reason" name="test_import_needs_reason" time="0.1">
 <properties><property name="covers" value="REG-2" /></properties>
 <failure message="assert 200 == 422">AssertionError</failure></testcase>
<testcase classname="tests.spec.users.test_users" name="test_reset_audited[postgresql]" time="0.0">
 <properties><property name="covers" value="REG-3 REG-77" /></properties>
 <skipped type="pytest.skip" message="PostgreSQL is not available">skipped</skipped></testcase>
<testcase classname="tests.spec.misc" name="test_unmarked" time="0.0" />
</testsuite></testsuites>
"""


@pytest.fixture
def junit(tmp_path: Path) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT, encoding="utf-8")
    return path


@pytest.mark.covers("REG-14")
def test_each_check_gets_the_status_of_the_tests_that_name_it(junit: Path) -> None:
    report = trace(CHECKS, read_junit(junit), source="test", made_at=MADE)
    status = {item.check.id: item.status for item in report.checks}
    assert status == {"REG-1": "passed", "REG-2": "failed", "REG-3": "not run", "REG-4": "uncovered"}
    tests = {item.check.id: [case.name for case in item.cases] for item in report.checks}
    assert tests == {
        "REG-1": ["test_append_only[sqlite]", "test_api_needs_reason"],
        "REG-2": ["test_api_needs_reason", "test_import_needs_reason"],
        "REG-3": ["test_reset_audited[postgresql]"],
        "REG-4": [],
    }
    assert report.unknown_ids == ("REG-77",)
    assert not report.all_passed
    assert report.run.hostname == "ci-runner" and len(report.run.cases) == 5


@pytest.mark.covers("REG-14")
def test_the_html_flags_what_is_not_covered_and_passed(junit: Path) -> None:
    page = render_html(trace(CHECKS, read_junit(junit), source="test", made_at=MADE))
    sections = dict(re.findall(r'<h2 id="(REG-\d+)">[^:]*: ([^<]*)</h2>', page))
    assert sections == {
        "REG-1": "covered, passed",
        "REG-2": "FAILING",
        "REG-3": "NOT RUN (every covering test skipped)",
        "REG-4": "NO COVERING TEST",
    }
    assert "assert 200 == 422" in page
    assert "tests.spec.forms.test_reason::test_import_needs_reason" in page
    assert "REG-77" in page
    assert "2026-12-03 12:00 UTC" in page


def _pdf_text(data: bytes) -> str:
    text = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        stream = stream.strip()
        if stream.endswith(b"~>"):  # reportlab's /ASCII85Decode /FlateDecode
            stream = zlib.decompress(base64.a85decode(stream, adobe=True))
        text.append(stream.decode("latin-1"))
    return "".join(text)


@pytest.mark.covers("REG-14")
def test_the_command_writes_html_and_pdf_and_strict_fails_unless_all_passed(junit: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["validation-report", "--junit", str(junit), "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    html = (tmp_path / "out" / "validation-report.html").read_text(encoding="utf-8")
    pdf = (tmp_path / "out" / "validation-report.pdf").read_bytes()
    assert "REG-15 Backup, restore, contingency" in html  # the shipped checks
    assert pdf.startswith(b"%PDF-")
    assert "NO COVERING TEST" in _pdf_text(pdf)
    strict = runner.invoke(app, ["validation-report", "--junit", str(junit), "--out", str(tmp_path / "o2"), "--strict"])
    assert strict.exit_code == 1  # ExitCode.REFUSED: the check found a problem (docs/cli.md)
    missing = runner.invoke(app, ["validation-report", "--junit", str(tmp_path / "none.xml"), "--out", str(tmp_path)])
    assert missing.exit_code == 3 and "no such file" in missing.output


@pytest.mark.covers("REG-14")
def test_when_every_check_passes_the_report_says_so(tmp_path: Path) -> None:
    cases = "".join(
        f'<testcase classname="t" name="test_{n}"><properties><property name="covers" value="REG-{n}" />'
        "</properties></testcase>"
        for n in (1, 2, 3, 4)
    )
    path = tmp_path / "junit.xml"
    path.write_text(f'<testsuite name="pytest" tests="4">{cases}</testsuite>', encoding="utf-8")
    report = trace(CHECKS, read_junit(path), made_at=MADE)
    assert report.all_passed
    html, pdf = write_report(report, tmp_path / "out")
    assert html.exists() and pdf.exists()


@pytest.mark.covers("REG-14")
def test_the_conftest_writes_the_markers_into_the_junit_xml(tmp_path: Path) -> None:
    target = tmp_path / "run.xml"
    selected = f"{Path(__file__).relative_to(ROOT)}::test_each_check_gets_the_status_of_the_tests_that_name_it"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            selected,
            f"--junitxml={target}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cases = read_junit(target).cases
    assert [(case.name, case.outcome, case.covers) for case in cases] == [
        ("test_each_check_gets_the_status_of_the_tests_that_name_it", "passed", ("REG-14",))
    ]


@pytest.mark.covers("REG-14")
def test_the_shipped_checks_are_the_fifteen_of_the_reference() -> None:
    source, checks = load_checks()
    assert "regulatory.md" in source
    assert [check.id for check in checks] == [f"REG-{n}" for n in range(1, 16)]
    assert checks[4].title == "Blinding" and "crawl" in checks[4].text
    assert all(check.text and check.title for check in checks)


@pytest.mark.covers("REG-14")
def test_the_report_names_the_run_it_was_made_from(junit: Path, tmp_path: Path) -> None:
    """A filed report can be tied to its run: the JUnit file's path and SHA-256, the run's time (from the XML), the
    trialwright version and the git commit of the source tree, in the HTML and in the PDF."""
    import hashlib

    from trialwright import __version__

    done = CliRunner().invoke(app, ["validation-report", "--junit", str(junit), "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    html = (tmp_path / "out" / "validation-report.html").read_text(encoding="utf-8")
    shown = re.findall(
        r"\(((?:\\.|[^\\)])*)\) Tj", _pdf_text((tmp_path / "out" / "validation-report.pdf").read_bytes())
    )
    pdf = re.sub(r"\\(.)", r"\1", " ".join(shown))  # the PDF's lines of text, unescaped
    digest = hashlib.sha256(JUNIT.encode("utf-8")).hexdigest()
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for text in (" ".join(html.split()), pdf):
        assert f"SHA-256 {digest}" in text
        assert "run at 2026-12-03T11:00:00+00:00 (from the JUnit XML) on ci-runner" in text
        assert f"trialwright {__version__} (commit {head}" in text
        assert "unknown time" not in text
    assert str(junit.resolve()) in html


def test_without_a_timestamp_the_run_time_is_the_files_and_said_so(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text('<testsuite name="pytest" tests="1"><testcase classname="t" name="test_a" /></testsuite>', "utf-8")
    when = dt.datetime(2026, 11, 30, 9, 15, 0, tzinfo=dt.UTC).timestamp()
    os.utime(path, (when, when))
    run = read_junit(path)
    assert run.timestamp == "2026-11-30T09:15:00Z"
    assert "run at 2026-11-30T09:15:00Z (from the file's modification time; the XML gives none)" in run.provenance
    page = render_html(trace(CHECKS, run, made_at=MADE, commit=None))
    assert "commit unknown: the source is not a git checkout" in page


@pytest.mark.covers("REG-14")
def test_a_junit_file_without_test_cases_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text('<testsuites><testsuite name="pytest" tests="0" errors="0" /></testsuites>', encoding="utf-8")
    refused = CliRunner().invoke(app, ["validation-report", "--junit", str(path), "--out", str(tmp_path / "out")])
    assert refused.exit_code == 1
    assert "holds no test case" in refused.output
    assert not (tmp_path / "out").exists()
