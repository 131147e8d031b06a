"""The study report of one analysis, in the forms people and programs read.

``write_report`` writes into one folder: ``report.html`` (self-contained: styles and figures inline),
``report.pdf``, ``results.json`` (every estimate with its CI and n), ``results.csv``, ``consort.svg`` and
``consort.png``, and each figure as SVG and PNG under ``figures/``. Every file is written under a temporary
name and renamed when complete, so a file that exists is whole.

The report shows only what its ``AnalysisReport`` holds: group labels as the analysis was grouped (arm
names only in an unblinded analysis), never anything read from elsewhere.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jdatetime
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from matplotlib.figure import Figure

from trialwright.analysis import consort, figures
from trialwright.analysis import sentences as say
from trialwright.analysis.engine import AnalysisReport, fmt_number
from trialwright.analysis.estimands.common import N_
from trialwright.analysis.results import Comparison

__all__ = [
    "ENGLISH",
    "ReportWords",
    "estimate_html",
    "figures_for",
    "render_html",
    "render_pdf",
    "results_json",
    "svgs_for",
    "write_report",
]

_ENV = Environment(loader=PackageLoader("trialwright.analysis", "templates"), autoescape=select_autoescape(["html"]))


#: The line above the counts of form records by state (the report's HTML says the same words).
_FORM_STATES = N_(
    "Form records read, by state: every record counts, whatever its state (a draft as much as a signed form)."
)
#: The heading of the table by MedDRA SOC and PT (the safety page's own words).
_TERMS_TITLE = N_("Adverse events by MedDRA system organ class and preferred term: participants n (%) [events]")


def _pct(x: float | None) -> str:
    return "NA" if x is None else f"{100 * x:.0f}%"


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def results_json(report: AnalysisReport) -> dict[str, Any]:
    """The whole report as JSON-ready data: provenance, sets, Table 1, every estimate with its CI and n."""
    data = _plain(dataclasses.asdict(report))
    assert isinstance(data, dict)
    data["outcome_ids"] = list(report.outcome_ids)
    return data


def figures_for(report: AnalysisReport, words: ReportWords | None = None) -> dict[str, Figure]:
    """Each continuous outcome's values over time by group, and forest plots of the primary estimates; their titles,
    axis labels, groups, visits and estimates in ``words`` (English by default)."""
    w = words or ENGLISH
    t, said = w.gettext, w.said
    digits = None if w.lang == "en" else w.digits  # English figures keep matplotlib's own numbers
    out: dict[str, Figure] = {}
    for o in report.outcomes:
        values = [s for s in o.summaries if s.what == "value"]
        if not values:
            continue
        series = []
        for g in dict.fromkeys(s.group for s in values):  # efficacy may be pooled while safety is grouped
            points = [s for s in values if s.group == g]
            series.append(
                figures.GroupSeries(
                    label=said(g),
                    timepoints=tuple(w.visit(s.visit) for s in points),
                    x=tuple(float(i) for i in range(len(points))),
                    mean=tuple(s.mean for s in points),
                    lower=tuple(s.ci_lower for s in points),
                    upper=tuple(s.ci_upper for s in points),
                    n=tuple(s.n for s in points),
                )
            )
        description = w.outcome(o.outcome_id, "description", o.description)
        title = t(_TIME_TITLE) % {"outcome": description, "variable": o.variable}
        shown = [v for s in values for v in (s.mean, s.ci_lower, s.ci_upper) if v is not None]
        # A log axis only when every plotted value is positive (a mean's t interval can reach below zero).
        log_axis = o.log_scale and bool(shown) and min(shown) > 0
        out[f"time-{o.outcome_id}-{o.variable.replace('.', '-')}"] = figures.values_over_time(
            series, title=title, y_label=o.variable, log_scale=log_axis, digits=digits
        )
    for scale, key, null, label in (
        ("adjusted difference", "forest-difference", 0.0, N_("Adjusted difference (treatment minus reference)")),
        ("ratio of geometric means", "forest-ratio", 1.0, N_("Ratio of geometric means (treatment / reference)")),
    ):
        rows = [
            figures.ForestRow(
                label=f"{w.outcome(o.outcome_id, 'description', o.description)} "
                f"({o.variable.partition('.')[2] or o.variable}), {w.sentence(c.label)}",
                estimate=c.estimate,
                lower=c.lower,
                upper=c.upper,
                text=_estimate_text(w, c),
                log_scale=scale.startswith("ratio"),
            )
            for o in report.outcomes
            for c in o.comparisons
            if c.primary and c.scale == scale
        ]
        if rows:
            title = t(N_("Each outcome's main analysis: %(scale)s")) % {"scale": t(scale)}
            out[key] = figures.forest_plot(
                rows,
                title=title,
                null_value=null,
                x_label=t(label),
                digits=digits,
                not_estimable=None if digits is None else t(N_("not estimable")),
            )
    return out


#: A values-over-time figure's title
_TIME_TITLE = N_("%(outcome)s (%(variable)s): mean and 95%% CI by visit")


def _grouping_text(report: AnalysisReport) -> str:
    if report.grouping == "pooled":
        return "All participants pooled; no comparison between arms."
    if report.grouping == "unnamed_groups":
        return "Arms shown as unnamed groups; which group is which arm is not known."
    return "Arms named."


def _same(text: Any) -> str:
    return str(text)


def _code(outcome_id: str, code: str) -> str:
    return code


def _as_given(outcome_id: str, item: str, english: str) -> str:
    return english


@dataclass(frozen=True)
class ReportWords:
    """How the HTML report speaks to its reader: the language (``lang``, ``direction``), the app's words
    (``gettext``: an English message to the reader's language), the protocol's words (``said``: a text of the
    protocol, such as the title, an analysis set, an arm, a field's label or a visit id, to the protocol's text in
    the reader's language), numbers in the language's digits (``digits``) and an outcome's own texts (``outcome``:
    the outcome's id, the item, ``description``, ``registry_timepoint`` or an estimand attribute's name, and its
    English text as the result holds it, to that text in the reader's language). The caller supplies them (the web
    page from the reader's language and the protocol): the analysis reads no catalog. English by default."""

    lang: str = "en"
    direction: str = "ltr"
    gettext: Callable[[str], str] = _same
    said: Callable[[str], str] = _same
    digits: Callable[[Any], str] = _same
    visit: Callable[[str], str] = _same
    outcome: Callable[[str, str, str], str] = _as_given
    #: A value the report computed, written in English words (``NA``, Table 1's ``median``), in the reader's words.
    value: Callable[[str], str] = _same
    #: A sentence the analysis built with values (a note, why a participant was not analysed, a comparison's label
    #: and method; ``analysis.sentences``), said again in the reader's words.
    sentence: Callable[[str], str] = _same
    #: A stored code of an outcome's categorical variable (the outcome's id and the code; an ordinal outcome's
    #: categories) as the reader says it: the protocol's choice label in the reader's language. English as written.
    category: Callable[[str, str], str] = _code


ENGLISH = ReportWords()


#: What a value below a limit of quantification becomes (``analysis_plan.below_limit``), in words.
BELOW_LIMIT_WORDS = {
    "limit_over_sqrt2": N_("the limit divided by √2"),
    "half_limit": N_("half the limit"),
    "limit": N_("the limit itself"),
}


def _pilot(words: ReportWords, text: str) -> str:
    """A pilot rate (``PilotRate.text``) in the reader's words and digits, as the CONSORT diagram says it; English
    as written."""
    return text if words.lang == "en" else consort.pilot_value(words, text)


def estimate_html(words: ReportWords, c: Comparison) -> Markup:
    """A comparison's estimate (``Comparison.text``) in the reader's words and digits: "not estimable" with why
    (``analysis.sentences``), or the estimate, the catalog's "95% CI" and "to", and p, each number isolated left to
    right (so a minus sign stays before its digits in a right-to-left line)."""
    t = words.gettext
    if c.estimate is None:
        why = f" ({words.sentence(c.note)})" if c.note else ""
        return escape(t(say.NOT_ESTIMABLE) + why)

    def number(x: float | None) -> Markup:
        return Markup('<bdi dir="ltr">%s</bdi>') % words.digits(words.value(fmt_number(x)))

    said = Markup("%s (%s %s %s %s)") % (number(c.estimate), t(N_("95% CI")), number(c.lower), t(N_("to")),
                                          number(c.upper))  # fmt: skip
    if c.non_inferiority is not None:  # the one-sided test against the margin, never the two-sided p alone
        return said + Markup("%s%s") % (t(N_("; ")), c.non_inferiority.text(t, words.digits))
    if c.p_value is None:
        return said
    p = "p<0.001" if c.p_value < 0.001 else f"p={c.p_value:.3f}"
    return said + Markup('%s<bdi dir="ltr">%s</bdi>') % (t(N_(", ")), words.digits(p))


def _estimate_text(words: ReportWords, c: Comparison) -> str:
    """A comparison's estimate as the PDF and a forest plot's row say it: English as written; "not estimable" and
    why in the reader's words; an estimate with its interval in the reader's digits."""
    if words.lang != "en" and c.estimate is not None and c.non_inferiority is not None:
        return words.digits(f"{fmt_number(c.estimate)} ({words.gettext(N_('95% CI'))} {fmt_number(c.lower)} "
                            f"{words.gettext(N_('to'))} {fmt_number(c.upper)})") + words.gettext(N_("; ")) + (
            c.non_inferiority.text(words.gettext, words.digits))  # fmt: skip
    if words.lang == "en" or c.estimate is not None:
        return words.digits(c.text())
    return words.gettext(say.NOT_ESTIMABLE) + (f" ({words.sentence(c.note)})" if c.note else "")


def _taken_at(report: AnalysisReport) -> str:
    """When the snapshot was taken, to the minute, in UTC (the report's other times are the sites')."""
    return dt.datetime.fromisoformat(report.taken_at).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _cut_off_at(report: AnalysisReport) -> str | None:
    """The data cut-off, to the minute, in UTC, when it is not the moment taken (a locked trial's lock)."""
    if report.cut_off_at is None:
        return None
    return dt.datetime.fromisoformat(report.cut_off_at).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


#: The report's row for a data cut-off that is not the moment taken.
CUT_OFF = N_("Data cut-off (the lock: follow-up counted to it)")


def render_html(
    report: AnalysisReport, svgs: Mapping[str, str], *, fragment: bool = False, words: ReportWords = ENGLISH
) -> str:
    """The self-contained HTML report (figures inline as SVG); ``fragment``: only its ``<main>`` (for a page);
    ``words``: in the reader's language (headings, table labels and sentences; the protocol's texts where it
    translates them; numbers and dates in its digits)."""
    taken = report.taken_at[:10]
    jalali = jdatetime.date.fromgregorian(year=int(taken[:4]), month=int(taken[5:7]), day=int(taken[8:10]))
    return _ENV.get_template("report_body.html" if fragment else "report.html").render(
        r=report,
        svgs=svgs,
        fmt=lambda x: words.value(fmt_number(x)),
        pct=lambda x: words.value(_pct(x)),
        value=words.value,
        grouping_text=_grouping_text(report),
        taken_jalali=jalali.strftime("%Y/%m/%d"),
        taken_at=_taken_at(report),
        cut_off_at=_cut_off_at(report),
        cut_off_words=CUT_OFF,
        below_limit=BELOW_LIMIT_WORDS.get(report.below_limit_rule, report.below_limit_rule),
        lang=words.lang,
        dir=words.direction,
        _=words.gettext,
        said=lambda text: words.said(text) if isinstance(text, str) else text,
        d=words.digits,
        visit=words.visit,
        outcome=words.outcome,
        sentence=words.sentence,
        category=words.category,
        pilot=lambda text: _pilot(words, text),
        estimate=lambda c: estimate_html(words, c),
    )


def render_pdf(report: AnalysisReport, pngs: Mapping[str, bytes], *, words: ReportWords = ENGLISH) -> bytes:
    """The report as a PDF (tables and figures), made with ReportLab; ``words``: in the reader's language, as the
    HTML report (a right-to-left language is shaped, ordered and drawn right to left: ``analysis.rtl``). The
    figures and the CONSORT diagram are the same images in every language (English)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    story: list[Any] = []
    rtl = words.direction == "rtl"
    t, said, d = words.gettext, words.said, words.digits
    ltr: Callable[[str], str] = str
    from trialwright.analysis import rtl as right_to_left

    if rtl:
        ltr = right_to_left.LeftToRight

    def p(text: str, style: Any = small) -> Any:
        # A right-to-left reader's text, or a left-to-right reader's holding Persian words (a site's name, a lock's
        # reason as typed): shaped and ordered in a font that has the letters, which ReportLab's own lacks.
        if rtl or right_to_left.holds_right_to_left(text):
            regular, bold = right_to_left.register_fonts()
            font = regular if style is small else bold
            base = "L" if not rtl or isinstance(text, right_to_left.LeftToRight) else "R"
            size, leading, after = style.fontSize, style.leading, style.spaceAfter
            return right_to_left.RightToLeft(text, font, size, leading, after, base, right_aligned=rtl)
        return Paragraph(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), style)

    def table(rows: list[list[str]]) -> Any:
        if rtl:  # the first column on the right
            rows = [row[::-1] for row in rows]
        grid = Table([[p(c) for c in row] for row in rows], repeatRows=1)
        grid.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return grid

    def image(key: str, width: float, max_height: float = 22 * cm) -> Any:
        from reportlab.lib.utils import ImageReader

        w, h = ImageReader(io.BytesIO(pngs[key])).getSize()
        scale = min(width / w, max_height / h)
        return Image(io.BytesIO(pngs[key]), width=w * scale, height=h * scale)

    def of(group: str) -> str:
        return said(group)

    if report.lock_banner:  # first, on the first page: the data were locked with blockers open
        story.append(p(words.sentence(report.lock_banner), styles["Heading3"]))
    story.append(p(said(report.title), styles["Title"]))
    story.append(p(f"{t(report.mode)}. {t(_grouping_text(report))}", styles["Heading3"]))
    story.append(
        table(
            [
                [t(N_("Item")), t(N_("Value"))],
                [t(N_("Trial")), ltr(report.trial_id)],
                [t(N_("Protocol version")), d(report.protocol_version)],
                [t(N_("Software")), ltr(f"trialwright {d(report.software_version)}")],
                [t(N_("Data snapshot (SHA-256)")), ltr(report.snapshot_sha256)],
                [t(N_("Audit entry")), d(report.audit_seq)],
                [t(N_("Taken at")), ltr(d(_taken_at(report)))],
                *([[t(CUT_OFF), ltr(d(cut))]] if (cut := _cut_off_at(report)) else []),
                [
                    t(N_("Values below a limit of quantification")),
                    t(BELOW_LIMIT_WORDS.get(report.below_limit_rule, report.below_limit_rule)),
                ],
            ]
        )
    )
    story.extend(p(words.sentence(n)) for n in report.notes)
    story.append(p(t(N_("Participant flow (CONSORT)")), styles["Heading2"]))
    if "consort" in pngs:
        story.append(image("consort", 16 * cm))
    if report.pilot:
        story.append(
            table(
                [
                    [t(N_("Feasibility rate")), t(N_("Value"))],
                    *([t(r.label), _pilot(words, r.text())] for r in report.pilot),
                ]
            )
        )
    story.append(p(t(N_("Analysis sets")), styles["Heading2"]))
    story.append(
        table(
            [
                [t(N_("Set")), *(of(g) for g in report.groups)],
                *(
                    [said(report.set_names.get(k, k)), *(d(v[g]) for g in report.groups)]
                    for k, v in report.analysis_sets.items()
                ),
            ]
        )
    )
    if report.form_states:
        story.append(p(t(_FORM_STATES)))
        story.append(table([[t(N_("State")), t(N_("Form records"))],
                            *([t(state), d(n)] for state, n in report.form_states.items())]))  # fmt: skip
    if report.table_one:
        story.append(PageBreak())
        story.append(p(t(N_("Table 1. Baseline characteristics")), styles["Heading2"]))
        story.append(
            table(
                [
                    [t(N_("Characteristic")), *(of(g) for g in report.groups)],
                    *([said(r.label), *(d(words.value(r.cells[g])) for g in report.groups)] for r in report.table_one),
                ]
            )
        )
    story.append(PageBreak())
    story.append(p(t(N_("Outcomes")), styles["Heading2"]))
    for o in report.outcomes:
        description = words.outcome(o.outcome_id, "description", o.description)
        timepoint = words.outcome(o.outcome_id, "registry_timepoint", o.registry_timepoint)
        story.append(p(f"{description} ({o.variable}): {timepoint}", styles["Heading3"]))
        missing = ", ".join(f"{of(g)} {d(m)} {t(N_('of'))} {d(o.in_set[g])}" for g, m in o.missing.items())
        kind = t(N_("Primary outcome")) if o.kind == "primary" else t(N_("Secondary outcome"))
        story.append(p(f"{kind}; {said(o.analysis_set)}; {t(N_('missing:'))} {missing}."))
        rows = [[t(N_("Group")), t(N_("At")), "n", t(N_("Mean (SD)")), t(N_("Median (IQR)"))]]
        rows += [
            [
                of(s.group),
                f"{t(s.what)} {words.visit(s.visit)}",
                d(s.n),
                d(words.value(f"{fmt_number(s.mean)} ({fmt_number(s.sd)})")),
                d(words.value(f"{fmt_number(s.median)} ({fmt_number(s.q1)} {t(N_('to'))} {fmt_number(s.q3)})")),
            ]
            for s in o.summaries
            if s.visit == o.timepoint
        ]
        if len(rows) > 1:
            story.append(table(rows))
        events = o.extra.get("participants_with_event")
        if events:
            story.append(
                table(
                    [
                        [t(N_("Group")), t(N_("Participants with the event"))],
                        *([of(g), d(f"{v['k']} / {v['n']}")] for g, v in events.items()),
                    ]
                )
            )
        if o.comparisons:
            header = [t(N_("Comparison")), t(N_("Method")), t(N_("Set")), t(N_("Scale"))]
            story.append(
                table(
                    [[*header, t(N_("Estimate (95% CI), p"))]]
                    + [
                        [
                            words.sentence(c.label),
                            words.sentence(c.method) + (f" ({t(N_('main'))})" if c.primary else ""),
                            said(c.analysis_set),
                            words.sentence(c.scale),
                            ltr(_estimate_text(words, c)) if c.estimate is not None else _estimate_text(words, c),
                        ]
                        for c in o.comparisons
                    ]
                )
            )
        story.append(Spacer(1, 0.3 * cm))
    if report.terms:
        story.append(p(t(_TERMS_TITLE), styles["Heading2"]))
        story.append(table([["", *(of(g) for g in report.term_groups)],
                            *([("  " + r.pt) if r.pt else r.soc or t(N_("Not yet coded")),
                               *(d(words.value(r.cell(g))) for g in report.term_groups)]
                              for r in report.terms)]))  # fmt: skip
    for key in ("forest-difference", "forest-ratio"):
        if key in pngs:
            story.append(image(key, 16 * cm))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"{report.title}: statistical report",
        author="trialwright",
        leftMargin=1.5 * cm,
        rightMargin=1.5 * cm,
    )
    doc.build(story)
    return buffer.getvalue()


def _write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    if isinstance(content, str):
        partial.write_text(content, encoding="utf-8")
    else:
        partial.write_bytes(content)
    os.replace(partial, path)
    return path


def svgs_for(report: AnalysisReport, words: ReportWords = ENGLISH) -> dict[str, str]:
    """Every figure and the CONSORT diagram (in ``words``) as SVG text, by key."""
    svgs = {key: figures.to_svg(fig) for key, fig in figures_for(report, words).items()}
    svgs["consort"] = consort.to_svg(report.consort, words)
    return svgs


def write_report(report: AnalysisReport, out: Path, *, progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write every file of the report into ``out``; returns the paths written."""
    step = progress or (lambda _: None)
    written: list[Path] = []
    step("figures")
    figs = figures_for(report)
    svgs = {key: figures.to_svg(fig) for key, fig in figs.items()}
    pngs = {key: figures.to_png(fig) for key, fig in figs.items()}
    svgs["consort"] = consort.to_svg(report.consort)
    pngs["consort"] = consort.to_png(report.consort)
    for key in figs:
        written.append(_write(out / "figures" / f"{key}.svg", svgs[key]))
        written.append(_write(out / "figures" / f"{key}.png", pngs[key]))
    written.append(_write(out / "consort.svg", svgs["consort"]))
    written.append(_write(out / "consort.png", pngs["consort"]))
    step("results")
    written.append(_write(out / "results.json", json.dumps(results_json(report), indent=2, ensure_ascii=False)))
    buffer = io.StringIO()
    rows = report.csv_rows()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["outcome"])
    writer.writeheader()
    writer.writerows(rows)
    written.append(_write(out / "results.csv", buffer.getvalue()))
    step("report.html")
    written.append(_write(out / "report.html", render_html(report, svgs)))
    step("report.pdf")
    written.append(_write(out / "report.pdf", render_pdf(report, pngs)))
    return written
