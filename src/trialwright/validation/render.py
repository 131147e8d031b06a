"""The validation report as a self-contained HTML page and as a PDF (reportlab), from a ``ValidationReport``."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, select_autoescape

from trialwright.validation.trace import CheckTrace, ValidationReport

__all__ = ["render_html", "write_pdf", "write_report"]

_LABEL = {
    "passed": "covered, passed",
    "failed": "FAILING",
    "not run": "NOT RUN (every covering test skipped)",
    "uncovered": "NO COVERING TEST",
}

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>trialwright validation report {{ made }}</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5em; }
th, td { border: 1px solid #999; padding: .3em .5em; vertical-align: top; text-align: left; }
.passed { background: #e3f4e3; } .failed { background: #f9d6d6; }
.not-run, .uncovered { background: #fbedc9; }
code { font-size: 90%; }
</style></head><body>
<h1>trialwright validation report</h1>
<p>Made {{ made }} by {{ report.made_by }}.</p>
<p>From the test run in {{ report.run.provenance }}.</p>
<p>Checks: {{ report.source }}.</p>
<p><strong>{{ summary_line }}</strong></p>
<table><tr><th>check</th><th>status</th><th>tests</th></tr>
{% for item in report.checks %}
<tr class="{{ item.status|replace(' ', '-') }}"><td><a href="#{{ item.check.id }}">{{ item.check.id }}</a>
{{ item.check.title }}</td><td>{{ label[item.status] }}</td>
<td>{{ item.count("passed") }} passed, {{ item.count("failed", "error") }} failed,
{{ item.count("skipped") }} skipped</td></tr>
{% endfor %}</table>
{% if report.unknown_ids %}<p class="failed">Tests name ids that are no check:
{{ report.unknown_ids|join(", ") }}</p>{% endif %}
{% for item in report.checks %}
<h2 id="{{ item.check.id }}">{{ item.check.id }} {{ item.check.title }}: {{ label[item.status] }}</h2>
<p>{{ item.check.text }}</p>
{% if item.cases %}<table><tr><th>test</th><th>result</th></tr>
{% for case in item.cases %}<tr class="{{ 'failed' if case.outcome in ('failed', 'error') else case.outcome }}">
<td><code>{{ case.nodeid }}</code></td><td>{{ case.outcome }}{% if case.message %}: {{ case.message[:300] }}
{% endif %}</td></tr>
{% endfor %}</table>{% else %}<p class="uncovered">No test of this run covers this check.</p>{% endif %}
{% endfor %}
<p>What this report is and is not: docs/validation.md.</p>
</body></html>
"""


def _made(report: ValidationReport) -> str:
    return report.made_at.strftime("%Y-%m-%d %H:%M UTC")


def render_html(report: ValidationReport) -> str:
    template = Environment(autoescape=select_autoescape(default=True)).from_string(_HTML)
    return template.render(
        report=report,
        label=_LABEL,
        made=_made(report),
        summary_line=report.summary().splitlines()[0],
    )


def _pdf_rows(item: CheckTrace) -> list[list[str]]:
    if not item.cases:
        return [["(no test of this run covers this check)", ""]]
    return [[case.nodeid, case.outcome] for case in item.cases]


def write_pdf(report: ValidationReport, target: Path) -> None:
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    shade = {
        "passed": colors.HexColor("#e3f4e3"),
        "failed": colors.HexColor("#f9d6d6"),
        "not run": colors.HexColor("#fbedc9"),
        "uncovered": colors.HexColor("#fbedc9"),
    }
    story: list[object] = [
        Paragraph("trialwright validation report", styles["Title"]),
        Paragraph(
            escape(
                f"Made {_made(report)} by {report.made_by}. From the test run in {report.run.provenance}. "
                f"Checks: {report.source}."
            ),
            styles["BodyText"],
        ),
    ]
    story += [Paragraph(escape(line), styles["BodyText"]) for line in report.summary().splitlines()]
    for item in report.checks:
        story.append(Spacer(1, 8))
        story.append(
            Paragraph(escape(f"{item.check.id} {item.check.title}: {_LABEL[item.status]}"), styles["Heading3"])
        )
        story.append(Paragraph(escape(item.check.text), styles["BodyText"]))
        rows = [[Paragraph(escape(a), small), Paragraph(escape(b), small)] for a, b in _pdf_rows(item)]
        table = Table(rows, colWidths=[420, 70])
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, -1), shade[item.status]),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    SimpleDocTemplate(str(target), pagesize=A4, title="trialwright validation report").build(story)


def write_report(report: ValidationReport, folder: Path) -> tuple[Path, Path]:
    """Write ``validation-report.html`` and ``validation-report.pdf`` into ``folder`` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    html = folder / "validation-report.html"
    pdf = folder / "validation-report.pdf"
    html.write_text(render_html(report), encoding="utf-8")
    write_pdf(report, pdf)
    return html, pdf
