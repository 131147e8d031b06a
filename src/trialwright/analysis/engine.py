"""Executing the protocol's analysis plan on an analysis data set: the results a report shows.

Pure: it reads a ``Protocol`` and an ``AnalysisData`` and returns a frozen ``AnalysisReport``. Each outcome is
analysed as the protocol plans it (``Outcome.analysis``, the first method primary) in its analysis set:

* change from baseline: per group and visit n, mean (SD), median (IQR); ANCOVA of the follow-up value on
  group, adjusted for baseline and the stratification factors (on the log scale for right-skewed markers:
  a ratio of geometric means); the Wilcoxon rank-sum test with the Hodges-Lehmann shift of the change as
  sensitivity; the same ANCOVA in the per-protocol set;
* participants with an event (SAEs): the safety set as treated, risk difference with Newcombe's hybrid
  score interval and Fisher's exact p; each expected event (e.g. infusion reactions) by worst grade;
* duration with death competing (length of stay): median (IQR), the Aalen-Johansen cumulative incidence of
  discharge alive with death as a competing event (deaths are neither dropped nor censored), and between groups
  the Fine-Gray subdistribution hazard ratio with Gray's test.

Whoever in the analysis set an outcome's analysis cannot use is listed with the reason (``OutcomeResult.excluded``).

Comparisons are each later group against the first (the comparator, when arms are named). In a pooled
analysis there is one group and no comparison: only descriptions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats

from trialwright.analysis import statistics as st
from trialwright.analysis.consort import ArmFlow, ConsortFlow, Reason
from trialwright.analysis.dataset import AnalysisData, Grouping, Subject
from trialwright.analysis.methods import competing
from trialwright.protocol import Protocol
from trialwright.protocol.analysis_plan import ProgressionMeasure
from trialwright.protocol.forms import FieldType
from trialwright.protocol.outcomes import AnalysisMethod, Measure, Outcome

__all__ = [
    "AnalysisReport",
    "Comparison",
    "Exclusion",
    "GradeRow",
    "OutcomeResult",
    "PilotRate",
    "TableOneRow",
    "TimepointSummary",
    "analyse",
    "fmt_number",
]

#: The one group of a pooled description.
POOLED = "All participants"

#: Days at which the cumulative incidence of discharge is reported.
CIF_DAYS = (7, 14, 28)


def fmt_number(x: float | None, digits: int = 3) -> str:
    """A number as every table of the report shows it: ``digits`` significant digits, NA when undefined."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NA"
    return f"{x:.{digits}g}"


_f = fmt_number


@dataclass(frozen=True, slots=True)
class TimepointSummary:
    """One group at one visit: n, missing, mean (SD), median (IQR), and the mean's 95% CI (for figures)."""

    group: str
    visit: str
    what: str  # value or change
    n: int
    missing: int
    mean: float | None
    sd: float | None
    median: float | None
    q1: float | None
    q3: float | None
    ci_lower: float | None
    ci_upper: float | None

    def text(self) -> str:
        """n; mean (SD); median (IQR)."""
        if self.n == 0:
            return "n=0"
        return f"n={self.n}; {_f(self.mean)} ({_f(self.sd)}); {_f(self.median)} ({_f(self.q1)} to {_f(self.q3)})"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One estimate of a difference between two groups."""

    label: str  # e.g. "Group B vs Group A"
    method: str  # e.g. "ANCOVA (log scale)"
    analysis_set: str
    scale: str  # difference, ratio, risk difference
    estimate: float | None
    lower: float | None
    upper: float | None
    p_value: float | None
    n: tuple[int, int]  # (treatment, reference) analysed
    primary: bool
    note: str = ""

    def text(self) -> str:
        """Estimate (95% CI), p."""
        if self.estimate is None:
            return f"not estimable ({self.note})" if self.note else "not estimable"
        p = "" if self.p_value is None else (", p<0.001" if self.p_value < 0.001 else f", p={self.p_value:.3f}")
        return f"{_f(self.estimate)} (95% CI {_f(self.lower)} to {_f(self.upper)}){p}"


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A participant of the analysis set whom an outcome's analysis could not use, and why. ``group`` is the group
    analysed (efficacy outcomes are pooled in every blinded mode, so it never tells a blinded reader an arm)."""

    participant_id: str
    group: str
    reason: str


@dataclass(frozen=True, slots=True)
class OutcomeResult:
    """Everything reported for one outcome variable at one timepoint."""

    outcome_id: str
    description: str
    kind: str  # primary or secondary
    variable: str  # form.field, or the event
    measure: str
    timepoint: str
    registry_timepoint: str
    analysis_set: str
    log_scale: bool
    in_set: Mapping[str, int]  # participants in the analysis set, per group
    analysed: Mapping[str, int]  # with the data this analysis needs, per group
    summaries: tuple[TimepointSummary, ...]  # every visit collecting the variable (figures), value and change
    comparisons: tuple[Comparison, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. events per group, cumulative incidence
    excluded: tuple[Exclusion, ...] = ()  # everyone in the set the primary analysis could not use, with why

    @property
    def missing(self) -> dict[str, int]:
        """Per group: in the set but not analysed."""
        return {g: self.in_set[g] - self.analysed.get(g, 0) for g in self.in_set}

    def summary(self) -> str:
        """A few lines of text."""
        lines = [f"{self.description} [{self.variable}, {self.registry_timepoint}; {self.analysis_set}]"]
        lines.append("  missing: " + ", ".join(f"{g} {m} of {self.in_set[g]}" for g, m in self.missing.items()))
        for s in self.summaries:
            if s.visit == self.timepoint:
                lines.append(f"  {s.group} {s.what} at {s.visit}: {s.text()}")
        for c in self.comparisons:
            lines.append(f"  {c.label}, {c.method} ({c.scale}): {c.text()}")
        lines.extend(f"  not analysed: {x.participant_id} ({x.group}): {x.reason}" for x in self.excluded)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class TableOneRow:
    """One line of Table 1: a variable (or one category of it) described per group."""

    variable: str
    label: str
    cells: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class GradeRow:
    """Participants with an expected event (e.g. an infusion reaction) by worst grade, per group."""

    event: str
    label: str
    by_grade: Mapping[str, Mapping[int, int]]  # group -> grade -> participants
    participants: Mapping[str, int]  # group -> participants with the event
    denominators: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class PilotRate:
    """A feasibility rate of the pilot, with the protocol's progression verdict if it declares one."""

    measure: str
    label: str
    numerator: float
    denominator: float
    value: float | None
    verdict: str | None  # go, amend, stop

    def text(self) -> str:
        if self.value is None:
            return "not estimable"
        if self.measure == ProgressionMeasure.RECRUITMENT_PER_SITE_MONTH.value:
            shown = f"{self.value:.2f} per site-month ({_f(self.numerator)} in {self.denominator:.1f} site-months)"
        else:
            shown = f"{100 * self.value:.0f}% ({int(self.numerator)}/{int(self.denominator)})"
        return shown + (f"; progression: {self.verdict}" if self.verdict else "")


@dataclass(frozen=True, slots=True)
class AnalysisReport:
    """The analysis of one snapshot: its provenance, analysis sets, Table 1, outcomes, safety, CONSORT, pilot."""

    trial_id: str
    title: str
    protocol_version: str
    software_version: str
    taken_at: str  # ISO UTC
    snapshot_sha256: str
    audit_seq: int
    grouping: str
    groups: tuple[str, ...]
    unblinded: bool
    analysis_sets: Mapping[str, Mapping[str, int]]  # set id -> group -> n
    set_names: Mapping[str, str]
    table_one: tuple[TableOneRow, ...]
    outcomes: tuple[OutcomeResult, ...]
    by_grade: tuple[GradeRow, ...]
    consort: ConsortFlow
    pilot: tuple[PilotRate, ...]
    below_limit_rule: str
    notes: tuple[str, ...]

    @property
    def outcome_ids(self) -> tuple[str, ...]:
        """The outcomes analysed, in protocol order."""
        return tuple(dict.fromkeys(o.outcome_id for o in self.outcomes))

    def summary(self) -> str:
        """The whole report as plain text."""
        lines = [
            f"{self.title} ({self.trial_id}), protocol version {self.protocol_version}",
            f"trialwright {self.software_version}; data snapshot {self.snapshot_sha256[:16]} at {self.taken_at} "
            f"(audit entry {self.audit_seq}); {'UNBLINDED' if self.unblinded else 'blinded'}: {self.grouping}",
        ]
        for set_id, counts in self.analysis_sets.items():
            lines.append(f"{self.set_names.get(set_id, set_id)}: " + ", ".join(f"{g} {n}" for g, n in counts.items()))
        lines.append("")
        lines.extend(o.summary() for o in self.outcomes)
        lines.append("")
        lines.append(self.consort.summary())
        lines.extend(f"{r.label}: {r.text()}" for r in self.pilot)
        lines.extend(self.notes)
        return "\n".join(lines)

    def csv_rows(self) -> list[dict[str, Any]]:
        """One row per estimate (the machine-readable core of results.json, for a spreadsheet)."""
        rows = []
        for o in self.outcomes:
            for c in o.comparisons:
                rows.append(
                    {
                        "outcome": o.outcome_id,
                        "variable": o.variable,
                        "timepoint": o.timepoint,
                        "analysis_set": c.analysis_set,
                        "comparison": c.label,
                        "method": c.method,
                        "scale": c.scale,
                        "estimate": c.estimate,
                        "ci_lower": c.lower,
                        "ci_upper": c.upper,
                        "p_value": c.p_value,
                        "n_treatment": c.n[0],
                        "n_reference": c.n[1],
                        "primary": c.primary,
                        "note": c.note,
                    }
                )
            for s in o.summaries:
                if s.visit == o.timepoint:
                    rows.append(
                        {
                            "outcome": o.outcome_id,
                            "variable": o.variable,
                            "timepoint": o.timepoint,
                            "analysis_set": o.analysis_set,
                            "comparison": s.group,
                            "method": f"describe {s.what}",
                            "scale": "mean",
                            "estimate": s.mean,
                            "ci_lower": s.ci_lower,
                            "ci_upper": s.ci_upper,
                            "p_value": None,
                            "n_treatment": s.n,
                            "n_reference": None,
                            "primary": False,
                            "note": f"sd={_f(s.sd)} median={_f(s.median)} iqr={_f(s.q1)} to {_f(s.q3)}",
                        }
                    )
        return rows


# --- helpers ------------------------------------------------------------------------------------------


def _num(value: float | str | None) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _summary(group: str, visit: str, what: str, values: Sequence[float | None]) -> TimepointSummary:
    d = st.describe(values)
    lo = hi = None
    if d.n >= 2 and d.mean is not None and d.sd is not None:
        half = float(stats.t.ppf(0.975, d.n - 1)) * d.sd / math.sqrt(d.n)
        lo, hi = d.mean - half, d.mean + half
    return TimepointSummary(group, visit, what, d.n, d.missing, d.mean, d.sd, d.median, d.q1, d.q3, lo, hi)


def _pairs(groups: Sequence[str]) -> list[tuple[str, str]]:
    return [(g, groups[0]) for g in groups[1:]]


def _safe(
    method: str,
    label: str,
    analysis_set: str,
    scale: str,
    n: tuple[int, int],
    primary: bool,
    run: Callable[[], Comparison],
) -> Comparison:
    try:
        return run()
    except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
        return Comparison(label, method, analysis_set, scale, None, None, None, None, n, primary, str(exc))


def _visits_of(protocol: Protocol, form_id: str) -> list[str]:
    visits = [v for v in protocol.visits if form_id in v.forms]
    visits.sort(key=lambda v: (v.day, v.kind != "scheduled"))
    return [v.id for v in visits]


# --- continuous outcomes ------------------------------------------------------------------------------


def _continuous(
    protocol: Protocol,
    outcome: Outcome,
    variable: str,
    timepoint: str,
    itt: Sequence[Subject],
    pp: Sequence[Subject],
    groups: Sequence[str],
) -> OutcomeResult:
    log = outcome.log_scale
    base_visit = outcome.baseline
    transform: Callable[[float], float] = (lambda x: math.log(x)) if log else (lambda x: x)

    def pair(s: Subject) -> tuple[float | None, float | None]:
        b = _num(s.value(base_visit, variable)) if base_visit else None
        f = _num(s.value(timepoint, variable))
        if log:
            b = b if b is not None and b > 0 else None
            f = f if f is not None and f > 0 else None
        return b, f

    summaries: list[TimepointSummary] = []
    for g in groups:
        members = [s for s in itt if s.group == g]
        for visit in _visits_of(protocol, variable.partition(".")[0]):
            summaries.append(_summary(g, visit, "value", [_num(s.value(visit, variable)) for s in members]))
        if base_visit:
            changes = []
            for s in members:
                b, f = pair(s)
                changes.append(None if b is None or f is None else f - b)
            summaries.append(_summary(g, timepoint, "change", changes))
    in_set = {g: sum(1 for s in itt if s.group == g) for g in groups}
    analysed = {g: 0 for g in groups}
    excluded = []
    for s in itt:
        b, f = pair(s)
        if f is not None and (b is not None or not base_visit):
            analysed[s.group] += 1
            continue
        why = [_why_missing(s, timepoint, variable, log)] if f is None else []
        if base_visit and b is None:
            why.append(_why_missing(s, base_visit, variable, log))
        excluded.append(Exclusion(s.participant_id, s.group, "; ".join(why)))
    comparisons: list[Comparison] = []
    methods = outcome.analysis
    for treat, ref in _pairs(groups):
        label = f"{treat} vs {ref}"
        for set_name, subset in (("Intention to treat", itt), ("Per protocol", pp)):
            rows = [s for s in subset if s.group in (treat, ref)]
            for method in methods:
                primary = method is methods[0] and set_name == "Intention to treat"
                if method in (AnalysisMethod.ANCOVA, AnalysisMethod.ANCOVA_LOG):
                    if set_name == "Per protocol" and method is not methods[0]:
                        continue
                    log_model = method is AnalysisMethod.ANCOVA_LOG
                    comparisons.append(_ancova(rows, pair, treat, label, set_name, primary, log=log_model))
                elif method is AnalysisMethod.T_TEST:
                    if set_name == "Per protocol" and method is not methods[0]:
                        continue
                    comparisons.append(_t_test(rows, pair, treat, label, set_name, primary, log=log))
                elif method is AnalysisMethod.WILCOXON_HODGES_LEHMANN and set_name == "Intention to treat":
                    comparisons.append(_hl(rows, pair, treat, ref, label, set_name, transform, log, bool(base_visit)))
    return OutcomeResult(
        outcome.id,
        outcome.description,
        outcome.kind,
        variable,
        outcome.measure.value,
        timepoint,
        outcome.registry_timepoint,
        "Intention to treat",
        log,
        in_set,
        analysed,
        tuple(summaries),
        tuple(comparisons),
        excluded=tuple(excluded),
    )


def _why_missing(s: Subject, visit: str, variable: str, log: bool) -> str:
    """Why a participant has no usable value of ``variable`` at ``visit``, in words."""
    raw = _num(s.value(visit, variable))
    if raw is not None and log:
        return f"{variable} at {visit} is {raw:g}, not positive (log scale)"
    if "follow_up" in s.withdrawn:
        return f"no {variable} at {visit} (withdrew from follow-up)"
    return f"no {variable} at {visit}"


def _ancova(
    rows: Sequence[Subject],
    pair: Callable[[Subject], tuple[float | None, float | None]],
    treat: str,
    label: str,
    set_name: str,
    primary: bool,
    *,
    log: bool,
) -> Comparison:
    """ANCOVA of the follow-up value on group, adjusted for baseline and stratum (``protocol check`` refuses an
    ANCOVA without a baseline visit, so nothing here falls back to another method)."""
    method = "ANCOVA (log scale)" if log else "ANCOVA"
    usable = [(s, *pair(s)) for s in rows]
    usable = [u for u in usable if u[2] is not None and u[1] is not None]
    n = (sum(1 for u in usable if u[0].group == treat), sum(1 for u in usable if u[0].group != treat))
    scale = "ratio of geometric means" if log else "adjusted difference"

    def run() -> Comparison:
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
                f"n dropped {r.n_dropped}",
            )
        return Comparison(label, method, set_name, scale, r.estimate, r.ci_lower, r.ci_upper, r.p_value, n, primary)

    return _safe(method, label, set_name, scale, n, primary, run)


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
    method = "t-test"
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

    return _safe(method, label, set_name, scale, n, primary, run)


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
) -> Comparison:
    def change(s: Subject) -> float | None:
        b, f = pair(s)
        if f is None or (has_base and b is None):
            return None
        return transform(f) - transform(b) if has_base and b is not None else transform(f)

    x = [c for s in rows if s.group == treat and (c := change(s)) is not None]
    y = [c for s in rows if s.group == ref and (c := change(s)) is not None]
    scale = ("ratio (of the change)" if log else "shift of the change") if has_base else "shift"
    method = "Wilcoxon rank-sum, Hodges-Lehmann"

    def run() -> Comparison:
        r = st.hodges_lehmann(x, y)
        est, lo, hi = r.shift, r.ci_lower, r.ci_upper
        if log:
            est, lo, hi = math.exp(est), math.exp(lo), math.exp(hi)
        return Comparison(
            label, method, set_name, scale, est, lo, hi, r.p_value, (len(x), len(y)), False, f"{r.method} interval"
        )

    return _safe(method, label, set_name, scale, (len(x), len(y)), False, run)


# --- events -------------------------------------------------------------------------------------------


def _events(
    protocol: Protocol, outcome: Outcome, safety_set: Sequence[Subject], groups: Sequence[str]
) -> OutcomeResult:
    timepoint = outcome.timepoints[0]
    last_day = protocol.visit(timepoint).day

    def has(s: Subject) -> bool:
        # From the start of treatment (day 0) to the timepoint's day, both included.
        if outcome.event == "death":
            return any(e.fatal and 0 <= e.onset_day <= last_day for e in s.events)
        return any(e.serious and 0 <= e.onset_day <= last_day for e in s.events)

    by = {g: [s for s in safety_set if s.treated_group == g] for g in groups}
    counts = {g: sum(1 for s in members if has(s)) for g, members in by.items()}
    sizes = {g: len(members) for g, members in by.items()}
    comparisons = []
    for treat, ref in _pairs(groups):
        label = f"{treat} vs {ref}"

        def run(treat: str = treat, ref: str = ref, label: str = label) -> Comparison:
            r = st.newcombe_difference(counts[treat], sizes[treat], counts[ref], sizes[ref])
            return Comparison(
                label,
                "Newcombe hybrid score; Fisher's exact",
                "Safety set",
                "risk difference",
                r.difference,
                r.lower,
                r.upper,
                r.fisher_p,
                (sizes[treat], sizes[ref]),
                True,
            )

        comparisons.append(
            _safe(
                "Newcombe hybrid score", label, "Safety set", "risk difference", (sizes[treat], sizes[ref]), True, run
            )
        )
    proportions: dict[str, dict[str, float | None]] = {}
    for g in groups:
        if sizes[g]:
            w = st.wilson(counts[g], sizes[g])
            proportions[g] = {"k": counts[g], "n": sizes[g], "p": w.estimate, "lower": w.lower, "upper": w.upper}
        else:
            proportions[g] = {"k": 0, "n": 0, "p": None, "lower": None, "upper": None}
    return OutcomeResult(
        outcome.id,
        outcome.description,
        outcome.kind,
        outcome.event or "",
        outcome.measure.value,
        timepoint,
        outcome.registry_timepoint,
        "Safety set",
        False,
        sizes,
        sizes,
        (),
        tuple(comparisons),
        {"participants_with_event": proportions, "up_to_day": last_day},
    )


def _by_grade(protocol: Protocol, safety_set: Sequence[Subject], groups: Sequence[str]) -> tuple[GradeRow, ...]:
    rows = []
    for expected in protocol.safety.expected_events:
        by_grade: dict[str, dict[int, int]] = {}
        participants: dict[str, int] = {}
        for g in groups:
            worst = [
                max(e.grade for e in s.events if e.expected_event == expected.code)
                for s in safety_set
                if s.treated_group == g and any(e.expected_event == expected.code for e in s.events)
            ]
            by_grade[g] = {grade: worst.count(grade) for grade in range(1, 6)}
            participants[g] = len(worst)
        denominators = {g: sum(1 for s in safety_set if s.treated_group == g) for g in groups}
        rows.append(GradeRow(expected.code, expected.term, by_grade, participants, denominators))
    return tuple(rows)


# --- duration with a competing event ------------------------------------------------------------------


def _duration(outcome: Outcome, variable: str, itt: Sequence[Subject], groups: Sequence[str]) -> OutcomeResult:
    timepoint = outcome.timepoints[0]
    summaries = []
    curves: dict[str, Any] = {}
    in_set = {g: sum(1 for s in itt if s.group == g) for g in groups}
    analysed = {}
    excluded = []
    for s in itt:
        if s.stay is None or s.stay.days is None:
            excluded.append(Exclusion(s.participant_id, s.group, _why_no_stay(s, variable)))
    for g in groups:
        members = [s for s in itt if s.group == g]
        stays = [s.stay for s in members if s.stay is not None and s.stay.days is not None]
        analysed[g] = len(stays)
        summaries.append(_summary(g, timepoint, "value", [x.days for x in stays]))
        if not stays:
            curves[g] = None
            continue
        cif = st.cumulative_incidence(
            [x.days for x in stays], [x.status for x in stays], "discharged", ["died"], censored="censored"
        )
        curves[g] = {
            "n": cif.n,
            "discharged": cif.n_events,
            "died": cif.n_competing,
            "censored": cif.n_censored,
            "at": {str(d): cif.at(d) for d in CIF_DAYS},
            "died_by": {str(d): cif.competing_at(d) for d in CIF_DAYS},
            "times": list(cif.times),
            "cif": list(cif.cif),
            "cif_competing": list(cif.cif_competing),
        }
    comparisons = [_discharge_compared(itt, treat, ref) for treat, ref in _pairs(groups)]
    return OutcomeResult(
        outcome.id,
        outcome.description,
        outcome.kind,
        variable,
        outcome.measure.value,
        timepoint,
        outcome.registry_timepoint,
        "Intention to treat",
        False,
        in_set,
        analysed,
        tuple(summaries),
        tuple(comparisons),
        {"cumulative_incidence": curves, "days": list(CIF_DAYS)},
        tuple(excluded),
    )


#: How a stay's end is coded for the competing-risks methods: discharged alive is the event, death competes.
_STAY_STATUS = {"censored": 0, "discharged": 1, "died": 2}


def _discharge_compared(itt: Sequence[Subject], treat: str, ref: str) -> Comparison:
    """Discharge alive between two groups with death as a competing event: the Fine-Gray subdistribution hazard
    ratio (robust SE, as cmprsk::crr) with Gray's test of the cumulative incidence curves beside it."""
    label = f"{treat} vs {ref}"
    method, scale = "Fine-Gray (death competing); Gray's test", "subdistribution hazard ratio of discharge alive"
    rows = [s for s in itt if s.group in (treat, ref) and s.stay is not None and s.stay.days is not None]
    n = (sum(1 for s in rows if s.group == treat), sum(1 for s in rows if s.group == ref))

    def run() -> Comparison:
        times = [s.stay.days for s in rows if s.stay is not None]
        status = [_STAY_STATUS[s.stay.status] for s in rows if s.stay is not None]
        group = [1 if s.group == treat else 0 for s in rows]
        fg = competing.fine_gray(times, status, group)
        gray = competing.gray_test(times, status, group)
        note = f"Gray's test p={gray.p_value:.3f}; {fg.n_events} discharged alive, {fg.n_competing} died"
        return Comparison(label, method, "Intention to treat", scale, fg.shr, fg.ci_lower, fg.ci_upper,
                          fg.p_value, n, True, note)  # fmt: skip

    return _safe(method, label, "Intention to treat", scale, n, True, run)


def _why_no_stay(s: Subject, variable: str) -> str:
    """Why a participant's stay has no length the analysis can use, in words."""
    left = " (withdrew from follow-up)" if "follow_up" in s.withdrawn else ""
    if s.stay is None:
        return f"how the stay ended is not recorded{left}"
    if s.stay.status == "died":
        return f"died, but {variable} has no value (the start of the stay is not recorded){left}"
    return f"{variable} has no value (the start of the stay is not recorded){left}"


# --- Table 1, CONSORT, pilot ----------------------------------------------------------------------------


def _table_one(protocol: Protocol, data: AnalysisData, itt: Sequence[Subject]) -> tuple[TableOneRow, ...]:
    plan = protocol.analysis_plan
    if plan is None:
        return ()
    visit = plan.baseline_visit
    groups = data.groups
    rows = [TableOneRow("n", "Participants", {g: str(sum(1 for s in itt if s.group == g)) for g in groups})]
    for ref in plan.baseline_table:
        form_id, _, field_id = ref.partition(".")
        f = protocol.form(form_id).field(field_id)
        label = f.label + (f" ({f.unit})" if getattr(f, "unit", None) else "")
        members = {g: [s.value(visit, ref) for s in itt if s.group == g] for g in groups}
        if f.type in (FieldType.INTEGER, FieldType.DECIMAL):
            cells = {}
            for g, values in members.items():
                d = st.describe([_num(v) for v in values])
                cells[g] = (
                    f"{_f(d.mean)} ({_f(d.sd)}); median {_f(d.median)} [{_f(d.q1)}, {_f(d.q3)}]; n={d.n}"
                    if d.n
                    else "n=0"
                )
            rows.append(TableOneRow(ref, label, cells))
            continue
        choices = [(c.code, c.label) for c in (f.choices or [])] or [("True", "yes")]
        rows.append(TableOneRow(ref, label, {g: "" for g in groups}))
        for code, choice_label in choices:
            cells = {}
            for g, values in members.items():
                known = [v for v in values if v is not None]
                k = sum(1 for v in known if str(v) == code)
                cells[g] = f"{k} ({100 * k / len(known):.0f}%)" if known else "0"
            rows.append(TableOneRow(f"{ref}={code}", f"  {choice_label}", cells))
        missing = {g: sum(1 for v in values if v is None) for g, values in members.items()}
        if any(missing.values()):
            rows.append(TableOneRow(f"{ref}=missing", "  missing", {g: str(m) for g, m in missing.items()}))
    return tuple(rows)


def _primary_analysed(protocol: Protocol, s: Subject) -> bool:
    """Whether the first continuous primary outcome's primary analysis can use this participant: a follow-up
    value, and a baseline value when it is a change from baseline (both positive on the log scale)."""

    def usable(value: float | str | None, log: bool) -> bool:
        return isinstance(value, int | float) and (value > 0 or not log)

    for o in protocol.primary_outcomes:
        if o.variables and o.measure in (Measure.CHANGE_FROM_BASELINE, Measure.VALUE_AT):
            return any(
                usable(s.value(o.timepoints[0], v), o.log_scale)
                and (o.baseline is None or usable(s.value(o.baseline, v), o.log_scale))
                for v in o.variables
            )
    return True


def _consort(protocol: Protocol, data: AnalysisData, itt: Sequence[Subject]) -> ConsortFlow:
    sc = data.screened
    excluded = [
        Reason("Not meeting eligibility criteria", sc.not_eligible),
        Reason("Declined to participate", sc.declined),
    ]
    excluded += [Reason(label, n) for label, n in sorted(sc.other_reasons.items()) if n]
    arms = []
    for g in data.groups:
        members = [s for s in itt if s.group == g]
        received = sum(1 for s in members if s.treated)
        follow = sum(1 for s in members if "follow_up" in s.withdrawn)
        stopped = sum(1 for s in members if "intervention" in s.withdrawn)
        analysed = sum(1 for s in members if _primary_analysed(protocol, s))
        arms.append(
            ArmFlow(
                g,
                len(members),
                received,
                (Reason("Intervention not recorded as given", len(members) - received),)
                if received < len(members)
                else (),
                (Reason("Withdrew from follow-up", follow),) if follow else (),
                (Reason("Withdrew from the intervention", stopped),) if stopped else (),
                analysed,
                (Reason("No primary outcome data", len(members) - analysed),) if analysed < len(members) else (),
            )
        )
    return ConsortFlow(
        sc.assessed,
        tuple(excluded),
        len(itt),
        tuple(arms),
        "Intention to treat",
        tuple((r.label, r.text()) for r in _pilot(protocol, data, itt)),
        protocol.short_name,
    )


_PILOT_LABELS = {
    ProgressionMeasure.ELIGIBILITY_RATE: "Eligible of those screened",
    ProgressionMeasure.CONSENT_RATE: "Consented of those eligible",
    ProgressionMeasure.RECRUITMENT_PER_SITE_MONTH: "Recruitment rate",
    ProgressionMeasure.RETENTION_RATE: "Retained to the primary timepoint",
}


def _pilot(protocol: Protocol, data: AnalysisData, itt: Sequence[Subject]) -> tuple[PilotRate, ...]:
    sc = data.screened
    parts = {
        ProgressionMeasure.ELIGIBILITY_RATE: (sc.eligible, sc.assessed),
        ProgressionMeasure.CONSENT_RATE: (sc.consented, sc.eligible),
        ProgressionMeasure.RECRUITMENT_PER_SITE_MONTH: (len(itt), sc.site_months),
        ProgressionMeasure.RETENTION_RATE: (sum(1 for s in itt if _primary_analysed(protocol, s)), len(itt)),
    }
    criteria = {c.measure: c for c in (protocol.analysis_plan.progression_criteria if protocol.analysis_plan else [])}
    out = []
    for measure, (num, den) in parts.items():
        value = num / den if den else None
        verdict = None
        c = criteria.get(measure)
        if c is not None and value is not None:
            verdict = "go" if value >= c.go else ("stop" if c.stop is not None and value < c.stop else "amend")
        out.append(PilotRate(measure.value, _PILOT_LABELS[measure], float(num), float(den), value, verdict))
    return tuple(out)


# --- the whole plan -------------------------------------------------------------------------------------


def analyse(protocol: Protocol, data: AnalysisData, *, software_version: str, unblinded: bool) -> AnalysisReport:
    """Run the protocol's analysis plan on one analysis data set."""
    groups = data.groups
    itt = list(data.subjects)
    pp = [s for s in itt if s.per_protocol]
    safety_set = [s for s in itt if s.treated]
    # Efficacy by unnamed groups before the lock would let the blinded team compare the arms: unnamed groups
    # are for safety (as the protocol's blinded_tables says); efficacy outcomes are pooled in that mode.
    efficacy_groups, efficacy_itt, efficacy_pp = groups, itt, pp
    if data.grouping is Grouping.UNNAMED_GROUPS:
        efficacy_groups = (POOLED,)
        efficacy_itt = [replace(s, group=POOLED) for s in itt]
        efficacy_pp = [s for s in efficacy_itt if s.per_protocol]
    results: list[OutcomeResult] = []
    for outcome in protocol.outcomes:
        if outcome.measure in (Measure.CHANGE_FROM_BASELINE, Measure.VALUE_AT):
            for variable in outcome.variables:
                for timepoint in outcome.timepoints:
                    results.append(
                        _continuous(protocol, outcome, variable, timepoint, efficacy_itt, efficacy_pp, efficacy_groups)
                    )
        elif outcome.measure is Measure.PARTICIPANTS_WITH_EVENT:
            results.append(_events(protocol, outcome, safety_set, groups))
        elif outcome.measure is Measure.DURATION:
            results.append(_duration(outcome, outcome.variables[0], efficacy_itt, efficacy_groups))
    sets = {
        "itt": {g: sum(1 for s in itt if s.group == g) for g in groups},
        "safety": {g: sum(1 for s in safety_set if s.treated_group == g) for g in groups},
        "per_protocol": {g: sum(1 for s in pp if s.group == g) for g in groups},
    }
    names = {a.id: a.name for a in protocol.analysis_sets}
    names.setdefault("per_protocol", "Per protocol")
    notes = list(data.notes)
    if data.grouping is Grouping.POOLED:
        notes.append("Blinded, pooled: every participant in one group; no comparison between arms is made.")
    elif data.grouping is Grouping.UNNAMED_GROUPS:
        notes.append(
            "Blinded: safety (SAEs, expected events), Table 1 and the flow by unnamed groups in an order fixed by a "
            "secret; efficacy outcomes pooled, so the arms cannot be compared before the lock."
        )
    unblinded_people = sum(1 for s in itt if s.emergency_unblinded)
    if unblinded_people:
        notes.append(f"{unblinded_people} participant(s) were emergency-unblinded before this analysis.")
    return AnalysisReport(
        trial_id=data.trial_id,
        title=protocol.trial.titles.public,
        protocol_version=data.protocol_version,
        software_version=software_version,
        taken_at=data.taken_at.isoformat(),
        snapshot_sha256=data.snapshot_sha256,
        audit_seq=data.audit_seq,
        grouping=data.grouping.value,
        groups=groups,
        unblinded=unblinded,
        analysis_sets=sets,
        set_names=names,
        table_one=_table_one(protocol, data, itt),
        outcomes=tuple(results),
        by_grade=_by_grade(protocol, safety_set, groups),
        consort=_consort(protocol, data, itt),
        pilot=_pilot(protocol, data, itt),
        below_limit_rule=data.below_limit_rule,
        notes=tuple(notes),
    )
