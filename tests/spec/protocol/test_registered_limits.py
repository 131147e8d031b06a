"""What the protocol promises elsewhere holds for its schedule and its eligibility rules.

A new user's walk: ``protocol check`` accepted a time to event followed to day 400 in a trial whose last visit is
on day 112, and a registered ``trial.design.maximum_age: P65Y`` beside an eligibility rule admitting ages 18 to 85.

* **The end of follow-up of a time to an event a form records** (``up_to_day``, days from randomization) is on or
  before the last scheduled visit's last day: its day plus its window's days after. Past it no form is due, so no
  date is ever recorded. Said when every scheduled visit is counted from screening, enrolment or randomization; a
  time to an adverse event (sae, death) is not bounded by the visits (safety reporting outlasts the schedule).
* **The registered ages** (``minimum_age``, ``maximum_age``) contain every age the eligibility rules admit, for each
  screening field that holds the age (demographics.age's screening sources, in its unit). Ages are in completed
  units, as registries write them: P85Y admits 85 years and 364 days.

Each refusal names the file's line, the field and the rule. A version stored before these rules keeps loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol_text

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
FIRST = ROOT / "protocols" / "IRCT20190101042197N2.yaml"

# --- the end of follow-up ----------------------------------------------------------------------------------------
# EXAMPLE-CAP-3ARM's visits are counted from randomization; a day-28 visit (window 2 days after) is added, so the
# last scheduled visit's last day is 28 + 2 = 30 (the discharge visit is an event visit, not scheduled).
LAST_DAY = 30


def _follow_up(variable: dict[str, Any], **estimand: Any) -> str:
    def mutate(doc: Any) -> None:
        next(f for f in doc["forms"] if f["id"] == "symptoms")["fields"].append(
            {"id": "walked_on", "label": "Date the participant first walked", "type": "date", "required": False}
        )
        at = next(i for i, v in enumerate(doc["visits"]) if v["id"] == "day7") + 1
        doc["visits"].insert(at, {"id": "day28", "name": "Day 28", "reference": "randomization", "day": 28,
                                  "window": {"before": 2, "after": 2}, "forms": ["symptoms"]})  # fmt: skip
        doc["outcomes"].append({
            "id": "time_to_walking", "kind": "secondary", "description": "Days to walking",
            "registry_timepoint": "Day 28", "method_of_measurement": "Symptoms form",
            "estimand": {"population": "itt", "variable": variable,
                         "intercurrent_events": [{"event": "death", "strategy": "competing"},
                                                 {"event": "withdrawal", "strategy": "hypothetical"}],
                         "summary": "subdistribution_hazard_ratio", "estimator": "fine_gray", **estimand},
        })  # fmt: skip

    return mutated_text(mutate, EXAMPLE)


def _walked(up_to_day: int) -> dict[str, Any]:
    return {"kind": "time_to_event", "fields": ["symptoms.walked_on"], "at": "day28", "up_to_day": up_to_day}


@pytest.mark.parametrize("up_to_day", [28, LAST_DAY])
def test_follow_up_to_the_last_visits_last_day_is_accepted(up_to_day: int) -> None:
    load_protocol_text(_follow_up(_walked(up_to_day)))


@pytest.mark.parametrize("up_to_day", [LAST_DAY + 1, 400])
def test_follow_up_beyond_the_last_visit_is_refused_naming_line_field_and_rule(up_to_day: int) -> None:
    text = _follow_up(_walked(up_to_day))
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    (problem,) = caught.value.problems
    path = f"outcomes[{len(load_protocol_text(_follow_up(_walked(28))).protocol.outcomes) - 1}].estimand.variable"
    assert problem.path == f"{path}.up_to_day"
    assert problem.message == (
        f"day {up_to_day} is beyond the last visit: day28 on day 28 from randomization, its window 2 days after, so "
        f"day {LAST_DAY} at the latest; nobody is followed past it, so the end of follow-up is on or before day "
        f"{LAST_DAY}"
    )
    assert problem.line is not None and f"up_to_day: {up_to_day}" in text.splitlines()[problem.line - 1]
    assert str(caught.value).startswith(f"trial.yaml:{problem.line}: {path}.up_to_day: day {up_to_day} is beyond")
    load_protocol_text(text, stored=True)  # a version stored before the rule keeps loading


def test_a_time_to_an_adverse_event_is_not_bounded_by_the_visits() -> None:
    death = {"kind": "time_to_event", "adverse_event": "death", "up_to_day": 90}
    load_protocol_text(_follow_up(death, summary="hazard_ratio", estimator="cox",
                                  intercurrent_events=[{"event": "withdrawal", "strategy": "hypothetical"}]))


# --- the registered ages -----------------------------------------------------------------------------------------
# The first trial: screening.age (an integer in years, a source of demographics.age), registered P18Y to P65Y. The
# age is compared in the unit the screening field declares (its rules' values are in it), P65Y as 780 months.


def _ages(rule: dict[str, Any], *, minimum: str = "P18Y", maximum: str = "P65Y", kind: str = "integer",
          exclusion: dict[str, Any] | None = None) -> str:  # fmt: skip
    def mutate(doc: Any) -> None:
        doc["trial"]["design"]["minimum_age"], doc["trial"]["design"]["maximum_age"] = minimum, maximum
        criterion = next(c for c in doc["eligibility"]["inclusion"] if c["rule"].get("field") == "age")
        criterion["rule"] = rule
        next(f for f in doc["eligibility"]["screening_fields"] if f["id"] == "age")["type"] = kind
        if exclusion is not None:
            doc["eligibility"]["exclusion"].append({"id": "E99", "text": "Too old", "rule": exclusion,
                                                  "translations": {"fa": "سالمند"}})

    return mutated_text(mutate, FIRST)


#: (the age rule, registered range, field type) -> the refusal's path and words, or None: accepted.
AGES = [
    ("the first trial as shipped", {"field": "age", "between": [18, 65]}, {}, None),
    ("the walk: 18-85 registered up to 65", {"field": "age", "between": [18, 85]}, {},
     ("maximum_age", "eligibility.inclusion[0] (I1) admits screening.age up to 85 years (inclusive), outside the "
                     "registered maximum_age P65Y")),
    ("registered wider than the rule", {"field": "age", "between": [20, 60]}, {}, None),
    ("below the registered minimum", {"field": "age", "between": [16, 65]}, {},
     ("minimum_age", "admits screening.age from 16 years (inclusive), outside the registered minimum_age P18Y")),
    ("an integer age below 66 is at most 65", {"all_of": [{"field": "age", "ge": 18}, {"field": "age", "lt": 66}]},
     {}, None),
    ("an integer age below 67 may be 66", {"all_of": [{"field": "age", "ge": 18}, {"field": "age", "lt": 67}]}, {},
     ("maximum_age", "admits screening.age up to 67 years (exclusive), outside the registered maximum_age P65Y")),
    ("an integer age above 17 is at least 18", {"all_of": [{"field": "age", "gt": 17}, {"field": "age", "le": 65}]},
     {}, None),
    ("a decimal age of 65.5 is 65 completed years", {"field": "age", "between": [18, 65.5]}, {"kind": "decimal"},
     None),
    ("a decimal age of 66 is not", {"field": "age", "between": [18, 66]}, {"kind": "decimal"},
     ("maximum_age", "admits screening.age up to 66 years (inclusive)")),
    ("a decimal age above 17 may be 17.5", {"all_of": [{"field": "age", "gt": 17}, {"field": "age", "le": 65}]},
     {"kind": "decimal"}, ("minimum_age", "admits screening.age from 17 years (exclusive)")),
    ("in months: P65Y is 780 months", {"field": "age", "between": [216, 790]}, {"unit": "months"},
     ("maximum_age", "admits screening.age up to 790 months (inclusive), outside the registered maximum_age P65Y")),
    ("in months, within", {"field": "age", "between": [216, 780]}, {"unit": "months"}, None),
    ("the field's own unit, not demographics.age's", {"field": "age", "between": [18, 65]},
     {"demographics_unit": "months"}, None),
    ("an exclusion sets the bound", {"field": "age", "ge": 18}, {"exclusion": {"field": "age", "gt": 85}},
     ("maximum_age", "eligibility.exclusion[15] (E99) admits screening.age up to 85 years (inclusive)")),
    ("an exclusion within the range", {"field": "age", "ge": 18}, {"exclusion": {"field": "age", "ge": 66}}, None),
    ("a bound only inside any_of is not read", {"any_of": [{"field": "age", "between": [18, 85]},
                                                            {"field": "age", "between": [18, 90]}]}, {}, None),
]  # fmt: skip


@pytest.mark.parametrize(("case", "rule", "options", "refused"), AGES, ids=[a[0] for a in AGES])
def test_the_registered_ages_contain_every_age_the_rules_admit(
    case: str, rule: dict[str, Any], options: dict[str, Any], refused: tuple[str, str] | None
) -> None:
    unit, exported = options.pop("unit", None), options.pop("demographics_unit", None)
    text = _ages(rule, **options)
    if exported is not None:  # the exports' unit (DM AGEU, the IPD's bands), not the rules'
        age = "age: {from: [demographics.age_at_enrolment, screening.age], unit: years}"
        assert age in text
        text = text.replace(age, age.replace("years", exported)).replace("age_band_width: 20", "age_band_width: 240")
        text = text.replace("age_top: 89", "age_top: 1079")
    if unit is not None:  # the screening field's own unit is the one its rules compare in
        field = "{id: age, label: Age, type: integer, unit: years,"
        assert field in text
        text = text.replace(field, field.replace("years", unit))
    if refused is None:
        load_protocol_text(text)
        return
    key, words = refused
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    (problem,) = caught.value.problems
    assert problem.path == f"trial.design.{key}" and words in problem.message, caught.value
    assert problem.message.endswith(
        "ages the eligibility rules admit are within the registered range: correct the one that is wrong"
    )
    assert problem.line is not None and f"{key}:" in text.splitlines()[problem.line - 1]
    load_protocol_text(text, stored=True)  # a version stored before the rule keeps loading
