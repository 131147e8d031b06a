"""Bilingual protocol content (issue 24 item 2).

A protocol declares the languages its texts are in (``languages: [en, fa]``, English first). For every other
declared language, each text a person reads (a label, choice, visit, form, criterion, data check message, site,
arm, causality category, analysis set, expected event, a field's help and the titles) carries a translation,
or ``protocol check`` refuses the file, naming the line and the field: a page never falls back to English for
a declared language. A protocol that declares no other language needs no translation.

Pages say these texts in the viewer's language, yes/no in words (never True/False), numbers in Persian digits
on Persian pages, and units isolated left to right (``<bdi dir="ltr">``) so ``10^9/L`` reads correctly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from trialwright.protocol.loader import ProtocolError, load_protocol, load_protocol_text
from trialwright.web.localized import digits, said, shown, unit

ROOT = Path(__file__).resolve().parents[3]
FIRST = ROOT / "protocols" / "IRCT20190101042197N2.yaml"
PERSIAN_LETTERS = re.compile(r"[\u0600-\u06FF]")


def _without(text: str, line_text: str) -> tuple[str, int]:
    """The first trial's text with the Persian translation of one line removed, and that line's number."""
    lines = text.split("\n")
    (n,) = [i for i, line in enumerate(lines) if line.startswith(line_text)]
    lines[n] = re.sub(r', translations: \{fa: "[^"]*"\}', "", lines[n], count=1)
    return "\n".join(lines), n + 1


def test_the_first_trial_declares_english_and_persian_and_passes_the_check() -> None:
    loaded = load_protocol(FIRST)
    assert loaded.protocol.languages == ["en", "fa"]


def test_every_choice_visit_form_criterion_and_check_message_of_the_first_trial_is_in_persian() -> None:
    # Read from the file itself (not through the check): every such text has a Persian translation in Persian script.
    doc: Any = YAML(typ="safe").load(FIRST.read_text(encoding="utf-8"))
    items = [*doc["visits"], *doc["forms"], *doc["data_checks"], *doc["eligibility"]["screening_fields"],
             *doc["eligibility"]["inclusion"], *doc["eligibility"]["exclusion"], *doc["analysis_sets"],
             *doc["safety"]["causality"], *doc["safety"]["expected_events"]]  # fmt: skip
    for form in doc["forms"]:
        for field in form["fields"]:
            items += [field, *field.get("choices", [])]
    for field in doc["eligibility"]["screening_fields"]:
        items += field.get("choices", [])
    assert len(items) > 180
    assert [i for i in items if not i.get("translations", {}).get("fa", "").strip()] == []
    # Written in Persian script, but for the blood gas and oximetry abbreviations Iranian clinicians write in Latin.
    latin = {i["translations"]["fa"] for i in items if not PERSIAN_LETTERS.search(i["translations"]["fa"])}
    assert latin == {"PaO2", "PaCO2", "FiO2", "SpO2", "pH"}


def test_a_missing_translation_is_refused_with_its_line_and_field() -> None:
    text, line = _without(FIRST.read_text(encoding="utf-8"), "        - {code: male, label: Male,")
    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(text, "trial.yaml")
    (problem,) = refused.value.problems
    assert problem.line == line
    assert problem.path.startswith("eligibility.screening_fields[") and problem.path.endswith(
        "].choices[1].translations"
    )
    assert "no 'fa' translation of label 'Male'" in problem.message
    assert problem.message.endswith(f"add translations: {{fa: ...}} in {problem.path.removesuffix('.translations')}")


def test_a_missing_check_message_translation_is_refused() -> None:
    original = FIRST.read_text(encoding="utf-8")
    text = re.sub(r"\n    translations: \{fa: \"تاریخ ترخیص[^\n]*", "", original, count=1)
    assert text != original
    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(text, "trial.yaml")
    (problem,) = refused.value.problems
    assert problem.path == "data_checks[0].translations" and "message" in problem.message


def test_a_protocol_that_declares_no_other_language_needs_no_translation() -> None:
    text = FIRST.read_text(encoding="utf-8").replace("languages: [en, fa]\n", "")
    text, _ = _without(text, "        - {code: male, label: Male,")
    assert load_protocol_text(text).protocol.languages == ["en"]
    for example in sorted((ROOT / "protocols").glob("EXAMPLE-*[A-Z].yaml")):
        load_protocol(example)


def test_languages_must_put_english_first() -> None:
    text = FIRST.read_text(encoding="utf-8").replace("languages: [en, fa]", "languages: [fa, en]")
    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(text)
    assert any(p.path == "languages" and "English comes first" in p.message for p in refused.value.problems)


def test_values_are_said_in_the_language() -> None:
    fa = {"yes": "بله", "no": "خیر"}.get
    assert shown(True, "fa", lambda m: fa(m) or m) == "بله"
    assert shown(False, "fa", lambda m: fa(m) or m) == "خیر"
    assert shown(True, "en", lambda m: m) == "yes"
    assert shown(150.0, "fa", lambda m: m) == "۱۵۰" and shown(0.65, "fa", lambda m: m) == "۰٫۶۵"
    assert shown(None, "fa", lambda m: m) == "—"
    assert digits("2021", "en") == "2021"
    assert str(unit("10^9/L")) == '<bdi dir="ltr">10^9/L</bdi>'
    assert str(unit("<x>")) == '<bdi dir="ltr">&lt;x&gt;</bdi>' and str(unit(None)) == ""
    p = load_protocol(FIRST).protocol
    assert said(p.visit("day7"), "fa") == "روز ۷" and said(p.visit("day7"), "en") == "Day 7"
