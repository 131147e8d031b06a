"""Continuous variables: ANCOVA (natural or log scale), the mixed model for repeated measures, the t test and the
Wilcoxon/Hodges-Lehmann shift, with deaths as the estimand's strategy says."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from trialwright.analysis import sentences as say
from trialwright.analysis import statistics as st
from trialwright.analysis.dataset import Subject
from trialwright.analysis.estimands.common import (
    METHOD,
    Sets,
    after_death,
    cause_of,
    composite_of,
    estimators_of,
    label_of,
    not_due_of,
    planned_day,
    why_missing,
)
from trialwright.analysis.methods import repeated
from trialwright.analysis.noninferiority import by_t
from trialwright.analysis.results import (
    Comparison,
    Exclusion,
    OutcomeResult,
    TimepointSummary,
    number,
    pairs,
    safe,
    summarise,
    visits_of,
)
from trialwright.protocol import Protocol
from trialwright.protocol.estimands import (
    Estimator,
    Hypothesis,
    HypothesisKind,
    Scale,
    Strategy,
)
from trialwright.protocol.outcomes import Outcome

__all__ = ["continuous"]


def continuous(protocol: Protocol, outcome: Outcome, variable: str, sets: Sets) -> OutcomeResult:
    e = outcome.estimand
    v = e.variable
    assert v.at is not None
    log, at, base = v.scale is Scale.LOG, v.at, v.baseline
    day_at, day_base = planned_day(protocol, at), planned_day(protocol, base)
    not_due = not_due_of(protocol, at)
    composite = composite_of(protocol, e, at)
    transform: Callable[[float], float] = (lambda x: math.log(x)) if log else (lambda x: x)

    paired: dict[str, tuple[float | None, float | None]] = {}

    def pair(s: Subject) -> tuple[float | None, float | None]:
        """The participant's (baseline, follow-up) as analysed; worked out once per participant (it is asked for by
        each summary, the exclusions and each estimator)."""
        got = paired.get(s.participant_id)
        if got is None:
            got = paired[s.participant_id] = _pair(s)
        return got

    def _pair(s: Subject) -> tuple[float | None, float | None]:
        b = number(s.value(base, variable)) if base and not after_death(s, base) else None
        f = None if after_death(s, at) else number(s.value(at, variable))
        if (c := composite(s)) is not None:
            f = float(c)  # the death (or the named event) is the outcome: it takes the declared value
        if log:
            b = b if b is not None and b > 0 else None
            f = f if f is not None and f > 0 else None
        return b, f

    population = sets.of(e.population)
    groups = sets.groups
    composed = any(x.strategy is Strategy.COMPOSITE for x in e.intercurrent_events)
    summaries: list[TimepointSummary] = []
    for g in groups:
        members = [s for s in population if s.group == g]
        for visit in visits_of(protocol, variable.partition(".")[0]):
            summaries.append(summarise(g, visit, "value", [number(s.value(visit, variable)) for s in members]))
        if composed:  # the values as the estimand counts them (a composite event's value in place of the observed)
            summaries.append(summarise(g, at, say.N_("value as analysed"), [pair(s)[1] for s in members]))
        if base:
            changes = []
            for s in members:
                b, f = pair(s)
                changes.append(None if b is None or f is None else f - b)
            summaries.append(summarise(g, at, "change", changes))
    in_set = {g: sum(1 for s in population if s.group == g) for g in groups}
    analysed = {g: 0 for g in groups}
    excluded = []
    repeated_measures = e.estimator is Estimator.MMRM
    for s in population:
        b, f = pair(s)
        if repeated_measures and f is None and b is not None:
            # The mixed model uses every observed visit: missing the reported visit alone does not exclude.
            f = next((y for x in v.visits if not after_death(s, x) and (y := number(s.value(x, variable))) is not None
                      and (y > 0 or not log)), None)  # fmt: skip
        if f is not None and (b is not None or not base):
            analysed[s.group] += 1
            continue
        why = [why_missing(s, at, variable, log, day_at(s), not_due(s))] if f is None else []
        if base and b is None:
            why.append(why_missing(s, base, variable, log, day_base(s)))
        # Unusable: a value recorded but not positive on the log scale (a value merely absent is missing or not due).
        unusable = log and any((y := number(s.value(x, variable))) is not None and y <= 0 for x in (at, base) if x)
        cause = "unusable" if unusable else cause_of(s, day_at(s), not_due(s))
        excluded.append(Exclusion(s.participant_id, s.group, "; ".join(why), cause))
    comparisons: list[Comparison] = []
    for treat, ref in pairs(groups):
        label = label_of(treat, ref)
        for estimator, pop, primary in estimators_of(e):
            rows = [s for s in sets.of(pop) if s.group in (treat, ref)]
            set_name = sets.names[pop]
            if estimator is Estimator.ANCOVA:
                comparisons.append(
                    _ancova(rows, pair, treat, label, set_name, primary, log=log, hypothesis=e.hypothesis)
                )
            elif estimator is Estimator.MMRM:
                comparisons.append(
                    _mmrm(rows, v.visits, at, base, variable, treat, label, set_name, primary, log, e.covariance)
                )
            elif estimator is Estimator.T_TEST:
                comparisons.append(_t_test(rows, pair, treat, label, set_name, primary, log=log))
            else:
                comparisons.append(_hl(rows, pair, treat, ref, label, set_name, transform, log, bool(base), primary))
    return OutcomeResult(
        outcome.id,
        outcome.description,
        outcome.kind,
        variable,
        v.kind.value,
        at,
        outcome.registry_timepoint,
        sets.names[e.population],
        log,
        in_set,
        analysed,
        tuple(summaries),
        tuple(comparisons),
        excluded=tuple(excluded),
    )


def _ancova(
    rows: Sequence[Subject],
    pair: Callable[[Subject], tuple[float | None, float | None]],
    treat: str,
    label: str,
    set_name: str,
    primary: bool,
    *,
    log: bool,
    hypothesis: Hypothesis,
) -> Comparison:
    """ANCOVA of the follow-up value on group, adjusted for baseline and stratum (``protocol check`` refuses an
    ANCOVA without a baseline visit, so nothing here falls back to another method). Under a non-inferiority
    hypothesis (on a difference in means: ``protocol check`` refuses it on the log scale) the difference is judged
    against the margin with the model's t on its residual degrees of freedom."""
    method = say.ANCOVA_LOG if log else METHOD[Estimator.ANCOVA]
    usable = [(s, *pair(s)) for s in rows]
    usable = [u for u in usable if u[2] is not None and u[1] is not None]
    n = (sum(1 for u in usable if u[0].group == treat), sum(1 for u in usable if u[0].group != treat))
    scale = "ratio of geometric means" if log else "adjusted difference"

    def run() -> Comparison:
        if log and hypothesis.kind is HypothesisKind.NON_INFERIORITY:  # protocol check refuses it first
            raise ValueError("a non-inferiority margin is judged on a difference in means, not on the log scale")
        follow = [u[2] for u in usable]
        group = [1.0 if u[0].group == treat else 0.0 for u in usable]
        strata = {"stratum": [u[0].stratum for u in usable]}
        r = st.ancova(follow, [u[1] for u in usable], group, strata, log=log)
        if log:
            return Comparison(
                label,
                method,
                set_name,
                scale,
                r.ratio,
                r.ratio_lower,
                r.ratio_upper,
                r.p_value,
                n,
                primary,
                say.N_DROPPED % {"n": r.n_dropped},
            )
        ni = None
        if hypothesis.kind is HypothesisKind.NON_INFERIORITY:
            if hypothesis.margin is None or hypothesis.lower_is_better is None:  # protocol check refuses it
                raise ValueError("the non-inferiority hypothesis has no margin or no direction of benefit")
            ni = by_t(r.estimate, r.se, r.df, r.ci_lower, r.ci_upper, hypothesis.margin, hypothesis.lower_is_better)
        return Comparison(
            label, method, set_name, scale, r.estimate, r.ci_lower, r.ci_upper, r.p_value, n, primary,
            non_inferiority=ni,
        )  # fmt: skip

    return safe(method, label, set_name, scale, n, primary, run)


def _mmrm(
    rows: Sequence[Subject],
    visits: Sequence[str],
    at: str,
    base: str | None,
    variable: str,
    treat: str,
    label: str,
    set_name: str,
    primary: bool,
    log: bool,
    covariance: str,
) -> Comparison:
    """Mixed model for repeated measures over ``visits`` (the declared covariance, REML, Satterthwaite df) with a
    mean per visit, treatment by visit, baseline by visit and the stratum as main effects, the effect at ``at``:
    every observed value is used, and values missing after death or withdrawal are missing at random (the
    hypothetical strategy the protocol declares with it)."""
    method = say.MMRM % {"covariance": covariance.replace("_", " ")}
    scale = "ratio of geometric means" if log else "adjusted difference"

    def value(s: Subject, visit: str | None) -> float | None:
        x = number(s.value(visit, variable)) if visit and not after_death(s, visit) else None
        if x is None or (log and x <= 0):
            return None
        return math.log(x) if log else x

    long = [(s, visit, y) for s in rows for visit in visits if (y := value(s, visit)) is not None]
    dropped = sorted(f"{s.participant_id} {visit}" for s in rows for visit in visits
                     if after_death(s, visit) and number(s.value(visit, variable)) is not None)  # fmt: skip
    n = (len({s.participant_id for s, _, _ in long if s.group == treat}),
         len({s.participant_id for s, _, _ in long if s.group != treat}))  # fmt: skip

    def run() -> Comparison:
        r = repeated.mmrm(
            [s.participant_id for s, _, _ in long],
            [visit for _, visit, _ in long],
            [y for _, _, y in long],
            [int(s.group == treat) for s, _, _ in long],
            [value(s, base) for s, _, _ in long],
            list(visits),
            at,
            {"stratum": [s.stratum for s, _, _ in long]},
            covariance=covariance,
        )
        effects = "; ".join(f"{x.visit} {x.estimate:.3g}" for x in r.visit_effects)
        est, lo, hi = r.estimate, r.ci_lower, r.ci_upper
        if log:
            est, lo, hi = math.exp(est), math.exp(lo), math.exp(hi)
        note = f"df {r.df:.1f} ({r.df_method}); effect by visit{' (log scale)' if log else ''}: {effects}"
        if dropped:
            note += f"; values recorded after the participant's death not used: {', '.join(dropped)}"
        return Comparison(label, method, set_name, scale, est, lo, hi, r.p_value, (r.n_treatment, r.n_reference),
                          primary, note)  # fmt: skip

    return safe(method, label, set_name, scale, n, primary, run)


def _t_test(
    rows: Sequence[Subject],
    pair: Callable[[Subject], tuple[float | None, float | None]],
    treat: str,
    label: str,
    set_name: str,
    primary: bool,
    *,
    log: bool,
) -> Comparison:
    """The difference in means of the value at the timepoint (Student's t, as declared by ``t_test``); on the
    log scale, the ratio of geometric means."""
    method = METHOD[Estimator.T_TEST]
    scale = "ratio of geometric means" if log else "difference in means"
    follow = [(s.group == treat, f) for s in rows if (f := pair(s)[1]) is not None]
    x = np.array([math.log(v) if log else v for is_treat, v in follow if is_treat])
    y = np.array([math.log(v) if log else v for is_treat, v in follow if not is_treat])
    n = (len(x), len(y))

    def run() -> Comparison:
        if len(x) < 2 or len(y) < 2:
            raise ValueError("fewer than 2 participants in a group")
        t = stats.ttest_ind(x, y)
        ci = t.confidence_interval(0.95)
        est, lo, hi = float(x.mean() - y.mean()), float(ci.low), float(ci.high)
        if log:
            est, lo, hi = math.exp(est), math.exp(lo), math.exp(hi)
        return Comparison(label, method, set_name, scale, est, lo, hi, float(t.pvalue), n, primary)

    return safe(method, label, set_name, scale, n, primary, run)


def _hl(
    rows: Sequence[Subject],
    pair: Callable[[Subject], tuple[float | None, float | None]],
    treat: str,
    ref: str,
    label: str,
    set_name: str,
    transform: Callable[[float], float],
    log: bool,
    has_base: bool,
    primary: bool = False,
) -> Comparison:
    def change(s: Subject) -> float | None:
        b, f = pair(s)
        if f is None or (has_base and b is None):
            return None
        return transform(f) - transform(b) if has_base and b is not None else transform(f)

    x = [c for s in rows if s.group == treat and (c := change(s)) is not None]
    y = [c for s in rows if s.group == ref and (c := change(s)) is not None]
    scale = ("ratio (of the change)" if log else "shift of the change") if has_base else "shift"
    method = METHOD[Estimator.WILCOXON_HODGES_LEHMANN]

    def run() -> Comparison:
        r = st.hodges_lehmann(x, y)
        est, lo, hi = r.shift, r.ci_lower, r.ci_upper
        if log:
            est, lo, hi = math.exp(est), math.exp(lo), math.exp(hi)
        return Comparison(
            label, method, set_name, scale, est, lo, hi, r.p_value, (len(x), len(y)), primary, f"{r.method} interval"
        )

    return safe(method, label, set_name, scale, (len(x), len(y)), primary, run)
