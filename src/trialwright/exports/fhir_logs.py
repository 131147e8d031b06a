"""A participant's log entries as FHIR R4 resources: a concomitant medication (a log written to SDTM CM) as a
**MedicationStatement**, a medical history entry (a log written to MH) as a **Condition**.

Which field is the medication, its dose, route, start and end, or the condition's term and dates, is read from the
log's SDTM mapping (``logs[].sdtm.variables``, ``ongoing``), never from the fields' names; a log written to no
SDTM domain is not sent (nothing says what it records). A removed entry is sent as entered in error (its status,
or the Condition's verificationStatus), never dropped.

* MedicationStatement: status active (ongoing), completed (an end date, or not ongoing), entered-in-error
  (removed), else unknown; ``medicationCodeableConcept`` the reported name as text, with the WHO ATC level-5 code
  of its coding (system ``http://www.whocc.no/atc``, the index version) once coded; ``effectivePeriod`` from the
  start and end; ``reasonCode`` the indication as text; ``dosage``: the route and frequency as their CDISC
  submission values (text), the dose per administration as ``doseQuantity`` and a total daily dose as
  ``rateRatio`` (per 1 d), each in the unit CMDOSU holds (as text: no UCUM code is looked up).
* Condition: category ``problem-list-item`` (a history of conditions, not an encounter's diagnosis; R4B's
  condition-category); ``clinicalStatus`` active when the log says ongoing, inactive when it says not ongoing or
  records an end date (con-3 requires one for a problem-list item: an entry that says neither is refused, never
  guessed); ``verificationStatus`` entered-in-error for a removed entry (then no clinicalStatus, con-5); ``code``
  the reported term as text with the MedDRA LLT and PT of its coding once coded; ``onsetDateTime`` and
  ``abatementDateTime`` from the start and end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from trialwright.exports.base import LogRecord
from trialwright.exports.meddra import MEDDRA_SYSTEM
from trialwright.protocol.forms import FieldType
from trialwright.protocol.logs import LogDef, dose_unit

__all__ = ["ATC_SYSTEM", "log_resource"]

ATC_SYSTEM = "http://www.whocc.no/atc"
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"

#: The order the specification (and the R4B models' JSON) gives the elements written here.
_STATEMENT_ORDER = ("resourceType", "id", "status", "medicationCodeableConcept", "subject", "effectivePeriod",
                    "reasonCode", "dosage")  # fmt: skip
_CONDITION_ORDER = ("resourceType", "id", "clinicalStatus", "verificationStatus", "category", "code", "subject",
                    "onsetDateTime", "abatementDateTime")  # fmt: skip


class FhirLogError(ValueError):
    """A log entry that cannot be sent as the FHIR resource it is without guessing."""


def _value(log: LogDef, entry: LogRecord, variable: str) -> Any:
    """The value of the field the log maps to ``variable`` (None: not mapped, not recorded, not done)."""
    assert log.sdtm is not None
    field_id = log.sdtm.variables.get(variable)
    stored = entry.values.get(field_id) if field_id else None
    if not isinstance(stored, Mapping) or stored.get("status", "value") != "value":
        return None
    return stored.get("value")


def _moment(log: LogDef, entry: LogRecord, variable: str, instant: Callable[[dt.datetime], str]) -> str | None:
    """A date as a FHIR date, a date-time (stored as ISO text in UTC) as the R4B models write an instant."""
    assert log.sdtm is not None
    value = _value(log, entry, variable)
    if value is None:
        return None
    if log.field(log.sdtm.variables[variable]).type is FieldType.DATETIME:
        return instant(value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value)))
    return dt.date.fromisoformat(str(value)[:10]).isoformat()


def _ongoing(log: LogDef, entry: LogRecord) -> bool | None:
    assert log.sdtm is not None
    stored = entry.values.get(log.sdtm.ongoing) if log.sdtm.ongoing else None
    value = stored.get("value") if isinstance(stored, Mapping) and stored.get("status", "value") == "value" else None
    return value if isinstance(value, bool) else None


def _number(value: Any, as_number: Callable[[Any], int | float]) -> int | float:
    return as_number(float(value) if not isinstance(value, int | float) else value)


def log_resource(
    log: LogDef,
    entry: LogRecord,
    resource_id: str,
    patient_id: str,
    instant: Callable[[dt.datetime], str],
    as_number: Callable[[Any], int | float],
) -> dict[str, Any] | None:
    """The entry's MedicationStatement (a CM log) or Condition (an MH log); None for a log written to no domain."""
    if log.sdtm is None:
        return None
    if log.sdtm.domain == "CM":
        return _statement(log, entry, resource_id, patient_id, instant, as_number)
    return _condition(log, entry, resource_id, patient_id, instant)


def _statement(
    log: LogDef,
    entry: LogRecord,
    resource_id: str,
    patient_id: str,
    instant: Callable[[dt.datetime], str],
    as_number: Callable[[Any], int | float],
) -> dict[str, Any]:
    start, end = _moment(log, entry, "CMSTDTC", instant), _moment(log, entry, "CMENDTC", instant)
    ongoing = _ongoing(log, entry)
    if entry.state != "active":
        status = "entered-in-error"
    elif ongoing:
        status = "active"
    elif end is not None or ongoing is False:
        status = "completed"
    else:
        status = "unknown"
    medication: dict[str, Any] = {"text": str(_value(log, entry, "CMTRT") or "")}
    coding = entry.coding
    if coding is not None and coding.get("dictionary") == "ATC":
        medication = {"coding": [{"system": ATC_SYSTEM, "version": str(coding["version"]), "code": str(coding["code"]),
                                  "display": str(coding["name"])}], **medication}  # fmt: skip
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": resource_id,
        "status": status,
        "medicationCodeableConcept": medication,
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    period = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    if period:
        resource["effectivePeriod"] = period
    if (indication := _value(log, entry, "CMINDC")) is not None:
        resource["reasonCode"] = [{"text": str(indication)}]
    unit = _value(log, entry, "CMDOSU")
    dosage: dict[str, Any] = {}
    if (frequency := _value(log, entry, "CMDOSFRQ")) is not None:
        dosage["timing"] = {"code": {"text": str(frequency)}}
    if (route := _value(log, entry, "CMROUTE")) is not None:
        dosage["route"] = {"text": str(route)}
    amounts: dict[str, Any] = {}
    for variable, key in (("CMDOSE", "doseQuantity"), ("CMDOSTOT", "rateRatio")):
        value = _value(log, entry, variable)
        if value is None:
            continue
        said = unit if unit is not None else dose_unit(log, variable)
        quantity = {"value": _number(value, as_number), **({"unit": str(said)} if said is not None else {})}
        amounts[key] = quantity if key == "doseQuantity" else {
            "numerator": quantity,
            "denominator": {"value": 1, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"},
        }  # fmt: skip
    if amounts:
        dosage["doseAndRate"] = [amounts]
    if dosage:
        resource["dosage"] = [dosage]
    return {k: resource[k] for k in _STATEMENT_ORDER if k in resource}


def _condition(
    log: LogDef, entry: LogRecord, resource_id: str, patient_id: str, instant: Callable[[dt.datetime], str]
) -> dict[str, Any]:
    start, end = _moment(log, entry, "MHSTDTC", instant), _moment(log, entry, "MHENDTC", instant)
    ongoing = _ongoing(log, entry)
    resource: dict[str, Any] = {"resourceType": "Condition", "id": resource_id}
    if entry.state != "active":
        resource["verificationStatus"] = {"coding": [{"system": _VERIFICATION, "code": "entered-in-error"}]}
    elif ongoing is None and end is None:
        raise FhirLogError(
            f"log {log.id} entry {entry.sequence} of {entry.participant_id}: neither ongoing nor ended, so the "
            "Condition's clinicalStatus (required for a problem-list item, con-3) is unknown; never guessed"
        )
    else:
        code = "active" if ongoing else "inactive"
        resource["clinicalStatus"] = {"coding": [{"system": _CLINICAL, "code": code}]}
    resource["category"] = [{"coding": [{"system": _CATEGORY, "code": "problem-list-item",
                                         "display": "Problem List Item"}]}]  # fmt: skip
    concept: dict[str, Any] = {"text": str(_value(log, entry, "MHTERM") or "")}
    coding = entry.coding
    if coding is not None and coding.get("dictionary") == "MedDRA":
        at = {int(p["level"]): p for p in coding["path"]}
        version = str(coding["version"])
        concept = {"coding": [
            {"system": MEDDRA_SYSTEM, "version": version, "code": str(coding["code"]), "display": str(coding["name"])},
            {"system": MEDDRA_SYSTEM, "version": version, "code": str(at[4]["code"]), "display": str(at[4]["name"])},
        ], **concept}  # fmt: skip
    resource["code"] = concept
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
    if start is not None:
        resource["onsetDateTime"] = start
    if end is not None:
        resource["abatementDateTime"] = end
    return {k: resource[k] for k in _CONDITION_ORDER if k in resource}
