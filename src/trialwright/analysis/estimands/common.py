"""What every kind of estimand shares: the populations as sets of participants, the estimators' names in the
report, and why a participant could not be analysed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from trialwright.analysis import sentences as say
from trialwright.analysis.dataset import Subject
from trialwright.analysis.results import number
from trialwright.protocol import Protocol
from trialwright.protocol.estimands import Estimand, Estimator, Population, Strategy, Summary
from trialwright.protocol.forms import ReferenceEvent

__all__ = [
    "CIF_DAYS",
    "METHOD",
    "MH_MEASURE",
    "NAMES",
    "N_",
    "Sets",
    "after_death",
    "cause_of",
    "composite_of",
    "died_by",
    "estimators_of",
    "fmt_p",
    "label_of",
    "left_by",
    "left_in_words",
    "not_due_of",
    "planned_day",
    "po_test",
    "sets_of",
    "strata_left_out",
    "why_missing",
]


#: Days at which the cumulative incidence of a duration's end is reported.
CIF_DAYS = (7, 14, 28)

#: Population names when the protocol's analysis_sets do not name them.
NAMES = {
    Population.ITT: "Intention to treat",
    Population.MODIFIED_ITT: "Modified intention to treat",
    Population.PER_PROTOCOL: "Per protocol",
    Population.SAFETY: "Safety set",
}


def strata_left_out(levels: Sequence[str]) -> str:
    """The note naming the strata a model left out (``"stratum=<value>"`` each, as the methods list them), or
    nothing: a stratum whose participants all had the same outcome has no finite coefficient, so its rows are left
    out of the fit (``methods.base.levels_at_an_end``)."""
    return say.STRATA_LEFT_OUT % {"strata": ", ".join(x.split("=", 1)[1] for x in levels)} if levels else ""


def po_test(p_value: float | None, why: str | None) -> str:
    """The note's words on the proportional odds test: its p, or when it could not be computed "p=NA" and the
    method's reason (``ProportionalOdds.po_note``, a sentence of ``sentences``) as the next piece (walk 6 F4)."""
    said = say.PO_TEST % {"p": fmt_p(p_value)}
    return f"{said}; {why}" if p_value is None and why else said


def N_(message: str) -> str:
    """Marks an English message a reader's catalog translates (the web passes its catalog in; the analysis reads
    none), so that the catalog's completeness test finds it."""
    return message


#: What each estimator is called in the report.
METHOD = {
    Estimator.ANCOVA: N_("ANCOVA"),
    Estimator.MMRM: N_("MMRM (REML, Satterthwaite df)"),
    Estimator.T_TEST: N_("t-test"),
    Estimator.WILCOXON_HODGES_LEHMANN: N_("Wilcoxon rank-sum, Hodges-Lehmann"),
    Estimator.NEWCOMBE: N_("Newcombe hybrid score; Fisher's exact"),
    Estimator.KATZ: N_("Risk ratio (Katz log interval)"),
    Estimator.LOGISTIC: N_("Logistic regression (adjusted for stratum)"),
    Estimator.MANTEL_HAENSZEL: N_(
        "Mantel-Haenszel across strata; Cochran-Mantel-Haenszel test without continuity correction"
    ),
    Estimator.PROPORTIONAL_ODDS: N_("Proportional odds (adjusted for stratum)"),
    Estimator.NEGATIVE_BINOMIAL: N_("Negative binomial regression (adjusted for stratum)"),
    Estimator.FINE_GRAY: N_("Fine-Gray (death competing); Gray's test"),
    Estimator.CAUSE_SPECIFIC_COX: N_("Cause-specific Cox (death competing)"),
    Estimator.COX: N_("Cox proportional hazards (stratified by stratum); log-rank test"),
    Estimator.RMST: N_("Restricted mean survival time"),
}


MH_MEASURE: dict[Summary, Literal["risk_difference", "risk_ratio", "odds_ratio"]] = {
    Summary.RISK_DIFFERENCE: "risk_difference",
    Summary.RISK_RATIO: "risk_ratio",
    Summary.ODDS_RATIO: "odds_ratio",
}


@dataclass(frozen=True)
class Sets:
    """The participants of each population, each labelled with the group they are analysed in."""

    groups: tuple[str, ...]
    by_population: Mapping[Population, tuple[Subject, ...]]
    names: Mapping[Population, str]
    unplaced: tuple[Subject, ...] = ()  # treated with a preparation no allocation has: in no group as treated

    def of(self, population: Population) -> tuple[Subject, ...]:
        return self.by_population[population]


def sets_of(protocol: Protocol, subjects: Sequence[Subject], groups: tuple[str, ...]) -> Sets:
    """Intention to treat (as randomized), modified ITT (treated, as randomized), per protocol, and the safety set
    (treated, in the group of what they received)."""
    names = {p: next((a.name for a in protocol.analysis_sets if a.id == p.value), NAMES[p]) for p in Population}
    treated = tuple(replace(s, group=s.treated_group) for s in subjects if s.treated and s.treated_group is not None)
    return Sets(
        groups,
        {
            Population.ITT: tuple(subjects),
            Population.MODIFIED_ITT: tuple(s for s in subjects if s.treated),
            Population.PER_PROTOCOL: tuple(s for s in subjects if s.per_protocol),
            Population.SAFETY: treated,
        },
        names,
        tuple(s for s in subjects if s.treated and s.treated_group is None),
    )


def estimators_of(e: Estimand) -> list[tuple[Estimator, Population, bool]]:
    """The main estimator (primary) and the sensitivity ones, each with its population."""
    main = [(e.estimator, e.population, True)]
    return main + [(s.estimator, s.population or e.population, False) for s in e.sensitivity]


def planned_day(protocol: Protocol, visit_id: str | None) -> Callable[[Subject], int | None]:
    """For a participant, the days from randomization to a visit's planned day: the visit counted from
    randomization, or from the treatment visit (the analysis plan's) by the participant's own day of treatment;
    None for a visit counted from anything else (``protocol check`` refuses a death placed against such a visit)."""
    if visit_id is None:
        return lambda s: None
    visit = protocol.visit(visit_id)
    plan = protocol.analysis_plan
    if visit.reference == ReferenceEvent.RANDOMIZATION:
        return lambda s: visit.day
    if plan is not None and plan.treatment is not None and visit.reference == plan.treatment.visit:
        return lambda s: s.treatment_day + visit.day
    return lambda s: None


def after_death(s: Subject, visit: str | None) -> bool:
    """Whether the participant's visit was held after their death (a value from it cannot be the participant's)."""
    if s.death_day is None:  # most participants: no visit is after a death
        return False
    held = s.visit_days.get(visit) if visit else None
    return held is not None and held > s.death_day


def composite_of(protocol: Protocol, e: Estimand, at: str) -> Callable[[Subject], int | float | str | None]:
    """For a participant, the value a composite strategy gives their outcome at visit ``at``, or None when no
    composite event happened: a death on or before the visit's planned day first, then each event the protocol
    names (in the order declared) whose yes/no field says yes at ``at`` or at a visit held on or before it (on or
    before the visit's planned day when it was not held). An event not recorded as yes is taken as not happened:
    the participant keeps their own value (or, without one, is listed as not analysed)."""
    death = e.intercurrent("death")
    death_value = death.value if death is not None and death.strategy is Strategy.COMPOSITE else None
    named = [x for x in e.intercurrent_events if x.field is not None and x.strategy is Strategy.COMPOSITE]
    day = planned_day(protocol, at)

    def value(s: Subject) -> int | float | str | None:
        if death_value is not None and died_by(s, day(s)):
            return death_value
        until = s.visit_days.get(at, day(s))
        for x in named:
            assert x.field is not None
            for visit in s.values:
                held = s.visit_days.get(visit)
                by_then = visit == at or (held is not None and until is not None and held <= until)
                if by_then and s.value(visit, x.field) == "True" and not after_death(s, visit):
                    return x.value
        return None

    return value


def died_by(s: Subject, day: int | None) -> bool:
    """Whether the participant died on or before ``day`` (days from randomization); False when it is unknown."""
    return s.death_day is not None and day is not None and s.death_day <= day


def label_of(treat: str, ref: str) -> str:
    return say.VERSUS % {"treatment": treat, "reference": ref}


#: How a withdrawal from follow-up is counted as a loss (CONSORT): by its recorded cause; any other cause, or none
#: recorded (withdrawals entered before causes were), is "left follow-up" with the cause listed in the report.
LEFT_BECAUSE = {"withdrew_consent": "withdrew_consent", "lost_to_follow_up": "lost_to_follow_up"}


def cause_of(s: Subject, day: int | None, not_due: bool) -> str:
    """Why an outcome is missing, for the CONSORT diagram: died (on or before ``day``); withdrew consent, lost to
    follow-up or left follow-up for another reason; not yet due (``not_due``: the visit not held and its window
    still open or in the future at the data cut-off, see ``not_due_of``): never counted as missed; or missing (a
    visit missed or a value not entered)."""
    if s.death_day is not None and (day is None or s.death_day <= day):
        return "died"
    if left_by(s, day):
        return LEFT_BECAUSE.get(s.withdrawn_cause or "", "left_follow_up")
    if not_due:
        return "not_due"
    return "missing"


def not_due_of(protocol: Protocol, visit_id: str | None) -> Callable[[Subject], bool]:
    """For a participant, whether the outcome visit ``visit_id`` is not yet due: not held, and its window (the
    planned day plus ``window.after``) not closed by the data cut-off (the site's date). False where the visit was
    held or recorded as missed, or the planned day or the cut-off is not known (then it is counted as missing)."""
    if visit_id is None:
        return lambda s: False
    day = planned_day(protocol, visit_id)
    after = protocol.visit(visit_id).window.after

    def not_due(s: Subject) -> bool:
        planned = day(s)
        if visit_id in s.visit_days or visit_id in s.missed_visits or planned is None or s.followed_days is None:
            return False
        return s.followed_days <= planned + after

    return not_due


def left_by(s: Subject, day: int | None) -> bool:
    """Whether the participant left follow-up on or before ``day`` (days from randomization); when the day is not
    known, whether they left at all (the report says which visit it concerns)."""
    if "follow_up" not in s.withdrawn:
        return False
    return day is None or s.withdrawn_day is None or s.withdrawn_day <= day


def left_in_words(s: Subject) -> str:
    """How the participant left follow-up, in words: "withdrew consent", "lost to follow-up", "left follow-up
    (investigator decision)" or "left follow-up (cause not recorded)"."""
    cause = s.withdrawn_cause
    if cause in _LEFT_WORDS:
        return _LEFT_WORDS[cause]
    return f"left follow-up ({(cause or 'cause not recorded').replace('_', ' ')})"


_LEFT_WORDS = {"withdrew_consent": "withdrew consent", "lost_to_follow_up": "lost to follow-up"}


def why_missing(s: Subject, visit: str, variable: str, log: bool, day: int | None, not_due: bool = False) -> str:
    """Why a participant has no usable value of ``variable`` at ``visit`` (planned on ``day``), in words; ``not_due``:
    the visit is not yet due (``not_due_of``), said as CONSORT says it, where ``cause_of`` gives ``not_due``."""
    raw = number(s.value(visit, variable))
    at = {"variable": variable, "visit": visit}
    if after_death(s, visit):
        return say.AFTER_DEATH % {**at, "day": s.visit_days[visit], "death_day": s.death_day}
    if raw is not None and log:
        return say.NOT_POSITIVE % {**at, "value": f"{raw:g}"}
    if s.death_day is not None and (day is None or s.death_day <= day):
        return say.NONE_DIED % {**at, "death_day": s.death_day}
    if left_by(s, day):
        if s.withdrawn_day is None:
            return say.NONE_LEFT % {**at, "how": left_in_words(s)}
        return say.NONE_LEFT_ON % {**at, "how": left_in_words(s), "day": s.withdrawn_day}
    return (say.NOT_DUE if not_due else say.NONE) % at


def fmt_p(p: float | None) -> str:
    return "NA" if p is None else f"{p:.3f}"
