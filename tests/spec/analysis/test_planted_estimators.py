"""Every estimator a protocol can declare finds the effect planted in its data at the rate its 95% interval
promises.

For each estimator, many trials are drawn from a model in which the true value of the estimand is known on paper,
and each trial goes through the estimand pipeline as a locked trial does (``analyse_outcome`` on the intention to
treat set, the declared estimators between the treatment group and the reference group). Each estimator's 95%
interval must hold the true value in 95% of the trials, within three binomial standard errors. The true values come
from the planted model, never from the code under test:

* yes/no outcomes: the risk of the event in each arm (and stratum) is planted, so the risk difference (Newcombe),
  the risk ratio (Katz), and the Mantel-Haenszel risk difference or risk ratio common to three strata, are the
  planted ones. For the odds ratio each stratum has its own baseline log-odds and the arm adds the same log odds
  ratio in every stratum, so the odds ratio given the stratum (logistic regression adjusted for stratum, and
  Mantel-Haenszel across strata) is the planted one;
* time to death: exponential times with a hazard per day planted in each arm and each of two strata (the same
  number of each arm in each), counted in whole days (rounded up: a death within 24 hours of randomization is on
  day 1) and censored at the end of follow-up on day 28. The hazard ratio (Cox, stratified) is the planted ratio of
  the hazards; counting whole days moves it by far less than its standard error. The restricted mean survival time
  to day 28 of a whole-day count D = ceil(T) is the sum of P(T > k) over k = 0..27, (1 - exp(-28 λ)) / (1 - exp(-λ)),
  rather than the continuous (1 - exp(-28 λ)) / λ (0.14 to 0.34 days more here, 0.08 days in the difference,
  about a twentieth of its standard error); each arm's is the mean of its two strata's, and the planted difference
  is the arms'. The RMST is declared as the Cox estimand's sensitivity estimator (the same comparison code runs
  either way, and one set of trials serves both), so its interval is read from the sensitivity comparison and the
  hazard ratio's from the primary one;
* numbers at a visit: a location shift of normal errors (the difference in means by the t test; the Hodges-Lehmann
  shift with its normal-approximation interval, 80 per group) or of logistic errors (the Hodges-Lehmann shift with
  its exact interval, fewer than 50 per group);
* ordered categories (consciousness, alert to unresponsive): a latent variable, β in the treatment arm plus a
  stratum effect γ plus standard logistic noise, cut at fixed points c_j, so that logit P(Y <= j) = c_j - β - γ in
  the treatment arm: the proportional odds model with common odds ratio exp(β) of a higher category under
  treatment, the direction the report states ("OR > 1: higher categories more likely under treatment");
* counts: gamma-Poisson (negative binomial, Var = μ + 0.5 μ²) with a mean per stratum, times the planted rate ratio
  in the treatment arm.

No trial is quietly left out: in every replicate each comparison is the declared one (primary or sensitivity, by
the estimator's method name) of the treatment group against the reference group on the planted scale, every
participant drawn is analysed, and at most 1% of the replicates may end without an interval (each counted, with
the reason the report gives); coverage is over the replicates with an interval. ANCOVA (``test_planted_effect``),
the mixed model for repeated measures (``methods/test_repeated.py``) and Fine-Gray (``methods/test_competing.py``)
have their own coverage tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis.dataset import Subject
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.analysis.estimands.common import METHOD
from trialwright.protocol import load_protocol_text
from trialwright.protocol.estimands import Estimator

EXAMPLE = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
REFERENCE, TREATMENT = "Placebo inhaler + standard care", "ILX 100 micrograms + standard care"
GROUPS = (REFERENCE, TREATMENT)  # the reference group first, as the analysis data set lists them
LABEL = f"{TREATMENT} vs {REFERENCE}"
OXYGEN, WBC, CONSCIOUSNESS, RESP_RATE = "vitals.on_oxygen", "labs.wbc", "vitals.consciousness", "vitals.resp_rate"
ORDER = ("alert", "new_confusion", "voice", "pain", "unresponsive")
END = 28  # the end of follow-up of the time to death (days)

Draw = Callable[[np.random.Generator], list[Subject]]


@dataclass(frozen=True)
class Expected:
    """One comparison the estimand asks for: the main estimator's (primary) or a sensitivity one's, the scale it
    reports on and the true value there."""

    estimator: str
    primary: bool
    scale: str  # what the comparison's scale must say
    truth: float


@dataclass(frozen=True)
class Planted:
    """One estimand with an effect planted in its data, and the comparisons it must give, in the order declared."""

    name: str  # the outcome's id is planted_<name>
    estimand: Mapping[str, Any]
    expected: tuple[Expected, ...]
    per_arm: int
    replicates: int
    seed: int
    draw: Draw


# --- the planted trials -----------------------------------------------------------------------------------------


def _arms_and_strata(per_arm: int, strata: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Arm (0 reference, 1 treatment) and stratum of each participant: arms alternate and each stratum gets the same
    number of each arm (when ``strata`` divides ``per_arm``)."""
    i = np.arange(2 * per_arm)
    return i % 2, (i // 2) % strata


def _subject(
    i: int, arm: int, stratum: int, values: Mapping[str, float | str] | None, death_day: int | None
) -> Subject:
    return Subject(
        participant_id=f"P-{i:04d}", site="NTH", stratum=f"S{stratum + 1}", group=GROUPS[arm], treated=True,
        treated_group=GROUPS[arm], per_protocol=True, not_per_protocol=(), withdrawn=(), emergency_unblinded=False,
        values={"day7": dict(values)} if values is not None else {}, death_day=death_day,
    )  # fmt: skip


def _trial(
    arm: NDArray[np.int64], stratum: NDArray[np.int64], field: str, values: Sequence[float | str]
) -> list[Subject]:
    return [
        _subject(i, int(a), int(s), {field: v}, None)
        for i, (a, s, v) in enumerate(zip(arm, stratum, values, strict=True))
    ]


def _yes_no(per_arm: int, risk: Sequence[tuple[float, float]]) -> Draw:
    """On oxygen at day 7 with the risk ``risk[stratum][arm]``."""
    table = np.array(risk)

    def draw(rng: np.random.Generator) -> list[Subject]:
        arm, stratum = _arms_and_strata(per_arm, len(risk))
        event = rng.random(arm.size) < table[stratum, arm]
        return _trial(arm, stratum, OXYGEN, [str(bool(e)) for e in event])

    return draw


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _deaths(per_arm: int, hazard: Sequence[tuple[float, float]]) -> Draw:
    """Death at an exponential time with the hazard per day ``hazard[stratum][arm]``, recorded in whole days (rounded
    up), and not recorded after day ``END`` (follow-up ends there)."""
    table = np.array(hazard)

    def draw(rng: np.random.Generator) -> list[Subject]:
        arm, stratum = _arms_and_strata(per_arm, len(hazard))
        days = np.ceil(rng.exponential(1 / table[stratum, arm])).astype(int)
        return [
            _subject(i, int(a), int(s), None, int(d) if d <= END else None)
            for i, (a, s, d) in enumerate(zip(arm, stratum, days, strict=True))
        ]

    return draw


def _rmst_in_whole_days(hazard: float) -> float:
    """E[min(D, END)] for D = ceil(T), T exponential: the sum over k = 0..END-1 of P(T > k) = exp(-hazard k)."""
    return (1 - math.exp(-hazard * END)) / (1 - math.exp(-hazard))


def _shifted(per_arm: int, shift: float, noise: Callable[[np.random.Generator, int], NDArray[np.float64]]) -> Draw:
    """White cell count at day 7: 8 plus ``shift`` in the treatment arm plus noise."""

    def draw(rng: np.random.Generator) -> list[Subject]:
        arm, stratum = _arms_and_strata(per_arm, 1)
        value = 8 + shift * arm + noise(rng, arm.size)
        return _trial(arm, stratum, WBC, [float(v) for v in value])

    return draw


def _latent_logistic(per_arm: int, log_or: float, stratum_effect: Sequence[float], cuts: Sequence[float]) -> Draw:
    """Consciousness at day 7: the category above as many of ``cuts`` as the latent log_or * arm + stratum effect
    + standard logistic noise exceeds."""
    gamma, cut = np.array(stratum_effect), np.array(cuts)

    def draw(rng: np.random.Generator) -> list[Subject]:
        arm, stratum = _arms_and_strata(per_arm, len(stratum_effect))
        latent = log_or * arm + gamma[stratum] + rng.logistic(size=arm.size)
        return _trial(arm, stratum, CONSCIOUSNESS, [ORDER[int(k)] for k in np.searchsorted(cut, latent)])

    return draw


def _gamma_poisson(per_arm: int, mean: Sequence[float], rate_ratio: float, alpha: float) -> Draw:
    """Respiration rate at day 7 as a count: Poisson with mean mean[stratum] * rate_ratio^arm times a gamma frailty
    of mean 1 and variance ``alpha`` (so Var = mu + alpha mu^2)."""
    base = np.array(mean)

    def draw(rng: np.random.Generator) -> list[Subject]:
        arm, stratum = _arms_and_strata(per_arm, len(mean))
        mu = base[stratum] * rate_ratio**arm * rng.gamma(1 / alpha, alpha, size=arm.size)
        return _trial(arm, stratum, RESP_RATE, [float(y) for y in rng.poisson(mu)])

    return draw


def _normal(sd: float) -> Callable[[np.random.Generator, int], NDArray[np.float64]]:
    return lambda rng, n: sd * rng.standard_normal(n)


def _logistic(scale: float) -> Callable[[np.random.Generator, int], NDArray[np.float64]]:
    return lambda rng, n: scale * rng.logistic(size=n)


def _estimand(variable: Mapping[str, Any], summary: str, estimator: str, *sensitivity: str) -> dict[str, Any]:
    timed = variable["kind"] == "time_to_event"
    event = (
        {"event": "withdrawal", "strategy": "hypothetical"}
        if timed
        else {"event": "death", "strategy": "treatment_policy"}
    )
    return {"population": "itt", "variable": dict(variable), "intercurrent_events": [event], "summary": summary,
            "estimator": estimator, "sensitivity": [{"estimator": x} for x in sensitivity]}  # fmt: skip


def _main(estimator: str, scale: str, truth: float) -> tuple[Expected]:
    return (Expected(estimator, True, scale, truth),)


ON_OXYGEN = {"kind": "binary", "fields": [OXYGEN], "at": "day7", "event_values": ["True"]}
TIME_TO_DEATH = {"kind": "time_to_event", "adverse_event": "death", "up_to_day": END}
WHITE_CELLS = {"kind": "continuous", "fields": [WBC], "at": "day7"}
LOG_OR, BASELINE_LOG_ODDS = math.log(2.0), (-1.2, -0.4, 0.4)
STRATIFIED_ODDS = [(_expit(b), _expit(b + LOG_OR)) for b in BASELINE_LOG_ODDS]
HAZARD_RATIO, HAZARDS = 0.6, (0.02, 0.04)  # the reference arm's hazard per day in each of two strata
RMST_DIFFERENCE = sum(_rmst_in_whole_days(h * HAZARD_RATIO) - _rmst_in_whole_days(h) for h in HAZARDS) / len(HAZARDS)

CASES = [
    Planted("newcombe", _estimand(ON_OXYGEN, "risk_difference", "newcombe"),
            _main("newcombe", "risk difference", 0.45 - 0.30), 100, 300, 1801, _yes_no(100, [(0.30, 0.45)])),
    Planted("katz", _estimand(ON_OXYGEN, "risk_ratio", "katz"),
            _main("katz", "risk ratio", 0.45 / 0.30), 100, 300, 1802, _yes_no(100, [(0.30, 0.45)])),
    Planted("logistic", _estimand(ON_OXYGEN, "odds_ratio", "logistic"),
            _main("logistic", "odds ratio", 2.0), 90, 300, 1803, _yes_no(90, STRATIFIED_ODDS)),
    Planted("mh_odds_ratio", _estimand(ON_OXYGEN, "odds_ratio", "mantel_haenszel"),
            _main("mantel_haenszel", "odds ratio", 2.0), 90, 300, 1804, _yes_no(90, STRATIFIED_ODDS)),
    Planted("mh_risk_difference", _estimand(ON_OXYGEN, "risk_difference", "mantel_haenszel"),
            _main("mantel_haenszel", "risk difference", 0.15), 90, 300, 1805,
            _yes_no(90, [(0.20, 0.35), (0.35, 0.50), (0.50, 0.65)])),
    Planted("mh_risk_ratio", _estimand(ON_OXYGEN, "risk_ratio", "mantel_haenszel"),
            _main("mantel_haenszel", "risk ratio", 1.5), 90, 300, 1806,
            _yes_no(90, [(0.20, 0.30), (0.30, 0.45), (0.40, 0.60)])),
    Planted("cox_rmst", _estimand(TIME_TO_DEATH, "hazard_ratio", "cox", "rmst"),
            (Expected("cox", True, "hazard ratio", HAZARD_RATIO),
             Expected("rmst", False, "restricted mean survival time", RMST_DIFFERENCE)),
            80, 200, 1807, _deaths(80, [(h, h * HAZARD_RATIO) for h in HAZARDS])),
    Planted("t_test", _estimand(WHITE_CELLS, "difference_in_means", "t_test"),
            _main("t_test", "difference in means", 1.0), 40, 300, 1809, _shifted(40, 1.0, _normal(2.0))),
    Planted("hodges_lehmann_exact", _estimand(WHITE_CELLS, "hodges_lehmann_shift", "wilcoxon_hodges_lehmann"),
            _main("wilcoxon_hodges_lehmann", "shift", 0.8), 40, 300, 1810, _shifted(40, 0.8, _logistic(1.0))),
    Planted("hodges_lehmann_normal", _estimand(WHITE_CELLS, "hodges_lehmann_shift", "wilcoxon_hodges_lehmann"),
            _main("wilcoxon_hodges_lehmann", "shift", 0.5), 80, 300, 1811, _shifted(80, 0.5, _normal(1.0))),
    Planted("proportional_odds",
            _estimand({"kind": "ordinal", "fields": [CONSCIOUSNESS], "at": "day7", "order": list(ORDER)},
                      "common_odds_ratio", "proportional_odds"),
            _main("proportional_odds", "common odds ratio", 2.0), 80, 200, 1812,
            _latent_logistic(80, LOG_OR, (0.0, 0.5), (-1.0, 0.0, 1.0, 2.0))),
    Planted("negative_binomial",
            _estimand({"kind": "count", "fields": [RESP_RATE], "at": "day7"}, "rate_ratio", "negative_binomial"),
            _main("negative_binomial", "rate ratio", 0.7), 80, 300, 1813, _gamma_poisson(80, (3.0, 6.0), 0.7, 0.5)),
]  # fmt: skip


def _outcome(case: Planted) -> dict[str, Any]:
    return {"id": f"planted_{case.name}", "kind": "secondary", "description": f"Planted effect ({case.name})",
            "registry_timepoint": "Day 7", "method_of_measurement": "Simulated",
            "estimand": dict(case.estimand)}  # fmt: skip


PROTOCOL = load_protocol_text(
    mutated_text(lambda doc: doc["outcomes"].extend(_outcome(c) for c in CASES), EXAMPLE)
).protocol
OUTCOMES = {o.id: o for o in PROTOCOL.outcomes}


# --- the test ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_estimators_95_percent_interval_holds_the_planted_value_95_percent_of_the_time(case: Planted) -> None:
    outcome = OUTCOMES[f"planted_{case.name}"]
    rng = np.random.default_rng(case.seed)
    covered = dict.fromkeys(case.expected, 0)
    refused: dict[Expected, list[str]] = {e: [] for e in case.expected}
    for _ in range(case.replicates):
        subjects = case.draw(rng)
        (result,) = analyse_outcome(PROTOCOL, outcome, sets_of(PROTOCOL, subjects, GROUPS))
        assert not result.excluded, result.excluded[:3]
        assert len(result.comparisons) == len(case.expected), result.comparisons
        for e, c in zip(case.expected, result.comparisons, strict=True):
            assert (c.primary, c.label, c.n) == (e.primary, LABEL, (case.per_arm, case.per_arm)), c
            assert e.scale in c.scale and c.method == METHOD[Estimator(e.estimator)], c
            if c.estimate is None or c.lower is None or c.upper is None:
                refused[e].append(c.note or "no reason given")
                continue
            covered[e] += c.lower <= e.truth <= c.upper
    for e in case.expected:
        estimated = case.replicates - len(refused[e])
        why = sorted(set(refused[e]))
        assert len(refused[e]) <= case.replicates // 100, f"{e.estimator}: {len(refused[e])} without an interval: {why}"
        se = math.sqrt(0.95 * 0.05 / estimated)
        held = f"{e.estimator}: {covered[e]} of {estimated} intervals hold {e.truth:.4g}"
        assert abs(covered[e] / estimated - 0.95) < 3 * se, held
