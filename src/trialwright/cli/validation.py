"""``trialwright validation-report``: the regulatory checks traced to the tests that cover them and their result in
one test run, as HTML and PDF (docs/validation.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialwright.cli.common import ExitCode, JsonOption, console, emit, fail

__all__ = ["validation_report"]


def validation_report(
    out: Annotated[Path, typer.Option("--out", help="Folder for validation-report.html and .pdf.", show_default=False)],
    junit: Annotated[
        Path, typer.Option("--junit", help="The JUnit XML of the test run (pytest --junitxml; CI writes this one).")
    ] = Path("test-artifacts/junit.xml"),
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Exit with status 1 unless every check is covered by a test that passed."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write the validation report: each regulatory check, the tests that cover it, and their result in the run."""
    import datetime as dt
    import xml.etree.ElementTree as ET

    from trialwright.validation import EmptyRun, load_checks, read_junit, source_commit, trace, write_report

    try:
        run = read_junit(junit)
    except FileNotFoundError:
        fail(f"--junit: {junit}: no such file (run the tests with --junitxml={junit} first)", ExitCode.NOT_FOUND)
    except ET.ParseError as exc:
        fail(f"--junit: {junit}: not valid XML ({exc})", ExitCode.USAGE)
    except EmptyRun as exc:
        fail(f"--junit: {exc} (did the test run collect nothing, or stop before it began?)", ExitCode.REFUSED)
    source, checks = load_checks()
    report = trace(checks, run, source=source, made_at=dt.datetime.now(dt.UTC), commit=source_commit())
    html, pdf = write_report(report, out)
    if not emit({"all_passed": report.all_passed, "summary": report.summary(), "files": [html, pdf]}, as_json):
        console.print(report.summary(), highlight=False)
        console.print(f"Wrote {html} and {pdf}.", highlight=False)
    if strict and not report.all_passed:
        raise typer.Exit(ExitCode.REFUSED)
