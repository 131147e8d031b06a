"""An estimand said in Persian (issue 24): every kind of variable, strategy, summary and estimator the engine computes
has its sentence in the catalog, so a Persian study report says the whole estimand in Persian.

The trial is the shipped three-arm example with the estimands of ``tests/spec/analysis/test_estimands.py`` added
(time to death, a yes/no field with death composite, an ordinal field, repeated measures with compound symmetry, a
count) and a sensitivity estimator in another population. That protocol declares English only, so its own texts
(field labels, visit and set names, choices) stay English: taking those out, no English word is left, only ids
(``vitals.news2``) and the abbreviations statisticians write in Latin. In English the sentences are unchanged.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from tests.spec.analysis.test_estimands import ADDED
from trialwright.analysis.estimands import in_words
from trialwright.analysis.estimands.words import Speech
from trialwright.protocol import load_protocol
from trialwright.protocol.outcomes import Outcome
from trialwright.web.i18n import translations
from trialwright.web.localized import digits

EXAMPLE = load_protocol(ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml").protocol
PERSIAN = Speech("fa", translations("fa").gettext, lambda value: digits(value, "fa"))
KEPT = {"ANCOVA", "MMRM", "REML", "AR", "t"}
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]*")


def _outcomes() -> list[Outcome]:
    sensitivity = dict(ADDED[1])
    sensitivity["id"] = "oxygen_day7_pp"
    sensitivity["estimand"] = dict(ADDED[1]["estimand"], sensitivity=[{"estimator": "logistic", "population": "itt"}])
    return [*EXAMPLE.outcomes, *(Outcome.model_validate(raw) for raw in (*ADDED, sensitivity))]


def _protocols_own_english() -> list[str]:
    """The protocol's own texts, longest first (so a label is taken out before a word inside it)."""
    texts = [s.name for s in EXAMPLE.analysis_sets] + [s.definition for s in EXAMPLE.analysis_sets]
    texts += [v.name for v in EXAMPLE.visits]
    for form in EXAMPLE.forms:
        for f in form.fields:
            texts += [f.label, f.label[0].lower() + f.label[1:]]
            texts += [c.label for c in getattr(f, "choices", None) or []]
    return sorted(set(texts), key=len, reverse=True)


@pytest.mark.parametrize("outcome", _outcomes(), ids=lambda o: o.id)
def test_every_attribute_is_said_in_persian_but_the_protocols_own_english(outcome: Outcome) -> None:
    english = in_words(EXAMPLE, outcome)
    persian = in_words(EXAMPLE, outcome, PERSIAN)
    assert [name for name, _ in persian] == [name for name, _ in english]
    refs = set(outcome.estimand.variable.fields)
    for name, said in persian:
        for text in _protocols_own_english():
            said = said.replace(text, "")
        assert set(LATIN_WORD.findall(said)) - refs - KEPT == set(), (name, said)


def test_in_english_the_words_are_as_before() -> None:
    death = dict(in_words(EXAMPLE, Outcome.model_validate(ADDED[0])))
    assert death["Variable"] == "days from randomization to death, followed to day 28"
    assert (
        death["Intercurrent events"]
        == "withdrawal: hypothetical: as if it had not happened (followed until it, then censored)"
    )
    assert death["Sensitivity"] == "Restricted mean survival time"
    persian = dict(in_words(EXAMPLE, Outcome.model_validate(ADDED[0]), PERSIAN))
    assert persian["Variable"] == "روزها از تصادفی‌سازی تا مرگ، با پیگیری تا روز ۲۸"
