"""What the FHIR export checks in every resource it writes, and the sample it validates with the R4B models.

Every resource passes ``check_bindings`` (the required code bindings and the Observation invariants the R4B models
leave unchecked: cheap). A sample (``FhirSample``) is validated with the ``fhir.resources`` R4B models, and a
sampled resource must serialize through its model to exactly the text written. The sample is bounded and
reaches the whole export: the first ``first`` of each resource type (and of the bundles, validated whole), then of
each further one a candidate with probability ``rate`` (in a trial of more than ``participants`` participants,
``rate x participants / N``), and of the candidates of each type a uniform sample of at most ``most``, kept in a
reservoir as the export goes and validated at its end. With the defaults that is at most 20 + 1,000 of each
resource type and 20 + 1,000 bundles, whatever the trial's size, and any resource beyond the first as likely
to be validated as any other.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

__all__ = ["FhirExportError", "FhirSample", "Sampler", "check_bindings", "validate_resource"]


class FhirExportError(ValueError):
    """A FHIR export that cannot be written; the message names the resource or field and the rule."""


def _codes(words: str) -> frozenset[str]:
    return frozenset(words.split())


#: Required bindings the R4B models leave unchecked (plain strings there); Bundle: this export writes collections.
_REQUIRED: dict[tuple[str, str], frozenset[str]] = {
    ("Bundle", "type"): _codes("collection"),
    ("Observation", "status"): _codes(
        "registered preliminary final amended corrected cancelled entered-in-error unknown"
    ),
    ("ResearchSubject", "status"): _codes(
        "candidate eligible follow-up ineligible not-registered off-study on-study on-study-intervention "
        "on-study-observation pending-on-study potential-candidate screening withdrawn"
    ),
    ("ResearchStudy", "status"): _codes(
        "active administratively-completed approved closed-to-accrual closed-to-accrual-and-intervention completed "
        "disapproved in-review temporarily-closed-to-accrual temporarily-closed-to-accrual-and-intervention withdrawn"
    ),
    ("AdverseEvent", "actuality"): _codes("actual potential"),
    ("MedicationStatement", "status"): _codes(
        "active completed entered-in-error intended stopped on-hold unknown not-taken"
    ),
    ("Patient", "gender"): _codes("male female other unknown"),
    ("Group", "type"): _codes("person animal practitioner device medication substance"),
}
#: The same, by resource type (each resource looks up its own type's bindings only).
_BY_TYPE: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {}
for (_type, _element), _allowed in _REQUIRED.items():
    _BY_TYPE[_type] = (*_BY_TYPE.get(_type, ()), (_element, _allowed))


def check_bindings(data: Mapping[str, Any]) -> None:
    """The required bindings and the Observation invariants the R4B models leave unchecked (cheap: every
    resource of an export passes them); ``FhirExportError`` naming the resource and what is wrong."""
    kind = str(data.get("resourceType"))
    for element, allowed in _BY_TYPE.get(kind, ()):
        if element in data and data[element] not in allowed:
            raise FhirExportError(
                f"{kind}/{data.get('id', '?')}: {element} {data[element]!r} is not one of {', '.join(sorted(allowed))}"
            )
    if kind == "Observation":
        if "dataAbsentReason" in data and any(k.startswith("value") for k in data):
            raise FhirExportError(f"{kind}/{data.get('id', '?')}: obs-6, dataAbsentReason only when there is no value")
        comparator = data.get("valueQuantity", {}).get("comparator")
        if comparator is not None and comparator not in {"<", "<=", ">=", ">"}:
            raise FhirExportError(
                f"{kind}/{data.get('id', '?')}: valueQuantity.comparator {comparator!r} is not <, <=, >= or >"
            )


def validate_resource(data: Mapping[str, Any]) -> Any:
    """The R4B model of one resource, or ``FhirExportError`` naming the resource and what is wrong."""
    check_bindings(data)
    kind = str(data.get("resourceType"))
    try:
        return get_fhir_model_class(kind).model_validate(dict(data))
    except (ValidationError, KeyError, ValueError) as exc:
        raise FhirExportError(f"{kind}/{data.get('id', '?')} does not validate as FHIR R4B: {exc}") from None


@dataclass(frozen=True, slots=True)
class FhirSample:
    """Which resources an export validates with the R4B models: the first ``first`` of each resource type (and
    of the bundles, validated whole), then each further one with probability ``rate``, drawn from a generator
    seeded with ``seed`` (the same export validates the same resources). In a trial of more than
    ``participants`` participants (None: no such limit) the probability is ``rate x participants / N``, so the
    expected number of candidates stays that of ``participants`` participants; of the candidates of one type, at
    most ``most`` (None: no limit) are validated beyond the first, a uniform sample of them over the whole export
    (a seeded reservoir, validated at the export's end). ``rate=1`` (with the limits None, or a trial within
    them) validates everything. The study's bundle, made from the protocol, is validated whole
    whatever the sample."""

    first: int = 20
    rate: float = 0.01
    seed: int = 1
    participants: int | None = 1000
    most: int | None = 1000

    def __post_init__(self) -> None:
        if self.first < 0 or not 0 <= self.rate <= 1:
            raise FhirExportError(f"sample: first {self.first} must be >= 0 and rate {self.rate} in [0, 1]")
        if (self.participants is not None and self.participants < 1) or (self.most is not None and self.most < 0):
            raise FhirExportError(f"sample: participants {self.participants} must be >= 1 and most {self.most} >= 0")


class Sampler:
    """Validates the sampled resources of one export; counts what it validated, by resource type.

    The first ``first`` of each type are validated as they are written. Each further one is a candidate with
    probability ``rate`` (scaled by participants / N in a larger trial), and the candidates of each type go
    through a reservoir of ``most`` places (algorithm R, the export's seeded generator): whatever the number of
    candidates, the ones kept are a uniform sample of them over the whole export, at most ``most`` of a type held
    at a time, validated by ``finish`` at the end of the export (``most=None``: every candidate, validated as it
    is written)."""

    def __init__(self, sample: FhirSample, participants: int = 0) -> None:
        self._sample = sample
        self._random = random.Random(sample.seed)  # noqa: S311 - a reproducible sample, not a secret
        limit = sample.participants
        self._rate = sample.rate if limit is None or participants <= limit else sample.rate * limit / participants
        self._most = sample.most
        self._candidates: dict[str, int] = {}  # of each type, how many were drawn beyond the first
        self._kept: dict[str, list[tuple[Mapping[str, Any], bytes, bool]]] = {}  # the reservoir of each type
        self.passed: set[bytes] = set()  # texts of repeated resources (the study's) already validated
        self.seen: dict[str, int] = {}
        self.validated: dict[str, int] = {}

    def drawn(self, kind: str) -> bool:
        """Whether the next resource of this type is one of the first or a candidate of the sample (one draw per
        resource, in the export's order); a drawn resource is then given to ``validate``."""
        n = self.seen.get(kind, 0)
        self.seen[kind] = n + 1
        if n < self._sample.first:
            return True
        if self._most == 0:
            return False
        return self._random.random() < self._rate

    def validate(self, data: Mapping[str, Any], text: bytes, repeated: bool = False) -> None:
        """Validate the resource just drawn: one of the first of its type (or every candidate, ``most=None``)
        now, a further candidate through its type's reservoir, validated by ``finish``."""
        kind = str(data.get("resourceType"))
        if self._most is None or self.seen.get(kind, 0) <= self._sample.first:
            self._check(data, text, repeated)
            return
        k = self._candidates.get(kind, 0)
        self._candidates[kind] = k + 1
        kept = self._kept.setdefault(kind, [])
        if k < self._most:
            kept.append((data, text, repeated))
        else:
            j = self._random.randrange(k + 1)
            if j < self._most:
                kept[j] = (data, text, repeated)

    def finish(self) -> None:
        """Validate the reservoirs (at the end of the export: a failure stops it, naming the resource)."""
        kept, self._kept = self._kept, {}
        for resources in kept.values():
            for data, text, repeated in resources:
                self._check(data, text, repeated)

    def _check(self, data: Mapping[str, Any], text: bytes, repeated: bool) -> None:
        """Validate ``data`` with its R4B model, which must serialize it to ``text`` exactly. A ``repeated``
        resource (the study's, in every bundle) whose very text has passed already is counted, not validated again:
        the model would see the same bytes."""
        kind = str(data.get("resourceType"))
        if not (repeated and text in self.passed):
            model = validate_resource(data)
            if model.model_dump_json().encode() != text:
                raise FhirExportError(
                    f"{kind}/{data.get('id', '?')}: the text written is not its R4B serialization: {text[:200]!r}"
                )
            if repeated:
                self.passed.add(text)
        self.validated[kind] = self.validated.get(kind, 0) + 1
