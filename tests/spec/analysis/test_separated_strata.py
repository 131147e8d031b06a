"""A stratum whose participants all had the same outcome is left out of a logit model adjusted for stratum, and
the report says so (a new user's walk: an odds ratio adjusted for stratum was refused because one stratum had no
events, although the arm's odds ratio exists).

In a logistic (or cumulative logit) model such a stratum's coefficient has no finite value, but the arm's does:
at the likelihood's limit the stratum's rows add nothing, so the estimate is the fit of the other strata. Each
case goes through the estimand pipeline (``analyse_outcome``) as a locked trial does; the estimate is checked
against statsmodels' fit of the other strata, and the note under it, which names the stratum left out, against the
catalog's English and Persian (read with babel).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
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
OXYGEN, CONSCIOUSNESS = "vitals.on_oxygen", "vitals.consciousness"
ORDER = ["alert", "new_confusion", "voice", "pain", "unresponsive"]
with catalog_path("fa").open("rb") as _handle:
    FA = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}


def _outcome(name: str, variable: dict[str, Any], summary: str, estimator: str) -> dict[str, Any]:
    return {
        "id": name,
        "kind": "secondary",
        "description": name,
        "registry_timepoint": "Day 7",
        "method_of_measurement": "Simulated",
        "estimand": {
            "population": "itt",
            "variable": variable,
            "summary": summary,
            "estimator": estimator,
            "intercurrent_events": [{"event": "death", "strategy": "treatment_policy"}],
        },
    }


PROTOCOL = load_protocol_text(
    mutated_text(
        lambda doc: doc["outcomes"].extend(
            [
                _outcome(
                    "on_oxygen_or",
                    {"kind": "binary", "fields": [OXYGEN], "at": "day7", "event_values": ["True"]},
                    "odds_ratio",
                    "logistic",
                ),
                _outcome(
                    "consciousness_po",
                    {"kind": "ordinal", "fields": [CONSCIOUSNESS], "at": "day7", "order": ORDER},
                    "common_odds_ratio",
                    "proportional_odds",
                ),
            ]
        ),
        EXAMPLE,
    )
).protocol
OUTCOMES = {o.id: o for o in PROTOCOL.outcomes}


def _subjects(arm: np.ndarray, stratum: np.ndarray, field: str, values: list[str]) -> list[Subject]:
    return [
        Subject(
            participant_id=f"P-{i:04d}",
            site="NTH",
            stratum=str(s),
            group=GROUPS[int(a)],
            treated=True,
            treated_group=GROUPS[int(a)],
            per_protocol=True,
            not_per_protocol=(),
            withdrawn=(),
            emergency_unblinded=False,
            values={"day7": {field: v}},
        )
        for i, (a, s, v) in enumerate(zip(arm, stratum, values, strict=True))
    ]


def test_a_stratum_without_events_is_left_out_of_the_adjusted_odds_ratio_and_named() -> None:
    """Stratum S3 has no participant on oxygen: the odds ratio adjusted for stratum is statsmodels' Logit of
    S1 and S2 (to 1e-6), and the note says which strata were left out and why ("strata left out of the
    model (in each, every participant had the same outcome): S3"), in Persian the catalog's sentence with S3 as
    written."""
    rng = np.random.default_rng(3)
    n = 120
    arm, stratum = np.arange(n) % 2, np.array(["S1", "S2", "S3"])[(np.arange(n) // 2) % 3]
    event = rng.random(n) < np.where(arm == 1, 0.45, 0.2)
    event[stratum == "S3"] = False
    subjects = _subjects(arm, stratum, OXYGEN, [str(bool(e)) for e in event])
    (result,) = analyse_outcome(PROTOCOL, OUTCOMES["on_oxygen_or"], sets_of(PROTOCOL, subjects, GROUPS))
    (c,) = result.comparisons
    frame = pd.DataFrame({"y": event.astype(float), "arm": arm, "stratum": stratum})
    fit = smf.logit("y ~ arm + C(stratum)", data=frame[frame.stratum != "S3"]).fit(disp=0)
    assert c.estimate == pytest.approx(math.exp(fit.params["arm"]), rel=1e-6)
    assert (c.lower, c.upper) == pytest.approx(tuple(np.exp(fit.conf_int().loc["arm"])), rel=1e-6)
    assert c.p_value == pytest.approx(fit.pvalues["arm"], rel=1e-6)
    assert c.note == "strata left out of the model (in each, every participant had the same outcome): S3"
    assert report_words(PROTOCOL, "fa").sentence(c.note) == FA[sentences.STRATA_LEFT_OUT] % {"strata": "\u2066S3\u2069"}
    assert "پیامد یکسان" in FA[sentences.STRATA_LEFT_OUT]  # the Persian says why too ("the same outcome")


def test_a_stratum_all_in_the_lowest_category_is_left_out_of_the_proportional_odds_model_and_named() -> None:
    """Everyone in stratum S2 is alert (the lowest category): the common odds ratio is statsmodels' OrderedModel of
    S1 and S3 (to 1e-6), and the note ends with the same sentence naming S2."""
    rng = np.random.default_rng(5)
    n = 160
    arm, stratum = np.arange(n) % 2, np.array(["S1", "S2", "S3"])[(np.arange(n) // 2) % 3]
    latent = 0.7 * arm + rng.logistic(size=n)
    position = np.searchsorted([-1.0, 0.0, 1.0, 2.0], latent)
    position[stratum == "S2"] = 0
    subjects = _subjects(arm, stratum, CONSCIOUSNESS, [ORDER[k] for k in position])
    (result,) = analyse_outcome(PROTOCOL, OUTCOMES["consciousness_po"], sets_of(PROTOCOL, subjects, GROUPS))
    (c,) = result.comparisons
    kept = stratum != "S2"
    exog = pd.DataFrame({"arm": arm[kept].astype(float), "S3": (stratum[kept] == "S3").astype(float)})
    y = pd.Series(pd.Categorical(position[kept], categories=sorted(set(position[kept])), ordered=True))
    model = OrderedModel(y, exog, distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rough = model.fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-10)
        fit = model.fit(method="newton", start_params=rough.params, disp=False, maxiter=200)
    assert c.estimate == pytest.approx(math.exp(fit.params["arm"]), rel=1e-6)
    assert c.p_value == pytest.approx(fit.pvalues["arm"], rel=1e-6)
    assert c.note.endswith("; strata left out of the model (in each, every participant had the same outcome): S2")
