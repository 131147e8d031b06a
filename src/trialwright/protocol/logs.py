"""Log forms: repeating entries per participant, not per visit (concomitant medications, medical history).

A log is a form whose entries are not due at a visit: a participant has any number of them, each numbered in
the order it was added (its sequence), amended or removed with a reason but never deleted. Its fields are form
fields (``trialwright.protocol.forms.FormField``), validated by the same engine as a visit's forms.

A log declares the SDTM domain it is written to and which of its fields fill which variable: the mapping comes
from the protocol, never from the fields' names. ``LOG_VARIABLES`` says which variables each domain takes and
which field types may fill them; ``log_checks`` refuses anything else with the path (and so the line).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field, model_validator

from trialwright.protocol.base import ProtocolModel
from trialwright.protocol.forms import FieldType, FormDef
from trialwright.protocol.references import Found, dupes, unknown

__all__ = [
    "LOG_CODING_COLUMNS",
    "LOG_COLUMNS",
    "LOG_TOPIC",
    "LOG_VARIABLES",
    "LogDef",
    "LogSdtm",
    "coding_columns",
    "log_checks",
]

_TEXT = frozenset({FieldType.TEXT, FieldType.CHOICE})
_DATE = frozenset({FieldType.DATE, FieldType.DATETIME})
_NUMBER = frozenset({FieldType.INTEGER, FieldType.DECIMAL})

#: The SDTM variables (SDTMIG 3.4) a log's fields may fill, per domain, with the field types each accepts. The
#: rest of the domain (STUDYID, DOMAIN, USUBJID, --SEQ, --DECOD and the classes from coding, EPOCH, --STDY,
#: --ENDY, --ENRTPT/--ENTPT from ``ongoing``) the export computes.
LOG_VARIABLES: dict[str, dict[str, frozenset[FieldType]]] = {
    "CM": {
        "CMTRT": frozenset({FieldType.TEXT}),
        "CMINDC": _TEXT,
        "CMDOSE": _NUMBER,
        "CMDOSU": _TEXT,
        "CMDOSFRQ": _TEXT,
        "CMROUTE": _TEXT,
        "CMSTDTC": _DATE,
        "CMENDTC": _DATE,
    },
    "MH": {
        "MHTERM": frozenset({FieldType.TEXT}),
        "MHCAT": _TEXT,
        "MHSTDTC": _DATE,
        "MHENDTC": _DATE,
    },
}

#: Each domain's topic variable: the one a log must map (the medication's name, the condition's term).
LOG_TOPIC = {"CM": "CMTRT", "MH": "MHTERM"}

#: The columns every log's table in the exports begins with; no log field may take one of these ids.
LOG_COLUMNS = ("participant_id", "site", "sequence", "entry_state", "removed_reason")

#: The coding columns a log's table in the exports ends with, by dictionary: MedDRA for a log written to MH (medical
#: history), WHO ATC for any other; no field of that log may take one of these ids (``log_checks``).
LOG_CODING_COLUMNS = {
    "ATC": ("atc_version", "atc_code", "atc_name"),
    "MedDRA": ("meddra_version", "llt_code", "llt_name", "pt_code", "pt_name", "soc_code", "soc_name"),
}


class LogSdtm(ProtocolModel):
    """Where a log's entries go in SDTM."""

    domain: Literal["CM", "MH"] = Field(description="CM (concomitant medications) or MH (medical history).")
    variables: dict[str, str] = Field(
        description=(
            "SDTM variable -> the log's field that fills it. CM: CMTRT (text, required), CMINDC, CMDOSE (number), "
            "CMDOSU, CMDOSFRQ, CMROUTE (text or choice; a choice writes its code, so codes should be CDISC CT "
            "submission values), CMSTDTC, CMENDTC (date or datetime). MH: MHTERM (text, required), MHCAT, MHSTDTC, "
            "MHENDTC."
        )
    )
    ongoing: str | None = Field(
        default=None,
        description=(
            "A boolean field of the log saying the medication or condition goes on: when true, --ENRTPT is "
            "ONGOING and --ENTPT is ``ongoing_until``."
        ),
    )
    ongoing_until: str | None = Field(
        default=None,
        max_length=200,
        description="The reference time point an ongoing entry is ongoing at (--ENTPT), e.g. END OF STUDY; "
        "required with ongoing.",
    )

    atc_class_level: int | None = Field(
        default=None,
        ge=1,
        le=4,
        description="CM: the ATC level (1-4) whose code and name a coded medication's CMCLASCD and CMCLAS hold; "
        "without it they stay empty (no level is assumed).",
    )

    @model_validator(mode="after")
    def _ongoing(self) -> LogSdtm:
        if (self.ongoing is None) != (self.ongoing_until is None):
            raise ValueError("ongoing and ongoing_until go together (--ENRTPT ONGOING needs its --ENTPT)")
        if self.atc_class_level is not None and self.domain != "CM":
            raise ValueError("atc_class_level is for CM: medications are coded to ATC")
        return self


class LogDef(FormDef):
    """A log form: entries repeated per participant, not per visit; its fields are form fields."""

    sdtm: LogSdtm | None = Field(
        default=None, description="The SDTM domain the entries are written to and the fields each variable reads."
    )

    @model_validator(mode="after")
    def _entered_fields(self) -> LogDef:
        for f in self.fields:
            if f.derived is not None:
                raise ValueError(f"field {f.id}: a log's fields are entered, never derived")
            if f.redcap_name is not None:
                raise ValueError(f"field {f.id}: a log is not part of the REDCap project; no redcap_name")
            if f.id in LOG_COLUMNS:
                raise ValueError(
                    f"field {f.id}: {f.id!r} is a column every log's table in the exports begins with "
                    f"({', '.join(LOG_COLUMNS)})"
                )
            for ref in f.not_before:
                if "." in ref:
                    raise ValueError(
                        f"field {f.id}: not_before {ref!r}: a log entry's date may only follow another field of the "
                        "same entry (written without a dot)"
                    )
        return self


def coding_columns(log: LogDef) -> tuple[str, tuple[str, ...]]:
    """The dictionary a log's entries are coded to and the coding columns its table in the exports holds."""
    dictionary = "MedDRA" if log.sdtm is not None and log.sdtm.domain == "MH" else "ATC"
    return dictionary, LOG_CODING_COLUMNS[dictionary]


def log_checks(logs: list[LogDef], form_ids: set[str]) -> Iterator[Found]:
    """Log ids, not_before references and SDTM mappings, each refused with its path."""
    yield from dupes("logs", (g.id for g in logs), "log")
    for i, log in enumerate(logs):
        if log.id in form_ids:
            yield f"logs[{i}].id", f"{log.id!r} is also a form's id; a log and a form are separate tables"
        yield from dupes(f"logs[{i}].fields", (f.id for f in log.fields), "field")
        fields = {f.id: f for f in log.fields}
        dictionary, coded = coding_columns(log)
        for j, f in enumerate(log.fields):
            if f.id in coded:
                hidden = f"({', '.join(coded)}); the field would hide the entry's coding: give it another id"
                said = f"{f.id!r} is one of the {dictionary} coding columns the exports write beside this log's fields "
                yield f"logs[{i}].fields[{j}].id", said + hidden
            for k, ref in enumerate(f.not_before):
                if ref not in fields or ref == f.id:
                    yield f"logs[{i}].fields[{j}].not_before[{k}]", unknown(ref, set(fields) - {f.id}, "field")
                elif fields[ref].type not in _DATE:
                    yield f"logs[{i}].fields[{j}].not_before[{k}]", f"{ref} is a {fields[ref].type.value} field"
        if log.sdtm is not None:
            yield from _mapping(f"logs[{i}].sdtm", log)
    domains = [g.sdtm.domain for g in logs if g.sdtm is not None]
    for domain in sorted({d for d in domains if domains.count(d) > 1}):
        i = [n for n, g in enumerate(logs) if g.sdtm is not None and g.sdtm.domain == domain][1]
        yield f"logs[{i}].sdtm.domain", f"another log is written to {domain} already; one log per SDTM domain"


def _mapping(path: str, log: LogDef) -> Iterator[Found]:
    sdtm = log.sdtm
    assert sdtm is not None
    fields = {f.id: f for f in log.fields}
    allowed = LOG_VARIABLES[sdtm.domain]
    topic = LOG_TOPIC[sdtm.domain]
    if topic not in sdtm.variables:
        yield f"{path}.variables", f"{topic} is not mapped: the {sdtm.domain} domain's topic needs a text field"
    used: dict[str, str] = {}
    for variable, field_id in sdtm.variables.items():
        where = f"{path}.variables.{variable}"
        if variable not in allowed:
            yield where, unknown(variable, allowed, f"{sdtm.domain} variable a log fills")
            continue
        if field_id not in fields:
            yield where, unknown(field_id, fields, f"field of log {log.id}")
            continue
        kind = fields[field_id].type
        if kind not in allowed[variable]:
            accepted = " or ".join(sorted(t.value for t in allowed[variable]))
            yield where, f"{field_id} is a {kind.value} field; {variable} needs {accepted}"
        if field_id in used:
            yield where, f"{field_id} fills {used[field_id]} already; one field, one variable"
        used.setdefault(field_id, variable)
    if sdtm.ongoing is not None:
        if sdtm.ongoing not in fields:
            yield f"{path}.ongoing", unknown(sdtm.ongoing, fields, f"field of log {log.id}")
        elif fields[sdtm.ongoing].type is not FieldType.BOOLEAN:
            yield (
                f"{path}.ongoing",
                f"{sdtm.ongoing} is a {fields[sdtm.ongoing].type.value} field; ongoing needs boolean",
            )
