"""``protocol check`` refuses a bad derivation, naming the file's line, the path and the rule.

Each row breaks the SOFA or EQ-5D-5L fragment (``fragments.py``) added to the first protocol: what is
broken, the path the problem must name, words of the message, and a key the reported line must hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.spec.derivations.fragments import EQ5D_FORM, SOFA_FORM, field_of, with_forms
from trialwright.protocol import ProtocolError, load_protocol_text

SOFA = "forms[9]"  # the first protocol has nine forms; the fragments come after them
EQ5D = "forms[10]"
Mutation = Callable[[Any], None]


def derived(form: str, field: str, change: Callable[[Any], None]) -> Mutation:
    def mutate(doc: Any) -> None:
        change(field_of(doc, form, field)["derived"])

    return mutate


def setting(form: str, field: str, key: str, value: Any) -> Mutation:
    def mutate(doc: Any) -> None:
        field_of(doc, form, field)[key] = value

    return mutate


def added(form: str, field: dict[str, Any]) -> Mutation:
    def mutate(doc: Any) -> None:
        next(f for f in doc["forms"] if f["id"] == form)["fields"].append(field)

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(doc: Any) -> None:
        for m in mutations:
            m(doc)

    return mutate


def _set(key: str, value: Any) -> Callable[[Any], None]:
    return lambda d: d.__setitem__(key, value)


def news2_scale_from(doc: Any, field: str) -> None:
    """Bind NEWS2's spo2_scale2 input (its inputs are a YAML anchor PRIEST shares: copy them first)."""
    derivation = field_of(doc, "vitals", "news2")["derived"]
    derivation["inputs"] = {**derivation["inputs"], "spo2_scale2": field}


CASES: list[tuple[str, Mutation, str, str, str | None]] = [
    (
        "an unknown input field",
        derived("sofa", "coagulation", _set("input", "plateletz")),
        f"{SOFA}.fields[7].derived.input",
        "form 'sofa' has no field 'plateletz'",
        "input",
    ),
    (
        "an input on an unknown form",
        derived("sofa", "respiration", _set("input", "bloodgas.pf_ratio")),
        f"{SOFA}.fields[6].derived.input",
        "unknown form 'bloodgas'",
        "input",
    ),
    (
        "an input of the wrong type",
        derived("sofa", "sofa_total", lambda d: d["fields"].__setitem__(3, "cardiovascular")),
        f"{SOFA}.fields[14].derived.fields[3]",
        "cardiovascular is a choice field; a sum needs decimal or integer",
        "cardiovascular",
    ),
    (
        "bands over a choice field",
        derived("sofa", "liver", _set("input", "cardiovascular")),
        f"{SOFA}.fields[8].derived.input",
        "cardiovascular is a choice field; bands needs decimal or integer",
        "input",
    ),
    (
        "bands with a gap",
        derived("sofa", "liver", lambda d: d["bands"][2].__setitem__("ge", 2.1)),
        f"{SOFA}.fields[8].derived.bands[2]",
        "values in [2, 2.1) are in no band",
        "ge: 2.1",
    ),
    (
        "bands that overlap",
        derived("sofa", "coagulation", lambda d: (d["bands"][1].pop("lt"), d["bands"][1].__setitem__("le", 150))),
        f"{SOFA}.fields[7].derived.bands[0]",
        "band [150, inf) overlaps band [100, 150]",
        "ge: 150",
    ),
    (
        "bands on whole numbers with a gap",
        derived("sofa", "cns", lambda d: d["bands"][2].__setitem__("le", 11)),
        f"{SOFA}.fields[10].derived.bands[1]",
        "whole numbers 12 to 12 are in no band",
        "ge: 13",
    ),
    (
        "bands not reaching the lowest value",
        derived("sofa", "coagulation", lambda d: d["bands"][4].__setitem__("ge", 10)),
        f"{SOFA}.fields[7].derived.bands[4]",
        "values below 10 are in no band",
        "ge: 10",
    ),
    (
        "a band holding no value",
        derived("sofa", "liver", lambda d: d["bands"][1].__setitem__("lt", 1.2)),
        f"{SOFA}.fields[8].derived.bands[1]",
        "the band [1.2, 1.2) holds no value",
        "lt: 1.2",
    ),
    (
        "a value set missing a level",
        derived("eq5d", "index", lambda d: d["dimensions"][0]["decrements"].pop(5)),
        f"{EQ5D}.fields[5].derived.dimensions[0].decrements",
        "no decrement for 5 of mobility (every code needs one)",
        "decrements",
    ),
    (
        "a value set with a level the field does not have",
        derived("eq5d", "index", lambda d: d["dimensions"][4]["decrements"].__setitem__(6, 0.3)),
        f"{EQ5D}.fields[5].derived.dimensions[4].decrements",
        "6 is not a code of anxiety_depression (1, 2, 3, 4, 5)",
        "decrements",
    ),
    (
        "a value set over a number",
        derived("eq5d", "index", lambda d: d["dimensions"][0].__setitem__("input", "demographics.weight")),
        f"{EQ5D}.fields[5].derived.dimensions[0].input",
        "demographics.weight is a decimal field; a value set needs choice",
        "input",
    ),
    (
        "points missing a code",
        derived("sofa", "cardiovascular_points", lambda d: d["points"].pop("map_lt_70")),
        f"{SOFA}.fields[9].derived.points",
        "no points for map_lt_70 of cardiovascular",
        "points",
    ),
    (
        "a formula naming an unknown field",
        added("sofa", {"id": "extra", "label": "x", "type": "integer",
                       "derived": {"kind": "formula", "expression": "sofa_total - renall", "missing": "refuse"}}),
        f"{SOFA}.fields[16].derived.expression",
        "unknown name 'renall': form 'sofa' has no field 'renall'",
        "expression",
    ),
    (
        "a formula dividing by a written zero",
        added("sofa", {"id": "extra", "label": "x", "type": "decimal", "decimals": 1,
                       "derived": {"kind": "formula", "expression": "sofa_total / (2 - 2)", "missing": "refuse"}}),
        f"{SOFA}.fields[16].derived.expression",
        "divides by (2 - 2), which is zero",
        "expression",
    ),
    (
        "a formula that is not arithmetic",
        added("sofa", {"id": "extra", "label": "x", "type": "decimal",
                       "derived": {"kind": "formula", "expression": "max(gcs, 3)", "missing": "refuse"}}),
        f"{SOFA}.fields[16].derived",
        "'max(gcs, 3)' is not allowed: only numbers, field names, + - * / and parentheses",
        "derived",
    ),
    (
        "a cycle among derived fields",
        both(
            derived("sofa", "sofa_total", lambda d: d["fields"].append("organ_failures")),
            derived("sofa", "organ_failures", lambda d: d["fields"].append("sofa_total")),
        ),
        f"{SOFA}.fields[14].derived",
        "derived fields form a cycle: sofa.",
        "derived",
    ),
    (
        "a derived field reading itself",
        derived("sofa", "renal", lambda d: d["fields"].append("renal")),
        f"{SOFA}.fields[13].derived",
        "derived fields form a cycle: sofa.renal -> sofa.renal",
        "derived",
    ),
    (
        "a whole-number field fed a fraction",
        setting("eq5d", "index", "type", "integer"),
        f"{EQ5D}.fields[5].type",
        "this value_set can give a fraction (numbers that are not whole); declare type decimal",
        "type",
    ),
    (
        "a whole-number field fed a pro-rated sum",
        derived("sofa", "sofa_total", _set("missing", {"min_present": 4, "prorate": True})),
        f"{SOFA}.fields[14].type",
        "this sum can give a fraction (pro-rating)",
        "type",
    ),
    (
        "a derived number in a text field",
        setting("sofa", "sofa_total", "type", "text"),
        f"{SOFA}.fields[14].type",
        "a sum gives a number: declare type integer or decimal",
        "type",
    ),
    (
        "no missing-data rule",
        derived("sofa", "sofa_total", lambda d: d.pop("missing")),
        f"{SOFA}.fields[14].derived",
        "declare missing: refuse, or missing: {min_present: N, prorate: true or false}",
        "derived",
    ),
    (
        "a silent zero is not a missing-data rule",
        derived("sofa", "sofa_total", _set("missing", "zero")),
        f"{SOFA}.fields[14].derived.missing",
        "refuse",
        "missing",
    ),
    (
        "an unknown kind",
        derived("sofa", "sofa_total", _set("kind", "summ")),
        f"{SOFA}.fields[14].derived",
        "declare one with kind: sum, mean, min, max, count, bands, codes, value_set, formula",
        "derived",
    ),
    (
        "a condition naming a code the field does not have",
        added("sofa", {"id": "extra", "label": "x", "type": "integer", "derived": {
            "kind": "count", "fields": ["cardiovascular"], "when": {"in": ["shock"]}, "missing": "refuse"}}),
        f"{SOFA}.fields[16].derived.when",
        "'shock' is not a code of cardiovascular",
        "when",
    ),
    (
        "the NEWS2 scale chosen by a field that is not yes/no",
        lambda doc: news2_scale_from(doc, "consciousness"),
        "forms[1].fields[11].derived.inputs.spo2_scale2",
        "consciousness is a choice field; spo2_scale2 needs boolean",
        "spo2_scale2",
    ),
    (
        "PRIEST given a SpO2 scale",
        lambda doc: field_of(doc, "vitals", "priest_score")["derived"]["inputs"].__setitem__(
            "spo2_scale2", "on_oxygen"
        ),
        "forms[1].fields[13].derived",
        "priest_score: unknown inputs spo2_scale2",
        "derived",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("broken", "mutate", "path", "words", "key"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_derivation_is_refused_naming_path_and_line(
    broken: str, mutate: Mutation, path: str, words: str, key: str | None
) -> None:
    text = with_forms(SOFA_FORM, EQ5D_FORM, mutate=mutate)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="broken.yaml")
    matches = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert matches, f"no problem at {path} containing {words!r}; got:\n{caught.value}"
    problem = matches[0]
    assert problem.line is not None
    if key is not None:
        assert key in text.splitlines()[problem.line - 1], (problem, text.splitlines()[problem.line - 1])
    assert f"broken.yaml:{problem.line}: {path}: " in str(caught.value)


def test_the_fragments_themselves_pass() -> None:
    load_protocol_text(with_forms(SOFA_FORM, EQ5D_FORM))


def test_the_news2_scale_may_be_declared_by_a_yes_no_field() -> None:
    def scale2(doc: Any) -> None:
        fields = next(f for f in doc["forms"] if f["id"] == "vitals")["fields"]
        fields.append({"id": "target_88_92", "label": "Target SpO2 88-92% prescribed", "type": "boolean"})
        news2_scale_from(doc, "target_88_92")

    loaded = load_protocol_text(with_forms(mutate=scale2)).protocol
    spec = loaded.form("vitals").field("news2").derived
    assert spec is not None and spec.sources[-1] == "target_88_92"
