"""A form's description and the signature's meaning are protocol texts a person reads (issue 24, the Persian
findings): a protocol that declares Persian carries them in Persian (``description_translations``,
``signature_meaning_translations``), and ``protocol check`` refuses one without, naming the line and the field.
The first trial's file has both, in Persian script (read from the file itself)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from trialwright.protocol.loader import ProtocolError, load_protocol_text

FIRST = Path(__file__).resolve().parents[3] / "protocols" / "IRCT20190101042197N2.yaml"
PERSIAN_LETTERS = re.compile(r"[\u0600-\u06FF]")


def test_the_first_trial_carries_its_form_descriptions_and_signature_meaning_in_persian() -> None:
    doc: Any = YAML(typ="safe").load(FIRST.read_text(encoding="utf-8"))
    described = [f for f in doc["forms"] if f.get("description")]
    assert len(described) == 4
    assert all(PERSIAN_LETTERS.search(f["description_translations"]["fa"]) for f in described)
    assert doc["signature_meaning"] and PERSIAN_LETTERS.search(doc["signature_meaning_translations"]["fa"])


def _refused(text: str) -> list[Any]:
    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(text, "trial.yaml")
    return list(refused.value.problems)


def test_a_form_description_without_its_persian_is_refused_with_its_line() -> None:
    original = FIRST.read_text(encoding="utf-8")
    anchor = '    description_translations: {fa: "وضعیت عملکردی PRIEST'
    lines = original.split("\n")
    (n,) = [i for i, line in enumerate(lines) if line.startswith(anchor)]
    text = "\n".join(lines[:n] + lines[n + 1 :])
    (problem,) = _refused(text)
    forms = [f["id"] for f in YAML(typ="safe").load(original)["forms"]]
    assert problem.path == f"forms[{forms.index('performance')}].description"
    assert problem.line == n  # the description's own line, just above the removed one (1-based)
    assert problem.message == (
        "no 'fa' translation of the description text (the protocol declares 'fa' in languages): add "
        f"description_translations: {{fa: ...}} in forms[{forms.index('performance')}]"
    )


def test_a_signature_meaning_without_its_persian_is_refused() -> None:
    original = FIRST.read_text(encoding="utf-8")
    text = re.sub(r"\nsignature_meaning_translations:\n  fa: >-\n(    [^\n]*\n)+", "\n", original, count=1)
    assert text != original
    (problem,) = _refused(text)
    assert problem.path == "signature_meaning" and problem.message == _SIGNATURE_FA


#: The message names the key the user writes: the signature's meaning is a top-level text.
_SIGNATURE_FA = (
    "no 'fa' translation of the signature meaning text (the protocol declares 'fa' in languages): add "
    "signature_meaning_translations: {fa: ...} at the top level of the file"
)


def test_the_default_signature_meaning_needs_its_persian_too_and_the_message_names_the_key() -> None:
    """A protocol that leaves the signature's meaning to its default (a new user's, written from the docs) still
    shows it to a Persian reader: the check names the key to add, at line 1 (the default has no line)."""
    original = FIRST.read_text(encoding="utf-8")
    text = re.sub(r"\nsignature_meaning:\n?( [^\n]*\n)+", "\n", original, count=1)
    text = re.sub(r"\nsignature_meaning_translations:\n  fa: >-\n(    [^\n]*\n)+", "\n", text, count=1)
    assert "signature_meaning" not in text
    (problem,) = _refused(text)
    assert (problem.path, problem.line, problem.message) == ("signature_meaning", 1, _SIGNATURE_FA)


def test_a_translation_missing_from_a_written_mapping_names_the_language_to_add() -> None:
    """Where the mapping is written but lacks the language, the message says to add the language to it."""
    original = FIRST.read_text(encoding="utf-8")
    text = original.replace("languages: [en, fa]\n", "languages: [en, fa, ar]\n")
    messages = {p.path: p.message for p in _refused(text)}
    assert messages["signature_meaning"].endswith(
        "add ar: ... to signature_meaning_translations at the top level of the file"
    )
    public = messages["trial.titles.translations.ar.public"]
    assert public.endswith("add ar: {public: ...} to trial.titles.translations")
    assert messages["sites[0].translations"].endswith("add ar: ... to translations in sites[0]")


def test_english_only_protocols_need_neither() -> None:
    text = FIRST.read_text(encoding="utf-8").replace("languages: [en, fa]\n", "")
    text = re.sub(r"\n    description_translations: \{fa: [^\n]*", "", text)
    text = re.sub(r"\nsignature_meaning_translations:\n  fa: >-\n(    [^\n]*\n)+", "\n", text, count=1)
    assert load_protocol_text(text).protocol.languages == ["en"]
