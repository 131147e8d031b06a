"""A broken protocol file fails with every problem named by its path and line; no traceback.

Each row: what is broken, the path the error must name, words the message must contain, and the key
the reported line must hold.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol_text


def _set(path: list[Any], value: Any) -> Any:
    def mutate(doc: Any) -> None:
        node = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Any:
    def mutate(doc: Any) -> None:
        node = doc
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


def _add_factor(doc: Any) -> None:
    doc["randomization"]["stratify_by"].append({"id": "age_band", "field": "agee", "cut_points": [50]})


def _death_date_as_datetime(doc: Any) -> None:
    form = next(f for f in doc["forms"] if f["id"] == doc["safety"]["death_record"]["form"])
    next(f for f in form["fields"] if f["id"] == doc["safety"]["death_record"]["date_field"])["type"] = "datetime"


CASES = [
    (
        "a list key written with nothing after it (YAML's null), said in words, not pydantic's",
        _set(["outcomes", 0, "estimand", "intercurrent_events"], None),
        "outcomes[0].estimand.intercurrent_events",
        "is empty (the key has no value): write a list after it, or leave the key out",
        "intercurrent_events",
    ),
    (
        "an age that is not an ISO 8601 duration",
        _set(["trial", "design", "minimum_age"], "18 years"),
        "trial.design.minimum_age",
        "is not an ISO 8601 duration",
        "minimum_age",
    ),
    (
        "a planned length without an amount",
        _set(["trial", "design", "participation_length"], "PT"),
        "trial.design.participation_length",
        "names at least one amount",
        "participation_length",
    ),
    (
        "sex of participants outside C66732",
        _set(["trial", "design", "sex"], "ALL"),
        "trial.design.sex",
        "BOTH",
        "sex",
    ),
    ("arm ratio 0", _set(["arms", 1, "ratio"], 0), "arms[1].ratio", "must be a whole number >= 1", "ratio"),
    ("arm ratio 1.5", _set(["arms", 0, "ratio"], 1.5), "arms[0].ratio", "whole number", "ratio"),
    (
        "criterion naming an unknown field",
        _set(["eligibility", "inclusion", 0, "rule", "field"], "agee"),
        "eligibility.inclusion[0].rule",
        "unknown screening field 'agee'",
        "rule",
    ),
    (
        "overlapping visit windows",
        _set(["visits", 4, "window", "before"], 4),
        "visits[4].window",
        "overlaps visit 'day3'",
        "window",
    ),
    (
        "derived decimal field without decimals (no default places)",
        _delete(["forms", 2, "fields", 7, "decimals"]),
        "forms[2].fields[7]",
        "a derived decimal field needs decimals",
        "id",
    ),
    (
        "a field named as a column every form's export table begins with (a duplicate column)",
        _set(["forms", 2, "fields", 7, "id"], "visit_date"),
        "forms[2].fields[7]",
        "'visit_date' is a column every form's table in the exports begins with",
        "id",
    ),
    (
        "a field named site",
        _set(["forms", 1, "fields", 0, "id"], "site"),
        "forms[1].fields[0]",
        "'site' is a column every form's table in the exports begins with",
        "id",
    ),
    (
        "the date of death recorded as a date-time (its UTC day is not the site's day)",
        _death_date_as_datetime,
        "safety.death_record.date_field",
        "hospital_course.ended_on is a datetime field; the date of death is a date field",
        "date_field",
    ),
    ("unknown key", _set(["arms", 0, "rato"], 1), "arms[0].rato", "unknown key 'rato' (did you mean 'ratio'?)", "rato"),
    # A key of another section is unknown here, and the hint is a key of this section, never the key itself (walk 3 F3:
    # "unknown key 'translations' (did you mean 'translations'?)").
    (
        "a key of another section",
        _set(["outcomes", 0, "translations"], {"fa": "x"}),
        "outcomes[0].translations",
        "unknown key 'translations' here (did you mean 'description_translations'?)",
        "translations",
    ),
    (
        "a key of another section, its name close to one of this section's",
        _set(["analysis_sets", 0, "description"], "the randomized"),
        "analysis_sets[0].description",
        "unknown key 'description' here (did you mean 'definition'?)",
        "description",
    ),
    ("missing section", _delete(["safety"]), "safety", "is required but missing", None),
    ("wrong type", _set(["sample_size", "target"], "thirty"), "sample_size.target", "valid integer", "target"),
    (
        "block size not a multiple of the ratio sum",
        _set(["randomization", "block_sizes"], [3, 4]),
        "randomization.block_sizes[0]",
        "not a multiple of the ratio sum 2",
        "- 3",
    ),
    (
        "outcome timepoint without a visit",
        _set(["outcomes", 0, "estimand", "variable", "at"], "day9"),
        "outcomes[0].estimand.variable.at",
        "has no visit",
        "day9",
    ),
    (
        "outcome at a visit that does not collect its form",
        _set(["outcomes", 0, "estimand", "variable", "at"], "day1"),
        "outcomes[0].estimand.variable.at",
        "does not collect form 'labs'",
        "day1",
    ),
    (
        "stratum naming an unknown field",
        _add_factor,
        "randomization.stratify_by[1].field",
        "unknown screening field 'agee'",
        None,
    ),
    (
        "rule with two operators",
        _set(["eligibility", "inclusion", 0, "rule"], {"field": "age", "lt": 65, "gt": 18}),
        "eligibility.inclusion[0].rule",
        "exactly one of lt, le, gt, ge, eq, ne, between, is, in",
        "rule",
    ),
    (
        "per-arm targets not adding up",
        _set(["sample_size", "per_arm"], {"EXO": 15, "PBO": 14}),
        "sample_size.per_arm",
        "add up to 29, not the target 30",
        "per_arm",
    ),
    (
        "unknown derivation",
        _set(["forms", 2, "fields", 8, "derived", "name"], "pf_ratoi"),
        "forms[2].fields[8].derived",
        "unknown derivation 'pf_ratoi'",
        "derived",
    ),
    (
        "PRIEST without its age bands",
        _set(["forms", 1, "fields", 14, "derived", "parameters"], {}),
        "forms[1].fields[14].derived",
        "priest_band: missing parameters age_bands",
        "derived",
    ),
    (
        "a parameter the derivation does not take",
        _set(["forms", 1, "fields", 13, "derived", "parameters", "age_band"], [[16, 49, 0]]),
        "forms[1].fields[13].derived",
        "unknown parameters age_band (takes age_bands)",
        "derived",
    ),
    (
        "Table 1 naming an unknown field",
        _set(["analysis_plan", "baseline_table", 0], "demographics.agee"),
        "analysis_plan.baseline_table[0]",
        "form 'demographics' has no field 'agee'",
        "agee",
    ),
    (
        "a per-protocol exclusion that is not yes/no",
        _set(["analysis_plan", "per_protocol", "exclude_when", 0], "administration.volume"),
        "analysis_plan.per_protocol.exclude_when[0]",
        "administration.volume is a decimal field; this needs boolean",
        "administration.volume",
    ),
    (
        "a per-protocol exclusion read from an integer field (walk 4: 'is a integer field')",
        _set(["analysis_plan", "per_protocol", "exclude_when", 0], "vitals.pulse"),
        "analysis_plan.per_protocol.exclude_when[0]",
        "vitals.pulse is an integer field; this needs boolean",
        "vitals.pulse",
    ),
    (
        "treatment received read from a field that is not yes/no or a date",
        _set(["analysis_plan", "treatment", "given_field"], "volume"),
        "analysis_plan.treatment.given_field",
        "administration.volume is a decimal field; this needs boolean or date or datetime",
        "treatment",
    ),
    (
        "the administration's end read from a field that is not a date-time (SDTM EXENDTC is never inferred)",
        _set(["analysis_plan", "treatment", "end_field"], "volume"),
        "analysis_plan.treatment.end_field",
        "administration.volume is a decimal field; this needs datetime",
        "treatment",
    ),
    (
        "the dose given read from a field that is not a number (SDTM EXDOSE is never inferred)",
        _set(["analysis_plan", "treatment", "dose_field"], "started_at"),
        "analysis_plan.treatment.dose_field",
        "administration.started_at is a datetime field; this needs decimal or integer",
        "treatment",
    ),
    (
        "treatment recorded on a form its visit does not collect",
        _set(["analysis_plan", "treatment", "form"], "labs"),
        "analysis_plan.treatment.form",
        "visit 'infusion' does not collect form 'labs'",
        "treatment",
    ),
    ("invalid time zone", _set(["sites", 0, "timezone"], "Asia/Ahvaz"), "sites[0].timezone", "IANA", "timezone"),
    (
        "invalid ICD-10 code",
        _set(["trial", "conditions", 0, "icd10"], "80J"),
        "trial.conditions[0].icd10",
        "ICD-10",
        "icd10",
    ),
    (
        "visit naming an unknown form",
        _set(["visits", 2, "forms"], ["vitals", "lab"]),
        "visits[2].forms[1]",
        "unknown form 'lab'",
        "- lab",
    ),
    (
        "soft limits outside hard limits",
        _set(["forms", 1, "fields", 1, "soft_limits", "max"], 99),
        "forms[1].fields[1]",
        "soft_limits must lie within hard_limits",
        None,
    ),
    (
        "a normal range whose upper end is above the hard limits (CRP: hard limits 0 to 600 mg/L)",
        _set(["forms", 3, "fields", 5, "normal_range"], {"max": 700}),
        "forms[3].fields[5]",
        "normal_range must lie within hard_limits (min 0, max 600): its max (700) is a value the field refuses",
        None,
    ),
    (
        "a normal range whose lower end is below the hard limits",
        _set(["forms", 3, "fields", 5, "normal_range"], {"min": -1, "max": 5}),
        "forms[3].fields[5]",
        "normal_range must lie within hard_limits (min 0, max 600): its min (-1) is a value the field refuses",
        None,
    ),
    (
        "a normal range with both ends beyond the hard limits",
        _set(["forms", 3, "fields", 5, "normal_range"], {"min": 601, "max": 900}),
        "forms[3].fields[5]",
        "its min (601) and max (900) are values the field refuses",
        None,
    ),
    (
        "a normal range whose low end is above its high end",
        _set(["forms", 3, "fields", 5, "normal_range"], {"min": 10, "max": 5}),
        "forms[3].fields[5].normal_range",
        "min (10) must not be above max (5)",
        "normal_range",
    ),
    (
        "a normal range with neither end",
        _set(["forms", 3, "fields", 5, "normal_range"], {}),
        "forms[3].fields[5]",
        "normal_range declares neither min nor max",
        None,
    ),
    (
        "an alternative unit listed twice (the first factor would win)",
        _set(["forms", 3, "fields", 5, "alternative_units"],
             [{"unit": "mg/dL", "factor": 10}, {"unit": "mg/dL", "factor": 1}]),
        "forms[3].fields[5]",
        "alternative_units: 'mg/dL' is listed twice",
        None,
    ),
    (
        "an alternative unit spelt as the canonical unit (its conversion would never apply)",
        _set(["forms", 3, "fields", 5, "alternative_units"], [{"unit": "mg/L", "factor": 2}]),
        "forms[3].fields[5]",
        "alternative_units: 'mg/L' is the canonical unit itself",
        None,
    ),
    (
        "a screening field's alternative unit listed twice",
        _set(["eligibility", "screening_fields", 5, "alternative_units"],
             [{"unit": "%", "factor": 0.01}, {"unit": "%", "factor": 1}]),
        "eligibility.screening_fields[5]",
        "alternative_units: '%' is listed twice",
        None,
    ),
    (
        "an age to band in the shared data that is not one of demographics.age's fields, whose unit the bands are in "
        "(a new user's walk: ages in months banded as years)",
        _set(["deidentification", "age_field"], "vitals.resp_rate"),
        "deidentification.age_field",
        "vitals.resp_rate is not one of demographics.age's fields (from), which declare the age's unit",
        "age_field",
    ),
    (
        "an age in months banded by the default width, which is in years",
        lambda doc: (doc["demographics"]["age"].__setitem__("unit", "months"),
                     doc["deidentification"].pop("age_band_width")),
        "deidentification.age_band_width",
        "the age is in months (demographics.age.unit): state age_band_width in months; its default is in years",
        None,
    ),
    (
        "bare codes as a form field's choices (walk 5): the rule said, not pydantic's 'a valid dictionary or instance "
        "of Choice'; a screening field's choices may be bare codes, a form field's need the label staff see",
        _set(["forms", 0, "fields", 3, "choices"], ["intracapsular", "extracapsular"]),
        "forms[0].fields[3].choices[1]",
        "a form field's choice is {code, label}: write - {code: extracapsular, label: ...} (the label is what staff "
        "see on the form; only a screening field's choices may be bare codes)",
        "extracapsular",
    ),
]


@pytest.mark.parametrize(("broken", "mutate", "path", "words", "key"), CASES, ids=[c[0] for c in CASES])
def test_broken_copy_fails_naming_path_and_line(
    broken: str, mutate: Any, path: str, words: str, key: str | None
) -> None:
    text = mutated_text(mutate)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="broken.yaml")
    # The reported line holds the offending key, or the list item itself.
    matches = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert matches, f"no problem at {path} containing {words!r}; got:\n{caught.value}"
    problem = matches[0]
    assert problem.line is not None
    if key is not None:
        assert key in text.splitlines()[problem.line - 1], (problem, text.splitlines()[problem.line - 1])
    assert f"broken.yaml:{problem.line}: {path}: " in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    def two_faults(doc: Any) -> None:
        doc["arms"][0]["ratio"] = 0
        doc["arms"][1]["colour"] = "blue"

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(two_faults))
    paths = {p.path for p in caught.value.problems}
    assert {"arms[0].ratio", "arms[1].colour"} <= paths


def test_malformed_yaml_names_the_line() -> None:
    text = "format: 1\ntrial:\n  ids: [a, b\nsites: []\n"
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="bad.yaml")
    (problem,) = caught.value.problems
    assert problem.message.startswith("malformed YAML") and problem.line is not None
    assert str(caught.value).startswith(f"bad.yaml:{problem.line}: malformed YAML")


def test_duplicate_yaml_keys_are_refused() -> None:
    with pytest.raises(ProtocolError, match="malformed YAML"):
        load_protocol_text("format: 1\nformat: 1\n")


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ProtocolError, match="must be a YAML mapping"):
        load_protocol_text("- just\n- a list\n")


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"all_of": []}, "all_of needs at least one rule"),
        ({"field": "age"}, "found: none"),
        ({"lt": 3}, "needs a field"),
        ({"field": "age", "between": [65, 18]}, "lo <= hi"),
        ({"all_of": [{"field": "age", "lt": 3}], "field": "age"}, "exactly one form"),
    ],
)
def test_malformed_rules(rule: dict[str, Any], words: str) -> None:
    text = mutated_text(_set(["eligibility", "inclusion", 0, "rule"], rule))
    with pytest.raises(ProtocolError, match=words):
        load_protocol_text(text)


def test_a_minimum_age_above_the_maximum_is_refused() -> None:
    def crossed(doc: Any) -> None:
        doc["trial"]["design"]["minimum_age"] = "P70Y"

    with pytest.raises(ProtocolError, match="minimum_age P70Y is above maximum_age P65Y"):
        load_protocol_text(mutated_text(crossed))
