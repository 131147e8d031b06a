"""Input limits, read as the specification (issue 20 item 6).

Every text has a length limit and may not hold characters that hide or disguise what it says:

| text                                     | limit (characters)          | line breaks and TAB |
|------------------------------------------|-----------------------------|---------------------|
| a form's text field                      | max_length, else 200        | refused             |
| a form's text field with multiline: true | max_length, else 2,000      | accepted            |
| a preparation attribute (text)           | max_length, else 200        | refused             |
| a reason (not done, for change, ...),    | 2,000                       | accepted            |
|   a query, an answer, a note, a narrative|                             |                     |
| a name, a term, a cause of death, a label| 200                         | refused             |

Refused everywhere: control characters (C0 with NUL, DEL, C1), the bidi embeddings, overrides and isolates
(U+202A-U+202E, U+2066-U+2069). Accepted: Persian text with its zero-width non-joiner (U+200C) and the
left-to-right and right-to-left marks (U+200E, U+200F). A protocol may declare a limit up to 10,000.
Each refusal names the field and the rule; nothing saved before is lost.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from pydantic import ValidationError

from tests.spec.forms.conftest import TODAY
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import FIRST_PROTOCOL, Trial, who
from trialwright.domain.forms import FormValueError, validate_entries
from trialwright.domain.preparation import PreparationError, validate_preparation
from trialwright.domain.roles import Role
from trialwright.domain.text import TextError, checked_text, text_problem
from trialwright.protocol import ProtocolError, load_protocol, load_protocol_text
from trialwright.protocol.forms import FormField
from trialwright.services.forms import FormError, answer_query, get_form, raise_query, save_form
from trialwright.services.screening import ScreeningError, withdraw

P = load_protocol(FIRST_PROTOCOL).protocol
PERSIAN = "تب\u200cدار، سرفهٔ خشک"  # "feverish, dry cough": a ZWNJ inside the first word
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
CONTROLS = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]


def refused(form: str, **values: object) -> tuple[str, ...]:
    with pytest.raises(FormValueError) as caught:
        validate_entries(P.form(form), values, today=dt.date(2021, 6, 10), timezone="Asia/Tehran")
    return caught.value.problems


def entered(form: str, **values: object) -> Any:
    return validate_entries(P.form(form), values, today=dt.date(2021, 6, 10), timezone="Asia/Tehran").values


# --- the rule, pure ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", CONTROLS)
def test_control_characters_are_refused_naming_the_character(char: str) -> None:
    problem = text_problem(f"ok{char}ok", limit=200, multiline=True)
    assert problem is not None and f"U+{ord(char):04X}" in problem and "control characters are refused" in problem
    assert "at character 3" in problem


@pytest.mark.parametrize("char", BIDI)
def test_bidi_embeddings_overrides_and_isolates_are_refused(char: str) -> None:
    problem = text_problem(f"abc{char}def", limit=200, multiline=True)
    assert (
        problem is not None and f"U+{ord(char):04X}" in problem and "bidi overrides and isolates are refused" in problem
    )


@pytest.mark.parametrize("text", [PERSIAN, "BP 120/80 \u200emmHg", "\u200fعلامت", "naïve café", "🙂", "a\u200db"])
def test_persian_with_its_non_joiner_and_the_direction_marks_are_accepted(text: str) -> None:
    assert text_problem(text, limit=200, multiline=False) is None


def test_line_breaks_only_in_multi_line_text() -> None:
    for char in ("\n", "\r", "\t", "\u2028"):
        assert text_problem(f"a{char}b", limit=200, multiline=True) is None
        assert "must be one line" in (text_problem(f"a{char}b", limit=200, multiline=False) or "")


def test_the_limit_is_inclusive_and_longer_text_is_never_cut() -> None:
    assert text_problem("x" * 2_000, limit=2_000, multiline=True) is None
    assert text_problem("x" * 2_001, limit=2_000, multiline=True) == (
        "must be at most 2,000 characters, not 2,001 (text limit; longer text is never cut)"
    )
    with pytest.raises(TextError, match=r"^reason: must be at most 2,000 characters, not 1,048,576"):
        checked_text("x" * 1_048_576, "reason")
    assert checked_text(None, "reason") is None


# --- form fields, as the protocol declares them -----------------------------------------------------------


def test_a_form_text_field_is_one_line_of_200_unless_the_protocol_says_otherwise() -> None:
    assert P.form("hospital_course").field("death_cause").text_limit == 200
    assert P.form("soc_therapy").field("details").text_limit == 2_000  # multiline: true
    assert P.form("administration").field("preparation_code").text_limit == 16  # max_length: 16
    assert refused("hospital_course", death_cause="x" * 201) == (
        "death_cause: must be at most 200 characters, not 201 (text limit; longer text is never cut)",
    )
    assert entered("hospital_course", death_cause="x" * 200)["death_cause"].value == "x" * 200
    assert refused("hospital_course", death_cause="ARDS\nsepsis")[0].startswith("death_cause: must be one line")
    assert entered("soc_therapy", details="dexamethasone 6 mg\nremdesivir")["details"].value.count("\n") == 1
    assert refused("administration", preparation_code="P-" + "A" * 15)[0].startswith(
        "preparation_code: must be at most 16 characters, not 17"
    )
    assert entered("hospital_course", death_cause=PERSIAN)["death_cause"].value == PERSIAN


def test_nul_and_overrides_in_a_value_or_a_reason_are_refused_naming_the_field() -> None:
    (nul,) = refused("hospital_course", death_cause="ARDS\x00")
    assert nul.startswith("death_cause: holds the control character U+0000 (NUL) at character 5")
    (rlo,) = refused("labs", crp={"not_done": "sample \u202elost"})
    assert rlo.startswith("crp: the reason holds the bidirectional control U+202E")
    assert refused("labs", crp={"not_done": "x" * 2_001})[0].startswith("crp: the reason must be at most 2,000")


def test_a_protocol_declares_limits_up_to_10000_on_text_only() -> None:
    assert FormField(id="notes", label="Notes", type="text", max_length=10_000).text_limit == 10_000
    with pytest.raises(ValidationError, match="less than or equal to 10000"):
        FormField(id="notes", label="Notes", type="text", max_length=10_001)
    with pytest.raises(ValidationError, match="only for text fields"):
        FormField(id="n", label="N", type="integer", max_length=10)

    def long_lot(doc: Any) -> None:
        for arm in doc["arms"]:
            for a in arm["intervention"]["preparation"]["attributes"]:
                if a["id"] == "volume_ml":
                    a["max_length"] = 40

    with pytest.raises(ProtocolError, match="max_length is only for text attributes"):
        load_protocol_text(mutated_text(long_lot))


def test_a_preparation_attribute_refuses_control_characters_and_text_over_its_limit() -> None:
    preparation = P.arms[0].intervention.preparation
    assert preparation is not None
    text = next(a for a in preparation.attributes if a.type == "text")
    good = {a.id: (1 if a.type != "text" else "L-1") for a in preparation.attributes}
    fixed = {a.id: good[a.id] for a in preparation.attributes if a.required}

    def problems(value: str) -> tuple[str, ...]:
        with pytest.raises(PreparationError) as caught:
            validate_preparation(preparation, {**fixed, text.id: value})
        return caught.value.problems

    assert problems("L\x00T")[0].startswith(f"{text.id}: holds the control character U+0000 (NUL)")
    assert problems("x" * 201)[0].startswith(f"{text.id}: must be at most 200 characters, not 201")


# --- through the services, on both databases ----------------------------------------------------------------


def test_the_services_refuse_bad_text_and_keep_what_was_saved(trial: Trial, pid: str) -> None:
    coordinator, monitor = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.MONITOR)
    performance = {"assessed_on": TODAY.isoformat(), "status": "2"}
    save_form(trial.engine, coordinator, pid, "baseline", "performance", performance, complete=True)
    # A reason for change of 1 MB, or holding NUL: refused, the form as it was.
    for reason, rule in (("x" * 1_048_576, "reason: must be at most 2,000 characters"),
                         ("typo\x00", "reason: holds the control character U+0000 (NUL)")):  # fmt: skip
        with pytest.raises(FormError, match="^" + re.escape(rule)):
            save_form(trial.engine, coordinator, pid, "baseline", "performance", {"status": "3"}, reason=reason)
    kept = get_form(trial.engine, coordinator, pid, "baseline", "performance")
    assert kept is not None and kept.values["status"].value == "2" and kept.version == 1

    with pytest.raises(FormError, match=r"^text: holds the bidirectional control U\+202E"):
        raise_query(trial.engine, monitor, pid, "please check \u202egnirts")
    query = raise_query(trial.engine, monitor, pid, "لطفاً تاریخ\u200cها را بررسی کنید")  # Persian, with a ZWNJ
    with pytest.raises(FormError, match=r"^answer: must be at most 2,000 characters, not 2,001"):
        answer_query(trial.engine, coordinator, query.id, "y" * 2_001)
    with pytest.raises(ScreeningError, match=r"^reason: holds the control character U\+001B"):
        withdraw(trial.engine, coordinator, pid, scope="follow_up", cause="withdrew_consent",
                 reason="moved \x1b[31m", withdrawn_on=None)  # fmt: skip
    # Nothing of the refused requests was stored: the query is open and unanswered, the participant followed up.
    assert answer_query(trial.engine, coordinator, query.id, "checked").answer == "checked"
    assert save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 12}).values["crp"].value == 12
