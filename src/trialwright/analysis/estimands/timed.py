"""Times: the time to an event (Kaplan-Meier, Cox, restricted mean survival time) and a duration that ends alive
or in death (Aalen-Johansen, Fine-Gray with Gray's test, cause-specific Cox)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from trialwright.analysis import no_events
from trialwright.analysis import sentences as say
from trialwright.analysis import statistics as st
from trialwright.analysis.dataset import Subject
from trialwright.analysis.estimands.common import (
    CIF_DAYS,
    METHOD,
    N_,
    Sets,
    after_death,
    cause_of,
    estimators_of,
    fmt_p,
    label_of,
    left_in_words,
)
from trialwright.analysis.methods import competing, survival
from trialwright.analysis.results import (
    Comparison,
    EventIncidence,
    Exclusion,
    IncidenceCurve,
    OutcomeResult,
    SurvivalCurve,
    pairs,
    safe,
    summarise,
)
from trialwright.protocol.estimands import (
    AdverseEventKind,
    Estimator,
    Strategy,
)
from trialwright.protocol.outcomes import Outcome

__all__ = ["duration", "time_to_event"]


# --- time to event -----------------------------------------------------------------------------------------------


def time_to_event(outcome: Outcome, sets: Sets) -> OutcomeResult:
    """Days from randomization to the event (the first serious adverse event, death, or the date a form field
    records), censored at the end of follow-up (``up_to_day``), at the data cut-off, or at withdrawal from follow-up
    (the hypothetical strategy ``protocol check`` requires). With death composite a death is the event."""
    e = outcome.estimand
    v = e.variable
    assert v.up_to_day is not None
    end = v.up_to_day
    death_counts = v.adverse_event is AdverseEventKind.DEATH or e.strategy("death") is Strategy.COMPOSITE
    competes = e.strategy("death") is Strategy.COMPETING  # status 2: died first, on the day of death
    on_treatment = e.strategy("treatment_discontinuation") is Strategy.WHILE_ON_TREATMENT
    recorded: dict[str, tuple[float, int] | str] = {}

    def observed(s: Subject) -> tuple[float, int] | None:
        if on_treatment and not s.treated:
            recorded[s.participant_id] = N_("never treated: no time on treatment to follow")
            return None
        if on_treatment and s.stopped_day is not None:
            s = replace(s, followed_days=min(x for x in (s.followed_days, s.stopped_day) if x is not None))
        if v.adverse_event is None:
            found = recorded.setdefault(
                s.participant_id, _from_form(s, v.fields[0], v.at or "", end, death_counts, competes)
            )
            return None if isinstance(found, str) else found
        days = [s.treatment_day + x.onset_day for x in s.events if x.serious and x.onset_day >= 0]
        if v.adverse_event is AdverseEventKind.SAE and days:
            first: int | None = min(days)
        else:
            first = None
        if death_counts and s.death_day is not None:
            first = s.death_day if first is None else min(first, s.death_day)
        limits = [end] + [d for d in (s.followed_days, s.withdrawn_day) if d is not None]
        censor = min(limits)
        if competes and s.death_day is not None and s.death_day <= censor and (first is None or s.death_day < first):
            return float(max(s.death_day, 0)), 2
        if first is not None and first <= censor:
            return float(max(first, 0)), 1
        if censor < 0:
            return None
        return float(censor), 0

    population = sets.of(e.population)
    groups = sets.groups
    times = {s.participant_id: observed(s) for s in population}
    excluded = tuple(
        Exclusion(s.participant_id, s.group, *_why_not_timed(s, recorded.get(s.participant_id), v.at))
        for s in population
        if times[s.participant_id] is None
    )
    in_set = {g: sum(1 for s in population if s.group == g) for g in groups}
    analysed = {g: sum(1 for s in population if s.group == g and times[s.participant_id]) for g in groups}
    if competes:
        return _with_death_competing(outcome, sets, times, observed, recorded, in_set, analysed, excluded)
    curves: dict[str, SurvivalCurve | None] = {}
    for g in groups:
        rows = [t for s in population if s.group == g and (t := times[s.participant_id]) is not None]
        if not rows:
            curves[g] = None
            continue
        km = survival.kaplan_meier([t for t, _ in rows], [d for _, d in rows])
        curves[g] = {"n": km.n, "events": km.n_events, "median": km.median, "at_end": km.at(float(end)),
                     "times": list(km.times), "survival": list(km.survival)}  # fmt: skip
    comparisons = []
    for treat, ref in pairs(groups):
        for estimator, pop, primary in estimators_of(e):
            rows2 = [(s, t) for s in sets.of(pop) if s.group in (treat, ref) and (t := observed(s)) is not None]
            comparisons.append(_tte_comparison(estimator, rows2, treat, ref, end, sets.names[pop], primary))
    return OutcomeResult(
        outcome.id,
        outcome.description,
        outcome.kind,
        v.adverse_event.value if v.adverse_event is not None else v.fields[0],
        v.kind.value,
        f"day {end}",
        outcome.registry_timepoint,
        sets.names[e.population],
        False,
        in_set,
        analysed,
        (),
        tuple(comparisons),
        {"kaplan_meier": curves, "up_to_day": end},
        excluded,
    )


def _from_form(
    s: Subject, field: str, at: str, end: int, death_counts: bool, competes: bool = False
) -> tuple[float, int] | str:
    """The time to an event whose date a form records at visit ``at``: (days, 1) for the event, (days, 0) censored,
    or why neither is known, in words. A blank date on the form means the event had not happened by the day that
    visit was held; a death first is the event when death is composite, and (days, 2) on the day of death when death
    competes (a recorded date on or before the death is the event; a death with no date competes only when the form
    was saved on the day of death with the date blank, and is otherwise listed: whether the event came first is not
    known); follow-up ends at ``end``, the data cut-off or withdrawal. A date before randomization, or a form from a
    visit held after death, is not used."""
    limit = min([end] + [d for d in (s.followed_days, s.withdrawn_day) if d is not None])
    death = s.death_day if death_counts else None
    raw = None if after_death(s, at) else s.value(at, field)
    if raw in ("not_done", "not_applicable"):
        return say.MARKED % {"variable": field, "visit": at, "mark": str(raw).replace("_", " ")}
    if raw is not None and s.randomized_on is None:
        return N_("the date of randomization is not known")
    day = None if raw is None or s.randomized_on is None else (dt.date.fromisoformat(str(raw)) - s.randomized_on).days
    if day is not None and day < 0:
        return say.BEFORE_RANDOMIZATION % {"variable": field, "visit": at, "value": raw}
    died = s.death_day if competes else None
    if died is not None and died <= limit and (day is None or died < day):
        if day is None and not _saved_on(s, at, field, died):  # nothing says the event had not happened by then
            held = s.visit_days.get(at)
            form = field.partition(".")[0]
            if held is not None and 0 <= held < died and any(k.partition(".")[0] == form for k in s.values.get(at, {})):
                return float(min(held, limit)), 0  # event-free to the visit held before the death; unknown after
            return _UnknownDeath(say.DIED_FIRST_UNKNOWN % {"day": died, "variable": field, "visit": at})
        return float(max(died, 0)), 2
    first = min((d for d in (day, death) if d is not None), default=None)
    if first is not None and first <= limit:
        return float(first), 1
    held = s.visit_days.get(at)
    form = field.partition(".")[0]
    filled = any(k.partition(".")[0] == form for k in s.values.get(at, {}))  # the form was saved, date left blank
    if day is not None or (held is not None and filled and not after_death(s, at)):
        seen = limit if day is not None else min(held or 0, limit)  # event-free at least to here
        return (float(seen), 0) if seen >= 0 else _NOT_FOLLOWED
    if held is not None and not after_death(s, at):
        return say.NO_FORM % {"form": form, "visit": at}
    return say.NOT_HELD % {"variable": field, "visit": at}


_NOT_FOLLOWED = N_("not followed for a day (randomized after the data cut-off)")


def _saved_on(s: Subject, at: str, field: str, day: int) -> bool:
    """Whether the form of ``field`` was saved at visit ``at`` held on ``day`` (the day of death: a blank date there
    says the event had not happened by the death). A form saved earlier says nothing of the days between it and the
    death, and a visit held after the death is never used."""
    form = field.partition(".")[0]
    return s.visit_days.get(at) == day and any(k.partition(".")[0] == form for k in s.values.get(at, {}))


def _why_not_timed(s: Subject, found: tuple[float, int] | str | None, at: str | None) -> tuple[str, str]:
    """Why a participant has no time to the event, and how CONSORT counts it."""
    if isinstance(found, str):
        if found.startswith("never treated"):
            return found, "untreated"
        return found, "unusable" if "not used" in found else cause_of(
            s, None if at is None else s.visit_days.get(at), False
        )
    return _NOT_FOLLOWED, "missing"


def _tte_comparison(
    estimator: Estimator,
    rows: Sequence[tuple[Subject, tuple[float, int]]],
    treat: str,
    ref: str,
    end: int,
    set_name: str,
    primary: bool,
) -> Comparison:
    label, method = label_of(treat, ref), METHOD[estimator]
    cox = estimator is Estimator.COX
    scale = "hazard ratio" if cox else say.RMST_SCALE % {"day": end}
    n = (sum(1 for s, _ in rows if s.group == treat), sum(1 for s, _ in rows if s.group == ref))
    times = [t for _, (t, _) in rows]
    events = [d for _, (_, d) in rows]
    group = [int(s.group == treat) for s, _ in rows]

    def run() -> Comparison:
        if cox:
            if (refused := no_events.hazard_ratio_refused(events, group, treat, ref, end)) is not None:
                raise ValueError(refused)
            strata = [s.stratum for s, _ in rows]
            fit = survival.cox(times, events, group, strata=strata)
            rank = survival.log_rank(times, events, group, strata=strata)
            note = f"stratified log-rank p={rank.p_value:.3f}; proportional hazards check p={fmt_p(fit.ph_p_value)}"
            return Comparison(label, method, set_name, scale, fit.hr, fit.ci_lower, fit.ci_upper, fit.p_value, n,
                              primary, note)  # fmt: skip
        r = survival.rmst_difference(times, events, group, float(end))
        return Comparison(label, method, set_name, scale, r.difference, r.ci_lower, r.ci_upper, r.p_value, n,
                          primary, no_events.rmst_note(events, group, treat, ref, end))  # fmt: skip

    return safe(method, label, set_name, scale, n, primary, run)


# --- time to event with death competing --------------------------------------------------------------------------

#: How a time to event ends for the competing-risks methods (the status ``observed`` gives): the event, or death first.
_EVENT_STATUS = {0: "censored", 1: "event", 2: "died"}


def _with_death_competing(
    outcome: Outcome,
    sets: Sets,
    times: dict[str, tuple[float, int] | None],
    observed: Callable[[Subject], tuple[float, int] | None],
    recorded: Mapping[str, tuple[float, int] | str],
    in_set: dict[str, int],
    analysed: dict[str, int],
    excluded: tuple[Exclusion, ...],
) -> OutcomeResult:
    """A time to event that a death before it prevents: the Aalen-Johansen cumulative incidence of the event by group
    (deaths neither dropped nor censored) at the duration's days up to ``up_to_day`` and at it, and between groups
    the Fine-Gray subdistribution hazard ratio with Gray's test, or the cause-specific hazard ratio (the same
    estimators as a duration's)."""
    e = outcome.estimand
    v = e.variable
    assert v.up_to_day is not None
    end = v.up_to_day
    days = sorted({d for d in CIF_DAYS if d < end} | {end})
    population = sets.of(e.population)
    curves: dict[str, EventIncidence | None] = {}
    for g in sets.groups:
        rows = [t for s in population if s.group == g and (t := times[s.participant_id]) is not None]
        if not rows or any(_died_first_unknown(recorded, s) for s in population if s.group == g):
            curves[g] = None  # deaths left out would overstate the event's incidence: no curve (the reason listed)
            continue
        cif = st.cumulative_incidence(
            [t for t, _ in rows], [_EVENT_STATUS[d] for _, d in rows], "event", ["died"], censored="censored"
        )
        curves[g] = {
            "n": cif.n,
            "events": cif.n_events,
            "died": cif.n_competing,
            "censored": cif.n_censored,
            "at": {str(d): cif.at(d) for d in days},
            "died_by": {str(d): cif.competing_at(d) for d in days},
            "times": list(cif.times),
            "cif": list(cif.cif),
            "cif_competing": list(cif.cif_competing),
        }
    comparisons = []
    for treat, ref in pairs(sets.groups):
        for estimator, pop, primary in estimators_of(e):
            rows2 = [(s, t) for s in sets.of(pop) if s.group in (treat, ref) and (t := observed(s)) is not None]
            unknown = sum(1 for s in sets.of(pop) if s.group in (treat, ref) and _died_first_unknown(recorded, s))
            comparisons.append(
                _competing_compared(
                    estimator,
                    [t for _, (t, _) in rows2],
                    [d for _, (_, d) in rows2],
                    [int(s.group == treat) for s, _ in rows2],
                    treat,
                    ref,
                    sets.names[pop],
                    primary,
                    stay=False,
                    refused=say.DEATHS_UNKNOWN % {"n": unknown} if unknown else None,
                )
            )
    return OutcomeResult(
        outcome.id,
        outcome.description,
        outcome.kind,
        v.adverse_event.value if v.adverse_event is not None else v.fields[0],
        v.kind.value,
        f"day {end}",
        outcome.registry_timepoint,
        sets.names[e.population],
        False,
        in_set,
        analysed,
        (),
        tuple(comparisons),
        {"event_incidence": curves, "days": days, "up_to_day": end},
        excluded,
    )


class _UnknownDeath(str):
    """Why a participant who died is not timed: nothing recorded says whether the event came before the death."""

    __slots__ = ()


def _died_first_unknown(recorded: Mapping[str, tuple[float, int] | str], s: Subject) -> bool:
    """Whether the participant died with nothing recorded to say whether the event came first (``_from_form``; read
    after ``observed`` has looked at them)."""
    return isinstance(recorded.get(s.participant_id), _UnknownDeath)


def _competing_compared(
    estimator: Estimator,
    times: Sequence[float],
    status: Sequence[int],
    group: Sequence[int],
    treat: str,
    ref: str,
    set_name: str,
    primary: bool,
    *,
    stay: bool,
    refused: str | None = None,
) -> Comparison:
    """The event (a stay ended alive, or a time to event's event) between two groups with death competing (status 1
    the event, 2 death, 0 censored): the Fine-Gray subdistribution hazard ratio (robust SE, as cmprsk::crr) with
    Gray's test beside it, or the cause-specific hazard ratio."""
    label, method = label_of(treat, ref), METHOD[estimator]
    fine_gray = estimator is Estimator.FINE_GRAY
    shr = "subdistribution hazard ratio of discharge alive" if stay else say.SHR_OF_EVENT
    scale = shr if fine_gray else "cause-specific hazard ratio"
    n = (sum(1 for x in group if x == 1), sum(1 for x in group if x == 0))

    def run() -> Comparison:
        if refused is not None:
            raise ValueError(refused)
        if fine_gray:
            fg = competing.fine_gray(times, status, group)
            gray = competing.gray_test(times, status, group)
            ended = (say.DISCHARGED_DIED if stay else say.EVENTS_DIED) % {"n": fg.n_events, "k": fg.n_competing}
            note = f"Gray's test p={gray.p_value:.3f}; {ended}"
            return Comparison(label, method, set_name, scale, fg.shr, fg.ci_lower, fg.ci_upper, fg.p_value, n,
                              primary, note)  # fmt: skip
        cs = competing.cause_specific_cox(times, status, group)
        return Comparison(label, method, set_name, scale, cs.hr, cs.ci_lower, cs.ci_upper, cs.p_value, n, primary)

    return safe(method, label, set_name, scale, n, primary, run)


# --- duration with death competing -------------------------------------------------------------------------------

#: How a stay's end is coded for the competing-risks methods: ended alive is the event, death competes.
_STAY_STATUS = {"censored": 0, "discharged": 1, "died": 2}


def duration(outcome: Outcome, sets: Sets) -> OutcomeResult:
    e = outcome.estimand
    variable = e.variable.fields[0]
    population = sets.of(e.population)
    groups = sets.groups
    summaries = []
    curves: dict[str, IncidenceCurve | None] = {}
    in_set = {g: sum(1 for s in population if s.group == g) for g in groups}
    analysed = {}
    excluded = [
        Exclusion(s.participant_id, s.group, _why_no_stay(s, variable), cause_of(s, None, False))
        for s in population
        if s.stay is None or s.stay.days is None
    ]
    for g in groups:
        members = [s for s in population if s.group == g]
        stays = [s.stay for s in members if s.stay is not None and s.stay.days is not None]
        analysed[g] = len(stays)
        summaries.append(summarise(g, say.STAY_END, "value", [x.days for x in stays]))
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
    comparisons = [
        _stay_compared(sets.of(pop), treat, ref, estimator, sets.names[pop], primary)
        for treat, ref in pairs(groups)
        for estimator, pop, primary in estimators_of(e)
    ]
    return OutcomeResult(
        outcome.id,
        outcome.description,
        outcome.kind,
        variable,
        e.variable.kind.value,
        say.STAY_END,
        outcome.registry_timepoint,
        sets.names[e.population],
        False,
        in_set,
        analysed,
        tuple(summaries),
        tuple(comparisons),
        {"cumulative_incidence": curves, "days": list(CIF_DAYS)},
        tuple(excluded),
    )


def _stay_compared(
    members: Sequence[Subject], treat: str, ref: str, estimator: Estimator, set_name: str, primary: bool
) -> Comparison:
    """Ended alive between two groups with death competing (``_competing_compared``)."""
    rows = [s.stay for s in members if s.group in (treat, ref) and s.stay is not None and s.stay.days is not None]
    group = [int(s.group == treat) for s in members if s.group in (treat, ref) and s.stay is not None
             and s.stay.days is not None]  # fmt: skip
    times = [x.days for x in rows if x.days is not None]
    status = [_STAY_STATUS[x.status] for x in rows]
    return _competing_compared(estimator, times, status, group, treat, ref, set_name, primary, stay=True)


def _why_no_stay(s: Subject, variable: str) -> str:
    """Why a participant's stay has no length the analysis can use, in words."""
    left = "follow_up" in s.withdrawn
    parts = {"variable": variable, "how": left_in_words(s)}
    if s.stay is None:
        return (say.STAY_NOT_RECORDED_LEFT if left else say.STAY_NOT_RECORDED) % parts
    if s.stay.status == "died":
        return (say.DIED_NO_START_LEFT if left else say.DIED_NO_START) % parts
    return (say.NO_START_LEFT if left else say.NO_START) % parts
