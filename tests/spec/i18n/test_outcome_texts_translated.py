"""The outcomes' and estimands' texts are protocol texts a person reads in the study report (issue 24): a protocol
that declares Persian carries each in Persian beside it, and ``protocol check`` refuses one without, naming the
line and the field.

| text                                | beside it                              | refused as                      |
|-------------------------------------|----------------------------------------|---------------------------------|
| an outcome's registered description | ``description_translations``           | ``outcomes[i].description``     |
| its registered timepoint            | ``registry_timepoint_translations``    | ``outcomes[i].registry_timepoint`` |
| how it is measured                  | ``method_of_measurement_translations`` | ``outcomes[i].method_of_measurement`` |
| an intercurrent event's rule        | ``description_translations``           | ``...events[j].description`` |
| an analysis set's definition        | ``definition_translations``            | ``analysis_sets[i].definition`` |

The first trial's file has every one in Persian script (read from the file itself, an independent YAML read).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from trialwright.protocol.loader import ProtocolError, load_protocol_text

FIRST = Path(__file__).resolve().parents[3] / "protocols" / "IRCT20190101042197N2.yaml"
PERSIAN_LETTERS = re.compile(r"[\u0600-\u06FF]")
#: the message names the key to write, where: the translations were removed whole, so the whole mapping
MISSING = "no 'fa' translation of the {} text (the protocol declares 'fa' in languages): add {}: {{fa: ...}} in {}"


def _doc() -> Any:
    return YAML(typ="safe").load(FIRST.read_text(encoding="utf-8"))


def test_the_first_trial_carries_every_outcome_and_estimand_text_in_persian() -> None:
    doc = _doc()
    for o in doc["outcomes"]:
        for text in ("description", "registry_timepoint", "method_of_measurement"):
            assert PERSIAN_LETTERS.search(o[f"{text}_translations"]["fa"]), (o["id"], text)
        for e in o["estimand"].get("intercurrent_events", []):
            if e.get("description"):
                assert PERSIAN_LETTERS.search(e["description_translations"]["fa"]), (o["id"], e["event"])
    for s in doc["analysis_sets"]:
        assert PERSIAN_LETTERS.search(s["definition_translations"]["fa"]), s["id"]


def _without_line(starting: str) -> tuple[str, int]:
    """The first trial's file without the one line that starts so, and that line's 1-based number."""
    lines = FIRST.read_text(encoding="utf-8").split("\n")
    (n,) = [i for i, line in enumerate(lines) if line.startswith(starting)]
    return "\n".join(lines[:n] + lines[n + 1 :]), n + 1


def _refused(text: str) -> list[Any]:
    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(text, "trial.yaml")
    return list(refused.value.problems)


@pytest.mark.parametrize(
    ("removed", "path", "what"),
    [
        ('    description_translations: {fa: "پروتئین واکنشی C', "outcomes[1].description", "description"),
        ('    registry_timepoint_translations: {fa: "تا ترخیص', "outcomes[8].registry_timepoint", "registry timepoint"),
        (
            '    method_of_measurement_translations: {fa: "ارزیابی با رادیوگرافی',
            "outcomes[7].method_of_measurement",
            "method of measurement",
        ),
        ('    definition_translations: {fa: "شرکت‌کنندگان تصادفی‌شده‌ای', "analysis_sets[2].definition", "definition"),
    ],
)
def test_an_outcome_text_without_its_persian_is_refused_with_its_line(removed: str, path: str, what: str) -> None:
    text, n = _without_line(removed)
    (problem,) = _refused(text)
    assert problem.path == path and problem.message == MISSING.format(
        what, path.rpartition(".")[2] + "_translations", path.rpartition(".")[0]
    )
    lines = text.split("\n")
    key = path.rpartition(".")[2] + ":"
    # the English text's own line: the last line with its key above the removed one
    assert problem.line == max(i + 1 for i, line in enumerate(lines[: n - 1]) if line.strip().startswith(key))


def test_an_intercurrent_events_rule_without_its_persian_is_refused_for_every_outcome_that_shares_it() -> None:
    original = FIRST.read_text(encoding="utf-8")
    rule = "Death in hospital competes with discharge alive."
    text = re.sub(r", description_translations: \{fa: \"فوت در بیمارستان[^\"]*\"\}", "", original)
    assert text != original
    (problem,) = _refused(text)
    outcomes = [o["id"] for o in _doc()["outcomes"]]
    assert problem.path == f"outcomes[{outcomes.index('length_of_stay')}].estimand.intercurrent_events[0].description"
    assert problem.line == 1 + next(i for i, line in enumerate(original.split("\n")) if rule in line)
    # the rule the continuous outcomes share through one YAML anchor: refused once per outcome, on its one line
    text = re.sub(r", description_translations: \{fa: \"پس از فوت[^\"]*\"\}", "", original)
    problems = _refused(text)
    sharing = [o["id"] for o in _doc()["outcomes"] if o["estimand"].get("intercurrent_events", [{}])[0].get("event")
               == "death" and o["estimand"]["intercurrent_events"][0]["strategy"] == "treatment_policy"]  # fmt: skip
    assert len(sharing) == 7
    assert [p.path for p in problems] == [
        f"outcomes[{outcomes.index(o)}].estimand.intercurrent_events[0].description" for o in sharing
    ]
    assert len({p.line for p in problems}) == 1


def test_a_protocol_in_english_only_needs_none_of_them() -> None:
    text = FIRST.read_text(encoding="utf-8").replace("languages: [en, fa]\n", "")
    text = re.sub(r"\n *[a-z_]*_translations: \{fa: [^\n]*", "", text)
    text = re.sub(r", description_translations: \{fa: \"[^\"]*\"\}", "", text)
    loaded = load_protocol_text(text).protocol
    assert loaded.languages == ["en"] and loaded.outcomes[0].description_translations == {}
