"""When the proportional odds test cannot be computed, the note under the common odds ratio says why (the method's
own reason, ``ProportionalOdds.po_note``), for a count analysed on its values and for an ordinal alike, and a
Persian report says it in Persian (walk 6 F4: the note said "proportional odds test p=NA" and nothing more).

Each case goes through the estimand pipeline (``analyse_outcome``) as a locked trial does: the highest category is
seen in the treatment arm only, so the partial proportional odds model (the test's alternative) is on the boundary.
The odds ratio itself is still statsmodels' OrderedModel fit (to 1e-6)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from babel.messages.pofile import read_po
from statsmodels.miscmodels.ordinal_model import OrderedModel

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis import sentences
from trialwright.analysis.dataset import Subject
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.protocol import load_protocol_text
from trialwright.web.i18n import catalog_path
from trialwright.web.report_words import report_words

EXAMPLE = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
REFERENCE, TREATMENT = "Placebo inhaler + standard care", "ILX 100 micrograms + standard care"
GROUPS = (REFERENCE, TREATMENT)
ORDER = ["alert", "new_confusion", "voice", "pain", "unresponsive"]
with catalog_path("fa").open("rb") as _handle:
    FA = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}


def _outcome(name: str, variable: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": name, "kind": "secondary", "description": name, "registry_timepoint": "Day 7",
        "method_of_measurement": "Simulated",
        "estimand": {"population": "itt", "variable": variable, "summary": "common_odds_ratio",
                     "estimator": "proportional_odds",
                     "intercurrent_events": [{"event": "death", "strategy": "treatment_policy"}]},
    }  # fmt: skip


PROTOCOL = load_protocol_text(
    mutated_text(
        lambda doc: doc["outcomes"].extend(
            [
                _outcome("cough_po", {"kind": "count", "fields": ["symptoms.cough"], "at": "day7"}),
                _outcome(
                    "consciousness_po",
                    {"kind": "ordinal", "fields": ["vitals.consciousness"], "at": "day7", "order": ORDER},
                ),
            ]
        ),
        EXAMPLE,
    )
).protocol
OUTCOMES = {o.id: o for o in PROTOCOL.outcomes}
CASES: dict[str, tuple[str, list[Any]]] = {"cough_po": ("symptoms.cough", [0, 1, 2, 3]),
         "consciousness_po": ("vitals.consciousness", ORDER[:4])}  # fmt: skip


@pytest.mark.parametrize("outcome", list(CASES), ids=["a count on its values", "an ordinal"])
def test_the_note_says_why_the_proportional_odds_test_is_not_computed(outcome: str) -> None:
    field, categories = CASES[outcome]
    rng = np.random.default_rng(11)
    n = 120
    arm = np.arange(n) % 2
    position = np.searchsorted([-1.0, 0.0, 1.0], 0.6 * arm + rng.logistic(size=n))  # 0..3
    position[(arm == 0) & (position == 3)] = 2  # the highest category in the treatment arm only
    assert set(position[arm == 1]) == {0, 1, 2, 3}
    subjects = [
        Subject(participant_id=f"P-{i:04d}", site="NTH", stratum="S1", group=GROUPS[int(a)], treated=True,
                treated_group=GROUPS[int(a)], per_protocol=True, not_per_protocol=(), withdrawn=(),
                emergency_unblinded=False, values={"day7": {field: categories[k]}})
        for i, (a, k) in enumerate(zip(arm, position, strict=True))
    ]  # fmt: skip
    (result, *_) = analyse_outcome(PROTOCOL, OUTCOMES[outcome], sets_of(PROTOCOL, subjects, GROUPS))
    (c,) = result.comparisons
    exog = pd.DataFrame({"arm": arm.astype(float)})
    model = OrderedModel(pd.Series(pd.Categorical(position, categories=[0, 1, 2, 3], ordered=True)), exog,
                         distr="logit")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-10)
    assert c.estimate == pytest.approx(math.exp(fit.params["arm"]), rel=1e-5)
    reason = f"category {categories[3]} is not observed in both arms (partial model on the boundary)"
    assert c.note.endswith(f"proportional odds test p=NA; {reason}")
    persian = report_words(PROTOCOL, "fa").sentence(c.note)
    assert FA[sentences.PPO_BOUNDARY].split("%")[0] in persian and "not observed" not in persian
