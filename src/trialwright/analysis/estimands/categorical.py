"""Binary and ordinal variables: participants with the event (a field's value at a visit, or an adverse event by a
day) and ordered categories, with deaths as the estimand's strategy says."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trialwright.analysis import sentences as say
from trialwright.analysis import statistics as st
from trialwright.analysis.dataset import Subject
from trialwright.analysis.estimands.common import (
    METHOD,
    MH_MEASURE,
    N_,
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
from trialwright.analysis.estimands.responder import Status, responder_of
from trialwright.analysis.methods import binary as binary_methods
from trialwright.analysis.methods import ordinal as ordinal_methods
from trialwright.analysis.results import (
    Comparison,
    Exclusion,
    GroupProportion,
    OutcomeDetails,
    OutcomeResult,
    ShiftCounts,
    pairs,
    safe,
)
from trialwright.protocol import Protocol
from trialwright.protocol.estimands import (
    AdverseEventKind,
    Estimator,
    Strategy,
    Summary,
)
from trialwright.protocol.outcomes import Outcome

__all__ = ["binary", "ordinal"]


# --- binary -------------------------------------------------------------------------------------------------------


def binary(protocol: Protocol, outcome: Outcome, sets: Sets) -> OutcomeResult:
    e = outcome.estimand
    v = e.variable
    day = planned_day(protocol, v.at)
    not_due = not_due_of(protocol, v.at)
    field = v.fields[0] if v.fields else None
    composite = composite_of(protocol, e, v.at) if v.at is not None else None

    on_treatment = e.strategy("treatment_discontinuation") is Strategy.WHILE_ON_TREATMENT
    rule = v.responder
    status = responder_of(v, day, planned_day(protocol, v.baseline), not_due) if rule is not None else None
    unknown: dict[str, Status] = {}  # a responder's status not known, and why (the exclusion's reason)

    def outcome_of(s: Subject) -> int | None:
        if v.adverse_event is not None:
            assert v.up_to_day is not None
            last = v.up_to_day
            if on_treatment and not s.treated:
                return None  # never on treatment: no period to count events in (listed)
            if on_treatment and s.stopped_day is not None:
                last = min(last, s.stopped_day - s.treatment_day)  # events up to the day the intervention stopped
            if v.adverse_event is AdverseEventKind.DEATH:
                return int(any(x.fatal and 0 <= x.onset_day <= last for x in s.events))
            return int(any(x.serious and 0 <= x.onset_day <= last for x in s.events))
        assert field is not None and v.at is not None and day is not None
        if composite is not None and (c := composite(s)) is not None:
            return int(c == "event")
        if status is not None:
            got = status(s)
            if got.value is None:
                unknown[s.participant_id] = got
            return got.value
        raw = None if after_death(s, v.at) else s.value(v.at, field)
        return None if raw is None else int(str(raw) in v.event_values)

    def why(s: Subject) -> str:
        if s.participant_id in unknown:
            return unknown[s.participant_id].why
        return why_missing(s, v.at or "", field or "", False, day(s), not_due(s))

    population = sets.of(e.population)
    groups = sets.groups
    values = {s.participant_id: outcome_of(s) for s in population}
    excluded = tuple(
        Exclusion(s.participant_id, s.group, N_("never treated: no time on treatment to count events in"), "untreated")
        if v.adverse_event is not None
        else Exclusion(s.participant_id, s.group, why(s),
                       "unusable" if s.participant_id in unknown and unknown[s.participant_id].zero
                       else cause_of(s, day(s), not_due(s)))
        for s in population
        if values[s.participant_id] is None
    )
    in_set = {g: sum(1 for s in population if s.group == g) for g in groups}
    counts = {g: sum(1 for s in population if s.group == g and values[s.participant_id] == 1) for g in groups}
    sizes = {g: sum(1 for s in population if s.group == g and values[s.participant_id] is not None) for g in groups}
    comparisons = []
    for treat, ref in pairs(groups):
        for estimator, pop, primary in estimators_of(e):
            rows = [s for s in sets.of(pop) if s.group in (treat, ref)]
            known = [(s, y) for s in rows if (y := outcome_of(s)) is not None]
            zero = sorted(s.participant_id for s in rows if s.participant_id in unknown
                          and unknown[s.participant_id].zero)  # fmt: skip
            if zero and rule is not None and rule.zero_baseline != "exclude":
                comparisons.append(_refused(estimator, e.summary, known, treat, ref, sets.names[pop], primary, zero))
                continue
            comparisons.append(_binary_comparison(estimator, e.summary, known, treat, ref, sets.names[pop], primary))
    proportions: dict[str, GroupProportion] = {}
    for g in groups:
        if sizes[g]:
            w = st.wilson(counts[g], sizes[g])
            proportions[g] = {"k": counts[g], "n": sizes[g], "p": w.estimate, "lower": w.lower, "upper": w.upper}
        else:
            proportions[g] = {"k": 0, "n": 0, "p": None, "lower": None, "upper": None}
    extra: OutcomeDetails = {"participants_with_event": proportions}
    if v.up_to_day is not None:
        extra["up_to_day"] = v.up_to_day
    return OutcomeResult(
        outcome.id,
        outcome.description,
        outcome.kind,
        field or (v.adverse_event.value if v.adverse_event else ""),
        v.kind.value,
        v.at or (f"day {v.up_to_day}" if v.up_to_day is not None else ""),
        outcome.registry_timepoint,
        sets.names[e.population],
        False,
        in_set,
        sizes,
        (),
        tuple(comparisons),
        extra,
        excluded,
    )


def _refused(
    estimator: Estimator,
    summary: Summary,
    known: Sequence[tuple[Subject, int]],
    treat: str,
    ref: str,
    set_name: str,
    primary: bool,
    zero: Sequence[str],
) -> Comparison:
    """A comparison not estimated: a percent change from a baseline of 0 or below, under zero_baseline: refuse (or
    with no declaration, which ``protocol check`` allows only where the field cannot be 0), naming who has one."""
    scale = _SCALE.get(estimator) or _SCALE_OF.get(summary, "odds ratio")
    n = (sum(1 for s, _ in known if s.group == treat), sum(1 for s, _ in known if s.group == ref))
    note = say.ZERO_BASELINE_REFUSED % {"who": ", ".join(zero)}
    return Comparison(label_of(treat, ref), METHOD[estimator], set_name, scale, None, None, None, None, n, primary,
                      note)  # fmt: skip


_SCALE = {Estimator.NEWCOMBE: "risk difference", Estimator.KATZ: "risk ratio", Estimator.LOGISTIC: "odds ratio"}
_SCALE_OF = {Summary.RISK_DIFFERENCE: "risk difference", Summary.RISK_RATIO: "risk ratio"}


def _binary_comparison(
    estimator: Estimator,
    summary: Summary,
    known: Sequence[tuple[Subject, int]],
    treat: str,
    ref: str,
    set_name: str,
    primary: bool,
) -> Comparison:
    label = label_of(treat, ref)
    k1 = sum(y for s, y in known if s.group == treat)
    n1 = sum(1 for s, _ in known if s.group == treat)
    k0 = sum(y for s, y in known if s.group == ref)
    n0 = sum(1 for s, _ in known if s.group == ref)
    scale = {Summary.RISK_DIFFERENCE: "risk difference", Summary.RISK_RATIO: "risk ratio"}.get(summary, "odds ratio")
    method = METHOD[estimator]
    if estimator is Estimator.NEWCOMBE:
        scale = "risk difference"
    elif estimator is Estimator.KATZ:
        scale = "risk ratio"
    elif estimator is Estimator.LOGISTIC:
        scale = "odds ratio"

    def run() -> Comparison:
        if estimator is Estimator.NEWCOMBE:
            r = st.newcombe_difference(k1, n1, k0, n0)
            return Comparison(label, method, set_name, scale, r.difference, r.lower, r.upper, r.fisher_p, (n1, n0),
                              primary)  # fmt: skip
        if estimator is Estimator.KATZ:
            rr = binary_methods.risk_ratio(k1, n1, k0, n0)
            return Comparison(label, method, set_name, scale, rr.estimate, rr.ci_lower, rr.ci_upper, rr.p_value,
                              (n1, n0), primary, rr.note or "")  # fmt: skip
        if estimator is Estimator.LOGISTIC:
            o = binary_methods.odds_ratio([y for _, y in known], [int(s.group == treat) for s, _ in known],
                                  {"stratum": [s.stratum for s, _ in known]})  # fmt: skip
            note = "; ".join(filter(None, (o.note, strata_left_out(o.separated_levels))))
            return Comparison(label, method, set_name, scale, o.estimate, o.ci_lower, o.ci_upper, o.p_value,
                              (n1, n0), primary, note)  # fmt: skip
        strata = sorted({s.stratum for s, _ in known})
        cells = [
            (sum(y for s, y in known if s.stratum == x and s.group == treat),
             sum(1 for s, _ in known if s.stratum == x and s.group == treat),
             sum(y for s, y in known if s.stratum == x and s.group == ref),
             sum(1 for s, _ in known if s.stratum == x and s.group == ref))
            for x in strata
        ]  # fmt: skip
        mh = binary_methods.mantel_haenszel([c[0] for c in cells], [c[1] for c in cells], [c[2] for c in cells],
                                    [c[3] for c in cells], MH_MEASURE[summary])  # fmt: skip
        dropped = f"; strata left out: {', '.join(strata[i] for i in mh.strata_dropped)}" if mh.strata_dropped else ""
        return Comparison(label, method, set_name, scale, mh.estimate, mh.ci_lower, mh.ci_upper, mh.cmh_p_value,
                          (n1, n0), primary, (mh.note or "") + dropped)  # fmt: skip

    return safe(method, label, set_name, scale, (n1, n0), primary, run)


# --- ordinal ------------------------------------------------------------------------------------------------------


def ordinal(protocol: Protocol, outcome: Outcome, sets: Sets) -> OutcomeResult:
    e = outcome.estimand
    v = e.variable
    assert v.at is not None
    field, at = v.fields[0], v.at
    day = planned_day(protocol, at)
    not_due = not_due_of(protocol, at)
    composite = composite_of(protocol, e, at)

    def code_of(s: Subject) -> str | None:
        if (c := composite(s)) is not None:
            return str(c)
        raw = None if after_death(s, at) else s.value(at, field)
        return None if raw is None else str(raw)

    population = sets.of(e.population)
    groups = sets.groups
    codes = {s.participant_id: code_of(s) for s in population}
    excluded = tuple(
        Exclusion(s.participant_id, s.group, why_missing(s, at, field, False, day(s), not_due(s)),
                  cause_of(s, day(s), not_due(s)))
        for s in population
        if codes[s.participant_id] is None
    )
    in_set = {g: sum(1 for s in population if s.group == g) for g in groups}
    analysed = {g: sum(1 for s in population if s.group == g and codes[s.participant_id]) for g in groups}
    by_category = {
        g: {c: sum(1 for s in population if s.group == g and codes[s.participant_id] == c) for c in v.order}
        for g in groups
    }
    comparisons = []
    for treat, ref in pairs(groups):
        label = label_of(treat, ref)
        for _, pop, primary in estimators_of(e):
            rows = [(s, c) for s in sets.of(pop) if s.group in (treat, ref) and (c := code_of(s)) is not None]
            set_name = sets.names[pop]
            n = (sum(1 for s, _ in rows if s.group == treat), sum(1 for s, _ in rows if s.group == ref))

            def run(rows: list[tuple[Subject, str]] = rows, set_name: str = set_name, primary: bool = primary,
                    n: tuple[int, int] = n, label: str = label, treat: str = treat) -> Comparison:  # fmt: skip
                group = [int(s.group == treat) for s, _ in rows]
                strata = {"stratum": [s.stratum for s, _ in rows]}
                r = ordinal_methods.proportional_odds([c for _, c in rows], group, v.order, strata)
                note = f"{r.direction}; {po_test(r.po_p_value, r.po_note)}"
                note += f"; {strata_left_out(r.levels_left_out)}" if r.levels_left_out else ""
                method = METHOD[Estimator.PROPORTIONAL_ODDS]
                return Comparison(label, method, set_name, "common odds ratio", r.odds_ratio, r.ci_lower,
                                  r.ci_upper, r.p_value, n, primary, note)  # fmt: skip

            method = METHOD[Estimator.PROPORTIONAL_ODDS]
            comparisons.append(safe(method, label, set_name, "common odds ratio", n, primary, run))
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
        (),
        tuple(comparisons),
        {
            "by_category": by_category,
            "order": list(v.order),
            "shift": _shifts(population, groups, v.baseline, field, v.order, codes),
        },
        excluded,
    )


def _shifts(
    population: Sequence[Subject],
    groups: Sequence[str],
    baseline: str | None,
    field: str,
    order: Sequence[str],
    codes: Mapping[str, str | None],
) -> dict[str, ShiftCounts] | None:
    """Per group, the shift table of the baseline category (rows) by the category analysed (columns), missing
    counted in its own row and column; None without a baseline visit."""
    if baseline is None:
        return None
    out: dict[str, ShiftCounts] = {}
    for g in groups:
        members = [s for s in population if s.group == g]
        if not members:
            continue
        before = [None if (x := s.value(baseline, field)) is None else str(x) for s in members]
        table = ordinal_methods.shift_table(before, [codes[s.participant_id] for s in members], [1] * len(members),
                                            order)  # fmt: skip
        out[g] = {"labels": list(table.labels), "table": [list(row) for row in table.treatment]}
    return out
