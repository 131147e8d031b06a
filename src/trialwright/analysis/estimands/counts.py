"""Count variables: a whole number at a visit, events counted or a bounded score (e.g. ventilator-free days, with
death as the declared value). Negative binomial rate ratio, Hodges-Lehmann shift, or proportional odds over the
values as ordered categories, as the estimand declares."""

from __future__ import annotations

from collections.abc import Sequence

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
    po_test,
    strata_left_out,
    why_missing,
)
from trialwright.analysis.methods import binary as binary_methods
from trialwright.analysis.methods import ordinal as ordinal_methods
from trialwright.analysis.results import Comparison, Exclusion, OutcomeResult, number, pairs, safe, summarise
from trialwright.protocol import Protocol
from trialwright.protocol.estimands import Estimator
from trialwright.protocol.outcomes import Outcome

__all__ = ["count"]


def count(protocol: Protocol, outcome: Outcome, sets: Sets) -> OutcomeResult:
    e = outcome.estimand
    v = e.variable
    assert v.at is not None
    field, at = v.fields[0], v.at
    day = planned_day(protocol, at)
    not_due = not_due_of(protocol, at)
    composite = composite_of(protocol, e, at)

    def value_of(s: Subject) -> int | None:
        if (c := composite(s)) is not None:
            return int(c)  # the death (or the named event) is the outcome: it takes the declared value
        raw = None if after_death(s, at) else number(s.value(at, field))
        return None if raw is None else int(raw)

    population = sets.of(e.population)
    groups = sets.groups
    values = {s.participant_id: value_of(s) for s in population}
    excluded = tuple(
        Exclusion(s.participant_id, s.group, why_missing(s, at, field, False, day(s), not_due(s)),
                  cause_of(s, day(s), not_due(s)))
        for s in population
        if values[s.participant_id] is None
    )
    in_set = {g: sum(1 for s in population if s.group == g) for g in groups}
    analysed = {g: sum(1 for s in population if s.group == g and values[s.participant_id] is not None) for g in groups}
    summaries = tuple(
        summarise(g, at, "value", [values[s.participant_id] for s in population if s.group == g]) for g in groups
    )
    comparisons = []
    for treat, ref in pairs(groups):
        for estimator, pop, primary in estimators_of(e):
            rows = [(s, y) for s in sets.of(pop) if s.group in (treat, ref) and (y := value_of(s)) is not None]
            comparisons.append(_compared(estimator, rows, treat, ref, sets.names[pop], primary))
    return OutcomeResult(
        outcome.id,
        outcome.description,
        outcome.kind,
        field,
        v.kind.value,
        at,
        outcome.registry_timepoint,
        sets.names[e.population],
        False,
        in_set,
        analysed,
        summaries,
        tuple(comparisons),
        excluded=excluded,
    )


def _compared(
    estimator: Estimator, rows: Sequence[tuple[Subject, int]], treat: str, ref: str, set_name: str, primary: bool
) -> Comparison:
    label, method = label_of(treat, ref), METHOD[estimator]
    scale = {
        Estimator.NEGATIVE_BINOMIAL: "rate ratio",
        Estimator.WILCOXON_HODGES_LEHMANN: "shift",
        Estimator.PROPORTIONAL_ODDS: "common odds ratio",
    }[estimator]
    n = (sum(1 for s, _ in rows if s.group == treat), sum(1 for s, _ in rows if s.group == ref))
    group = [int(s.group == treat) for s, _ in rows]
    ys = [y for _, y in rows]
    strata = {"stratum": [s.stratum for s, _ in rows]}

    def run() -> Comparison:
        if estimator is Estimator.NEGATIVE_BINOMIAL:
            nb = binary_methods.negative_binomial(ys, group, covariates=strata)
            note = nb.note or ""
            if nb.alpha is not None:  # how it was fitted and where alpha is (at the boundary: said so)
                note = (say.NB2_BOUNDARY if nb.alpha_at_boundary else say.DISPERSION) % {"p": f"{nb.alpha:.3g}"}
                note += f"; {say.NB2_BY[nb.optimizer or '']}"
            if nb.without_events:  # a stratum whose participants all count 0: no finite coefficient, left out
                note += f"; {strata_left_out(nb.without_events)}"
            return Comparison(label, method, set_name, scale, nb.estimate, nb.ci_lower, nb.ci_upper, nb.p_value, n,
                              primary, note)  # fmt: skip
        if estimator is Estimator.WILCOXON_HODGES_LEHMANN:
            hl = st.hodges_lehmann([y for y, g in zip(ys, group, strict=True) if g],
                                   [y for y, g in zip(ys, group, strict=True) if not g])  # fmt: skip
            return Comparison(label, method, set_name, scale, hl.shift, hl.ci_lower, hl.ci_upper, hl.p_value, n,
                              primary, f"{hl.method} interval")  # fmt: skip
        order = [str(x) for x in sorted(set(ys))]
        po = ordinal_methods.proportional_odds([str(y) for y in ys], group, order, strata)
        note = f"{po.direction}; categories {order[0]} to {order[-1]}; {po_test(po.po_p_value, po.po_note)}"
        note += f"; {strata_left_out(po.levels_left_out)}" if po.levels_left_out else ""
        return Comparison(label, method, set_name, scale, po.odds_ratio, po.ci_lower, po.ci_upper, po.p_value, n,
                          primary, note)  # fmt: skip

    return safe(method, label, set_name, scale, n, primary, run)
