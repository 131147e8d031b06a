"""Refuse, never guess: an estimand the analysis cannot compute exactly as declared is refused by `protocol check`,
naming the outcome's path and line, instead of falling out of the report or being computed another way.

Each row: what the protocol author declared (a change to the first trial's file), the path the error names, words
the message must contain, and a word the reported line must hold.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.protocol.estimands import ESTIMATORS_FOR, SUMMARIES_FOR

# Outcomes of the first trial, by position: 0 tnf_alpha (log scale, ANCOVA), 2 sae (binary, adverse events),
# 4 lymphocyte_subsets (natural scale, ANCOVA), 8 length_of_stay (duration, death competing).


def _estimand(index: int, **changes: Any) -> Any:
    def mutate(doc: Any) -> None:
        node = doc["outcomes"][index]["estimand"]
        for key, value in changes.items():
            *parents, last = key.split("__")
            target = node
            for part in parents:
                target = target[part]
            if value is None:
                target.pop(last, None)
            else:
                target[last] = value

    return mutate


def _no_death_record(doc: Any) -> None:
    del doc["safety"]["death_record"]


def _admission_day7_with_composite_death(doc: Any) -> None:
    doc["visits"][4]["reference"] = "admission"  # day7, otherwise counted from the infusion (the treatment visit)
    doc["outcomes"][4]["estimand"]["intercurrent_events"] = [{"event": "death", "strategy": "composite", "value": 0}]


CASES = [
    (
        "a summary that does not fit the variable",
        _estimand(2, summary="difference_in_means"),
        "outcomes[2].estimand.summary",
        "difference_in_means does not summarise a binary variable",
        "summary",
    ),
    (
        "an estimator that does not estimate the summary",
        _estimand(0, estimator="newcombe"),
        "outcomes[0].estimand.estimator",
        "newcombe does not estimate a ratio_of_geometric_means",
        "estimator",
    ),
    (
        "ANCOVA without a baseline",
        _estimand(4, variable__baseline=None, variable__change_from_baseline=None),
        "outcomes[4].estimand.estimator",
        "ancova adjusts for the baseline value: declare variable.baseline",
        "estimator",
    ),
    (
        "a ratio of geometric means on the natural scale",
        _estimand(4, summary="ratio_of_geometric_means"),
        "outcomes[4].estimand.summary",
        "estimated on the log scale: set variable.scale: log",
        "summary",
    ),
    (
        "a difference in means on the log scale",
        _estimand(0, summary="difference_in_means"),
        "outcomes[0].estimand.summary",
        "on the log scale the summary is ratio_of_geometric_means",
        "summary",
    ),
    (
        "a yes/no field as a continuous variable",
        _estimand(4, variable__fields=["soc_therapy.corticosteroid"], variable__at="discharge",
                  variable__baseline=None, variable__change_from_baseline=None, estimator="t_test",
                  sensitivity=None),
        "outcomes[4].estimand.variable.fields[0]",
        "soc_therapy.corticosteroid is a boolean field; a continuous variable needs an integer or decimal field",
        "corticosteroid",
    ),
    (
        "a binary event value the field does not have",
        _estimand(4, variable={"kind": "binary", "fields": ["hospital_course.status"], "at": "discharge",
                               "event_values": ["dead"]},
                  summary="risk_difference", estimator="newcombe", sensitivity=None),
        "outcomes[4].estimand.variable.event_values[0]",
        "'dead' is not a value of hospital_course.status (discharged, died, transferred, in_hospital)",
        "dead",
    ),
    (
        "an ordinal order that leaves out a code",
        _estimand(4, variable={"kind": "ordinal", "fields": ["hospital_course.status"], "at": "discharge",
                               "order": ["died", "in_hospital", "discharged"]},
                  summary="common_odds_ratio", estimator="proportional_odds", sensitivity=None),
        "outcomes[4].estimand.variable.order",
        "order must list every code of hospital_course.status exactly once",
        "order",
    ),
    (
        "length of stay without knowing how stays end",
        _no_death_record,
        "outcomes[8].estimand.variable.kind",
        "declare safety.death_record so the analysis knows how each stay ended",
        "kind",
    ),
    (
        "a duration whose deaths are not competing",
        _estimand(8, intercurrent_events=[{"event": "death", "strategy": "treatment_policy"}]),
        "outcomes[8].estimand.intercurrent_events[0].strategy",
        "treatment_policy for death with a duration variable is not computed in this version (it takes competing)",
        "treatment_policy",
    ),
    (
        "a hypothetical strategy the engine does not compute",
        _estimand(4, intercurrent_events=[{"event": "death", "strategy": "hypothetical"}]),
        "outcomes[4].estimand.intercurrent_events[0].strategy",
        "hypothetical for death with a continuous variable is not computed in this version",
        "hypothetical",
    ),
    (
        "a principal stratum strategy",
        _estimand(4, intercurrent_events=[{"event": "treatment_discontinuation", "strategy": "principal_stratum"}]),
        "outcomes[4].estimand.intercurrent_events[0].strategy",
        "principal_stratum for treatment_discontinuation with a continuous variable is not computed",
        "principal_stratum",
    ),
    (
        "a field on an event the engine finds itself",
        _estimand(4, intercurrent_events=[{"event": "death", "strategy": "composite", "value": 3000,
                                           "field": "soc_therapy.immunomodulator"}]),
        "outcomes[4].estimand.intercurrent_events[0].field",
        "death is found in the data itself",
        "field",
    ),
    (
        "a hypothetical strategy for an event the protocol names",
        _estimand(4, intercurrent_events=[{"event": "rescue_immunomodulator", "strategy": "hypothetical",
                                           "field": "soc_therapy.immunomodulator"}]),
        "outcomes[4].estimand.intercurrent_events[0].strategy",
        "hypothetical for rescue_immunomodulator with a continuous variable is not computed in this version (it "
        "takes composite, treatment_policy)",
        "hypothetical",
    ),
    (
        "a composite event the protocol names, on a variable from the adverse events",
        _estimand(2, intercurrent_events=[{"event": "rescue_immunomodulator", "strategy": "composite",
                                           "value": "event", "field": "soc_therapy.immunomodulator"}]),
        "outcomes[2].estimand.intercurrent_events[0].strategy",
        "a variable read from the adverse events has none",
        "composite",
    ),
    (
        "a composite strategy without its value",
        _estimand(4, intercurrent_events=[{"event": "death", "strategy": "composite"}]),
        "outcomes[4].estimand.intercurrent_events[0].value",
        "a composite strategy on a continuous variable gives the event a number",
        "death",
    ),
    (
        "a composite value the field cannot hold (walk 6 F2)",
        _estimand(4, intercurrent_events=[{"event": "death", "strategy": "composite", "value": 20000}]),
        "outcomes[4].estimand.intercurrent_events[0].value",
        "20000 lies outside labs.cd3_abs's hard_limits (0 to 10000): a composite value takes the place of the "
        "field's value",
        "20000",
    ),
    (
        "a population the protocol does not define",
        _estimand(4, population="modified_itt"),
        "outcomes[4].estimand.population",
        "'modified_itt' is not one of the protocol's analysis_sets",
        "population",
    ),
    (
        "an intercurrent event the engine cannot find in the data",
        _estimand(4, intercurrent_events=[{"event": "rescue_therapy", "strategy": "treatment_policy"}]),
        "outcomes[4].estimand.intercurrent_events[0].field",
        "'rescue_therapy' is not an event the engine finds itself",
        "rescue_therapy",
    ),
    (
        "a Cox model of a duration whose end competes with death",
        _estimand(8, sensitivity=[{"estimator": "cox"}]),
        "outcomes[8].estimand.sensitivity[0].estimator",
        "cox times an event: for a duration ending in death use cause_specific_cox",
        "cox",
    ),
    (
        "a time to event that names no event",
        _estimand(4, variable={"kind": "time_to_event", "up_to_day": 28}, summary="hazard_ratio", estimator="cox",
                  sensitivity=None, intercurrent_events=None),
        "outcomes[4].estimand.variable",
        "a time-to-event variable times either an adverse_event (sae or death) or the date one form field records",
        "variable",
    ),
    (
        "a mixed model with death under the treatment policy",
        _estimand(4, estimator="mmrm", variable__visits=["day1", "day3", "day7"], sensitivity=None),
        "outcomes[4].estimand.intercurrent_events[0].strategy",
        "mmrm treats the values missing after death as missing at random, which is the hypothetical strategy",
        "death",
    ),
    (
        "an ANCOVA beside a mixed model in one estimand",
        _estimand(4, estimator="mmrm", variable__visits=["day3", "day7"], sensitivity=[{"estimator": "ancova"}],
                  intercurrent_events=[{"event": "death", "strategy": "hypothetical"}]),
        "outcomes[4].estimand.sensitivity[0].estimator",
        "ancova beside mmrm in one estimand",
        "ancova",
    ),
    (
        "a covariance for an estimator that has none",
        _estimand(4, covariance="ar1"),
        "outcomes[4].estimand.covariance",
        "covariance is the mixed model's: it applies only with the estimator mmrm",
        "covariance",
    ),
    (
        "a count of a decimal field",
        _estimand(4, variable={"kind": "count", "fields": ["labs.crp"], "at": "day7"}, summary="rate_ratio",
                  estimator="negative_binomial", sensitivity=None, intercurrent_events=None),
        "outcomes[4].estimand.variable.fields[0]",
        "labs.crp is a decimal field; a count variable needs an integer field",
        "labs.crp",
    ),
    (
        "a count whose deaths take a value that is not a whole number",
        _estimand(4, variable={"kind": "count", "fields": ["vitals.resp_rate"], "at": "day7"}, summary="rate_ratio",
                  estimator="negative_binomial", sensitivity=None,
                  intercurrent_events=[{"event": "death", "strategy": "composite", "value": 2.5}]),
        "outcomes[4].estimand.intercurrent_events[0].value",
        "a composite strategy on a count gives the event a whole number",
        "2.5",
    ),
    (
        "a mixed model without its visits",
        _estimand(4, estimator="mmrm", sensitivity=None, intercurrent_events=None),
        "outcomes[4].estimand.estimator",
        "mmrm models the values at variable.visits: declare them (every post-baseline visit the model uses, "
        "including variable.at",
        "estimator",
    ),
    (
        "a mixed model whose effect is reported at a visit it does not model (both declared: said precisely)",
        _estimand(4, estimator="mmrm", sensitivity=None, intercurrent_events=None, variable__visits=["day1", "day3"]),
        "outcomes[4].estimand.variable.at",
        "'day7' is not one of variable.visits (day1, day3): mmrm reports the effect at one of the visits it models; "
        "add day7 to variable.visits or set variable.at to one of them",
        "at: day7",
    ),
    (
        "a mixed model without a baseline",
        _estimand(4, estimator="mmrm", sensitivity=None, intercurrent_events=None, variable__visits=["day3", "day7"],
                  variable__baseline=None, variable__change_from_baseline=None),
        "outcomes[4].estimand.estimator",
        "mmrm adjusts for the baseline value: declare variable.baseline (a visit)",
        "estimator",
    ),
    (
        "a death placed against a visit counted from admission",
        _admission_day7_with_composite_death,
        "outcomes[4].estimand.intercurrent_events[0].strategy",
        "a death is placed against visit 'day7' by its planned day, which the engine knows only for visits counted "
        "from randomization or from the analysis plan's treatment visit",
        "composite",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "path", "words", "key"), CASES, ids=[c[0] for c in CASES])
def test_an_estimand_the_analysis_cannot_compute_as_declared_is_refused_at_check_time(
    case: str, mutate: Any, path: str, words: str, key: str
) -> None:
    text = mutated_text(mutate)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    matches = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert matches, f"{case}: no problem at {path} containing {words!r}; got:\n{caught.value}"
    assert matches[0].line is not None
    assert key in text.splitlines()[matches[0].line - 1], text.splitlines()[matches[0].line - 1]


def test_a_mixed_model_with_both_declared_is_not_asked_to_declare_them() -> None:
    """visits and baseline declared, at not among the visits: the one problem names variable.at; nothing asks for
    what is already there (a new user's walk was told "declare both")."""
    mutate = _estimand(4, estimator="mmrm", sensitivity=None, intercurrent_events=None, variable__visits=["day3"])
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate), source="trial.yaml")
    mine = [p for p in caught.value.problems if p.path.startswith("outcomes[4].")]
    assert [p.path for p in mine] == ["outcomes[4].estimand.variable.at"], caught.value
    assert "declare" not in mine[0].message


@pytest.mark.parametrize("name", ["IRCT20190101042197N2.yaml", "EXAMPLE-CAP-3ARM.yaml"])
def test_the_shipped_protocols_declare_estimands_the_engine_computes(name: str) -> None:
    protocol = load_protocol_text((ROOT / "protocols" / name).read_text(encoding="utf-8")).protocol
    for outcome in protocol.outcomes:
        e = outcome.estimand
        assert e.summary in SUMMARIES_FOR[e.variable.kind], outcome.id
        assert e.estimator in ESTIMATORS_FOR[e.summary], outcome.id


def test_unquoted_yes_and_no_are_the_codes_of_a_yes_no_field() -> None:
    """YAML reads `event_values: [true]` as a boolean; for a yes/no field it is the code 'True'."""

    def mutate(doc: Any) -> None:
        doc["outcomes"][4]["estimand"] = {
            "population": "itt", "summary": "risk_difference", "estimator": "newcombe",
            "variable": {"kind": "binary", "fields": ["soc_therapy.corticosteroid"], "at": "day7",
                         "event_values": [True]},
        }  # fmt: skip

    protocol = load_protocol_text(mutated_text(mutate)).protocol
    assert protocol.outcomes[4].estimand.variable.event_values == ["True"]


def test_a_binary_variable_of_a_number_field_is_refused_for_its_kind_alone() -> None:
    """A binary variable of an integer field (a walk's responder points): one problem, "is an integer field; binary
    needs choice or yes/no", and no "'1' is not a value of ... ()" naming an empty list of codes (walk 3 F4)."""

    def mutate(doc: Any) -> None:
        doc["outcomes"][4]["estimand"] = {
            "population": "itt", "summary": "risk_difference", "estimator": "newcombe",
            "variable": {"kind": "binary", "fields": ["vitals.resp_rate"], "at": "day7", "event_values": ["1"]},
        }  # fmt: skip

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate), source="trial.yaml")
    mine = [(p.path, p.message) for p in caught.value.problems if p.path.startswith("outcomes[4].")]
    assert mine == [("outcomes[4].estimand.variable.fields[0]",
                     "vitals.resp_rate is an integer field; binary needs choice or yes/no")], caught.value  # fmt: skip


def test_a_stored_text_with_a_composite_value_its_field_cannot_hold_loads_and_its_analysis_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trial stored before the rule keeps loading (its data can still be read and exported); its analysis is
    refused naming the outcome and the rule, never run with the impossible value."""
    from types import SimpleNamespace

    from trialwright.services import analysis

    text = mutated_text(_estimand(4, intercurrent_events=[{"event": "death", "strategy": "composite", "value": 20000}]))
    protocol = load_protocol_text(text, stored=True).protocol
    monkeypatch.setattr(analysis, "current_protocol", lambda engine: SimpleNamespace(protocol=protocol))
    with pytest.raises(analysis.AnalysisError) as refused:
        analysis.run_analysis(None, None)  # type: ignore[arg-type]  # refused before the database is read
    assert str(refused.value).startswith("outcomes[4].estimand.intercurrent_events[0].value: 20000 lies outside "
                                         "labs.cd3_abs's hard_limits (0 to 10000)")  # fmt: skip
