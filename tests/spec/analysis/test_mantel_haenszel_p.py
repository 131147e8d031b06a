"""A Mantel-Haenszel comparison says which test gives its p: the Cochran-Mantel-Haenszel test without continuity
correction, in the report's method words and in docs/analysis.md (walk 6 F5: the p, 0.4205, was not the Wald p of
the Greenland-Robins interval beside it, 0.4224, and nothing said so).

The case goes through the estimand pipeline (``analyse_outcome``) as a locked trial does; the p is checked against
statsmodels' ``StratifiedTable.test_null_odds(correction=False)`` and the risk ratio's interval against the
Greenland-Robins variance written out here (Greenland & Robins, Biometrics 1985;41:55)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis.dataset import Subject
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.protocol import load_protocol_text

EXAMPLE = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
REFERENCE, TREATMENT = "Placebo inhaler + standard care", "ILX 100 micrograms + standard care"
GROUPS = (REFERENCE, TREATMENT)
OXYGEN = "vitals.on_oxygen"
WORDS = "Cochran-Mantel-Haenszel test without continuity correction"


def _outcome() -> dict[str, Any]:
    return {
        "id": "on_oxygen_mh", "kind": "secondary", "description": "On oxygen", "registry_timepoint": "Day 7",
        "method_of_measurement": "Simulated",
        "estimand": {"population": "itt", "summary": "risk_ratio", "estimator": "mantel_haenszel",
                     "variable": {"kind": "binary", "fields": [OXYGEN], "at": "day7", "event_values": ["True"]},
                     "intercurrent_events": [{"event": "death", "strategy": "treatment_policy"}]},
    }  # fmt: skip


PROTOCOL = load_protocol_text(mutated_text(lambda doc: doc["outcomes"].append(_outcome()), EXAMPLE)).protocol
(OUTCOME,) = [o for o in PROTOCOL.outcomes if o.id == "on_oxygen_mh"]


def test_the_p_is_the_uncorrected_cmh_test_and_the_method_words_say_so() -> None:
    rng = np.random.default_rng(6)
    n = 90
    arm, stratum = np.arange(n) % 2, np.array(["S1", "S2", "S3"])[(np.arange(n) // 2) % 3]
    event = rng.random(n) < np.where(arm == 1, 0.45, 0.3)
    subjects = [
        Subject(participant_id=f"P-{i:04d}", site="NTH", stratum=str(s), group=GROUPS[int(a)], treated=True,
                treated_group=GROUPS[int(a)], per_protocol=True, not_per_protocol=(), withdrawn=(),
                emergency_unblinded=False, values={"day7": {OXYGEN: str(bool(e))}})
        for i, (a, s, e) in enumerate(zip(arm, stratum, event, strict=True))
    ]  # fmt: skip
    (result, *_) = analyse_outcome(PROTOCOL, OUTCOME, sets_of(PROTOCOL, subjects, GROUPS))
    (c,) = result.comparisons
    cells = []  # per stratum: events and participants in treatment, then in reference
    for x in ("S1", "S2", "S3"):
        t, r = (stratum == x) & (arm == 1), (stratum == x) & (arm == 0)
        cells.append((event[t].sum(), t.sum(), event[r].sum(), r.sum()))
    a, m, cc, k = (np.array(col, dtype=float) for col in zip(*cells, strict=True))
    table = StratifiedTable(np.array([[a, m - a], [cc, k - cc]]))
    uncorrected, corrected = table.test_null_odds(correction=False), table.test_null_odds(correction=True)
    assert c.p_value == pytest.approx(uncorrected.pvalue, rel=1e-9)
    assert abs(uncorrected.pvalue - corrected.pvalue) > 1e-3  # the two tests are told apart here
    total = m + k
    r_sum, s_sum = float(np.sum(a * k / total)), float(np.sum(cc * m / total))
    rr = r_sum / s_sum
    se = math.sqrt(float(np.sum((m * k * (a + cc) - a * cc * total) / total**2)) / (r_sum * s_sum))
    z = stats.norm.isf(0.025)
    assert (c.estimate, c.lower, c.upper) == pytest.approx((rr, rr * math.exp(-z * se), rr * math.exp(z * se)))
    wald = 2 * stats.norm.sf(abs(math.log(rr)) / se)
    assert abs(wald - c.p_value) > 1e-4  # the interval's own (Wald) p is not the one reported, hence the words
    assert WORDS in c.method


def test_docs_analysis_says_which_test_gives_the_p_and_which_variance_the_interval() -> None:
    text = " ".join((ROOT / "docs" / "analysis.md").read_text(encoding="utf-8").split())
    assert f"Mantel-Haenszel p is the {WORDS}" in text
