"""Validation evidence: the regulatory checks traced to the tests that cover them and their result in one run.

An institution validating trialwright for its computer system validation reads the report this package writes
(``trialwright validation-report``): each check of ``regulatory_checks.yaml``, the tests that name it with
``@pytest.mark.covers``, and what they did in the JUnit XML of a test run. See docs/validation.md.
"""

from trialwright.validation.render import render_html, write_pdf, write_report
from trialwright.validation.trace import (
    Check,
    CheckTrace,
    EmptyRun,
    TestCase,
    TestRun,
    ValidationReport,
    load_checks,
    read_junit,
    source_commit,
    trace,
)

__all__ = [
    "Check",
    "CheckTrace",
    "EmptyRun",
    "TestCase",
    "TestRun",
    "ValidationReport",
    "load_checks",
    "read_junit",
    "render_html",
    "source_commit",
    "trace",
    "write_pdf",
    "write_report",
]
