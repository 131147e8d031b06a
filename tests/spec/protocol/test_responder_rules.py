"""A responder rule (``variable.responder``) on a binary estimand: what ``protocol check`` refuses, each problem at
its line and field.

The first protocol's fifth outcome is replaced by a yes/no estimand whose variable is a rule on C-reactive protein
(``labs.crp``: decimal, hard limits 0-600 mg/L, collected at baseline, day 3 and day 7):

| declared                                          | refused at                       | because                |
|---------------------------------------------------|----------------------------------|------------------------|
| the rule on a yes/no field (vitals.on_oxygen)     | variable.fields[0]               | not a number           |
| at: day1 (labs not collected there)               | variable.at                      | not collected          |
| percent_change, no zero_baseline (CRP can be 0)   | variable.responder.zero_baseline | undefined at 0         |
| baseline: day7, at: day3                          | variable.baseline                | after the outcome      |
| a change with no baseline visit                   | variable                         | nothing to change from |
| two criteria without combine                      | variable.responder               | any or all unsaid      |
| event_values beside a rule                        | variable                         | two definitions        |
| zero_baseline with no percent change              | variable.responder.zero_baseline | says nothing           |
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol_text

HALVED = {"measure": "percent_change", "operator": "<=", "threshold": -50}
FELL = {"measure": "change", "operator": "<=", "threshold": -20}


def _with(variable: dict[str, Any]) -> str:
    def mutate(doc: Any) -> None:
        doc["outcomes"][4]["estimand"] = {
            "population": "itt", "summary": "risk_difference", "estimator": "newcombe",
            "variable": {"kind": "binary", "fields": ["labs.crp"], "at": "day7", "baseline": "baseline", **variable},
        }  # fmt: skip

    return mutated_text(mutate)


def _problems(variable: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(_with(variable), source="trial.yaml")
    return [(p.path, p.message, p.line) for p in caught.value.problems if p.path.startswith("outcomes[4].")]


def test_a_rule_with_its_zero_baseline_declared_loads() -> None:
    loaded = load_protocol_text(_with({"responder": {"criteria": [HALVED, FELL], "combine": "any",
                                                     "zero_baseline": "exclude"}}))  # fmt: skip
    rule = loaded.protocol.outcomes[4].estimand.variable.responder
    assert rule is not None and str(rule) == "percent_change <= -50 any change <= -20"


@pytest.mark.parametrize(
    ("variable", "path", "message"),
    [
        ({"fields": ["vitals.on_oxygen"], "responder": {"criteria": [FELL]}}, "variable.fields[0]",
         "vitals.on_oxygen is a boolean field; a responder rule reads an integer or decimal field (a choice or yes/no "
         "field is binary by its event_values)"),
        ({"at": "day1", "responder": {"criteria": [FELL]}}, "variable.at",
         "visit 'day1' does not collect form 'labs'"),
        ({"responder": {"criteria": [HALVED]}}, "variable.responder.zero_baseline",
         "labs.crp's hard_limits allow a baseline of 0, where a percent change is undefined: declare zero_baseline: "
         "exclude (listed as not analysed) or refuse (not estimated, the participants named)"),
        ({"at": "day3", "baseline": "day7", "responder": {"criteria": [FELL]}}, "variable.baseline",
         "baseline visit 'day7' (day 7) is not before the outcome visit 'day3' (day 3): a change is measured from an "
         "earlier visit"),
        ({"responder": {"criteria": [FELL]}, "baseline": None}, "variable",
         "a responder rule on a change or percent change from baseline needs a baseline visit"),
        ({"responder": {"criteria": [HALVED, FELL], "zero_baseline": "exclude"}}, "variable.responder",
         "a responder rule with more than one criterion says combine: any or all"),
        ({"event_values": ["1"], "responder": {"criteria": [FELL]}}, "variable",
         "a binary variable from a form field names one field and either its event_values (a choice or yes/no "
         "field) or a responder rule (a numeric field)"),
        ({"responder": {"criteria": [FELL], "zero_baseline": "refuse"}}, "variable.responder.zero_baseline",
         "zero_baseline concerns a percent change: the rule has none"),
    ],
)
def test_protocol_check_refuses_a_rule_it_cannot_compute_as_declared(
    variable: dict[str, Any], path: str, message: str
) -> None:
    found = _problems(variable)
    assert [(p, m) for p, m, _ in found] == [(f"outcomes[4].estimand.{path}", message)], found
    assert all(line is not None for _, _, line in found)
