"""Randomization designs beyond the first trial's, on the second example protocol (EXAMPLE-CAP-3ARM): simple
randomization, any whole-number ratio, strata from any screening field, and unnamed blinded groups that the arms'
sizes would name. Each row: the change, the path refused (or None when the protocol is valid) and the words of the
refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import FIRST_PROTOCOL
from tests.spec.protocol.conftest import mutated_text
from trialwright.cli.main import app
from trialwright.protocol import ProtocolError, load_protocol_text

EXAMPLE = FIRST_PROTOCOL.with_name("EXAMPLE-CAP-3ARM.yaml")
FOURTH_ARM = {
    "code": "MID",
    "name": "ILX 75 micrograms + standard care",
    "role": "experimental",
    "description": "Inhaled ILX 75 micrograms twice daily for 7 days, with standard care.",
    "intervention": {"name": "ILX", "route": "inhaled", "dose": "75 micrograms", "schedule": "twice daily"},
}


def design(ratios: dict[str, int], randomization: dict[str, Any] | None = None, tables: str = "pooled") -> Any:
    """Arms with these ratios (LOW, HIGH, PBO, and MID when named), the randomization and blinded tables."""

    def mutate(doc: Any) -> None:
        if "MID" in ratios:
            doc["arms"].append(dict(FOURTH_ARM))
        doc["arms"] = [a for a in doc["arms"] if a["code"] in ratios]
        for arm in doc["arms"]:
            arm["ratio"] = ratios[arm["code"]]
        del doc["sample_size"]["per_arm"]
        doc["safety"]["blinded_tables"] = tables
        if randomization is not None:
            doc["randomization"] = randomization

    return mutate


def blocks(sizes: list[int], **more: Any) -> dict[str, Any]:
    return {"method": "stratified_permuted_blocks", "block_sizes": sizes, "stratify_by": [{"id": "site"}], **more}


def simple(**more: Any) -> dict[str, Any]:
    return {"method": "simple", "list_length": 120, **more}


def minimization(*factors: dict[str, Any]) -> dict[str, Any]:
    return {"method": "minimization", "probability": 0.8, "factors": list(factors)}


def screening_field(field: dict[str, Any]) -> Any:
    def mutate(doc: Any) -> None:
        doc["eligibility"]["screening_fields"].append(field)

    return mutate


def both(*mutations: Any) -> Any:
    def mutate(doc: Any) -> None:
        for m in mutations:
            m(doc)

    return mutate


TWO_TO_ONE = {"LOW": 2, "PBO": 1}
THREE_TO_TWO = {"LOW": 3, "PBO": 2}
FOUR_ARMS = {"LOW": 1, "MID": 1, "HIGH": 1, "PBO": 1}
SEX = {"id": "sex", "field": "sex", "levels": ["female", "male"]}
CURB = {"id": "curb_band", "field": "curb65", "cut_points": [2, 3]}

CASES = [
    # Any whole-number ratio: block sizes must be multiples of the ratio sum.
    ("2:1, blocks of 3 and 6", design(TWO_TO_ONE, blocks([3, 6])), None, ""),
    ("2:1, a block of 4", design(TWO_TO_ONE, blocks([3, 4])), "randomization.block_sizes[1]",
     "block size 4 is not a multiple of the ratio sum 3"),
    ("3:2, blocks of 5 and 10", design(THREE_TO_TWO, blocks([5, 10])), None, ""),
    ("3:2, a block of 4", design(THREE_TO_TWO, blocks([4, 10])), "randomization.block_sizes[0]",
     "block size 4 is not a multiple of the ratio sum 5"),
    ("1:1:1:1, blocks of 4 and 8", design(FOUR_ARMS, blocks([4, 8])), None, ""),
    ("1:1:1:1, a block of 6", design(FOUR_ARMS, blocks([4, 6])), "randomization.block_sizes[1]",
     "block size 6 is not a multiple of the ratio sum 4"),
    ("2:1 minimization", design(TWO_TO_ONE, minimization({"id": "site"}, SEX)), None, ""),
    # Simple randomization: one list of a declared length, no strata.
    ("simple 2:1", design(TWO_TO_ONE, simple()), None, ""),
    ("simple 1:1:1:1", design(FOUR_ARMS, simple()), None, ""),
    ("simple with strata", design(TWO_TO_ONE, simple(stratify_by=[{"id": "site"}])), "randomization",
     "stratify_by: simple randomization draws every allocation independently"),
    ("simple without a length", design(TWO_TO_ONE, {"method": "simple"}), "randomization.list_length",
     "is required but missing"),
    ("simple list shorter than the target", design(TWO_TO_ONE, simple(list_length=60)), "randomization.list_length",
     "60 entries would not cover the sample size target 90"),
    # Strata from any screening field: choice, numeric with cut points, yes/no.
    ("blocks by site, a choice and a numeric field",
     design(TWO_TO_ONE, blocks([3, 6], stratify_by=[{"id": "site"}, SEX, CURB])), None, ""),
    ("blocks by a yes/no field", design(TWO_TO_ONE, blocks([3], stratify_by=[
        {"id": "immuno", "field": "immunosuppressed", "levels": ["true", "false"]}])), None, ""),
    ("levels that leave out a choice", design(TWO_TO_ONE, blocks([3], stratify_by=[
        {"id": "sex", "field": "sex", "levels": ["female"]}])), "randomization.stratify_by[0].levels",
     "leaves out 'male' of field 'sex': a participant with it could not be randomized"),
    ("a yes/no factor with one level", design(TWO_TO_ONE, minimization(
        {"id": "immuno", "field": "immunosuppressed", "levels": ["true"]})), "randomization.factors[0].levels",
     "leaves out 'false'"),
    ("a level the field cannot take", design(TWO_TO_ONE, blocks([3], stratify_by=[
        {"id": "sex", "field": "sex", "levels": ["female", "male", "other"]}])),
     "randomization.stratify_by[0].levels", "must be among ['female', 'male']"),
    ("a level listed twice", design(TWO_TO_ONE, blocks([3], stratify_by=[
        {"id": "sex", "field": "sex", "levels": ["female", "male", "male"]}])),
     "randomization.stratify_by[0].levels", "level 'male' is used 2 times"),
    ("a numeric field with levels", design(TWO_TO_ONE, blocks([3], stratify_by=[
        {"id": "curb", "field": "curb65", "cut_points": [2], "levels": ["1", "2"]}])),
     "randomization.stratify_by[0].levels", "is cut into levels by cut_points; remove levels"),
    ("a numeric field without cut points", design(TWO_TO_ONE, blocks([3], stratify_by=[
        {"id": "curb", "field": "curb65"}])), "randomization.stratify_by[0]", "needs cut_points"),
    ("a field asked only under applies_if", design(TWO_TO_ONE, blocks([3], stratify_by=[
        {"id": "preg", "field": "pregnant", "levels": ["true", "false"]}])), "randomization.stratify_by[0].field",
     "asked only when its applies_if holds"),
    ("a date field", both(screening_field({"id": "admitted_on", "label": "Admitted on", "type": "date"}),
                          design(TWO_TO_ONE, blocks([3], stratify_by=[{"id": "adm", "field": "admitted_on"}]))),
     "randomization.stratify_by[0].field", "a date field ('admitted_on') cannot form strata"),
    ("the site factor with levels", design(TWO_TO_ONE, blocks([3], stratify_by=[{"id": "site", "levels": ["NTH"]}])),
     "randomization.stratify_by[0].levels", "the site factor's levels are the protocol's sites"),
    ("a weight under permuted blocks", design(TWO_TO_ONE, blocks([3], stratify_by=[{"id": "site", "weight": 2}])),
     "randomization.stratify_by[0].weight", "only applies to minimization"),
    ("weights under minimization", design(TWO_TO_ONE, minimization({"id": "site", "weight": 2.0},
                                                                  {**CURB, "weight": 0.5})), None, ""),
    ("a level with a bar", both(
        lambda doc: doc["eligibility"]["screening_fields"][1].update(choices=["female", "male|other"]),
        design(TWO_TO_ONE, blocks([3], stratify_by=[{**SEX, "levels": ["female", "male|other"]}]))),
     "randomization.stratify_by[0]", "level 'male|other' has a '|'"),
    ("stratum names too long to store", both(
        screening_field({"id": "region", "label": "Region", "type": "choice", "choices": ["r" * 80, "s"]}),
        design(TWO_TO_ONE, blocks([3], stratify_by=[{"id": "site"}, {"id": "region_of_residence_at_admission",
               "field": "region", "levels": ["r" * 80, "s"]}, SEX, CURB]))),
     "randomization.stratify_by", "more than the 128 stored"),
    # Unnamed blinded groups would be told apart by their sizes when the ratios differ.
    ("1:1:1 in unnamed groups", design({"LOW": 1, "HIGH": 1, "PBO": 1}, tables="unnamed_groups"), None, ""),
    ("2:1 in unnamed groups", design(TWO_TO_ONE, tables="unnamed_groups"), "safety.blinded_tables",
     "the groups' sizes, because the allocation ratio is 2:1; use blinded_tables: pooled"),
    ("2:1:1 in unnamed groups", design({"LOW": 2, "HIGH": 1, "PBO": 1}, tables="unnamed_groups"),
     "safety.blinded_tables", "ratio is 2:1:1"),
    ("2:1 pooled", design(TWO_TO_ONE, tables="pooled"), None, ""),
]  # fmt: skip


@pytest.mark.parametrize(("case", "mutate", "path", "words"), CASES, ids=[c[0] for c in CASES])
def test_randomization_designs(case: str, mutate: Any, path: str | None, words: str) -> None:
    text = mutated_text(mutate, EXAMPLE)
    if path is None:
        load_protocol_text(text, source="example.yaml")
        return
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="example.yaml")
    matches = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert matches, f"no problem at {path} containing {words!r}; got:\n{caught.value}"
    assert matches[0].line is not None and f"example.yaml:{matches[0].line}: {path}: " in str(caught.value)


def test_protocol_check_refuses_unnamed_groups_with_a_two_to_one_ratio(tmp_path: Path) -> None:
    bad = tmp_path / "two-to-one.yaml"
    bad.write_text(mutated_text(design(TWO_TO_ONE, tables="unnamed_groups"), EXAMPLE), encoding="utf-8")
    result = CliRunner().invoke(app, ["protocol", "check", str(bad)])
    assert result.exit_code == 1, result.output
    line = next(i for i, text in enumerate(bad.read_text("utf-8").splitlines(), 1) if "blinded_tables:" in text)
    assert f"{bad}:{line}: safety.blinded_tables: unnamed groups would tell the blinded team" in result.output
    good = tmp_path / "pooled.yaml"
    good.write_text(mutated_text(design(TWO_TO_ONE, simple()), EXAMPLE), encoding="utf-8")
    assert CliRunner().invoke(app, ["protocol", "check", str(good)]).exit_code == 0
