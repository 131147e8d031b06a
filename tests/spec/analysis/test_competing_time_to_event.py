"""A time to event with death as a competing event: the days to walking after hip-fracture surgery, read from a date
field on a form, where a death before walking prevents the event (it is neither the event, as composite would have
it, nor censoring).

The rule, for the form recorded at visit ``at`` and follow-up to ``up_to_day`` (``{event: death, strategy:
competing}``):

* a recorded date on or before the death and on or before the end of follow-up (``up_to_day``, the data cut-off or
  withdrawal) is the event on that day (status 1);
* a death on or before the end of follow-up with no recorded date on or before it is the competing event on the day
  of death (status 2) when the form was saved at visit ``at`` held on the day of death with the date blank (e.g. an
  end-of-follow-up visit held at the death): that says the event had not happened by then. The date is read at visit
  ``at`` only and a visit held after the death is never used, so a participant who died with no such form has no
  date and nothing says whether they walked before dying: listed as not analysed with that reason, never counted
  as dying before the event, and the comparisons of their arm are refused and its incidence not shown (without them
  the deaths would be understated and the event overstated); one whose form was saved at ``at`` on an earlier day
  with the date blank is censored on that day, as the living are (event-free to there, unknown after);
* otherwise the existing rules of a time to an event a form records: a later date is censored at the end of
  follow-up, a blank date on a saved form is censored on the day the visit was held, and a date before
  randomization, a date marked not done, a visit not held or a form not saved is listed as not analysed with the
  reason (status 0 for the censored).

``protocol check`` refuses death competing with the first serious adverse event: a death is itself a (fatal) serious
adverse event, so a reported one would be the event and an unreported one a competing event.

The numbers are checked against computations independent of the engine, on the times worked out here by hand: the
Aalen-Johansen cumulative incidence against lifelines' AalenJohansenFitter, the Fine-Gray estimate and its robust
interval against the literal term-by-term transcription of Fine & Gray (1999) that tests/spec/analysis/methods/
test_competing.py checks against R cmprsk (the score is 0 at the estimate; the sandwich variance gives the interval),
and the cause-specific hazard ratio against statsmodels' PHReg (Efron ties) with the deaths censored.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from lifelines import AalenJohansenFitter
from statsmodels.duration.hazard_regression import PHReg

from tests.conftest import ROOT
from tests.spec.analysis.methods.test_competing import _literal_fine_gray
from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis.dataset import Event, Subject
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.analysis.results import OutcomeResult
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.protocol.model import Protocol
from trialwright.protocol.outcomes import Outcome
from trialwright.web.report_words import report_words

EXAMPLE = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
REFERENCE, TREATMENT = "Placebo inhaler + standard care", "ILX 100 micrograms + standard care"
GROUPS = (REFERENCE, TREATMENT)
FIELD = "symptoms.walked_on"
DAY0 = dt.date(2025, 3, 1)
END = 28  # follow-up to day 28; the date is asked at the day-28 visit

WALKED_ON = {"id": "walked_on", "label": "Date the participant first walked", "type": "date", "required": False}
COMPETING = {"event": "death", "strategy": "competing"}
HYPOTHETICAL = {"event": "withdrawal", "strategy": "hypothetical"}
VARIABLE = {"kind": "time_to_event", "fields": [FIELD], "at": "day28", "up_to_day": END}
ESTIMAND: dict[str, Any] = {
    "population": "itt", "variable": VARIABLE, "intercurrent_events": [COMPETING, HYPOTHETICAL],
    "summary": "subdistribution_hazard_ratio", "estimator": "fine_gray",
    "sensitivity": [{"estimator": "cause_specific_cox"}],
}  # fmt: skip


def _protocol_text(**changes: Any) -> str:
    def mutate(doc: Any) -> None:
        next(f for f in doc["forms"] if f["id"] == "symptoms")["fields"].append(WALKED_ON)
        at = next(i for i, v in enumerate(doc["visits"]) if v["id"] == "day7") + 1
        doc["visits"].insert(at, {"id": "day28", "name": "Day 28", "reference": "randomization", "day": END,
                                  "window": {"before": 2, "after": 2}, "forms": ["symptoms"]})  # fmt: skip
        doc["outcomes"].append({
            "id": "time_to_walking", "kind": "secondary", "description": "Days to walking after surgery",
            "registry_timepoint": "Day 28", "method_of_measurement": "Symptoms form",
            "estimand": {**ESTIMAND, **changes},
        })  # fmt: skip

    return mutated_text(mutate, EXAMPLE)


def _loaded(**changes: Any) -> tuple[Protocol, Outcome]:
    protocol = load_protocol_text(_protocol_text(**changes)).protocol
    return protocol, next(o for o in protocol.outcomes if o.id == "time_to_walking")


def _subject(
    i: int,
    arm: int,
    *,
    day28: dict[str, Any] | None,
    held: int | None = END,
    died: int | None = None,
    withdrawn: int | None = None,
    events: tuple[Event, ...] = (),
) -> Subject:
    return Subject(
        participant_id=f"P-{i:03d}", site="NTH", stratum=f"S{i // 2 % 2 + 1}", group=GROUPS[arm], treated=True,
        treated_group=GROUPS[arm], per_protocol=True, not_per_protocol=(),
        withdrawn=("follow_up",) if withdrawn is not None else (), emergency_unblinded=False,
        values={"day28": day28} if day28 is not None else {}, death_day=died, followed_days=90,
        withdrawn_day=withdrawn, withdrawn_cause="withdrew_consent" if withdrawn is not None else None,
        visit_days={"day28": held} if held is not None else {}, randomized_on=DAY0, events=events,
    )  # fmt: skip


def _on(day: int) -> str:
    return (DAY0 + dt.timedelta(days=day)).isoformat()


def _trial() -> tuple[list[Subject], dict[str, tuple[int, int]], dict[str, str]]:
    """Eighty participants drawn at random (walking sooner in the treatment arm; a death in about three in ten, the
    day-28 visit not held when it came first), and one of each special case; with each one's (days, status) or why
    they cannot be timed, worked out here from the rule."""
    rng = np.random.default_rng(20261206)
    subjects: list[Subject] = []
    times: dict[str, tuple[int, int]] = {}
    for i in range(80):
        arm = i % 2
        walked = int(rng.integers(2, 36 if arm == 0 else 26))  # a date after day 28 is censored at day 28
        died = int(rng.integers(1, 40)) if rng.random() < 0.3 else None
        if died is not None and died <= END:  # died before day 28: the day-28 form completed on the day of death
            walked_first = walked <= died
            s = _subject(i, arm, day28={FIELD: _on(walked) if walked_first else None, "symptoms.cough": 1},
                         held=died, died=died)  # fmt: skip
            times[s.participant_id] = (walked, 1) if walked_first else (died, 2)
        else:  # alive at the day-28 visit
            s = _subject(i, arm, day28={FIELD: _on(walked), "symptoms.cough": 1}, died=died)
            times[s.participant_id] = (walked, 1) if walked <= END else (END, 0)
        subjects.append(s)
    special = [
        (_subject(80, 0, day28={FIELD: None, "symptoms.cough": 2}), (END, 0)),  # saved form, no date: censored
        (_subject(81, 1, day28={"symptoms.cough": 0}, held=25), (25, 0)),  # held on day 25: event-free to day 25
        (_subject(82, 0, day28={FIELD: None, "symptoms.cough": 2}, held=6, died=6), (6, 2)),  # died on day 6, the
        # form completed that day with no date: never walked, competing
        (_subject(83, 1, day28={FIELD: _on(9), "symptoms.cough": 1}, died=9, held=9), (9, 1)),  # walked, died the
        # same day (the visit held that day): the date on or before the death is the event
        (_subject(84, 0, day28={FIELD: _on(12), "symptoms.cough": 1}, died=30), (12, 1)),  # walked, died later
        (_subject(85, 1, day28={FIELD: None, "symptoms.cough": 1}, held=10, died=10, withdrawn=14), (10, 2)),  # died
        # before withdrawing
        (_subject(86, 0, day28={FIELD: _on(20), "symptoms.cough": 1}, withdrawn=15), (15, 0)),  # walked after
        # withdrawing: censored at the withdrawal
        (_subject(87, 1, day28=None, held=None, died=60), None),  # died after follow-up, the visit not held
    ]
    for s, t in special:
        subjects.append(s)
        if t is not None:
            times[s.participant_id] = t
    listed = {
        "P-087": "no symptoms.walked_on at day28: the visit was not held, so whether the event happened is not known",
        "P-088": "no symptoms.walked_on at day28: the visit was not held, so whether the event happened is not known",
        "P-089": f"symptoms.walked_on at day28 is {_on(-2)}, before randomization: not used",
        "P-090": "symptoms.walked_on at day28 is marked not done: whether the event happened is not known",
        "P-091": "no symptoms form at day28: whether the event happened is not known",
    }
    subjects += [
        _subject(88, 0, day28=None, held=None, withdrawn=20),  # withdrew, nothing says whether they walked
        _subject(89, 1, day28={FIELD: _on(-2), "symptoms.cough": 1}),
        _subject(90, 0, day28={FIELD: "not_done", "symptoms.cough": 1}),
        _subject(91, 1, day28={"vitals.resp_rate": 20.0}),  # visit held, the symptoms form never saved
    ]
    # the form saved on day 4 with no date, died on day 11: event-free to day 4, censored there as the living are
    late = _subject(93, 1, day28={FIELD: None, "symptoms.cough": 1}, held=4, died=11)
    subjects.append(late)
    times[late.participant_id] = (4, 0)
    return subjects, times, listed


def _analysed(**changes: Any) -> tuple[OutcomeResult, list[Subject], dict[str, tuple[int, int]], dict[str, str]]:
    protocol, outcome = _loaded(**changes)
    subjects, times, listed = _trial()
    (result,) = analyse_outcome(protocol, outcome, sets_of(protocol, subjects, GROUPS))
    return result, subjects, times, listed


def _arrays(subjects: list[Subject], times: dict[str, tuple[int, int]]) -> tuple[Any, Any, Any]:
    group = {s.participant_id: int(s.group == TREATMENT) for s in subjects}
    ids = sorted(times)
    return (
        np.array([float(times[p][0]) for p in ids]),
        np.array([times[p][1] for p in ids]),
        np.array([group[p] for p in ids]),
    )


def test_each_participant_is_an_event_a_death_first_censored_or_listed_by_the_rule() -> None:
    result, subjects, times, listed = _analysed()
    assert {x.participant_id: x.reason for x in result.excluded} == listed
    group = {s.participant_id: s.group for s in subjects}
    assert result.analysed == {g: sum(1 for p in times if group[p] == g) for g in GROUPS}
    _, status, arm = _arrays(subjects, times)
    assert (status == 2).sum() >= 8 and (status == 1).sum() >= 30 and (status == 0).sum() >= 5  # every kind present
    for g in GROUPS:
        mine = arm == int(g == TREATMENT)
        curve = result.extra["event_incidence"][g]
        assert curve is not None
        counts = (curve["events"], curve["died"], curve["censored"])
        assert counts == ((status[mine] == 1).sum(), (status[mine] == 2).sum(), (status[mine] == 0).sum())
    assert "kaplan_meier" not in result.extra  # a Kaplan-Meier curve would censor the deaths


def test_the_cumulative_incidence_by_day_is_lifelines_aalen_johansen() -> None:
    """lifelines jitters tied event times (within a day: the Aalen-Johansen estimate at the day's end does not depend
    on their order); a censoring at day t is moved to t + 0.5 so that, as in the engine, the day's events come first."""
    result, subjects, times, _ = _analysed()
    t, status, arm = _arrays(subjects, times)
    assert result.extra["days"] == [7, 14, END]
    for g in GROUPS:
        mine = arm == int(g == TREATMENT)
        durations = np.where(status[mine] == 0, t[mine] + 0.5, t[mine])
        fitter = AalenJohansenFitter(calculate_variance=False, jitter_level=1e-4, seed=7)
        with pytest.warns(Warning):  # lifelines says it jittered the tied times
            fitter.fit(durations, status[mine], event_of_interest=1)
        walked = fitter.cumulative_density_.iloc[:, 0]
        curve = result.extra["event_incidence"][g]
        assert curve is not None
        for day in result.extra["days"]:
            expected = float(walked[walked.index <= day + 0.25].iloc[-1])
            assert curve["at"][str(day)] == pytest.approx(expected, abs=1e-10), (g, day)
        died = AalenJohansenFitter(calculate_variance=False, jitter_level=1e-4, seed=7)
        with pytest.warns(Warning):
            died.fit(durations, status[mine], event_of_interest=2)
        dead = died.cumulative_density_.iloc[:, 0]
        assert curve["died_by"][str(END)] == pytest.approx(float(dead[dead.index <= END + 0.25].iloc[-1]), abs=1e-10)


def test_fine_gray_is_fine_and_grays_own_equations_on_the_times_worked_out_by_hand() -> None:
    result, subjects, times, _ = _analysed()
    t, status, arm = _arrays(subjects, times)
    fg = next(c for c in result.comparisons if c.primary)
    assert fg.label == f"{TREATMENT} vs {REFERENCE}"
    assert fg.scale == "subdistribution hazard ratio of the event"
    assert fg.n == ((arm == 1).sum(), (arm == 0).sum())
    beta = np.array([math.log(fg.estimate)])
    score, _, robust = _literal_fine_gray(t, status, arm[:, None].astype(float), beta)
    assert score == pytest.approx([0.0], abs=1e-8)
    half = 1.959963984540054 * math.sqrt(robust[0, 0])
    assert (fg.lower, fg.upper) == (
        pytest.approx(math.exp(beta[0] - half), rel=1e-6),
        pytest.approx(math.exp(beta[0] + half), rel=1e-6),
    )
    assert fg.estimate > 1  # walking sooner in the treatment arm
    assert fg.note.endswith(f"{(status == 1).sum()} had the event, {(status == 2).sum()} died before it")
    assert fg.note.startswith("Gray's test p=")
    persian = report_words(_loaded()[0], "fa")
    assert persian.sentence(fg.scale) == "نسبت خطر زیرتوزیع رویداد"
    assert persian.sentence(fg.note).endswith(
        f"{persian.digits(str((status == 1).sum()))} رویداد داشتند، {persian.digits(str((status == 2).sum()))} پیش از "
        "آن فوت کردند"
    )


def test_the_cause_specific_hazard_ratio_is_statsmodels_phreg_with_the_deaths_censored() -> None:
    result, subjects, times, _ = _analysed()
    t, status, arm = _arrays(subjects, times)
    cs = next(c for c in result.comparisons if not c.primary)
    assert cs.scale == "cause-specific hazard ratio"
    fit = PHReg(t, arm[:, None].astype(float), status=(status == 1).astype(int), ties="efron").fit()
    assert math.log(cs.estimate) == pytest.approx(fit.params[0], abs=1e-6)
    low, high = np.exp(fit.conf_int()[0])
    assert (cs.lower, cs.upper) == (pytest.approx(low, rel=1e-5), pytest.approx(high, rel=1e-5))


def test_a_death_with_nothing_recorded_of_the_event_is_listed_and_its_arms_comparisons_refused() -> None:
    """Died on day 6 with no day-28 form (the visit never held): whether they walked first is not known. Listed with
    that reason, never counted as a death first; leaving such deaths out would understate the deaths and overstate the
    event, so the comparisons of that arm are refused, saying why, and its arm's incidence is not shown."""
    protocol, outcome = _loaded()
    subjects, _, _ = _trial()
    subjects.append(_subject(92, 0, day28=None, held=None, died=6))
    (result,) = analyse_outcome(protocol, outcome, sets_of(protocol, subjects, GROUPS))
    listed = {x.participant_id: x.reason for x in result.excluded}
    assert listed["P-092"] == (
        "died on day 6 with no symptoms.walked_on recorded at day28 by then: whether the event came before the death "
        "is not known"
    )
    assert "P-093" not in listed  # censored at day 4 (the form saved then)
    assert result.comparisons and all(c.estimate is None for c in result.comparisons)
    assert all(c.note.startswith("1 deaths with nothing recorded to say whether the event came before them")
               for c in result.comparisons)  # fmt: skip
    curves = result.extra["event_incidence"]
    assert curves[GROUPS[0]] is None and curves[GROUPS[1]] is not None


def test_while_on_treatment_only_a_death_up_to_the_day_the_intervention_stopped_competes() -> None:
    """With treatment discontinuation while on treatment, follow-up ends the day the intervention stopped: a death
    after it is censored there, a death before it competes, and the never treated are listed."""
    on_treatment = {"event": "treatment_discontinuation", "strategy": "while_on_treatment"}
    protocol, outcome = _loaded(intercurrent_events=[COMPETING, HYPOTHETICAL, on_treatment])
    blank = {FIELD: None, "symptoms.cough": 1}  # the day-28 form completed with no date (never walked by then)
    stopped = [
        _subject(0, 0, day28=blank, held=15, died=15),  # stopped on day 10 (below), died on day 15: censored on day 10
        _subject(1, 1, day28=blank, held=5, died=5),  # stopped on day 10, died on day 5: competing on day 5
        _subject(2, 0, day28=blank, held=3, died=3),  # never stopped, died on day 3: competing
        _subject(3, 1, day28=blank),  # never stopped, the form saved on day 28: censored at day 28
    ]
    subjects = [replace(s, stopped_day=10) if i < 2 else s for i, s in enumerate(stopped)]
    subjects.append(replace(_subject(4, 0, day28=None, died=2), treated=False))  # never treated: listed
    (result,) = analyse_outcome(protocol, outcome, sets_of(protocol, subjects, GROUPS))
    assert [(x.participant_id, x.reason) for x in result.excluded] == [
        ("P-004", "never treated: no time on treatment to follow")
    ]
    reference, treatment = result.extra["event_incidence"][REFERENCE], result.extra["event_incidence"][TREATMENT]
    assert reference is not None and treatment is not None
    assert (reference["died"], reference["censored"], reference["times"]) == (1, 1, [3.0])
    assert (treatment["died"], treatment["censored"], treatment["times"]) == (1, 1, [5.0])


def test_the_estimand_says_death_competes_in_words() -> None:
    from trialwright.analysis.estimands.words import in_words

    protocol, outcome = _loaded()
    words = dict(in_words(protocol, outcome))
    assert words["Intercurrent events"].startswith(
        "death: a competing event: a death before the event ends follow-up on the day of death without it"
    )
    assert words["Summary"] == "the subdistribution hazard ratio of the event between the arms, death competing"


@pytest.mark.parametrize(
    ("changes", "path", "words", "key"),
    [
        ({"summary": "hazard_ratio", "estimator": "cox", "sensitivity": []}, "estimator",
         "cox with death competing is not computed in this version", "estimator"),
        ({"sensitivity": [{"estimator": "rmst"}]}, "sensitivity[0].estimator",
         "rmst with death competing is not computed in this version", "rmst"),
        ({"intercurrent_events": [{"event": "death", "strategy": "composite", "value": "event"}, HYPOTHETICAL]},
         "estimator", "fine_gray is for an end that competes with death", "estimator"),
        ({"intercurrent_events": [HYPOTHETICAL], "summary": "hazard_ratio", "estimator": "cause_specific_cox",
          "sensitivity": []},
         "estimator", "cause_specific_cox is for an end that competes with death", "estimator"),
        ({"variable": {"kind": "time_to_event", "adverse_event": "death", "up_to_day": END}},
         "intercurrent_events[0].event", "death is the variable itself here", "death"),
        ({"intercurrent_events": [{"event": "death", "strategy": "competing", "value": "event"}, HYPOTHETICAL]},
         "intercurrent_events[0].value", "only a composite strategy gives the event a value", "event"),
        # a death is itself a (fatal) serious adverse event: reported, it would be the event; not reported, competing
        ({"variable": {"kind": "time_to_event", "adverse_event": "sae", "up_to_day": END}},
         "intercurrent_events[0].strategy", "a death is itself a serious adverse event (a fatal one)", "competing"),
    ],
)  # fmt: skip
def test_protocol_check_refuses_what_it_cannot_compute_with_death_competing(
    changes: dict[str, Any], path: str, words: str, key: str
) -> None:
    text = _protocol_text(**changes)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    index = len(load_protocol_text(mutated_text(lambda d: None, EXAMPLE)).protocol.outcomes)
    full = f"outcomes[{index}].estimand.{path}"
    matches = [p for p in caught.value.problems if p.path == full and words in p.message]
    assert matches, f"no problem at {full} containing {words!r}; got:\n{caught.value}"
    assert matches[0].line is not None
    assert key in text.splitlines()[matches[0].line - 1], text.splitlines()[matches[0].line - 1]


@pytest.mark.parametrize(
    "changes",
    [{}, {"summary": "hazard_ratio", "estimator": "cause_specific_cox", "sensitivity": [{"estimator": "fine_gray"}]}],
)  # fmt: skip
def test_protocol_check_accepts_death_competing_for_a_form_date(changes: dict[str, Any]) -> None:
    _loaded(**changes)  # loads: nothing refused
