"""Refuse, never guess: a hypothesis `protocol check` cannot analyse as declared is refused, naming the file's line,
the field and the rule. A superiority hypothesis (the default) takes no margin or direction; a non-inferiority one
needs a positive margin and the direction of benefit, on a summary and with estimators whose bound and one-sided p
the engine computes (a difference in means by ANCOVA so far; a risk difference or a ratio is refused as not yet).

Each row: the first trial's outcome (4 lymphocyte_subsets: ANCOVA of a difference in means, its Hodges-Lehmann and
per-protocol sensitivity estimators; 2 sae: a risk difference by Newcombe), the hypothesis declared, the path the
error names, words the message must contain, and a word the reported line must hold (the line of the field itself).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.protocol.estimands import HypothesisKind


def _hypothesis(index: int, hypothesis: dict[str, Any], *, sensitivity: bool = False) -> Any:
    def mutate(doc: Any) -> None:
        e = doc["outcomes"][index]["estimand"]
        if not sensitivity:
            e.pop("sensitivity", None)
        e["hypothesis"] = hypothesis

    return mutate


NI = "non_inferiority"
H = "outcomes[4].estimand.hypothesis"
CASES = [
    ("a margin on a superiority hypothesis", _hypothesis(4, {"margin": 50}), f"{H}.margin",
     "margin belongs to a non_inferiority hypothesis", "margin"),
    ("a direction on a superiority hypothesis", _hypothesis(4, {"kind": "superiority", "lower_is_better": True}),
     f"{H}.lower_is_better", "lower_is_better belongs to a non_inferiority hypothesis", "lower_is_better"),
    ("no margin", _hypothesis(4, {"kind": NI, "lower_is_better": False}), f"{H}.margin",
     "needs its margin", "hypothesis"),
    ("a margin of zero", _hypothesis(4, {"kind": NI, "margin": 0, "lower_is_better": False}), f"{H}.margin",
     "must be a positive finite number, not 0", "margin"),
    ("a negative margin", _hypothesis(4, {"kind": NI, "margin": -50, "lower_is_better": False}), f"{H}.margin",
     "must be a positive finite number, not -50", "margin"),
    ("no direction of benefit", _hypothesis(4, {"kind": NI, "margin": 50}), f"{H}.lower_is_better",
     "needs the direction of benefit", "hypothesis"),
    ("a risk difference (not yet)", _hypothesis(2, {"kind": NI, "margin": 0.1, "lower_is_better": True}),
     "outcomes[2].estimand.hypothesis.kind", "non-inferiority on a risk_difference is not yet computed", "kind"),
    ("a sensitivity estimator without a non-inferiority test",
     _hypothesis(4, {"kind": NI, "margin": 50, "lower_is_better": False}, sensitivity=True),
     "outcomes[4].estimand.sensitivity[0].estimator", "non-inferiority by wilcoxon_hodges_lehmann is not yet computed",
     "wilcoxon_hodges_lehmann"),
    ("an unknown kind", _hypothesis(4, {"kind": "equivalence", "margin": 50}), f"{H}.kind", "equivalence",
     "kind"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "mutate", "path", "words", "key"), CASES, ids=[c[0] for c in CASES])
def test_a_hypothesis_the_analysis_cannot_test_as_declared_is_refused_at_check_time(
    case: str, mutate: Any, path: str, words: str, key: str
) -> None:
    text = mutated_text(mutate)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    matches = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert matches, f"{case}: no problem at {path} containing {words!r}; got:\n{caught.value}"
    assert matches[0].line is not None
    assert key in text.splitlines()[matches[0].line - 1], text.splitlines()[matches[0].line - 1]
    assert "trial.yaml" in str(caught.value)


def test_a_declared_non_inferiority_hypothesis_loads_and_the_default_is_superiority() -> None:
    text = mutated_text(_hypothesis(4, {"kind": NI, "margin": 50, "lower_is_better": False}))
    protocol = load_protocol_text(text, source="trial.yaml").protocol
    h = protocol.outcomes[4].estimand.hypothesis
    assert (h.kind, h.margin, h.lower_is_better) == (HypothesisKind.NON_INFERIORITY, 50, False)
    default = load_protocol_text(mutated_text(lambda doc: None)).protocol.outcomes[4].estimand.hypothesis
    assert (default.kind, default.margin, default.lower_is_better) == (HypothesisKind.SUPERIORITY, None, None)
