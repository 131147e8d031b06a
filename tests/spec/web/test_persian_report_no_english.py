"""A Persian reader's study report holds no English sentence (from a new user's walk), both databases.

The trial is the one nobody here wrote code for (``tests/spec/analysis/test_estimands.py``: the three-arm example
with an ordinal, a count, a repeated-measures and a time-to-death outcome added), simulated, locked over the open
blockers the simulation leaves, and analysed blinded and unblinded. Each report is rendered in Persian, as HTML and
as a PDF (read back with pypdf, an independent reader). The example declares English only, so its own texts (field
labels, choice labels, visit and set names, outcome descriptions) stay English: taking those out, no run of three
or more English words is left (an id, a code, a number or an abbreviation stands alone).

And each string the walk found is said in Persian, its Persian read from the catalog file (babel, independently):
"value as analysed"; the banner of a lock over open blockers, with its count in Persian digits; the negative binomial
fit that did not converge; the proportional-odds direction; an ordinal outcome's categories by their choice labels
(not the raw codes); "log-rank" said one way only; a percentage with the Persian percent sign (٪, U+066A).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from babel.messages.pofile import read_po
from pypdf import PdfReader

from tests.spec.analysis.test_estimands import ADDED, EXAMPLE
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import PASSWORD
from trialwright.analysis.engine import AnalysisReport
from trialwright.analysis.report import render_html, render_pdf
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol, load_protocol
from trialwright.services.analysis import run_analysis
from trialwright.services.forms import lock_trial
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user, reset_password
from trialwright.store.auth_tables import users
from trialwright.store.engine import make_engine, session_scope
from trialwright.web.i18n import catalog_path
from trialwright.web.report_words import report_words

with catalog_path("fa").open("rb") as _handle:
    FA = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}
#: three or more English words in a row (an id such as ``vitals.news2``, a code, a number stands alone)
ENGLISH_RUN = re.compile(r"(?<![\w.-])[A-Za-z][a-z']+(?:[ ,;:()]+[A-Za-z][a-z']+){2,}")
LATIN_PERCENT = re.compile(r"[0-9۰-۹]%")


@pytest.fixture(scope="module")
def reports(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import shutil

    from sqlalchemy import select

    folder = tmp_path_factory.mktemp("walk")
    path = folder / EXAMPLE.name
    path.write_text(mutated_text(lambda doc: doc["outcomes"].extend(ADDED), EXAMPLE), encoding="utf-8")
    shutil.copy(EXAMPLE.with_name("EXAMPLE-CAP-3ARM.simulation.yaml"), folder)
    protocol = load_protocol(path).protocol
    engine = make_engine(module_database_url)
    init_trial(engine, load_protocol(path))
    simulate(engine, path, 90, 4)
    with session_scope(engine) as session:
        account = {row.role: row.username for row in session.execute(select(users.c.username, users.c.role))}
    manager = get_user(engine, account[Role.DATA_MANAGER.value])
    unblinded = get_user(engine, account[Role.UNBLINDED_STATISTICIAN.value])
    blinded = get_user(engine, account[Role.BLINDED_STATISTICIAN.value])
    assert manager is not None and unblinded is not None and blinded is not None
    reset_password(engine, manager.username, PASSWORD, actor="test")
    lock_trial(engine, manager, "final analysis", password=PASSWORD)  # over the simulation's open blockers
    yield {
        "protocol": protocol,
        "unblinded": run_analysis(engine, unblinded, unblinded=True).report,
        "blinded": run_analysis(engine, blinded, unblinded=False).report,
    }
    engine.dispose()


def _own_english(protocol: Protocol) -> list[str]:
    """The protocol's own English texts, longest first (so a label goes before a word inside it)."""
    texts = [protocol.trial.titles.public, protocol.trial.titles.short or ""]
    texts += [s.name for s in protocol.analysis_sets] + [s.definition for s in protocol.analysis_sets]
    texts += [v.name for v in protocol.visits] + [a.name for a in protocol.arms] + [f.name for f in protocol.forms]
    texts += [e.term for e in protocol.safety.expected_events]
    for o in protocol.outcomes:
        texts += [o.description, o.registry_timepoint]
    for form in protocol.forms:
        for f in form.fields:
            unit = f" ({f.unit})" if getattr(f, "unit", None) else ""
            texts += [f.label + unit, f.label, f.label[0].lower() + f.label[1:]]
            texts += [c.label for c in getattr(f, "choices", None) or []]
    return sorted({t for t in texts if t}, key=len, reverse=True)


def _without_own(text: str, protocol: Protocol) -> str:
    for own in _own_english(protocol):
        text = text.replace(own, " ")
    return text


def _html_text(report: AnalysisReport, protocol: Protocol) -> str:
    words = report_words(protocol, "fa")
    body = render_html(report, {}, fragment=True, words=words)
    body = re.sub(r"<style.*?</style>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def _pdf_text(report: AnalysisReport, protocol: Protocol) -> str:
    words = report_words(protocol, "fa")
    reader = PdfReader(io.BytesIO(render_pdf(report, {}, words=words)))  # the text (the figures are images)
    return "\n".join(page.extract_text() for page in reader.pages)


def _english_runs(text: str, protocol: Protocol) -> list[str]:
    return ENGLISH_RUN.findall(_without_own(text, protocol))


@pytest.mark.parametrize("who", ["blinded", "unblinded"])
def test_the_persian_html_report_holds_no_english_sentence(reports: dict[str, Any], who: str) -> None:
    protocol, report = reports["protocol"], reports[who]
    text = _html_text(report, protocol)
    assert report.lock_banner and report.lock_banner.startswith("Locked with ")
    assert _english_runs(text, protocol) == []
    assert LATIN_PERCENT.search(text) is None
    assert "٪" in text
    assert FA["value as analysed"] in text
    blockers = re.match(r"Locked with (\d+) open", report.lock_banner)
    assert blockers is not None
    persian_count = blockers[1].translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    banner = FA["Locked with %(n)s open blockers by %(user)s on %(at)s UTC: %(reason)s"].split("%(n)s")[0]
    assert banner + persian_count in text


def test_the_unblinded_reports_method_notes_and_categories_are_persian(reports: dict[str, Any]) -> None:
    protocol, report = reports["protocol"], reports["unblinded"]
    text = _html_text(report, protocol)
    notes = [c.note for o in report.outcomes for c in o.comparisons if c.note]
    assert any("higher categories more likely" in n for n in notes)
    assert FA["OR > 1: higher categories more likely under treatment than under reference"] in text
    if any("negative binomial (NB2) fit did not reach a maximum" in n for n in notes):
        assert FA["the negative binomial (NB2) fit did not reach a maximum by any optimizer (BFGS, Newton-Raphson, "
                  "Nelder-Mead); no Poisson model is substituted"] in text  # fmt: skip
    # the ordinal outcome's categories by their choice labels (the example's own English), never the raw codes
    ordinal = next(o for o in report.outcomes if o.outcome_id == "consciousness_day7")
    field = protocol.form("vitals").field("consciousness")
    labels = {c.code: c.label for c in field.choices or []}
    header = re.search(r"<tr><th>[^<]*</th>((?:<th>[^<]*</th>)+)</tr>",
                       render_html(report, {}, fragment=True, words=report_words(protocol, "fa"))
                       .split(ordinal.description, 1)[1])  # fmt: skip
    assert header is not None
    cells = [html.unescape(c) for c in re.findall(r"<th>([^<]*)</th>", header[1])]
    assert cells == [labels[c] for c in ordinal.extra["order"]]
    # "log-rank": one Persian term in the whole catalog
    said = [m for m in FA.values() if "لگ-ر" in m]
    assert said and all("لگ-رنک" in m for m in said) and all("لگ-رتبه" not in m for m in FA.values())
    assert "لگ-رتبه" not in text


@pytest.mark.parametrize("who", ["blinded", "unblinded"])
def test_the_persian_pdf_report_holds_no_english_sentence(reports: dict[str, Any], who: str) -> None:
    protocol, report = reports["protocol"], reports[who]
    text = _pdf_text(report, protocol)
    assert _english_runs(text, protocol) == []
    assert "Locked with" not in text and "value as analysed" not in text


def test_the_methods_notes_the_walk_met_are_said_in_persian(monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative binomial's notes and refusal and the proportional-odds note exactly as the methods write them, said
    in Persian: a count with no overdispersion (every value the same in each group) is fitted with alpha at the
    boundary (walk 7 F5: it was refused as "did not converge"); no optimizer converging (made so here) is refused."""
    import numpy as np
    from statsmodels.discrete.discrete_model import NegativeBinomial

    from trialwright.analysis import sentences
    from trialwright.analysis.methods.binary import negative_binomial
    from trialwright.analysis.methods.ordinal import DIRECTION

    words = report_words(load_protocol(EXAMPLE).protocol, "fa")
    y = np.array([3.0, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2])
    g = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    fitted = negative_binomial(y, g)
    assert fitted.alpha_at_boundary and fitted.alpha is not None and fitted.optimizer is not None
    note = sentences.NB2_BOUNDARY % {"p": f"{fitted.alpha:.3g}"} + "; " + sentences.NB2_BY[fitted.optimizer]
    said = words.sentence(note)
    assert said.startswith("پراکندگی α=") and ENGLISH_RUN.search(said) is None
    monkeypatch.setattr(NegativeBinomial, "fit", lambda self, **_: type("Fit", (), {
        "params": np.ones(3), "mle_retvals": {"converged": False}})())  # fmt: skip
    with pytest.raises(ValueError) as refused:
        negative_binomial(y, g)
    said = words.sentence(str(refused.value))
    assert "did not reach a maximum" in str(refused.value) and said != str(refused.value)
    assert said.startswith("برازش دوجمله‌ای منفی (NB2) با هیچ بهینه‌سازی") and ENGLISH_RUN.search(said) is None
    note = f"{DIRECTION}; categories 0 to 4; proportional odds test p=0.412"
    assert words.sentence(note) == FA[DIRECTION] + FA["; "] + FA["categories %(low)s to %(high)s"] % {
        "low": "۰", "high": "۴"} + FA["; "] + FA["proportional odds test p=%(p)s"] % {"p": "۰٫۴۱۲"}  # fmt: skip
