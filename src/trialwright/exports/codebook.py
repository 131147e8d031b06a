"""The data dictionary (codebook): every field of every form, generated from the protocol file alone.

``codebook_rows(protocol)`` is the one place that turns the protocol's form definitions into rows people
read (type, units and their conversions, codes with labels, hard and soft limits, what a derived field is
computed from, the visits that collect the form); the ``codebook`` export writes them as ``codebook.csv``
and a self-contained ``codebook.html``, and other exports (e.g. de-identified individual participant data)
can ship the same rows beside their data. The codebook never names an arm.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from trialwright.domain.text import spreadsheet_row
from trialwright.exports.base import Exporter, ExportSource, Progress
from trialwright.exports.readstat import ASCII_SPELLINGS
from trialwright.protocol import Protocol
from trialwright.protocol.base import Range
from trialwright.protocol.forms import FieldType, FormField, UnitConversion

__all__ = ["CODEBOOK_COLUMNS", "SPREADSHEET_NOTE", "CodebookExporter", "CodebookRow", "codebook_rows", "render_html"]


@dataclass(frozen=True, slots=True)
class CodebookRow:
    """One field of one form, as the codebook describes it (every value is text, empty when not set)."""

    form: str
    form_name: str
    field: str
    label: str
    type: str
    unit: str
    alternative_units: str
    choices: str
    hard_limits: str
    soft_limits: str
    decimals: str
    text_limit: str
    required: str
    not_done_allowed: str
    not_applicable_allowed: str
    quantification_limits: str
    derived_from: str
    visits: str


#: How CSV files show text a spreadsheet would run as a formula (the codebook and the CSV README say so).
SPREADSHEET_NOTE = (
    "CSV files: a text cell that starts with =, +, -, @, a TAB or a carriage return is written with a leading "
    "apostrophe (') so that Excel or LibreOffice shows it as text and never runs it as a formula (OWASP, CSV "
    "injection); remove the apostrophe to get the stored text. Numbers are never changed: a number cell, or "
    "a text cell that is wholly a number such as -3.5, is written as it is. Text limits: each text field "
    "accepts at most the characters its Text limit column gives; control characters and bidirectional "
    "overrides are refused on entry."
)

#: The codebook's columns, in order.
CODEBOOK_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CodebookRow))


def _text_limit(f: FormField) -> str:
    if f.type is not FieldType.TEXT or f.derived is not None:
        return ""
    return f"{f.text_limit} characters, {'multi-line' if f.multiline else 'one line'}"


def _number(value: float) -> str:
    return f"{value:g}"


def _range(r: Range | None) -> str:
    if r is None:
        return ""
    if r.min is not None and r.max is not None:
        return f"{_number(r.min)} to {_number(r.max)}"
    return f">= {_number(r.min)}" if r.min is not None else f"<= {_number(r.max)}" if r.max is not None else ""


def _conversion(alt: UnitConversion) -> str:
    offset = f" + {_number(alt.offset)}" if alt.offset else ""
    note = f" [{alt.note}]" if alt.note else ""
    return f"{alt.unit} (x {_number(alt.factor)}{offset}){note}"


def _derived(f: FormField) -> str:
    return "" if f.derived is None else f.derived.describe()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def codebook_rows(protocol: Protocol) -> list[CodebookRow]:
    """Every field of every form of ``protocol``, in protocol order."""
    rows = []
    for form in protocol.forms:
        visits = "; ".join(v.id for v in protocol.visits if form.id in v.forms)
        for f in form.fields:
            rows.append(
                CodebookRow(
                    form=form.id,
                    form_name=form.name,
                    field=f.id,
                    label=f.label,
                    type=f.type.value,
                    unit=f.unit or "",
                    alternative_units="; ".join(_conversion(a) for a in f.alternative_units),
                    choices="; ".join(f"{c.code}={c.label}" for c in f.choices),
                    hard_limits=_range(f.hard_limits),
                    soft_limits=_range(f.soft_limits),
                    decimals="" if f.decimals is None else str(f.decimals),
                    text_limit=_text_limit(f),
                    required=_yes(f.required and f.derived is None),
                    not_done_allowed=_yes(f.not_done_allowed and f.derived is None),
                    not_applicable_allowed=_yes(f.not_applicable_allowed and f.derived is None),
                    quantification_limits=_yes(f.quantification_limits),
                    derived_from=_derived(f),
                    visits=visits,
                )
            )
    return rows


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1a1a1a; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; width: 100%; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } code { font-size: 0.85rem; } .meta { color: #555; }
"""

_HTML_COLUMNS = (
    ("field", "Field"),
    ("label", "Label"),
    ("type", "Type"),
    ("unit", "Unit"),
    ("alternative_units", "Other units accepted"),
    ("choices", "Codes"),
    ("hard_limits", "Hard limits"),
    ("soft_limits", "Soft limits"),
    ("text_limit", "Text limit"),
    ("required", "Required"),
    ("quantification_limits", "LLOQ/ULOQ"),
    ("derived_from", "Derived from"),
)


def render_html(protocol: Protocol, rows: list[CodebookRow], taken_at: dt.datetime | None = None) -> str:
    """A self-contained HTML page: one section per form, with the visits that collect it."""
    e = html.escape
    visit_names = {v.id: v.name for v in protocol.visits}
    stamp = f" Generated {taken_at.astimezone(dt.UTC).isoformat(timespec='seconds')} (UTC)." if taken_at else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Codebook: {e(protocol.trial_id)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Codebook: {e(protocol.short_name)}</h1>",
        f'<p class="meta">Trial {e(protocol.trial_id)}, protocol version {e(protocol.version.number)} '
        f"({e(protocol.version.date.isoformat())}).{e(stamp)}</p>",
        f'<p class="meta">{e(SPREADSHEET_NOTE)}</p>',
        "<ul>",
        *(f'<li><a href="#form-{e(f.id)}">{e(f.name)}</a> (<code>{e(f.id)}</code>)</li>' for f in protocol.forms),
        "</ul>",
    ]
    for form in protocol.forms:
        collected = [visit_names[v.id] for v in protocol.visits if form.id in v.forms]
        parts.append(f'<section id="form-{e(form.id)}"><h2>{e(form.name)} (<code>{e(form.id)}</code>)</h2>')
        if form.description:
            parts.append(f"<p>{e(form.description)}</p>")
        parts.append(f"<p>Collected at: {e(', '.join(collected) or 'no scheduled visit')}.</p>")
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(t)}</th>" for _, t in _HTML_COLUMNS) + "</tr></thead>")
        parts.append("<tbody>")
        for row in (r for r in rows if r.form == form.id):
            values = asdict(row)
            cells = "".join(
                f"<td><code>{e(values[k])}</code></td>" if k == "field" else f"<td>{e(values[k])}</td>"
                for k, _ in _HTML_COLUMNS
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table></section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_codebook_csv(path: Path, rows: list[CodebookRow]) -> Path:
    """``rows`` as CSV with a header of ``CODEBOOK_COLUMNS``."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CODEBOOK_COLUMNS)
        writer.writerows(spreadsheet_row(getattr(r, c) for c in CODEBOOK_COLUMNS) for r in rows)
    return path


class CodebookExporter(Exporter):
    """The data dictionary of the protocol the trial runs on."""

    name = "codebook"
    description = "Data dictionary generated from the protocol file: codebook.csv and codebook.html."
    carries_arms = False

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        rows = codebook_rows(source.protocol)
        html_path = folder / "codebook.html"
        html_path.write_text(render_html(source.protocol, rows, source.taken_at), encoding="utf-8")
        if progress is not None:
            progress(len(rows))
        return [write_codebook_csv(folder / "codebook.csv", rows), html_path, write_xpt_ascii(folder / "xpt_ascii.csv")]


def write_xpt_ascii(path: Path) -> Path:
    """xpt_ascii.csv: how SAS transport (XPT v5, ASCII only) spells each non-ASCII character it accepts (the
    character, its Unicode code point, its ASCII spelling); text with any other non-ASCII character is left out
    of an XPT file and listed in that export's not_ascii.csv."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["character", "code_point", "ascii"])
        writer.writerows(spreadsheet_row([k, f"U+{ord(k):04X}", v]) for k, v in ASCII_SPELLINGS.items())
    return path
