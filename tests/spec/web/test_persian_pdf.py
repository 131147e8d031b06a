"""The PDF study report in Persian (issue 24), both databases.

A Persian statistician's ``/analysis/report.pdf`` is in Persian: headings, labels and the protocol's texts in the
reader's language, as the HTML report, drawn right to left with the letters joined. ReportLab draws the glyphs it is
given, so the PDF holds each line shaped (every letter in its contextual presentation form) and in visual order.
Read back here with pypdf (an independent reader), a line is checked two ways:

* joined: the letters of a word are the presentation forms Unicode names for their places (the initial, medial,
  final forms written out below by hand, not computed);
* right to left: the line's NFKC form (presentation forms back to letters), read right to left, holds the text.

An English reader's PDF is unchanged (English).
"""

from __future__ import annotations

import io
import unicodedata

import yaml
from fastapi.testclient import TestClient
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.platypus import SimpleDocTemplate

from tests.spec.web.conftest import sign_in
from tests.spec.web.test_analysis_pages import _randomized
from tests.trialfixtures import FIRST_PROTOCOL, Trial, who
from trialwright.analysis.rtl import RightToLeft, register_fonts
from trialwright.domain.roles import Role
from trialwright.services.users import set_preferences

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
ZWNJ = "\u200c"
#: "پیامدها" (Outcomes) as drawn: peh, farsi yeh, alef, meem, dal, heh, alef, each in the form its neighbours give it
OUTCOMES_JOINED = [
    "ARABIC LETTER PEH INITIAL FORM",
    "ARABIC LETTER FARSI YEH MEDIAL FORM",
    "ARABIC LETTER ALEF FINAL FORM",
    "ARABIC LETTER MEEM INITIAL FORM",
    "ARABIC LETTER DAL FINAL FORM",
    "ARABIC LETTER HEH INITIAL FORM",
    "ARABIC LETTER ALEF FINAL FORM",
]


def _lines(pdf: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    return [line for page in reader.pages for line in page.extract_text(extraction_mode="layout").splitlines()]


def _read_right_to_left(line: str) -> str:
    """The line's letters (NFKC: presentation forms to letters), in the order a reader of Persian reads them."""
    return unicodedata.normalize("NFKC", line.strip())[::-1]


def _persian(word: str) -> bool:
    return all("\u0621" <= c <= "\u06d3" for c in word)


def _said(text: str) -> str:
    return text.replace(ZWNJ, "")  # a zero-width non-joiner is a joining control: it breaks the join, no glyph


def test_the_pdf_report_in_persian_is_joined_and_right_to_left(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    set_preferences(trial.engine, who(trial, Role.BLINDED_STATISTICIAN).username, language="fa")
    sign_in(client, Role.BLINDED_STATISTICIAN)
    answer = client.get("/analysis/report.pdf")
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
    lines = _lines(answer.content)
    read = [_read_right_to_left(line) for line in lines]
    (heading,) = [line.strip() for line, r in zip(lines, read, strict=True) if r == "پیامدها"]
    assert [unicodedata.name(c) for c in reversed(heading)] == OUTCOMES_JOINED
    whole = "\n".join(read)
    for persian in ("مجموعه‌های تحلیل", "ویژگی‌های پایه"):
        assert _said(persian) in whole, persian
    title = _said(RAW["trial"]["titles"]["translations"]["fa"]["public"])  # wrapped over two lines, with ARDS in it
    assert {w for w in title.split() if _persian(w)} <= set(whole.split())
    for o in RAW["outcomes"]:  # each outcome's Persian description (the pure-Persian ones, read as a whole)
        description = _said(o["description_translations"]["fa"])
        if all(_persian(w) for w in description.split()):
            assert description in whole, o["id"]
        if o["description"] not in o["description_translations"]["fa"]:  # not "CRP", which the Persian keeps
            assert o["description"] not in "\n".join(lines), o["id"]
    for s in RAW["analysis_sets"]:
        name = _said(s["translations"]["fa"])
        assert name.split(" (")[0] in whole, s["id"]
    assert "Outcomes" not in "\n".join(lines) and "Analysis sets" not in "\n".join(lines)


def test_an_english_readers_pdf_is_english(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    sign_in(client, Role.BLINDED_STATISTICIAN)
    text = "\n".join(_lines(client.get("/analysis/report.pdf").content))
    assert "Outcomes" in text and "Analysis sets" in text
    assert all(o["description"] in text for o in RAW["outcomes"])
    assert not any("\u0600" <= c <= "\u06ff" or "\ufb50" <= c <= "\ufeff" for c in text)


def test_a_wrapped_persian_paragraph_reads_from_its_first_line_down() -> None:
    words = [f"واژه{chr(0x06F0 + i % 10)}" for i in range(60)]  # "word0", "word1", ... in Persian digits
    regular, _ = register_fonts()
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4).build([RightToLeft(" ".join(words), regular, 10, 12)])
    lines = [line for line in _lines(buffer.getvalue()) if line.strip()]
    assert len(lines) > 1
    read = [_read_right_to_left(line) for line in lines]
    assert " ".join(read).split() == words  # top line first, each read right to left (one digit reads either way)
