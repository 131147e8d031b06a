"""Adverse events are classified and their reports fall due as ICH E2A and the protocol say.

Every expected figure is worked out by hand in the comment beside it, from the rules in
``shared/reference/clinical.md``: SAE to the sponsor within 24 elapsed hours of awareness; a fatal or
life-threatening SUSAR within 7 calendar days (day 0 = awareness), the complete report 8 days later;
other SUSARs within 15 calendar days. Asia/Tehran kept summer time until 2022: clocks went from
00:00 to 01:00 on 2021-03-22 (UTC+03:30 -> +04:30) and back on 2021-09-22.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trialwright.domain.safety import (
    Assessment,
    DeadlineKind,
    DeadlineState,
    SafetyInputError,
    Seriousness,
    classify,
    deadline_state,
    deadlines,
    merge_report,
    pause_state,
    safety_table,
    validate_report,
)
from trialwright.protocol import load_protocol

SETTINGS = load_protocol("protocols/IRCT20190101042197N2.yaml").protocol.safety
TEHRAN = ZoneInfo("Asia/Tehran")
NOW = dt.datetime(2021, 10, 30, 12, 0, tzinfo=dt.UTC)
UTC = dt.UTC

REACTION: dict[str, Any] = {
    "term": "Infusion related reaction",
    "expected_event": "infusion_related_reaction",
    "onset": "2021-05-01",
    "grade": 2,
    "serious": False,
    "causality": "probable",
    "action_taken": "infusion_interrupted",
    "outcome": "recovered",
    "end": "2021-05-01",
    "aware_at": "2021-05-01T10:30+04:30",
}
SAE: dict[str, Any] = {
    "term": "Anaphylaxis",
    "onset": "2021-05-01",
    "grade": 4,
    "serious": True,
    "seriousness_criteria": ["life_threatening"],
    "causality": "possible",
    "action_taken": "infusion_stopped",
    "outcome": "recovering",
    "aware_at": "2021-05-01T10:30+04:30",
}


def assess(raw: dict[str, Any]) -> Assessment:
    return validate_report(raw, SETTINGS, TEHRAN, NOW)


def problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SafetyInputError) as caught:
        assess(raw)
    return list(caught.value.problems)


# --- classification ------------------------------------------------------------------------------


@pytest.mark.parametrize("criterion", list(Seriousness))
def test_any_ich_e2a_criterion_makes_the_event_serious(criterion: Seriousness) -> None:
    death = {"outcome": "fatal", "grade": 5, "death_date": "2021-05-02", "death_cause": "x"}
    extra = death if criterion is Seriousness.DEATH else {}
    a = assess({**SAE, "seriousness_criteria": [criterion.value], **extra})
    assert classify(a, SETTINGS).serious


def test_a_non_serious_event_is_not_an_sae_and_has_no_deadline() -> None:
    a = assess(REACTION)
    c = classify(a, SETTINGS)
    assert (c.serious, c.related, c.expected, c.susar) == (False, True, True, False)
    assert deadlines([(a, c)], SETTINGS, TEHRAN) == []


@pytest.mark.parametrize(
    ("code", "related"),
    [("certain", True), ("probable", True), ("possible", True), ("unlikely", False),
     ("conditional", True), ("unassessable", True), ("not_related", False)],
)  # fmt: skip
def test_relatedness_follows_the_protocols_causality_mapping(code: str, related: bool) -> None:
    assert classify(assess({**SAE, "causality": code}), SETTINGS).related is related


@pytest.mark.parametrize(("grade", "expected"), [(1, True), (2, True), (3, False), (4, False)])
def test_an_infusion_reaction_is_expected_only_up_to_its_listed_grade(grade: int, expected: bool) -> None:
    a = assess({**REACTION, "grade": grade})
    assert classify(a, SETTINGS).expected is expected


@pytest.mark.parametrize(
    ("changes", "susar"),
    [
        ({}, True),  # serious, possible (related), not listed: a SUSAR
        ({"causality": "unlikely"}, False),  # not related
        ({"serious": False, "seriousness_criteria": []}, False),  # not serious
        ({"expected_event": "infusion_related_reaction", "grade": 2}, False),  # expected
        ({"expected_event": "infusion_related_reaction", "grade": 3}, True),  # above the listed grade
    ],
)
def test_a_susar_is_serious_related_and_unexpected(changes: dict[str, Any], susar: bool) -> None:
    assert classify(assess({**SAE, **changes}), SETTINGS).susar is susar


# --- bad input -----------------------------------------------------------------------------------


def test_an_sae_without_a_seriousness_criterion_is_refused_naming_the_field() -> None:
    assert problems({**SAE, "seriousness_criteria": []}) == [
        ("seriousness_criteria", "a serious adverse event needs at least one ICH E2A criterion")
    ]


def test_an_end_before_onset_is_refused() -> None:
    assert problems({**REACTION, "end": "2021-04-30"}) == [("end", "2021-04-30 is before the onset 2021-05-01")]


@pytest.mark.parametrize("grade", [0, 6, -1, "2.5", "severe"])
def test_a_grade_outside_the_ctcae_range_is_refused(grade: Any) -> None:
    (found,) = problems({**REACTION, "grade": grade})
    assert found[0] == "grade" and ("1-5" in found[1])


def test_every_problem_is_named_at_once() -> None:
    raw = {**SAE, "seriousness_criteria": ["hospitalized"], "causality": "maybe", "onset": "2021-13-01", "x": 1}
    fields = [f for f, _ in problems(raw)]
    assert fields == ["x", "onset", "seriousness_criteria", "causality"]


def test_a_death_needs_its_date_cause_grade_5_and_the_criterion() -> None:
    found = dict(problems({**SAE, "outcome": "fatal"}))
    assert set(found) == {"death_date", "death_cause", "seriousness_criteria", "grade"}
    assert dict(problems({**SAE, "grade": 5}))["outcome"] == "grade 5 is death; the outcome must be fatal"


def test_future_dates_and_awareness_before_onset_are_refused() -> None:
    assert problems({**REACTION, "onset": "2021-11-01", "end": None}) == [
        ("onset", "2021-11-01 is in the future (today is 2021-10-30 at the site)"),
        ("aware_at", "is before the onset 2021-11-01"),
    ]


def test_an_unlisted_expected_event_is_refused() -> None:
    assert problems({**REACTION, "expected_event": "fever"})[0][0] == "expected_event"


def test_awareness_without_an_offset_is_refused_unless_the_page_says_site_time() -> None:
    # 10:30 in Tehran on 2021-05-01 (summer time, +04:30) is 06:00 UTC.
    assert assess(REACTION).aware_at == dt.datetime(2021, 5, 1, 6, 0, tzinfo=UTC)
    naive = {**REACTION, "aware_at": "2021-05-01T10:30"}
    assert problems(naive) == [("aware_at", "2021-05-01T10:30 has no UTC offset; give the time with its offset, "
                                            "e.g. 2021-05-01T10:30+04:30")]  # fmt: skip
    typed = validate_report(naive, SETTINGS, TEHRAN, NOW, typed_on_site_clock=True)
    assert typed.aware_at == dt.datetime(2021, 5, 1, 6, 0, tzinfo=UTC)


def test_a_site_time_the_clock_skipped_or_showed_twice_is_refused() -> None:
    # Tehran's clocks went from 00:00 to 01:00 on 2021-03-22 (00:30 never happened) and from 00:00 back to
    # 23:00 on 2021-09-21 (23:30 happened twice): only an offset can say which instant was meant.
    def typed(aware_at: str) -> list[tuple[str, str]]:
        with pytest.raises(SafetyInputError) as caught:
            validate_report({**SAE, "onset": aware_at[:10], "aware_at": aware_at}, SETTINGS, TEHRAN, NOW,
                            typed_on_site_clock=True)  # fmt: skip
        return list(caught.value.problems)

    assert typed("2021-03-22T00:30") == [("aware_at", "2021-03-22T00:30 did not happen on the site's clock "
                                          "(Asia/Tehran): the clocks went forward then; give the time with its UTC "
                                          "offset")]  # fmt: skip
    assert "happened twice" in typed("2021-09-21T23:30")[0][1]


def test_a_follow_up_keeps_what_it_does_not_change() -> None:
    first = assess(REACTION)
    merged = assess(merge_report(first, {"grade": 3, "aware_at": "2021-05-02T08:00+04:30"}))
    assert (merged.term, merged.grade, merged.onset) == ("Infusion related reaction", 3, first.onset)


# --- deadlines -----------------------------------------------------------------------------------


def due(raw: dict[str, Any], tz: ZoneInfo = TEHRAN, **submitted: dt.datetime) -> dict[DeadlineKind, dt.datetime]:
    a = validate_report(raw, SETTINGS, tz, NOW)
    found = deadlines([(a, classify(a, SETTINGS))], SETTINGS, tz, {DeadlineKind(k): v for k, v in submitted.items()})
    return {d.kind: d.due_at for d in found}


def test_an_sae_is_due_24_elapsed_hours_after_awareness_across_the_spring_change() -> None:
    # Aware 2021-03-21 12:00 Tehran (+03:30) = 08:30 UTC; 24 h later is 2021-03-22 08:30 UTC, which the
    # site's clock, now +04:30, shows as 13:00.
    raw = {**SAE, "causality": "unlikely", "onset": "2021-03-21", "aware_at": "2021-03-21T12:00+03:30"}
    got = due(raw)[DeadlineKind.SAE_TO_SPONSOR]
    assert got == dt.datetime(2021, 3, 22, 8, 30, tzinfo=UTC)
    assert got.astimezone(TEHRAN).strftime("%H:%M") == "13:00"


def test_a_fatal_susar_is_due_at_the_end_of_day_7_and_its_complete_report_8_days_later() -> None:
    # Aware 2021-03-20 22:00 Tehran: day 0 = 20 March, day 7 = 27 March; its end, 23:59:59.999999 at +04:30
    # (summer time began on the 22nd), is 19:29:59.999999 UTC. Not yet sent, the complete report is due at
    # the end of 27 + 8 = 4 April, again 19:29:59.999999 UTC.
    raw = {**SAE, "onset": "2021-03-20", "aware_at": "2021-03-20T22:00+03:30"}
    got = due(raw)
    assert got[DeadlineKind.SAE_TO_SPONSOR] == dt.datetime(2021, 3, 21, 18, 30, tzinfo=UTC)
    assert got[DeadlineKind.SUSAR_INITIAL] == dt.datetime(2021, 3, 27, 19, 29, 59, 999999, tzinfo=UTC)
    assert got[DeadlineKind.SUSAR_COMPLETE] == dt.datetime(2021, 4, 4, 19, 29, 59, 999999, tzinfo=UTC)
    # Sent on 22 March at 10:00 Tehran (05:30 UTC): the complete report is due at the end of 30 March.
    sent = due(raw, susar_initial=dt.datetime(2021, 3, 22, 5, 30, tzinfo=UTC))
    assert sent[DeadlineKind.SUSAR_COMPLETE] == dt.datetime(2021, 3, 30, 19, 29, 59, 999999, tzinfo=UTC)


def test_another_susar_is_due_at_the_end_of_day_15_across_the_autumn_change() -> None:
    # Aware 2021-09-15 10:00 Tehran (+04:30); day 15 = 30 September, after the clocks went back to +03:30:
    # its end is 20:29:59.999999 UTC. A non-fatal SUSAR has no complete-report deadline.
    raw = {**SAE, "seriousness_criteria": ["hospitalisation"], "grade": 3, "onset": "2021-09-15",
           "aware_at": "2021-09-15T10:00+04:30"}  # fmt: skip
    got = due(raw)
    assert got[DeadlineKind.SUSAR_INITIAL] == dt.datetime(2021, 9, 30, 20, 29, 59, 999999, tzinfo=UTC)
    assert DeadlineKind.SUSAR_COMPLETE not in got


def test_calendar_days_follow_the_sites_own_zone() -> None:
    # The same event at a site in London, aware 2021-03-20 22:00 GMT: day 7 = 27 March, whose end is
    # 23:59:59.999999 GMT (British summer time begins on the 28th).
    raw = {**SAE, "onset": "2021-03-20", "aware_at": "2021-03-20T22:00+00:00"}
    got = due(raw, tz=ZoneInfo("Europe/London"))
    assert got[DeadlineKind.SUSAR_INITIAL] == dt.datetime(2021, 3, 27, 23, 59, 59, 999999, tzinfo=UTC)


def test_a_deadline_is_met_up_to_its_due_time_and_late_after() -> None:
    a = assess({**SAE, "causality": "unlikely"})
    (d,) = deadlines([(a, classify(a, SETTINGS))], SETTINGS, TEHRAN)
    second = dt.timedelta(seconds=1)
    assert deadline_state(d, None, d.due_at) is DeadlineState.PENDING
    assert deadline_state(d, None, d.due_at + second) is DeadlineState.OVERDUE
    assert deadline_state(d, d.due_at, d.due_at + second) is DeadlineState.MET
    assert deadline_state(d, d.due_at + second, d.due_at + second) is DeadlineState.LATE


def test_a_clock_starts_when_a_follow_up_makes_the_event_serious_then_a_susar() -> None:
    first = assess({**REACTION, "grade": 2})  # expected, not serious
    second = assess(merge_report(first, {"grade": 3, "serious": True, "seriousness_criteria": ["hospitalisation"],
                                         "aware_at": "2021-05-03T09:00+04:30"}))  # fmt: skip
    history = [(first, classify(first, SETTINGS)), (second, classify(second, SETTINGS))]
    got = {d.kind: d for d in deadlines(history, SETTINGS, TEHRAN)}
    # 2021-05-03 09:00 Tehran (+04:30) = 04:30 UTC; + 24 h; day 15 = 18 May, end at 19:29:59.999999 UTC.
    assert got[DeadlineKind.SAE_TO_SPONSOR].due_at == dt.datetime(2021, 5, 4, 4, 30, tzinfo=UTC)
    assert got[DeadlineKind.SUSAR_INITIAL].due_at == dt.datetime(2021, 5, 18, 19, 29, 59, 999999, tzinfo=UTC)


def test_a_susar_that_becomes_life_threatening_keeps_the_earlier_deadline() -> None:
    # A SUSAR known on 1 May (15 days: end of 16 May); life-threatening from 12 May (7 days: end of 19 May).
    # The earlier, 16 May, stands; the complete report counts 8 days from it (24 May).
    first = assess({**SAE, "seriousness_criteria": ["hospitalisation"], "grade": 3})
    later = assess(merge_report(first, {"seriousness_criteria": ["life_threatening"], "grade": 4,
                                        "aware_at": "2021-05-12T09:00+04:30"}))  # fmt: skip
    got = {d.kind: d.due_at for d in deadlines(
        [(first, classify(first, SETTINGS)), (later, classify(later, SETTINGS))], SETTINGS, TEHRAN)}  # fmt: skip
    assert got[DeadlineKind.SUSAR_INITIAL] == dt.datetime(2021, 5, 16, 19, 29, 59, 999999, tzinfo=UTC)
    assert got[DeadlineKind.SUSAR_COMPLETE] == dt.datetime(2021, 5, 24, 19, 29, 59, 999999, tzinfo=UTC)


@given(
    aware=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 12, 31)),  # noqa: DTZ001
    zone=st.sampled_from(["Asia/Tehran", "Europe/London", "America/New_York", "Australia/Lord_Howe", "UTC"]),
)
@example(aware=dt.datetime(2001, 3, 14, 12), zone="Asia/Tehran")  # noqa: DTZ001 - due 21 March; 22 March has no 00:00
def test_a_calendar_day_deadline_ends_at_local_midnight_of_its_day(aware: dt.datetime, zone: str) -> None:
    tz = ZoneInfo(zone)
    start = aware.replace(tzinfo=tz).astimezone(UTC)
    raw = {**SAE, "onset": start.astimezone(tz).date().isoformat(), "aware_at": start.isoformat()}
    a = validate_report(raw, SETTINGS, tz, start + dt.timedelta(days=1))
    (sae, susar, _) = deadlines([(a, classify(a, SETTINGS))], SETTINGS, tz)
    assert sae.due_at - start == dt.timedelta(hours=24)
    local = susar.due_at.astimezone(tz)
    after = (susar.due_at + dt.timedelta(microseconds=1)).astimezone(tz)
    assert local.date() == start.astimezone(tz).date() + dt.timedelta(days=7)
    assert after.date() == local.date() + dt.timedelta(days=1)
    # The next instant is the next day's first: its midnight, or where summer time starts at midnight (Tehran
    # until 2022) and 00:00 does not exist on the site's clock, the time the clock jumps to.
    wall = dt.datetime.combine(after.date(), dt.time(0))
    midnight_exists = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
    assert after.time() == dt.time(0) if midnight_exists else dt.time(0) < after.time() <= dt.time(1)


# --- tables and the pause ------------------------------------------------------------------------


def test_the_safety_table_counts_participants_not_events() -> None:
    reaction, sae = assess(REACTION), assess(SAE)
    c_reaction, c_sae = classify(reaction, SETTINGS), classify(sae, SETTINGS)
    events = [("P1", reaction, c_reaction), ("P1", sae, c_sae), ("P2", reaction, c_reaction), ("P9", sae, c_sae)]
    rows = {r.label: r for r in safety_table(events, {"P1": "A", "P2": "B", "P3": "B"}, ("A", "B"))}
    # P9 is outside the denominator; A = {P1}, B = {P2, P3}.
    assert rows["Any adverse event"].counts == {"A": 1, "B": 1}
    assert rows["Any serious adverse event"].counts == {"A": 1, "B": 0}
    assert rows["SAE: life threatening"].counts == {"A": 1, "B": 0}
    assert rows["Worst grade 4"].counts == {"A": 1, "B": 0} and rows["Worst grade 2"].counts == {"A": 0, "B": 1}
    assert rows["Related SAE"].counts == {"A": 1, "B": 0} and rows["SUSAR"].counts == {"A": 1, "B": 0}
    assert rows["Any adverse event"].cell("B") == "1 (50%)"


def test_the_pause_holds_after_the_threshold_until_the_dsmb_resumes() -> None:
    t = [dt.datetime(2021, 5, d, tzinfo=UTC) for d in range(1, 10)]
    assert not pause_state([], [], 1).active
    assert pause_state([t[1]], [], 1).active and pause_state([t[1]], [], 1).since == t[1]
    assert not pause_state([t[1]], [(t[2], "resume")], 1).active
    assert pause_state([t[1], t[3]], [(t[2], "resume")], 1).active  # a new related SAE after resuming
    assert not pause_state([t[1]], [], 2).active
    assert pause_state([t[1]], [(t[2], "pause")], 2).active  # the DSMB may pause by itself
    stopped = pause_state([], [(t[2], "stop"), (t[3], "resume")], 1)
    assert stopped.active and stopped.stopped
    assert not pause_state([t[1]], [], None).active  # no rule in the protocol
