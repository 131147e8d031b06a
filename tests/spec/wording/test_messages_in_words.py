"""Messages in the words on the page (issue 24, item 4): a person reads a field's label, in the page's language when
the protocol translates it, never its id; the API and the command line keep the id (scripts read it).

The protocol here is the first trial's, with a Persian label given to the laboratory form and its CRP field (the
trial's own file translates only a few labels so far, e.g. the screening field ``age``: ``سن``, and criterion I1).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.protocol.conftest import mutated_text
from trialwright.domain.audit import AuditEntry
from trialwright.domain.audit_changes import AuditChange, audit_changes, canonical_units
from trialwright.domain.audit_masking import mask_entry
from trialwright.domain.eligibility import Decision, ScreeningValueError, evaluate, validate_values
from trialwright.domain.forms import FormValueError, validate_entries
from trialwright.domain.masking import MASKED
from trialwright.domain.wording import check_words, criterion_words, field_words, in_words, words_for
from trialwright.protocol import load_protocol_text

CRP_FA = "پروتئین واکنشی C"
LABS_FA = "آزمایش‌ها"


def translated(document: Any) -> None:
    """Persian for the laboratory form's name and its CRP field's label."""
    labs = next(f for f in document["forms"] if f["id"] == "labs")
    labs["translations"] = {"fa": LABS_FA}
    next(f for f in labs["fields"] if f["id"] == "crp")["translations"] = {"fa": CRP_FA}


TEXT = mutated_text(translated)
P = load_protocol_text(TEXT).protocol
AT = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


# --- one reference in words ------------------------------------------------------------------------------------------

FIELDS = [
    # reference, form in hand, language, words
    ("crp", "labs", "en", "C-reactive protein"),
    ("crp", "labs", "fa", CRP_FA),
    ("il6", "labs", "fa", "اینترلوکین ۶ (IL-6)"),
    ("labs.crp", "labs", "en", "C-reactive protein"),
    ("labs.crp", None, "en", "C-reactive protein (Laboratory)"),  # another form than the one in hand: with its name
    ("labs.crp", "vitals", "fa", f"{CRP_FA} ({LABS_FA})"),
    ("hospital_course.ended_on", None, "en", "Date of discharge, transfer or death (Hospital course)"),
    ("age", None, "fa", "سن"),  # no form in hand: a screening field
    ("screening.active_epilepsy", "labs", "en", "Active epilepsy"),
    ("no_such_field", "labs", "en", None),  # names nothing: said by no one, never guessed
    ("labs.no_such_field", None, "en", None),
    ("no_form.crp", None, "en", None),
]


@pytest.mark.parametrize(("ref", "form_id", "lang", "words"), FIELDS)
def test_a_field_is_said_by_its_label_in_the_page_language(
    ref: str, form_id: str | None, lang: str, words: str | None
) -> None:
    assert field_words(P, ref, lang, form_id=form_id) == words


MESSAGES = [
    # message (as the services raise it), words on an English laboratory page
    ("crp: must be a number, not 'lots'", "C-reactive protein: must be a number, not 'lots'"),
    ("labs.cd4_pct, labs.cd3_pct: too high (data check x)",
     "CD4+ (% of lymphocytes), CD3+ (% of lymphocytes): too high (data check x)"),
    (
        "labs.sampled_at: 09:00 is before blood_gas.sampled_at (08:00); the protocol says it is not before "
        "blood_gas.sampled_at (not_before)",
        "Time of sampling: 09:00 is before Time of sampling (Arterial blood gas) (08:00); the protocol says it is not "
        "before Time of sampling (Arterial blood gas) (not_before)",
    ),
    ("visit_date: must be a date written YYYY-MM-DD", "Visit date: must be a date written YYYY-MM-DD"),
    ("reason: the form is complete; a change needs a reason",
     "Reason for change: the form is complete; a change needs a reason"),
    # A plain word of the sentence stays, even where a field bears it as its id; unknown names stay as written.
    ("state: a draft form cannot be verified (crp)", "state: a draft form cannot be verified (crp)"),
    ("crp, nonsense: refused", "C-reactive protein, nonsense: refused"),
    ("the value 'labs.crp' as quoted", "the value 'labs.crp' as quoted"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "words"), MESSAGES)
def test_a_message_names_its_fields_in_words(message: str, words: str) -> None:
    page = words_for(P, "en", form_id="labs", inputs={"visit_date": "Visit date", "reason": "Reason for change"})
    assert in_words(message, page) == words


def test_a_head_naming_an_unknown_field_keeps_it_and_says_the_known_ones() -> None:
    # "nonsense" names nothing and stays as written; each name known is said.
    assert in_words("nonsense, labs.crp: x", words_for(P, "en")) == "nonsense, C-reactive protein (Laboratory): x"
    # Not a list of names before the colon: a sentence, left as written but for the identifiers in it.
    said = in_words("Death reported (labs.crp: must be a number)", words_for(P, "en"))
    assert said == "Death reported (C-reactive protein (Laboratory): must be a number)"


def test_a_crf_refusal_reads_with_the_label_while_the_service_keeps_the_id() -> None:
    with pytest.raises(FormValueError) as refused:
        validate_entries(P.form("labs"), {"crp": "900", "il6": "lots"}, today=AT.date(), timezone="Asia/Tehran")
    assert refused.value.problems == (  # what the API and the CLI answer: ids, which scripts read
        "crp: 900 mg/L is outside the accepted range 0-600 mg/L",
        "il6: must be a number, not 'lots'",
    )
    english = [in_words(p, words_for(P, "en", form_id="labs")) for p in refused.value.problems]
    persian = [in_words(p, words_for(P, "fa", form_id="labs")) for p in refused.value.problems]
    assert english == ["C-reactive protein: 900 mg/L is outside the accepted range 0-600 mg/L",
                       "IL-6: must be a number, not 'lots'"]  # fmt: skip
    assert persian == [f"{CRP_FA}: 900 mg/L is outside the accepted range 0-600 mg/L",
                       "اینترلوکین ۶ (IL-6): must be a number, not 'lots'"]  # fmt: skip


def test_a_screening_refusal_reads_with_the_label() -> None:
    with pytest.raises(ScreeningValueError) as refused:
        validate_values(P, {"age": "old", "active_epilepsy": "perhaps"})
    said = [in_words(p, words_for(P, "fa")) for p in refused.value.problems]
    assert said == ["سن: must be a whole number (got 'old')", "صرع فعال: must be yes or no (got 'perhaps')"]


# --- eligibility summaries ---------------------------------------------------------------------------------------


def test_the_eligibility_summary_names_what_is_missing_and_what_failed_in_words() -> None:
    incomplete = evaluate(P, validate_values(P, {k: v for k, v in ELIGIBLE.items() if k not in {"age", "trauma"}}))
    assert incomplete.decision is Decision.INCOMPLETE and incomplete.missing == ("age", "trauma")
    assert [field_words(P, m, "en") for m in incomplete.missing] == ["Age", "Trauma"]
    assert [field_words(P, m, "fa") for m in incomplete.missing] == ["سن", "تروما"]
    failed = evaluate(P, validate_values(P, {**ELIGIBLE, "age": 70, "dialysis": True}))
    criteria = {c.id: c for c in (*P.eligibility.inclusion, *P.eligibility.exclusion)}
    assert [r.id for r in failed.failed] == ["I1", "E10"]
    # I1 is translated in the trial's file; E10 is not, and reads in its wording.
    assert [criterion_words(criteria[r.id], "fa") for r in failed.failed] == ["سن ۱۸ تا ۶۵ سال", "دیالیز"]
    assert [criterion_words(criteria[r.id], "en") for r in failed.failed] == ["Age 18 to 65 years", "Dialysis"]


# --- the rule of a data check, for its query ---------------------------------------------------------------------


def test_a_data_checks_rule_is_said_in_words() -> None:
    said = {c.id: check_words(P, c) for c in P.data_checks}
    assert said == {
        "end_after_admission": "Date of discharge, transfer or death is at least Date of admission",
        "cd4_cd8_within_cd3": (
            "CD4+ (% of lymphocytes) + CD8+ (% of lymphocytes) is at most CD3+ (% of lymphocytes) + 5"
        ),
        "labs_in_window": "Time of sampling within the visit window",
        "blood_gas_in_window": "Time of sampling within the visit window",
    }


# --- the audit trail as a diff -----------------------------------------------------------------------------------


def _entry(action: str, old: Any = None, new: Any = None, **columns: Any) -> AuditEntry:
    def dumped(value: Any) -> str | None:
        return None if value is None else json.dumps(value)

    return AuditEntry(seq=1, at=AT, actor="alice", action=action, old_value=dumped(old), new_value=dumped(new),
                      **columns)  # fmt: skip


AUDITED = [
    # entry, the changes it shows
    (  # a form value: its stored parts as one change of the field, as stored in the field's unit, with what was
        # typed beside it when it was typed otherwise (the stored value is the one the data holds)
        _entry("form.value_changed", {"value": 450.0, "entered": "45", "unit": "mg/dL"},
               {"value": 38.0, "entered": "38", "unit": "mg/L"}, form="labs", field="crp"),
        [AuditChange("crp", "450 mg/L (entered 45 mg/dL)", "38 mg/L", form="labs")],
    ),
    (
        _entry("form.value_entered", None, {"value": None, "status": "not_done", "reason": "sample clotted"},
               form="labs", field="crp"),
        [AuditChange("crp", "", "not done: sample clotted", form="labs")],
    ),
    (
        _entry("form.value_changed", {"value": None, "status": "below_lloq", "limit": 1.5, "entered": "1.5"},
               {"value": 2.0}, form="labs", field="il6"),
        [AuditChange("il6", "< 1.5 pg/mL", "2 pg/mL", form="labs")],
    ),
    (_entry("form.value_changed", {"value": 38.0}, {"value": 38.0}, form="labs", field="crp"), []),  # no change: no row
    (_entry("visit.held", None, "2026-05-01", field=None), [AuditChange("value", "", "2026-05-01")]),
    (  # a screening's values: each changed field a row of its own; the unchanged keys none
        _entry("screening.changed", {"values": {"age": 71, "trauma": False}, "decision": "not_eligible"},
               {"values": {"age": 61, "trauma": True}, "decision": "not_eligible"}),
        [AuditChange("age", "71", "61", within="values"), AuditChange("trauma", "no", "yes", within="values")],
    ),
    (
        _entry("query.raised", None, {"query": 3, "text": "Please confirm", "origin": "manual"}),
        [AuditChange("query", "", "3"), AuditChange("text", "", "Please confirm"), AuditChange("origin", "", "manual")],
    ),
    (  # one side an object, the other one value
        _entry("query.closed", "answered", {"query": 3, "note": "agreed"}),
        [AuditChange("query", "", "3"), AuditChange("note", "", "agreed"), AuditChange("old_value", "answered", "")],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "changes"), AUDITED, ids=[e.action for e, _ in AUDITED])
def test_an_audit_entry_reads_as_one_row_per_changed_key(entry: AuditEntry, changes: list[AuditChange]) -> None:
    assert list(audit_changes(entry, canonical_units(P))) == changes


def test_a_masked_value_is_listed_as_masked_and_never_revealed() -> None:
    prepared = _entry("dose.prepared", None, {"preparation_code": "P-0001", "product_lot": "LOT-EXO-7731"})
    shown = audit_changes(mask_entry(prepared))
    assert shown == (AuditChange("preparation_code", "", "P-0001"), AuditChange("product_lot", "", MASKED))
    assert "LOT-EXO-7731" not in repr(shown)
    # Masked on both sides: listed (nobody can tell whether it changed), still masked.
    both = _entry("dose.prepared", {"product_lot": "LOT-A"}, {"product_lot": "LOT-A"})
    assert audit_changes(mask_entry(both)) == (AuditChange("product_lot", MASKED, MASKED),)
