"""Every sentence the analysis builds with values (``analysis.sentences``: the notes, why a participant could not be
used, a comparison's label and method) is said again in a Persian report: the catalog's Persian message with each
part in Persian (issue 24 item 2). Read through the report's words for the first trial (``report_words``), against
an independent reading: the catalog file read with babel, the protocol's Persian read from the YAML file, digits
written out by hand. An English reader gets the English as built; a sentence no message matches is shown as written."""

from __future__ import annotations

import re

import pytest
import yaml
from babel.messages.pofile import read_po

from tests.trialfixtures import FIRST_PROTOCOL, first_protocol
from trialwright.analysis import sentences
from trialwright.web.i18n import catalog_path
from trialwright.web.report_words import report_words

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
with catalog_path("fa").open("rb") as _handle:
    FA = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}
SETS = {s["id"]: s for s in RAW["analysis_sets"]}
ARMS = [a["name"] for a in RAW["arms"]]
VISIT = next(v for v in RAW["visits"] if v["id"] == "day7")


def _isolated(text: str) -> str:
    return f"\u2066{text}\u2069"


#: Each part as the analysis writes it, and as a Persian reader reads it
PARTS = {
    "variable": ("labs.crp", _isolated("labs.crp")),
    "form": ("labs", _isolated("labs")),
    "visit": ("day7", VISIT["translations"]["fa"]),
    "day": ("12", "۱۲"),
    "death_day": ("9", "۹"),
    "n": ("2", "۲"),
    "value": ("-1.5", "-۱٫۵"),  # the Persian decimal separator
    "how": ("withdrew consent", FA["Withdrew consent"]),
    "mark": ("not done", FA["not done"]),
    "covariance": ("compound symmetry", FA["compound symmetry"]),
    "treatment": (ARMS[0], next(a["translations"]["fa"] for a in RAW["arms"] if a["name"] == ARMS[0])),
    "reference": (ARMS[1], next(a["translations"]["fa"] for a in RAW["arms"] if a["name"] == ARMS[1])),
    "group": (ARMS[1], next(a["translations"]["fa"] for a in RAW["arms"] if a["name"] == ARMS[1])),
    "outcome": ("time_to_sae", _isolated("time_to_sae")),
    "set": (SETS["safety"]["name"], SETS["safety"]["translations"]["fa"]),
    "set_id": ("rescue", _isolated("rescue")),
    "counted": ("itt, safety", _isolated("itt, safety")),
    "sets": (
        "safety and per_protocol",
        SETS["safety"]["translations"]["fa"] + FA[" and "] + SETS["per_protocol"]["translations"]["fa"],
    ),
}


def _names(message: str) -> list[str]:
    return re.findall(r"%\((\w+)\)s", message)


@pytest.mark.parametrize("message", sentences.MESSAGES)
def test_each_built_sentence_is_said_in_persian(message: str) -> None:
    words = report_words(first_protocol().protocol, "fa")
    english = message % {k: PARTS[k][0] for k in _names(message)}
    assert words.sentence(english) == FA[message] % {k: PARTS[k][1] for k in _names(message)}
    assert report_words(first_protocol().protocol, "en").sentence(english) == english


def test_sentences_joined_are_said_one_by_one_and_an_unknown_one_as_written() -> None:
    words = report_words(first_protocol().protocol, "fa")
    one = sentences.NONE % {"variable": "labs.crp", "visit": "day7"}
    said = FA[sentences.NONE] % {"variable": PARTS["variable"][1], "visit": PARTS["visit"][1]}
    assert words.sentence(f"{one}; {one}") == said + FA["; "] + said
    assert words.sentence(f"{one}; something new") == said + FA["; "] + "something new"
    assert words.sentence("something new") == "something new"
