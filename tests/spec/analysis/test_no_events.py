"""A time-to-event outcome with no events is said, never left to look like a finding.

With no event in any group the figures are exact but empty (everyone free of the event at the end, a restricted mean
difference of 0 with an interval of 0 to 0, no hazard ratio): the report says so in a note (report, page and
``results.json``), the Cox model's reason for not being estimable names the groups in words, and the restricted mean
difference carries its own note. With no event in one group the note names that group. No number changes: the
Kaplan-Meier estimates and restricted means are checked against lifelines computed here from the same times.

The trial is the three-arm example with a time to symptom resolution a form records (``test_form_events``): a blank
date on a saved day-7 form is event-free to day 7.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from tests.spec.analysis.test_form_events import FIELD, GROUPS, OUT, PROTOCOL, REFERENCE, TREATMENT, _on, _subject
from trialwright.analysis.dataset import AnalysisData, Grouping, Screened, Subject
from trialwright.analysis.engine import analyse
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.analysis.report import ENGLISH, render_html, results_json
from trialwright.web.report_words import report_words

END = 7


def _subjects(events_in: frozenset[int]) -> list[Subject]:
    """Twenty participants, ten per arm; in an arm of ``events_in`` half resolve on days 2 to 6; everyone else is
    event-free on a saved day-7 form (so each arm is followed to day 7, where the restricted mean is taken)."""
    out = []
    for i in range(20):
        arm = i % 2
        date = _on(2 + i % 5) if arm in events_in and i // 2 % 2 == 0 else None
        out.append(_subject(i, arm, day7={FIELD: date, "symptoms.cough": 1}))
    return out


def _lifelines(subjects: list[Subject], group: str) -> tuple[float, float]:
    """Survival at the end day and the restricted mean to it, by lifelines from the times worked out by hand."""
    times, events = [], []
    for s in subjects:
        if s.group != group:
            continue
        raw = s.values["day7"][FIELD]
        day = None if raw is None else (dt.date.fromisoformat(raw) - s.randomized_on).days  # type: ignore[operator]
        times.append(END if day is None else day)
        events.append(0 if day is None else 1)
    km = KaplanMeierFitter().fit(times, events)
    return float(km.predict(END)), float(restricted_mean_survival_time(km, t=END))


def _result(events_in: frozenset[int]):  # type: ignore[no-untyped-def]
    subjects = _subjects(events_in)
    (result,) = analyse_outcome(PROTOCOL, OUT, sets_of(PROTOCOL, subjects, GROUPS))
    return subjects, result


def test_no_events_anywhere_keeps_the_numbers_and_says_why_there_is_no_hazard_ratio() -> None:
    subjects, result = _result(frozenset())
    for g in GROUPS:
        at_end, rmst = _lifelines(subjects, g)
        curve = result.extra["kaplan_meier"][g]
        assert (curve["events"], curve["at_end"]) == (0, pytest.approx(at_end)) and at_end == 1.0
        assert rmst == END
    cox = next(c for c in result.comparisons if c.primary)
    assert cox.estimate is None
    assert cox.note == f"no events in any group: neither {TREATMENT} nor {REFERENCE} had one by day {END}"
    assert cox.text() == f"not estimable ({cox.note})"
    assert "group 0" not in cox.text() and "group 1" not in cox.text()
    rmst = next(c for c in result.comparisons if not c.primary)
    # the figure is unchanged: each restricted mean is lifelines' (7 days), the difference 0, the interval 0 to 0
    assert (rmst.estimate, rmst.lower, rmst.upper, rmst.p_value) == (0.0, 0.0, 0.0, None)
    assert rmst.note.startswith(f"no events in any group by day {END}: both restricted means are the whole {END} days")


def test_no_events_in_one_arm_names_that_arm_and_the_rmst_is_lifelines() -> None:
    subjects, result = _result(frozenset({1}))  # only the treatment arm has events
    cox = next(c for c in result.comparisons if c.primary)
    assert cox.estimate is None
    assert cox.note == f"no events in {REFERENCE} by day {END}, so the hazard ratio is 0 or infinite"
    rmst = next(c for c in result.comparisons if not c.primary)
    (_, rmst_t), (_, rmst_r) = _lifelines(subjects, TREATMENT), _lifelines(subjects, REFERENCE)
    assert rmst.estimate == pytest.approx(rmst_t - rmst_r, abs=1e-12)
    assert rmst.note == (
        f"no events in {REFERENCE} by day {END}: its restricted mean is the whole {END} days, with no variance"
    )
    for g in GROUPS:
        assert result.extra["kaplan_meier"][g]["at_end"] == pytest.approx(_lifelines(subjects, g)[0], abs=1e-12)


def test_events_in_both_arms_add_no_note() -> None:
    _, result = _result(frozenset({0, 1}))
    assert all(c.estimate is not None and "no events" not in c.note for c in result.comparisons)


def _report(events_in: frozenset[int]):  # type: ignore[no-untyped-def]
    subjects = tuple(_subjects(events_in))
    data = AnalysisData("T", "1", Grouping.BY_ARM, GROUPS, subjects, Screened(20, 20, 0, 0, {}, 20, 0, 20, 1.0),
                        dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 0, "limit_over_sqrt2")  # fmt: skip
    return analyse(PROTOCOL, data, software_version="test", unblinded=True)


NO_EVENTS_NOTE = (
    f"Outcome time_to_resolution: no events in any group by day {END}. Everyone analysed was free of the event to "
    "the end, so each Kaplan-Meier curve stays flat, each restricted mean survival time is the whole follow-up (their "
    "difference 0, with no variance) and the hazard ratio is not estimable: check that the events are recorded."
)


def test_the_report_results_json_and_page_carry_the_note_in_english_and_persian() -> None:
    report = _report(frozenset())
    assert NO_EVENTS_NOTE in report.notes
    assert NO_EVENTS_NOTE in results_json(report)["notes"]
    assert NO_EVENTS_NOTE in render_html(report, {}, fragment=True, words=ENGLISH)
    persian = report_words(PROTOCOL, "fa").sentence(NO_EVENTS_NOTE)
    assert persian != NO_EVENTS_NOTE and "در هیچ گروهی رویدادی رخ نداده است" in persian and "۷" in persian


def test_an_arm_without_events_is_named_in_the_note_in_its_readers_words() -> None:
    report = _report(frozenset({1}))
    (note,) = [n for n in report.notes if "no events" in n]
    assert note.startswith(f"Outcome time_to_resolution: no events in {REFERENCE} by day {END}.")
    persian = report_words(PROTOCOL, "fa").sentence(note)  # the example declares no Persian: the arm as written
    assert "رویدادی رخ نداده است" in persian and f"در {REFERENCE} رویدادی" in persian
    assert not [n for n in _report(frozenset({0, 1})).notes if "no events" in n]


def test_nothing_changes_the_curves() -> None:
    """The survival steps are lifelines' in every case (the notes only add words)."""
    for events_in in (frozenset(), frozenset({1}), frozenset({0, 1})):
        subjects, result = _result(events_in)
        for g in GROUPS:
            mine = [s for s in subjects if s.group == g]
            times = [
                END if (raw := s.values["day7"][FIELD]) is None else (dt.date.fromisoformat(raw) - s.randomized_on).days  # type: ignore[operator]
                for s in mine
            ]
            events = [int(s.values["day7"][FIELD] is not None) for s in mine]
            km = KaplanMeierFitter().fit(times, events)
            curve = result.extra["kaplan_meier"][g]
            assert curve["times"] == list(np.asarray(km.survival_function_.index[1:], dtype=float))
            assert curve["survival"] == pytest.approx(list(km.survival_function_.iloc[1:, 0]), abs=1e-12)
