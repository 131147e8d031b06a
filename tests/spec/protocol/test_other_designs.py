"""Nothing in the model is specific to the first trial: other designs validate, typos never pass."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIRST_PROTOCOL
from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol_text


def _three_arms_minimization(doc: Any) -> None:
    third = dict(doc["arms"][1])
    third.update(code="ACT", name="Active comparator + standard care", role="active_comparator", ratio=1)
    doc["arms"][0]["ratio"] = 2
    doc["arms"].append(third)
    # The trial design declares one treatment element per arm (SDTM TE/TA): the third arm has its own.
    placebo = next(e for e in doc["elements"] if e.get("arm") == "PBO")
    doc["elements"].append({**placebo, "code": "ACT", "name": "Active comparator infusion", "arm": "ACT"})
    doc["sample_size"] = {"target": 60, "per_arm": {"EXO": 30, "PBO": 15, "ACT": 15}}
    doc["randomization"] = {
        "method": "minimization",
        "factors": [
            {"id": "site", "weight": 1.0},
            {"id": "age_band", "field": "age", "cut_points": [50], "weight": 2.0},
            {"id": "sex", "field": "sex", "levels": ["female", "male"]},
        ],
        "imbalance": "variance",
        "probability": 0.8,
    }


def test_three_arm_two_to_one_to_one_minimization_validates() -> None:
    p = load_protocol_text(mutated_text(_three_arms_minimization)).protocol
    assert p.arm_codes == ["EXO", "PBO", "ACT"] and p.ratio_sum == 4
    assert p.randomization.method == "minimization"
    assert [f.id for f in p.randomization.factors] == ["site", "age_band", "sex"]


def test_minimization_probability_must_favour_the_least_imbalance() -> None:
    def low_p(doc: Any) -> None:
        _three_arms_minimization(doc)
        doc["randomization"]["probability"] = 0.4

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(low_p))
    assert any(p.path == "randomization.probability" for p in caught.value.problems)


def _model_mappings(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of mappings that are protocol models (free-form mappings excluded; a derivation's unknown
    ``parameters`` are refused by its signature check, see test_broken_protocols)."""
    free = {"translations", "per_arm", "inputs", "parameters"}
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        named = path[-1] if path and isinstance(path[-1], str) else ""
        if named not in free and not named.endswith("_translations") and "translations" not in path[-2:]:
            found.append(path)
        for key, value in node.items():
            found += _model_mappings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _model_mappings(value, (*path, i))
    return found


_PLAIN = __import__("ruamel.yaml", fromlist=["YAML"]).YAML(typ="safe").load(FIRST_PROTOCOL.read_text("utf-8"))
_MAPPINGS = _model_mappings(_PLAIN)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(min_value=0, max_value=len(_MAPPINGS) - 1), key=st.from_regex(r"\Azz[a-z]{1,8}\Z"))
def test_any_unknown_key_anywhere_is_refused_and_named(index: int, key: str) -> None:
    target = _MAPPINGS[index]

    def insert(doc: Any) -> None:
        node = doc
        for part in target:
            node = node[part]
        node[key] = 1

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(insert))
    expected = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in (*target, key)).lstrip(".")
    assert any(p.path == expected and p.message.startswith(f"unknown key '{key}'") for p in caught.value.problems), (
        expected,
        str(caught.value),
    )
