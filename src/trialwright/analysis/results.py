"""What an outcome's analysis returns: descriptions per group and visit, comparisons between groups, and who
was not analysed and why. Shared by the engine (``engine``) and the estimators by kind of variable
(``estimands``); pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np
from scipy import stats
from typing_extensions import TypedDict  # pydantic reads TypedDicts from typing_extensions before Python 3.12

from trialwright.analysis import statistics as st
from trialwright.analysis.noninferiority import NonInferiority
from trialwright.protocol import Protocol

__all__ = [
    "Comparison",
    "Exclusion",
    "OutcomeResult",
    "TimepointSummary",
    "fixed",
    "fmt_number",
    "number",
    "pairs",
    "safe",
    "summarise",
    "visits_of",
]


def fmt_number(x: float | None, digits: int = 3) -> str:
    """A number as every table of the report shows it: exactly ``digits`` significant digits, trailing zeros kept
    (1.70379 is 1.70, 0.5 is 0.500), rounded half away from zero once taken to 12 significant digits as ``fixed``
    does (9.995 is 10.0); a number of more integer digits than that keeps them all, as a whole number (1234.5 is
    1235), never an exponent that hides its size; one under 0.0001 in Python's exponent form (1.23e-05); 0 is 0; NA
    when undefined."""
    if x is None or not math.isfinite(x):
        return "NA"
    exact = Decimal(f"{float(x):.12g}")
    if exact == 0:
        return "0"
    top = exact.adjusted()  # the power of ten of the first significant digit
    if top >= digits:
        return fixed(x, 0)
    rounded = exact.quantize(Decimal(1).scaleb(top - digits + 1), rounding=ROUND_HALF_UP)
    if rounded.adjusted() > top:  # 9.995 -> 10.00: one digit too many after the carry
        rounded = rounded.quantize(Decimal(1).scaleb(top - digits + 2), rounding=ROUND_HALF_UP)
    if rounded.adjusted() < -4:  # as Python's "g" writes so small a number: 1.23e-05
        mantissa = rounded.scaleb(-rounded.adjusted())
        return f"{mantissa:f}e-{-rounded.adjusted():02d}"
    return f"{rounded:f}"


def fixed(x: float | None, places: int) -> str:
    """A number at ``places`` decimals (Table 1's rule: the field's declared decimals plus one), rounded half away
    from zero (2.25 at one place is 2.3) after it is taken to 12 significant digits, so that floating-point noise
    in a mean (2.2499999999999996 for 2.25) cannot decide a tie, or to as many as the places shown need (13
    integer digits at 2 places keep 16: one past the last shown, for the tie; at most the 17 a double holds), so
    no digit shown is cut by the rounding; never -0; NA when undefined."""
    if x is None or not math.isfinite(x):
        return "NA"
    x = float(x)
    whole = math.floor(math.log10(abs(x))) + 1 if x else 1  # digits before the point
    digits = min(max(12, whole + places + 1), 17)  # a double holds 17 significant digits: none shown beyond them
    with localcontext() as context:
        context.prec = max(whole, digits) + places + 2  # room for the quantized result, however large
        rounded = Decimal(f"{x:.{digits}g}").quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{abs(rounded) if rounded == 0 else rounded:f}"


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
    non_inferiority: NonInferiority | None = None  # the estimand's hypothesis is non-inferiority

    def text(self) -> str:
        """Estimate (95% CI), p; under a non-inferiority hypothesis the margin, the bound on the side of harm, the
        one-sided p and the conclusion in place of the two-sided p."""
        if self.estimate is None:
            return f"not estimable ({self.note})" if self.note else "not estimable"
        if self.non_inferiority is not None:
            return f"{_f(self.estimate)} (95% CI {_f(self.lower)} to {_f(self.upper)}); {self.non_inferiority.text()}"
        p = "" if self.p_value is None else (", p<0.001" if self.p_value < 0.001 else f", p={self.p_value:.3f}")
        return f"{_f(self.estimate)} (95% CI {_f(self.lower)} to {_f(self.upper)}){p}"


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A participant of the analysis set whom an outcome's analysis could not use, and why. ``group`` is the group
    analysed (efficacy outcomes are pooled in every blinded mode, so it never tells a blinded reader an arm)."""

    participant_id: str
    group: str
    reason: str
    #: died, withdrew_consent, lost_to_follow_up, left_follow_up, not_due, missing or unusable (CONSORT)
    cause: str = "missing"


class GroupProportion(TypedDict):
    """Participants with the event in one group: k of n, the proportion and its Wilson 95% CI (None when n is 0)."""

    k: int
    n: int
    p: float | None
    lower: float | None
    upper: float | None


class SurvivalCurve(TypedDict):
    """One group's Kaplan-Meier estimate: n, events, the median (None when not reached), survival at the end day,
    and the curve's steps."""

    n: int
    events: int
    median: float | None
    at_end: float | None
    times: list[float]
    survival: list[float]


class IncidenceCurve(TypedDict):
    """One group's cumulative incidence of the event (discharge) with death as the competing event: the counts,
    the incidence and the competing incidence at each reported day (keys are days), and the curves' steps."""

    n: int
    discharged: int
    died: int
    censored: int
    at: dict[str, float | None]
    died_by: dict[str, float | None]
    times: list[float]
    cif: list[float]
    cif_competing: list[float]


class EventIncidence(TypedDict):
    """One group's cumulative incidence of a time to event's event with death as the competing event (Aalen-Johansen):
    the counts, the incidence of the event and of death first at each reported day (keys are days), and the curves'
    steps."""

    n: int
    events: int
    died: int
    censored: int
    at: dict[str, float | None]
    died_by: dict[str, float | None]
    times: list[float]
    cif: list[float]
    cif_competing: list[float]


class ShiftCounts(TypedDict):
    """One group's shift table: baseline category (rows) by the category analysed (columns), labels in order."""

    labels: list[str]
    table: list[list[float]]


class OutcomeDetails(TypedDict, total=False):
    """An outcome's method-specific details, beside its comparisons: the members its kind of analysis gives."""

    participants_with_event: dict[str, GroupProportion]  # binary outcomes, per group
    up_to_day: int  # binary outcomes counted up to a day; time to event: the end day
    kaplan_meier: dict[str, SurvivalCurve | None]  # time to event, per group (None: nobody to estimate)
    cumulative_incidence: dict[str, IncidenceCurve | None]  # a duration with death competing, per group
    event_incidence: dict[str, EventIncidence | None]  # a time to event with death competing, per group
    days: list[int]  # the days the cumulative incidence is reported at
    by_category: dict[str, dict[str, int]]  # ordinal outcomes: per group, participants per category
    order: list[str]  # the categories, in the protocol's order
    shift: dict[str, ShiftCounts] | None  # ordinal outcomes: per group (None without a baseline visit)


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
    extra: OutcomeDetails = field(default_factory=lambda: OutcomeDetails())  # the method's own details
    excluded: tuple[Exclusion, ...] = ()  # everyone in the set the primary analysis could not use, with why
    estimand: tuple[tuple[str, str], ...] = ()  # the estimand's attributes in words (``estimands.in_words``)
    hypothesis: str = "superiority"  # the declared hypothesis's kind (``estimand.hypothesis.kind``)

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
            lines.append(f"  {c.label}, {c.method}, {c.analysis_set} ({c.scale}): {c.text()}")
        lines.extend(f"  not analysed: {x.participant_id} ({x.group}): {x.reason}" for x in self.excluded)
        return "\n".join(lines)


# --- helpers shared by the estimators ---------------------------------------------------------------------


def number(value: float | str | None) -> float | None:
    """The value if it is a number (an int or a float, not a bool), else None."""
    if value.__class__ is float:  # the common case, first (asked once per participant, visit and variable)
        return value
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def summarise(group: str, visit: str, what: str, values: Sequence[float | None]) -> TimepointSummary:
    d = st.describe(values)
    lo = hi = None
    if d.n >= 2 and d.mean is not None and d.sd is not None:
        half = float(stats.t.ppf(0.975, d.n - 1)) * d.sd / math.sqrt(d.n)
        lo, hi = d.mean - half, d.mean + half
    return TimepointSummary(group, visit, what, d.n, d.missing, d.mean, d.sd, d.median, d.q1, d.q3, lo, hi)


def pairs(groups: Sequence[str]) -> list[tuple[str, str]]:
    return [(g, groups[0]) for g in groups[1:]]


def safe(
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


def visits_of(protocol: Protocol, form_id: str) -> list[str]:
    visits = [v for v in protocol.visits if form_id in v.forms]
    visits.sort(key=lambda v: (v.day, v.kind != "scheduled"))
    return [v.id for v in visits]
