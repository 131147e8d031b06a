"""The FHIR export's Observations: one per numeric value of a field whose protocol ``codes`` declare an
``observation`` category (what each carries: ``trialwright.exports.fhir``), and the small builders the export
shares (codings, instants, numbers as the R4B models write them).

What is the same for every value of a field (its category, its code with the LOINC, SNOMED and local codings, its
UCUM quantity and the exact conversion to ``codes.fhir_ucum``) and of a visit (the visit extension) is built once
per export, on the first value that needs it, and shared by every Observation that carries it (the resources are
only serialized, never changed once built). A form's date-time fields are looked up once per form.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trialwright.exports.base import FormRecord
from trialwright.exports.fhir_check import FhirExportError
from trialwright.protocol import Protocol
from trialwright.protocol.codes import ucum_conversion
from trialwright.protocol.forms import FieldType, FormDef, FormField

__all__ = ["BASE", "LOINC_SYSTEM", "SNOMED_SYSTEM", "TERMINOLOGY", "UCUM_SYSTEM", "Observations", "coding",
           "concept", "instant", "number"]  # fmt: skip

BASE = "https://trialwright.dev/fhir"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
_VISIT_URL = f"{BASE}/StructureDefinition/visit"
_ABSENT = {"not_done": ("not-performed", "Not Performed"), "not_applicable": ("not-applicable", "Not Applicable")}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)], **({"text": text} if text else {})}


def instant(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise FhirExportError(f"time {moment.isoformat()} has no time zone")
    # As the R4B models write an instant they parsed: UTC as Z (their JSON is the reference the sample checks).
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def number(value: Any) -> int | float:
    """A stored number as the R4B models write a decimal: an integer when it has no fraction, else a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FhirExportError(f"value {value!r} is not a number")
    # The common cases without a Decimal: a plain int is an integer; a finite float written without an exponent
    # keeps its fraction (Decimal("5.0") has exponent -1), so it is itself; the rest go the exact way below.
    if type(value) is int:
        return value
    if type(value) is float and math.isfinite(value) and "e" not in repr(value):
        return value
    exact = Decimal(str(value))
    if not exact.is_finite():
        raise FhirExportError(f"value {value!r} is not a finite number")
    exponent = exact.as_tuple().exponent
    if exact == exact.to_integral_value() and isinstance(exponent, int) and exponent >= 0:
        return int(exact)
    return float(exact)


class _Converted:
    """A stored number as sent: in the field's unit, or converted to ``codes.fhir_ucum`` by the UCUM library's
    factor (and offset), exactly in decimal (0.6 [1] is 60 %, not 60.00000000000001)."""

    def __init__(self, ucum: str, target: str | None) -> None:
        self.factor: Decimal | None = None
        self.offset = Decimal(0)
        if target is not None:
            found = ucum_conversion(ucum, target)
            if found is None:
                raise FhirExportError(f"codes.fhir_ucum: {ucum} cannot be converted to {target}")
            self.factor, self.offset = Decimal(repr(found[0])), Decimal(repr(found[1]))

    def __call__(self, value: Any) -> int | float:
        sent = number(value)
        if self.factor is None:
            return sent
        return number(float(Decimal(str(sent)) * self.factor + self.offset))

    @property
    def send(self) -> Callable[[Any], int | float]:
        """What converts a value: ``number`` itself when the unit is sent as stored (one call less per value)."""
        return number if self.factor is None else self


@dataclass(frozen=True, slots=True)
class _Field:
    """What every Observation of one field carries alike."""

    field: FormField
    ref: str  # form.field
    category: list[dict[str, Any]]
    code: dict[str, Any]
    quantity: dict[str, Any]
    sent: Callable[[Any], int | float]  # ``_Converted.send``
    method: dict[str, Any] | None
    reference_range: list[dict[str, Any]] | None  # the field's normal_range, in the valueQuantity's unit


class Observations:
    """The Observations of one export (one protocol, one study id), with what repeats built once."""

    def __init__(self, protocol: Protocol, study_id: str) -> None:
        self._protocol = protocol
        self._local = f"{BASE}/CodeSystem/{study_id}"
        self._visit_names: dict[str, str] = {}
        for v in protocol.visits:
            self._visit_names.setdefault(v.id, v.name)
        self._forms: dict[str, tuple[FormDef, list[FormField], tuple[str, ...]]] = {}
        self._fields: dict[tuple[str, str], _Field] = {}
        self._visits: dict[str, list[dict[str, Any]]] = {}

    def _form(self, form_id: str) -> tuple[FormDef, list[FormField], tuple[str, ...]]:
        """The form, its fields that make Observations, and its date-time fields (in order)."""
        found = self._forms.get(form_id)
        if found is None:
            form = self._protocol.form(form_id)
            observed = [f for f in form.fields if f.codes is not None and f.codes.observation is not None
                        and f.codes.ucum is not None]  # fmt: skip
            times = tuple(f.id for f in form.fields if f.type is FieldType.DATETIME)
            found = self._forms[form_id] = (form, observed, times)
        return found

    def _field(self, form: FormDef, f: FormField) -> _Field:
        found = self._fields.get((form.id, f.id))
        if found is None:
            codes = f.codes
            assert codes is not None and codes.observation is not None and codes.ucum is not None
            ref = f"{form.id}.{f.id}"
            codings = [coding(LOINC_SYSTEM, c.code, c.display) for c in codes.loinc]
            codings += [coding(SNOMED_SYSTEM, c.code, c.display) for c in codes.snomed]
            quantity: dict[str, Any] = {**({"unit": f.unit} if f.unit else {}), "system": UCUM_SYSTEM,
                                        "code": codes.ucum}  # fmt: skip
            sent = _Converted(codes.ucum, codes.fhir_ucum)
            if codes.fhir_ucum is not None:
                quantity = {"unit": codes.fhir_ucum, "system": UCUM_SYSTEM, "code": codes.fhir_ucum}
            found = self._fields[(form.id, f.id)] = _Field(
                field=f,
                ref=ref,
                category=[concept(f"{TERMINOLOGY}/observation-category", codes.observation)],
                code={"coding": [*codings, coding(self._local, ref, f.label)], "text": f.label},
                quantity=quantity,
                sent=sent.send,
                method={"text": f"Derived by trialwright ({f.derived.name})"} if f.derived is not None else None,
                reference_range=_reference_range(f, sent, quantity),
            )
        return found

    def _visit(self, visit_id: str) -> list[dict[str, Any]]:
        found = self._visits.get(visit_id)
        if found is None:
            name = self._visit_names.get(visit_id, visit_id)
            found = self._visits[visit_id] = [
                {"url": _VISIT_URL, "valueCoding": coding(f"{self._local}/visit", visit_id, name)}
            ]
        return found

    def of(
        self,
        rec: FormRecord,
        amended: set[tuple[str, str, str, str]],
        pseudonym: Callable[[str, str], str],
        patient_id: str,
        encounter_id: str,
    ) -> list[dict[str, Any]]:
        """The Observations of one form record, in the order of its fields."""
        form, observed, times = self._form(rec.form_id)
        out: list[dict[str, Any]] = []
        if not observed:
            return out
        values = rec.values
        fields = self._fields
        effective = _effective(times, rec)
        issued = instant(rec.updated_at)
        subject = {"reference": f"Patient/{patient_id}"}
        encounter = {"reference": f"Encounter/{encounter_id}"}
        extension = self._visit(rec.visit_id)
        draft = rec.state == "draft"
        place = f"{rec.participant_id}|{rec.visit_id}|"
        for f in observed:
            stored = values.get(f.id)
            if not stored:
                continue
            kind = stored.get("status", "value")
            if (kind == "value" or kind == "derived") and stored.get("value") is None:
                continue
            plan = fields.get((form.id, f.id)) or self._field(form, f)
            if draft:
                status = "preliminary"
            elif (rec.participant_id, rec.visit_id, form.id, f.id) in amended:
                status = "amended"
            else:
                status = "final"
            obs: dict[str, Any] = {
                "resourceType": "Observation",
                "id": pseudonym("observation", place + plan.ref),
                "extension": extension,
                "status": status,
                "category": plan.category,
                "code": plan.code,
                "subject": subject,
                "encounter": encounter,
            }
            if effective:
                obs["effectiveDateTime"] = effective
            obs["issued"] = issued
            if kind == "value" or kind == "derived":
                obs["valueQuantity"] = {"value": plan.sent(stored["value"]), **plan.quantity}
            elif kind in {"below_lloq", "above_uloq"}:
                low = kind == "below_lloq"
                obs["valueQuantity"] = {"value": plan.sent(stored["limit"]), "comparator": "<" if low else ">",
                                        **plan.quantity}  # fmt: skip
                obs["interpretation"] = [
                    concept(f"{TERMINOLOGY}/v3-ObservationInterpretation", "<" if low else ">",
                            "Off scale low" if low else "Off scale high")
                ]  # fmt: skip
            elif kind in {"not_done", "not_applicable"}:
                code, display = _ABSENT[kind]
                obs["dataAbsentReason"] = concept(f"{TERMINOLOGY}/data-absent-reason", code, display)
            else:
                raise FhirExportError(f"{rec.participant_id} {rec.visit_id} {plan.ref}: unknown value status {kind!r}")
            if plan.method is not None:
                obs["method"] = plan.method
            if plan.reference_range is not None and "valueQuantity" in obs:
                obs["referenceRange"] = plan.reference_range
            out.append(obs)
        return out


def _reference_range(
    f: FormField, sent: Callable[[Any], int | float], quantity: dict[str, Any]
) -> list[dict[str, Any]] | None:
    """The field's declared ``normal_range`` as FHIR's referenceRange: low and high (the ends declared, an open end
    left out) as quantities in the unit the valueQuantity is sent in, converted as the values are; none without
    a declared range (never assumed from the limits)."""
    declared = f.normal_range
    if declared is None or (declared.min is None and declared.max is None):
        return None
    ends: dict[str, Any] = {}
    if declared.min is not None:
        ends["low"] = {"value": sent(declared.min), **quantity}
    if declared.max is not None:
        ends["high"] = {"value": sent(declared.max), **quantity}
    return [ends]


def _effective(times: tuple[str, ...], rec: FormRecord) -> str | None:
    """The sample or assessment time (the form's first date-time value), else the visit date."""
    for field_id in times:
        stored = rec.values.get(field_id)
        if stored and stored.get("value"):
            return instant(dt.datetime.fromisoformat(str(stored["value"])))
    return rec.visit_date.isoformat() if rec.visit_date else None
