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

from trialwright.protocol.base import ProtocolModel, a_kind
from trialwright.protocol.cdisc_ct import sdtm_ct
from trialwright.protocol.forms import FieldType, FormDef
from trialwright.protocol.references import Found, dupes, unknown

__all__ = [
    "LOG_CODELISTS",
    "LOG_CODING_COLUMNS",
    "LOG_COLUMNS",
    "LOG_DOSES",
    "LOG_TOPIC",
    "LOG_VARIABLES",
    "LogDef",
    "LogSdtm",
    "LogTerminology",
    "coding_columns",
    "dose_unit",
    "log_checks",
]

_TEXT = frozenset({FieldType.TEXT, FieldType.CHOICE})
_DATE = frozenset({FieldType.DATE, FieldType.DATETIME})
_NUMBER = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
_CHOICE = frozenset({FieldType.CHOICE})

#: The SDTM variables (SDTMIG 3.4) a log's fields may fill, per domain, with the field types each accepts. The
#: rest of the domain (STUDYID, DOMAIN, USUBJID, --SEQ, --DECOD and the classes from coding, EPOCH, --STDY,
#: --ENDY, --ENRTPT/--ENTPT from ``ongoing``) the export computes.
LOG_VARIABLES: dict[str, dict[str, frozenset[FieldType]]] = {
    "CM": {
        "CMTRT": frozenset({FieldType.TEXT}),
        "CMINDC": _TEXT,
        "CMDOSE": _NUMBER,
        "CMDOSU": _CHOICE,
        "CMDOSFRQ": _CHOICE,
        "CMDOSTOT": _NUMBER,
        "CMROUTE": _CHOICE,
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

#: The variables whose values come from a CDISC CT codelist (SDTMIG 3.4 CM), with the codelist's NCI code: a
#: log writing one declares the codelist, its CT package and its terms (``LogSdtm.terminology``), and every value
#: the log can write must be one of them; the terms are checked against the SDTM CT package trialwright ships
#: (``trialwright.protocol.cdisc_ct``), and the package declared must be that one.
LOG_CODELISTS = {"CMDOSU": "C71620", "CMDOSFRQ": "C71113", "CMROUTE": "C66729"}

#: The dose variables: each is written with its unit (CMDOSU), from a CMDOSU field or the dose field's own unit.
LOG_DOSES = ("CMDOSE", "CMDOSTOT")

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


class LogTerminology(ProtocolModel):
    """The CDISC CT codelist a log variable's values come from, as the protocol's author checked it."""

    codelist: str = Field(
        pattern=r"^C\d+$", description="The codelist's NCI code: C71620 (UNIT), C71113 (FREQ), C66729 (ROUTE)."
    )
    version: str = Field(
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="The CDISC SDTM CT package (its date) the terms come from: the one trialwright ships and checks "
        "them in (2025-03-28); another is refused.",
    )
    terms: list[str] = Field(
        min_length=1, description="The codelist's submission values the log may write, each a term of the codelist."
    )
    extensions: list[str] = Field(
        default_factory=list,
        description="Sponsor terms added to an extensible codelist (define.xml marks them def:ExtendedValue); a term "
        "of the codelist, or any term of a codelist that is not extensible, is refused here.",
    )


class LogSdtm(ProtocolModel):
    """Where a log's entries go in SDTM."""

    domain: Literal["CM", "MH"] = Field(description="CM (concomitant medications) or MH (medical history).")
    variables: dict[str, str] = Field(
        description=(
            "SDTM variable -> the log's field that fills it. CM: CMTRT (text, required), CMINDC, CMDOSE (dose per "
            "administration) and CMDOSTOT (total daily dose; numbers, each with its unit: a CMDOSU field, or the "
            "dose field's own unit), CMDOSU, CMDOSFRQ, CMROUTE (choice fields whose codes are CDISC CT submission "
            "values, declared in terminology), CMSTDTC, CMENDTC (date or datetime). MH: MHTERM (text, required), "
            "MHCAT, MHSTDTC, MHENDTC."
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

    terminology: dict[str, LogTerminology] = Field(
        default_factory=dict,
        description="CM: for each of CMDOSU, CMDOSFRQ and CMROUTE the log writes, the CDISC CT codelist, package "
        "and terms its values are checked against (protocol check refuses a value outside them).",
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


def log_checks(logs: list[LogDef], form_ids: set[str], *, stored: bool = False) -> Iterator[Found]:
    """Log ids, not_before references and SDTM mappings, each refused with its path. ``stored``: a text read back
    from a trial database is read under the rules it was stored with; the rules added since (coding column names,
    a dose's unit, CM's CT terms, coded variables from choices only, an MH log able to say ongoing or ended) refuse
    its exports instead (``services.exports.run_export``), never the trial's pages."""
    yield from dupes("logs", (g.id for g in logs), "log")
    for i, log in enumerate(logs):
        if log.id in form_ids:
            yield f"logs[{i}].id", f"{log.id!r} is also a form's id; a log and a form are separate tables"
        yield from dupes(f"logs[{i}].fields", (f.id for f in log.fields), "field")
        fields = {f.id: f for f in log.fields}
        dictionary, coded = coding_columns(log)
        for j, f in enumerate(log.fields):
            if f.id in coded and not stored:
                hidden = f"({', '.join(coded)}); the field would hide the entry's coding: give it another id"
                said = f"{f.id!r} is one of the {dictionary} coding columns the exports write beside this log's fields "
                yield f"logs[{i}].fields[{j}].id", said + hidden
            for k, ref in enumerate(f.not_before):
                if ref not in fields or ref == f.id:
                    yield f"logs[{i}].fields[{j}].not_before[{k}]", unknown(ref, set(fields) - {f.id}, "field")
                elif fields[ref].type not in _DATE:
                    yield f"logs[{i}].fields[{j}].not_before[{k}]", f"{ref} is {a_kind(fields[ref].type.value)} field"
        if log.sdtm is not None:
            yield from _mapping(f"logs[{i}].sdtm", log, stored=stored)
    domains = [g.sdtm.domain for g in logs if g.sdtm is not None]
    for domain in sorted({d for d in domains if domains.count(d) > 1}):
        i = [n for n, g in enumerate(logs) if g.sdtm is not None and g.sdtm.domain == domain][1]
        yield f"logs[{i}].sdtm.domain", f"another log is written to {domain} already; one log per SDTM domain"


def _mapping(path: str, log: LogDef, *, stored: bool = False) -> Iterator[Found]:
    sdtm = log.sdtm
    assert sdtm is not None
    fields = {f.id: f for f in log.fields}
    allowed = LOG_VARIABLES[sdtm.domain]
    if stored:  # before CT terms were checked, these were read from text or choice fields
        allowed = {**allowed, **{v: _TEXT for v in LOG_CODELISTS if v in allowed}}
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
            yield where, f"{field_id} is {a_kind(kind.value)} field; {variable} needs {accepted}"
        if field_id in used:
            yield where, f"{field_id} fills {used[field_id]} already; one field, one variable"
        used.setdefault(field_id, variable)
    if not stored:
        yield from _doses(path, log)
        if sdtm.domain == "MH" and sdtm.ongoing is None and "MHENDTC" not in sdtm.variables:
            yield path, (f"log {log.id} maps neither an ongoing field nor MHENDTC (an end date): the FHIR "
                         "Condition's clinicalStatus (active or inactive) needs one of them, so the FHIR export "
                         "would refuse every entry; name a boolean ongoing field (with ongoing_until) or map "
                         "MHENDTC to a date field")  # fmt: skip
    if sdtm.ongoing is not None:
        if sdtm.ongoing not in fields:
            yield f"{path}.ongoing", unknown(sdtm.ongoing, fields, f"field of log {log.id}")
        elif fields[sdtm.ongoing].type is not FieldType.BOOLEAN:
            yield (
                f"{path}.ongoing",
                f"{sdtm.ongoing} is {a_kind(fields[sdtm.ongoing].type.value)} field; ongoing needs boolean",
            )


def dose_unit(log: LogDef, variable: str) -> str | None:
    """The unit a dose variable (CMDOSE, CMDOSTOT) is written with when no CMDOSU field is mapped: the dose field's
    own unit (its values are stored in it), else None (``log_checks`` refuses a dose without a unit)."""
    sdtm = log.sdtm
    if sdtm is None or variable not in sdtm.variables or "CMDOSU" in sdtm.variables:
        return None
    fields = {f.id: f for f in log.fields}
    found = fields.get(sdtm.variables[variable])
    return found.unit if found is not None else None


def _doses(path: str, log: LogDef) -> Iterator[Found]:
    """Each dose with a unit, one unit source, and every coded value within its declared CT codelist."""
    sdtm = log.sdtm
    assert sdtm is not None
    fields = {f.id: f for f in log.fields}
    mapped = {v: fields[f] for v, f in sdtm.variables.items() if f in fields}
    units: dict[str, list[str]] = {}  # CMDOSU term -> where it comes from
    for variable in LOG_DOSES:
        dose = mapped.get(variable)
        if dose is None:
            continue
        where = f"{path}.variables.{variable}"
        if "CMDOSU" in sdtm.variables and dose.unit is not None:
            yield where, (f"{dose.id} declares its unit {dose.unit!r} and CMDOSU reads {sdtm.variables['CMDOSU']}: "
                          "one source for the dose unit")  # fmt: skip
        elif "CMDOSU" not in sdtm.variables and dose.unit is None:
            yield where, (f"{variable} is mapped with no unit: map CMDOSU to a unit field, or declare {dose.id}'s "
                          "unit (SDTMIG 3.4 CM: a dose is written with CMDOSU)")  # fmt: skip
        elif dose.unit is not None:
            units.setdefault(dose.unit, []).append(f"{dose.id}'s unit")
    if len(units) > 1:
        yield f"{path}.variables", (f"the doses declare different units ({', '.join(sorted(units))}); CMDOSU holds "
                                    "one unit per entry")  # fmt: skip
    written: dict[str, dict[str, str]] = {"CMDOSU": {u: " and ".join(w) for u, w in units.items()}} if units else {}
    for variable in LOG_CODELISTS:
        f = mapped.get(variable)
        if f is not None:
            written[variable] = {c.code: f"{f.id} choice {c.code!r}" for c in f.choices or ()}
    for variable, values in written.items():
        declared = sdtm.terminology.get(variable)
        if declared is None:
            yield f"{path}.terminology", (f"{variable} is written but its CDISC CT codelist is not declared "
                                          f"(terminology.{variable}: codelist {LOG_CODELISTS[variable]}, version, "
                                          "terms): its values are checked against it")  # fmt: skip
            continue
        where = f"{path}.terminology.{variable}"
        if declared.codelist != LOG_CODELISTS[variable]:
            yield f"{where}.codelist", (f"{declared.codelist} is not {variable}'s codelist "
                                        f"({LOG_CODELISTS[variable]}, SDTMIG 3.4 CM)")  # fmt: skip
            continue
        yield from ct_terms(declared, where)
        outside = [said for value, said in values.items() if value not in {*declared.terms, *declared.extensions}]
        if outside:
            yield where, (f"not in the declared {declared.codelist} terms or extensions (CT {declared.version}): "
                          f"{', '.join(outside)}")  # fmt: skip
    for variable in sdtm.terminology:
        if variable not in written:
            yield f"{path}.terminology.{variable}", (
                f"{variable} is not written by this log" if variable in LOG_CODELISTS
                else unknown(variable, LOG_CODELISTS, "variable with a CT codelist"))  # fmt: skip


def ct_terms(declared: LogTerminology, where: str) -> Iterator[tuple[str, str]]:
    """(path, message) for a declared CT package other than the shipped one, a term that is not in the codelist,
    and an extension that is a term already or of a codelist that is not extensible."""
    ct = sdtm_ct()
    if declared.version != ct.version:
        yield f"{where}.version", (f"SDTM CT {declared.version}: trialwright ships and checks terms in SDTM CT "
                                   f"{ct.version} only; declare version {ct.version}")  # fmt: skip
        return
    codelist = ct[declared.codelist]
    for i, term in enumerate(declared.terms):
        if term not in codelist:
            why = "; a sponsor term goes in extensions" if codelist.extensible else ", which is not extensible"
            yield f"{where}.terms[{i}]", (f"{term!r} is not a term of {codelist.short} ({codelist.code}) in SDTM CT "
                                          f"{ct.version}{why}")  # fmt: skip
    for i, term in enumerate(declared.extensions):
        if term in codelist:
            yield f"{where}.extensions[{i}]", (f"{term!r} is a term of {codelist.short} ({codelist.code}): list it "
                                               "in terms")  # fmt: skip
        elif not codelist.extensible:
            yield f"{where}.extensions[{i}]", f"{codelist.short} ({codelist.code}) is not extensible: no sponsor term"
