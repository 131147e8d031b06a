"""Refuse, never guess: an outcome the analysis cannot compute exactly as declared is refused by `protocol check`,
naming the outcome's path and line, instead of falling out of the report or being computed another way.

Each row: what the protocol author declared (a change to the first trial's file), the path the error names,
words the message must contain, and the key (or list item) the reported line must hold.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.protocol.outcomes import METHODS_FOR, AnalysisMethod, Measure

# Outcomes of the first trial, by position: 0 tnf_alpha (ancova_log, log scale), 2 sae (events),
# 4 lymphocyte_subsets (ancova), 8 length_of_stay (duration).


def _outcome(index: int, **changes: Any) -> Any:
    def mutate(doc: Any) -> None:
        for key, value in changes.items():
            if value is None:
                doc["outcomes"][index].pop(key, None)
            else:
                doc["outcomes"][index][key] = value

    return mutate


def _no_death_record(doc: Any) -> None:
    del doc["safety"]["death_record"]


def _vital_status_form(doc: Any) -> None:
    """A yes/no field declared as the variable of a continuous outcome."""
    doc["outcomes"][4]["variables"] = ["soc_therapy.corticosteroid"]
    doc["outcomes"][4]["timepoints"] = ["discharge"]
    doc["outcomes"][4].pop("baseline")
    doc["outcomes"][4]["measure"] = "value_at"
    doc["outcomes"][4]["analysis"] = ["t_test"]


CASES = [
    (
        "time to event: no estimator yet",
        _outcome(4, measure="time_to_event"),
        "outcomes[4].measure",
        "time_to_event outcomes have no estimator in this version",
        "measure",
    ),
    (
        "a binary outcome from a form field counted as participants with an event",
        _outcome(4, measure="participants_with_event", baseline=None, analysis=["newcombe_fisher"]),
        "outcomes[4].variables",
        "a binary outcome read from a form field has no estimator in this version",
        "variables",
    ),
    (
        "an event the analysis cannot count",
        _outcome(2, event="infusion_reaction"),
        "outcomes[2].event",
        "'infusion_reaction' is not an event the analysis can count (known: death, sae)",
        "event",
    ),
    (
        "ANCOVA without a baseline",
        _outcome(4, measure="value_at", baseline=None),
        "outcomes[4].analysis[0]",
        "ancova adjusts for the baseline value: declare baseline (a visit), or declare t_test",
        "analysis",
    ),
    (
        "a method that does not fit the measure",
        _outcome(2, analysis=["ancova"]),
        "outcomes[2].analysis[0]",
        "ancova does not analyse a participants_with_event outcome (it takes newcombe_fisher)",
        "ancova",
    ),
    (
        "a t-test of a change from baseline",
        _outcome(4, analysis=["t_test"]),
        "outcomes[4].analysis[0]",
        "t_test does not analyse a change_from_baseline outcome",
        "t_test",
    ),
    (
        "log scale declared, linear ANCOVA asked",
        _outcome(0, analysis=["ancova", "wilcoxon_hodges_lehmann"]),
        "outcomes[0].analysis[0]",
        "log_scale: true asks for the log scale: declare ancova_log",
        "ancova",
    ),
    (
        "log ANCOVA asked without the log scale",
        _outcome(0, log_scale=False),
        "outcomes[0].analysis[0]",
        "ancova_log analyses on the log scale: set log_scale: true",
        "analysis",
    ),
    (
        "a yes/no field analysed as a number",
        _vital_status_form,
        "outcomes[4].variables[0]",
        "soc_therapy.corticosteroid is a boolean field; a value_at outcome needs an integer or decimal field",
        "soc_therapy.corticosteroid",
    ),
    (
        "length of stay without knowing how stays end",
        _no_death_record,
        "outcomes[8].measure",
        "declare safety.death_record so the analysis knows how each stay ended",
        "measure",
    ),
    (
        "a duration over two variables",
        _outcome(8, variables=["hospital_course.length_of_stay", "labs.crp"]),
        "outcomes[8].variables",
        "a duration outcome reads one variable",
        "variables",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "path", "words", "key"), CASES, ids=[c[0] for c in CASES])
def test_an_outcome_the_analysis_cannot_compute_as_declared_is_refused_at_check_time(
    case: str, mutate: Any, path: str, words: str, key: str
) -> None:
    text = mutated_text(mutate)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    matches = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert matches, f"{case}: no problem at {path} containing {words!r}; got:\n{caught.value}"
    assert matches[0].line is not None
    assert key in text.splitlines()[matches[0].line - 1]


@pytest.mark.parametrize("name", ["IRCT20190101042197N2.yaml", "EXAMPLE-CAP-3ARM.yaml"])
def test_the_shipped_protocols_declare_only_what_the_analysis_computes(name: str) -> None:
    protocol = load_protocol_text((ROOT / "protocols" / name).read_text(encoding="utf-8")).protocol
    for outcome in protocol.outcomes:
        assert set(outcome.analysis) <= METHODS_FOR[outcome.measure], outcome.id


def test_every_measure_with_an_estimator_names_its_methods_and_t_test_is_only_declared() -> None:
    assert METHODS_FOR[Measure.TIME_TO_EVENT] == frozenset()
    assert all(AnalysisMethod.T_TEST not in METHODS_FOR[m] for m in Measure if m is not Measure.VALUE_AT)
