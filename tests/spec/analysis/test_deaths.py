"""A death reaches the analysis from every place the trial records it, and the earliest date wins: a fatal adverse
event, the protocol's death record (the hospital course ending in death), and every vital-status field the
protocol declares (here a follow-up call's "vital status: dead" with its date). A vital-status declaration that
names no field, a code the field does not have, or a date on another form is refused by `protocol check`.

Each row: what the participant's forms hold (visit -> form.field -> value), the fatal adverse event's day if any,
and the day of death from randomization the analysis must take (None: alive).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.services.analysis import _death_day

RANDOMIZED = dt.date(2024, 3, 1)


def _with_follow_up_call(doc: Any) -> None:
    doc.pop("languages", None)  # English only: the texts added here carry no Persian
    doc["forms"].append(
        {
            "id": "followup_call",
            "name": "Follow-up call",
            "fields": [
                {"id": "vital", "label": "Vital status", "type": "choice",
                 "choices": [{"code": "alive", "label": "Alive"}, {"code": "dead", "label": "Dead"}]},
                {"id": "died_on", "label": "Date of death", "type": "date", "required": False},
            ],
        }
    )  # fmt: skip
    doc["safety"]["vital_status"] = [
        {"field": "followup_call.vital", "died_values": ["dead"], "date_field": "followup_call.died_on"}
    ]


PROTOCOL = load_protocol_text(mutated_text(_with_follow_up_call)).protocol

CASES = [
    ("a fatal adverse event alone", {}, 5, 5),
    (
        "the hospital course ends in death before the adverse event's date",
        {"discharge": {"hospital_course.status": "died", "hospital_course.ended_on": "2024-03-04"}},
        5,
        3,
    ),
    (
        "a follow-up call says dead, nothing else does",
        {"discharge": {"followup_call.vital": "dead", "followup_call.died_on": "2024-03-10"}},
        None,
        9,
    ),
    ("a follow-up call says alive", {"discharge": {"followup_call.vital": "alive"}}, None, None),
    (
        "a hospital course saying died at another visit than the death record's is not the death record",
        {"day7": {"hospital_course.status": "died", "hospital_course.ended_on": "2024-03-04"}},
        None,
        None,
    ),
    (
        "the earliest of three sources",
        {
            "discharge": {"hospital_course.status": "died", "hospital_course.ended_on": "2024-03-20",
                          "followup_call.vital": "dead", "followup_call.died_on": "2024-03-12"},
        },
        30,
        11,
    ),
]


@pytest.mark.parametrize(("case", "forms", "adverse_event_day", "day"), CASES, ids=[c[0] for c in CASES])
def test_the_death_day_is_the_earliest_any_record_gives(
    case: str, forms: dict[str, dict[str, Any]], adverse_event_day: int | None, day: int | None
) -> None:
    assert _death_day(PROTOCOL, forms, RANDOMIZED, adverse_event_day) == day, case


@pytest.mark.parametrize(
    ("declared", "path", "words"),
    [
        ({"field": "followup_call.vitals", "died_values": ["dead"], "date_field": "followup_call.died_on"},
         "safety.vital_status[0].field", "form 'followup_call' has no field 'vitals'"),
        ({"field": "followup_call.vital", "died_values": ["deceased"], "date_field": "followup_call.died_on"},
         "safety.vital_status[0].died_values[0]", "'deceased' is not a value of followup_call.vital (alive, dead)"),
        ({"field": "followup_call.vital", "died_values": ["dead"], "date_field": "hospital_course.ended_on"},
         "safety.vital_status[0].date_field", "the date of death is on the same form as the field"),
        ({"field": "followup_call.vital", "died_values": ["dead"], "date_field": "followup_call.vital"},
         "safety.vital_status[0].date_field", "followup_call.vital is a choice field; this needs date"),
    ],
)  # fmt: skip
def test_a_vital_status_the_analysis_cannot_read_is_refused(declared: dict[str, Any], path: str, words: str) -> None:
    def mutate(doc: Any) -> None:
        _with_follow_up_call(doc)
        doc["safety"]["vital_status"] = [declared]

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate), source="trial.yaml")
    assert any(p.path == path and words in p.message for p in caught.value.problems), str(caught.value)
