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
LABS = next(f for f in RAW["forms"] if f["id"] == "labs")


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
    # a comparison's scale and the note under its estimate
    "k": ("1", "۱"),
    "p": ("0.031", "۰٫۰۳۱"),
    "df": ("12.5", "۱۲٫۵"),
    "df_method": ("Satterthwaite", _isolated("Satterthwaite")),
    "effect": ("-0.25", "-۰٫۲۵"),
    "values": ("RAZ-001 day14", _isolated("RAZ-001 day14")),
    "interval": ("exact", FA["exact"]),
    "low": ("0", "۰"),
    "high": ("3", "۳"),
    "strata": ("RAZ, TAB", _isolated("RAZ, TAB")),
    # a method's own words when a fit fails or a group has no events; a lock over open blockers
    "error": ("Singular matrix", _isolated("Singular matrix")),
    "end": ("28", "۲۸"),
    "arm": ("treatment", FA["treatment"]),
    "category": ("voice", _isolated("voice")),  # an ordinal code as written
    "user": ("sim-data-manager", _isolated("sim-data-manager")),
    "at": ("2026-12-06 02:59", _isolated("۲۰۲۶-۱۲-۰۶ ۰۲:۵۹")),
    "reason": ("final analysis", "\u2068final analysis\u2069"),  # the person's own words, in their direction
    # a lock's forms that reveal the arm (by their names) and its unmasked reviewers (by their roles' names)
    "forms": ("labs", LABS["translations"]["fa"]),
    "withheld": ("labs", LABS["translations"]["fa"]),
    "reviewers": ("monitor", FA["Monitor"]),
    # who reviewed the forms withheld from a masked locker, and when
    "reviewer": ("sim-monitor", _isolated("sim-monitor")),
    "reviewed_at": ("2026-12-05 11:07", _isolated("۲۰۲۶-۱۲-۰۵ ۱۱:۰۷")),
    # a responder's zero baseline: the rule's keyword and the participants, as written
    "handling": ("exclude", _isolated("exclude")),
    "who": ("RAZ-001, RAZ-002", _isolated("RAZ-001, RAZ-002")),
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


def test_a_note_and_why_an_estimate_is_not_estimable_are_said_piece_by_piece() -> None:
    """A comparison's note joins its pieces with "; " (a Cox model's log-rank and proportional hazards p, an MMRM's
    degrees of freedom and its effect at each visit); each piece is said in Persian, the p-values in Persian digits."""
    words = report_words(first_protocol().protocol, "fa")
    cox = "stratified log-rank p=0.412; proportional hazards check p=NA"
    assert words.sentence(cox) == (
        FA["stratified log-rank p=%(p)s"] % {"p": "۰٫۴۱۲"}
        + FA["; "]
        + FA["proportional hazards check p=%(p)s"] % {"p": FA["NA"]}
    )
    mmrm = "df 17.3 (Satterthwaite); effect by visit: day3 0.5; day7 -1.25"
    assert words.sentence(mmrm) == FA["; "].join(
        (
            FA["df %(df)s (%(df_method)s)"] % {"df": "۱۷٫۳", "df_method": _isolated("Satterthwaite")},
            FA["effect by visit: %(visit)s %(effect)s"]
            % {"visit": next(v for v in RAW["visits"] if v["id"] == "day3")["translations"]["fa"], "effect": "۰٫۵"},
            FA["%(visit)s %(effect)s"] % {"visit": VISIT["translations"]["fa"], "effect": "-۱٫۲۵"},
        )
    )
    rmst = "difference in restricted mean survival time to day 28 (days)"
    assert words.sentence(rmst) == FA[sentences.RMST_SCALE] % {"day": "۲۸"}
    assert words.sentence("ratio (of the change)") == FA["ratio (of the change)"]


def test_the_reasons_quoted_are_the_statistical_methods_own_words() -> None:
    """Why an estimate is not estimable is the method's own English (``str`` of its error); the messages quote it
    exactly, so the Persian report finds it. Raised here by the methods themselves."""
    from trialwright.analysis import statistics as st
    from trialwright.analysis.methods import survival

    def raised(call) -> str:  # type: ignore[no-untyped-def]
        with pytest.raises(ValueError) as error:
            call()
        return str(error.value)

    assert raised(lambda: st.ancova([1.0, 2.0], [1.0, 2.0], [1, 1])) == sentences.ANCOVA_EMPTY_GROUP
    assert raised(lambda: st.hodges_lehmann([], [1.0])) == sentences.HL_EMPTY
    assert raised(lambda: st.wilson(0, 0)) == sentences.WILSON_EMPTY % {"k": 0, "n": 0}
    assert raised(lambda: survival.cox([1.0, 2.0], [1, 0], [1, 1])) == sentences.BOTH_ARMS
    assert raised(lambda: survival.cox([1.0, 2.0, 3.0, 4.0], [1, 1, 0, 0], [1, 1, 0, 0])) == (
        sentences.NO_EVENTS_IN_GROUP % {"k": 0}
    )
    words = report_words(first_protocol().protocol, "fa")
    for reason in (sentences.ANCOVA_EMPTY_GROUP, sentences.HL_EMPTY, sentences.BOTH_ARMS):
        assert words.sentence(reason) == FA[reason]
    assert words.sentence(sentences.WILSON_EMPTY % {"k": 0, "n": 0}) == FA[sentences.WILSON_EMPTY] % {
        "k": "۰",
        "n": "۰",
    }


def test_an_estimate_is_said_with_the_catalogs_words_and_each_number_isolated() -> None:
    """A Persian reader's estimate: each number in Persian digits, isolated left to right (a minus sign stays before
    its digits), "95% CI", "to" and the comma in the catalog's words, an undefined bound in words; "not estimable"
    with why in Persian. The English as ``Comparison.text`` writes it."""
    from trialwright.analysis.report import estimate_html
    from trialwright.analysis.results import Comparison

    words = report_words(first_protocol().protocol, "fa")
    c = Comparison("A vs B", "ANCOVA", "ITT", "adjusted difference", 0.5, -0.25, None, 0.0004, (3, 3), True)
    ltr = '<bdi dir="ltr">%s</bdi>'
    assert str(estimate_html(words, c)) == (
        f"{ltr % '۰٫۵۰۰'} ({FA['95% CI']} {ltr % '-۰٫۲۵۰'} {FA['to']} {ltr % FA['NA']}){FA[', ']}{ltr % 'p&lt;۰٫۰۰۱'}"
    )
    assert c.text() == "0.500 (95% CI -0.250 to NA), p<0.001"
    none = Comparison("A vs B", "ANCOVA", "ITT", "adjusted difference", None, None, None, None, (0, 1), True,
                      sentences.FEW_IN_GROUP)  # fmt: skip
    assert str(estimate_html(words, none)) == FA["not estimable"] + " (" + FA[sentences.FEW_IN_GROUP] + ")"
