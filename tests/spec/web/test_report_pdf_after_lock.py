"""The PDF study report after the lock (walk 3, F1), both databases, English and Persian.

The report of a trial locked over open blockers (an override) names the lock and its reason first, the data
manager's own words as typed. A Persian reader's sentence isolates that reason in its own direction (FSI ... PDI);
a reason long enough to wrap put the isolate's opening on one line and its closing on the next, and the bidi pass
refused the line (``AssertionError: FSI not allowed here``): ``/analysis/report.pdf`` answered 500. An English
reader's PDF drew the reason's Persian letters in a font without them (empty boxes).

Both now answer a PDF whose text, read back with pypdf (an independent reader), holds the reason's words: the
Latin ones as written, the Persian ones joined and in visual order (so, as letters, a word read right to left).
"""

from __future__ import annotations

import io
import re
import unicodedata

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.spec.web.conftest import sign_in
from tests.spec.web.test_analysis_pages import _randomized
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.services.lock import lock_trial
from trialwright.services.users import set_preferences

#: Persian and Latin words mixed, long enough to wrap over lines
REASON = (
    "قفل نهایی پیش از تحلیل: the simulator signs only sign_forms, so 564 blockers were left open "
    "و مدیر داده با رمز خود آن را پذیرفت"
)
PERSIAN = ("نهایی", "تحلیل", "پذیرفت")
LATIN = ("simulator", "sign_forms", "blockers")
BOXES = "\u25a0"  # what pypdf reads for a letter drawn in a font that lacks it


def _words(pdf: bytes) -> tuple[str, set[str]]:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text(extraction_mode="layout") for page in reader.pages)
    text = unicodedata.normalize("NFKC", text)  # presentation forms back to letters
    return text, set(re.findall(r"\w+", text))


@pytest.mark.parametrize("language", ["en", "fa"])
def test_the_report_pdf_of_a_locked_trial_renders_with_the_reason(
    client: TestClient, trial: Trial, language: str
) -> None:
    pid = _randomized(trial)
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 40})  # a draft
    state = lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), REASON, password=PASSWORD)
    assert state.open_blockers  # an override: the report's first line names the lock and its reason
    set_preferences(trial.engine, who(trial, Role.BLINDED_STATISTICIAN).username, language=language)
    sign_in(client, Role.BLINDED_STATISTICIAN)
    answer = client.get("/analysis/report.pdf")
    assert answer.status_code == 200, answer.text[:300]
    assert answer.content.startswith(b"%PDF")
    text, words = _words(answer.content)
    assert all(w in words for w in LATIN), LATIN
    assert all(w[::-1] in words for w in PERSIAN), PERSIAN  # drawn in visual order
    assert BOXES not in text
    assert ("Outcomes" in text) is (language == "en")
