"""Where each visit-form field goes in the SDTM export, and why a field goes nowhere (README.txt names every one).

A form field's values are written to an SDTM domain only where the protocol declares it: an LB or VS test
(``codes.sdtm``), DM's age and sex sources (``demographics``), the treatment record's date-time, end and dose
(``analysis_plan.treatment``), the death record's and vital-status fields' dates, and the date-time of a form whose
fields are LB or VS tests (their --DTC). Some fields are read without their values being written (the treatment's
preparation code decides ACTARMCD; a death record's status decides DS DEATH or COMPLETED). Every other field is in
no domain; ``left_out`` says why, by the field's kind, so README.txt can name each one: nothing is dropped unnamed.
"""

from __future__ import annotations

from trialwright.domain.deaths import death_fields
from trialwright.exports.sdtm_domains import dm_sources, findings_tests
from trialwright.exports.sdtm_findings import moment_field
from trialwright.protocol import Protocol
from trialwright.protocol.forms import FieldType

__all__ = ["NUMBER_WHY", "left_out", "written_fields"]

#: Why a field of each kind, declared for no domain, is in none.
NUMBER_WHY = "a number with no codes.sdtm test declared in the protocol (not in LB/VS)"
_WHY = {
    FieldType.INTEGER: NUMBER_WHY,
    FieldType.DECIMAL: NUMBER_WHY,
    FieldType.CHOICE: "a choice field: no findings domain is declared for it (codes.sdtm declares LB and VS tests, "
    "of numbers only)",
    FieldType.MULTI_CHOICE: "a multiple-choice field: no findings domain is declared for it (codes.sdtm declares LB "
    "and VS tests, of numbers only)",
    FieldType.BOOLEAN: "a yes/no field: no findings domain is declared for it (codes.sdtm declares LB and VS tests, "
    "of numbers only)",
    FieldType.DATE: "a date field: the protocol declares it for no domain (not a treatment, death or vital-status "
    "date)",
    FieldType.DATETIME: "a date-time field the protocol declares for no domain (the date-time of a form without LB "
    "or VS tests)",
    FieldType.TIME: "a time field: no domain is declared for it",
    FieldType.TEXT: "a text field: no domain is declared for it",
}


def written_fields(p: Protocol) -> dict[str, str]:
    """``form.field`` -> the domain variable its values are written to, for every field the protocol places."""
    placed: dict[str, str] = {}
    tests = findings_tests(p)
    for ref, test in tests.items():
        placed[ref] = f"{test.domain} {test.domain}ORRES ({test.domain}TESTCD {test.testcd})"
    for form in p.forms:
        domains = sorted({t.domain for ref, t in tests.items() if ref.partition(".")[0] == form.id})
        moment = moment_field(form) if domains else None
        if moment is not None:
            placed.setdefault(f"{form.id}.{moment.id}", " and ".join(f"{d} {d}DTC" for d in domains))
    for target, sources in dm_sources(p).items():
        for ref in sources:
            placed.setdefault(ref, f"DM {target}")
    treatment = p.analysis_plan.treatment if p.analysis_plan is not None else None
    if treatment is not None:
        given = p.field(treatment.form, treatment.given_field)
        if given.type is not FieldType.BOOLEAN:
            placed.setdefault(f"{treatment.form}.{given.id}", "EX EXSTDTC")
        for field_id, variable in ((treatment.end_field, "EXENDTC"), (treatment.dose_field, "EXDOSE")):
            if field_id is not None:
                placed.setdefault(f"{treatment.form}.{field_id}", f"EX {variable}")
    record = p.safety.death_record
    dates = {f"{record.form}.{record.date_field}"} if record is not None else set()
    dates |= {v.date_field for v in p.safety.vital_status}
    for ref in sorted(dates & death_fields(p)):
        placed.setdefault(ref, "DM DTHDTC, DS DSSTDTC")
    return {ref: placed[ref] for ref in (f"{form.id}.{f.id}" for form in p.forms for f in form.fields) if ref in placed}


def left_out(p: Protocol) -> dict[str, str]:
    """Every visit-form field whose values are in no SDTM domain (``form.field``), with why, in protocol order."""
    written = written_fields(p)
    read: dict[str, str] = {}
    treatment = p.analysis_plan.treatment if p.analysis_plan is not None else None
    if treatment is not None:
        given = f"{treatment.form}.{treatment.given_field}"
        read[given] = "read, not written: yes makes the EX record (analysis_plan.treatment.given_field)"
        if treatment.code_field is not None:
            read[f"{treatment.form}.{treatment.code_field}"] = ("read, not written: the arm its preparation codes "
                                                                "name is ACTARMCD/ACTARM (analysis_plan.treatment."
                                                                "code_field)")  # fmt: skip
    record = p.safety.death_record
    if record is not None:
        read[f"{record.form}.{record.status_field}"] = ("read, not written: its status makes DS DEATH or COMPLETED "
                                                        "and DM DTHFL (safety.death_record)")  # fmt: skip
    for status in p.safety.vital_status:
        read[status.field] = "read, not written: a died value makes DS DEATH and DM DTHFL (safety.vital_status)"
    out: dict[str, str] = {}
    for form in p.forms:
        for f in form.fields:
            ref = f"{form.id}.{f.id}"
            if ref not in written:
                out[ref] = read.get(ref, _WHY[f.type])
    return out
