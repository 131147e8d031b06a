"""Blinded analyses never compare the arms' efficacy: in a protocol that lets the blinded team see safety in
unnamed groups, safety outcomes are by group while every efficacy outcome is pooled, with no comparison."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from babel.messages.pofile import read_po

from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.analysis.dataset import AnalysisData, Event, Grouping, Screened, Subject
from trialwright.analysis.engine import POOLED, analyse
from trialwright.protocol import load_protocol
from trialwright.protocol.loader import load_protocol_text
from trialwright.web.i18n import catalog_path

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol


def _subject(i: int, group: str) -> Subject:
    values = {"baseline": {"labs.crp": 100.0 + i, "labs.il6": 40.0}, "day7": {"labs.crp": 50.0 + 3 * i,
              "labs.il6": 20.0 + i}}  # fmt: skip
    events = (Event(2, 3, True, False, None, False),) if i % 3 == 0 else ()
    return Subject(f"P{i:02d}", "RAZ", "site=RAZ", group, True, group, True, (), (), False, values, events)


def test_unnamed_groups_show_safety_by_group_and_pool_efficacy() -> None:
    subjects = tuple(_subject(i, "Group A" if i % 2 else "Group B") for i in range(12))
    data = AnalysisData("T", "1", Grouping.UNNAMED_GROUPS, ("Group A", "Group B"), subjects,
                        Screened(12, 12, 0, 0, {}, 12, 0, 12, 1.0), dt.datetime(2021, 9, 1, tzinfo=dt.UTC), 0,
                        "limit_over_sqrt2")  # fmt: skip
    report = analyse(PROTOCOL, data, software_version="test", unblinded=False)
    for outcome in report.outcomes:
        if outcome.outcome_id == "sae":
            assert set(outcome.in_set) == {"Group A", "Group B"} and outcome.comparisons  # safety by group
        else:
            assert set(outcome.in_set) == {POOLED} and not outcome.comparisons, outcome.outcome_id
    assert any("efficacy outcomes pooled" in note for note in report.notes)


#: The blinded report's note, in English and in the Persian catalogue: true before the database lock and after it
#: (the blinded analysis still runs once the database is locked), it says what a blinded reader cannot see and why.
BLINDED_NOTE = (
    "Blinded: safety (SAEs, expected events), Table 1 and the flow by unnamed groups in an order fixed by a secret; "
    "efficacy outcomes pooled, so no reader of a blinded report can compare the arms' efficacy: that comparison is "
    "the unblinded analysis's, run only after the database lock."
)
BLINDED_NOTE_FA = (
    "کورشده: ایمنی (رویدادهای جدی و رویدادهای مورد انتظار)، جدول ۱ و جریان شرکت‌کنندگان بر پایه گروه‌های بی‌نام به "
    "ترتیبی که یک راز تعیین می‌کند؛ پیامدهای اثربخشی یکجا، پس هیچ خواننده‌ای از یک گزارش کورشده نمی‌تواند اثربخشی "
    "بازوها را مقایسه کند: این مقایسه کار تحلیل بدون کورسازی است که تنها پس از قفل پایگاه داده اجرا می‌شود."
)


def test_the_blinded_note_says_what_a_blinded_reader_cannot_see_before_and_after_the_lock() -> None:
    subjects = tuple(_subject(i, "Group A" if i % 2 else "Group B") for i in range(12))
    data = AnalysisData("T", "1", Grouping.UNNAMED_GROUPS, ("Group A", "Group B"), subjects,
                        Screened(12, 12, 0, 0, {}, 12, 0, 12, 1.0), dt.datetime(2021, 9, 1, tzinfo=dt.UTC), 0,
                        "limit_over_sqrt2")  # fmt: skip
    notes = analyse(PROTOCOL, data, software_version="test", unblinded=False).notes
    assert BLINDED_NOTE in notes
    assert not any("before the lock" in note for note in notes)  # untrue once the database is locked
    with catalog_path("fa").open("rb") as handle:
        fa = {m.id: m.string for m in read_po(handle, locale="fa") if m.id}
    assert fa[BLINDED_NOTE] == BLINDED_NOTE_FA


def _with_mortality(variable: dict[str, Any], summary: str, estimator: str) -> Any:
    timed = variable["kind"] == "time_to_event"
    events = [{"event": "withdrawal", "strategy": "hypothetical" if timed else "treatment_policy"}]

    def mutate(doc: Any) -> None:
        doc["outcomes"].append({
            "id": "mortality", "kind": "primary", "description": "All-cause mortality to day 28",
            "description_translations": {"fa": "مرگ از هر علت تا روز ۲۸"},
            "registry_timepoint": "Day 28", "registry_timepoint_translations": {"fa": "روز ۲۸"},
            "method_of_measurement": "Death from any cause", "method_of_measurement_translations": {"fa": "مرگ"},
            "estimand": {"population": "itt", "variable": variable, "summary": summary, "estimator": estimator,
                         "intercurrent_events": events},
        })  # fmt: skip

    return load_protocol_text(mutated_text(mutate)).protocol


@pytest.mark.parametrize(
    ("variable", "summary", "estimator"),
    [
        ({"kind": "time_to_event", "adverse_event": "death", "up_to_day": 28}, "hazard_ratio", "cox"),
        ({"kind": "binary", "adverse_event": "death", "up_to_day": 28}, "risk_difference", "newcombe"),
    ],
    ids=["time to death", "died by day 28"],
)
def test_mortality_is_efficacy_and_pooled_in_unnamed_groups_while_serious_adverse_events_stay_by_group(
    variable: dict[str, Any], summary: str, estimator: str
) -> None:
    """All-cause mortality (a variable of deaths) is the trial's efficacy answer, whether primary or not: the
    blinded report pools it (walk 6 F1: its hazard ratio by Group A and B was the unblinded one). SAEs stay safety."""
    protocol = _with_mortality(variable, summary, estimator)
    def died(i: int) -> int | None:
        return 5 + i if i % 4 == 1 else None

    subjects = tuple(
        dataclasses.replace(_subject(i, "Group A" if i % 2 else "Group B"), death_day=died(i), followed_days=28)
        for i in range(16)
    )
    data = AnalysisData("T", "1", Grouping.UNNAMED_GROUPS, ("Group A", "Group B"), subjects,
                        Screened(16, 16, 0, 0, {}, 16, 0, 16, 1.0), dt.datetime(2021, 9, 1, tzinfo=dt.UTC), 0,
                        "limit_over_sqrt2")  # fmt: skip
    report = analyse(protocol, data, software_version="test", unblinded=False)
    (mortality,) = [o for o in report.outcomes if o.outcome_id == "mortality"]
    assert set(mortality.in_set) == {POOLED} and not mortality.comparisons
    assert mortality.in_set[POOLED] == 16
    (sae,) = [o for o in report.outcomes if o.outcome_id == "sae"]
    assert set(sae.in_set) == {"Group A", "Group B"} and sae.comparisons
    unblinded = analyse(protocol, dataclasses.replace(data, grouping=Grouping.BY_ARM), software_version="test",
                        unblinded=True)  # fmt: skip
    (compared,) = [o for o in unblinded.outcomes if o.outcome_id == "mortality"]
    assert compared.comparisons and set(compared.in_set) == {"Group A", "Group B"}
