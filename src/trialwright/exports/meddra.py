"""An adverse event's MedDRA coding as the exports write it: the SDTM AE dictionary columns, and a FHIR coding.

The coding comes from ``EventRecord.coding`` (the primary path of the LLT the coder chose, with the release's
version). An event not coded (or coded for a term reported differently since) has no dictionary columns at all:
AEDECOD stays empty rather than repeating the reported term, and the SDTM README lists the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MEDDRA_SYSTEM", "SDTM_CODING_COLUMNS", "fhir_coding", "sdtm_coding_columns"]

#: MedDRA's FHIR code system.
MEDDRA_SYSTEM = "http://terminology.hl7.org/CodeSystem/mdr"

#: SDTM AE variable -> the coding's key; the codes are numbers (SDTM Num), the names text.
SDTM_CODING_COLUMNS: Mapping[str, str] = {
    "AELLT": "llt_name",
    "AELLTCD": "llt_code",
    "AEDECOD": "pt_name",
    "AEPTCD": "pt_code",
    "AEHLT": "hlt_name",
    "AEHLTCD": "hlt_code",
    "AEHLGT": "hlgt_name",
    "AEHLGTCD": "hlgt_code",
    "AEBODSYS": "soc_name",
    "AEBDSYCD": "soc_code",
    "AESOC": "soc_name",
    "AESOCCD": "soc_code",
}


def sdtm_coding_columns(coding: Mapping[str, Any] | None) -> dict[str, Any]:
    """The AE dictionary columns for one event: from its coding (AEBODSYS is the primary SOC), all empty when
    the event is not coded."""
    if coding is None:
        return dict.fromkeys(SDTM_CODING_COLUMNS)
    return {column: coding[key] for column, key in SDTM_CODING_COLUMNS.items()}


def fhir_coding(coding: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The FHIR codings of an event's MedDRA coding: its LLT and its PT (none when not coded)."""
    if coding is None:
        return []
    return [
        {"system": MEDDRA_SYSTEM, "version": coding["version"], "code": str(coding[f"{level}_code"]),
         "display": coding[f"{level}_name"]}
        for level in ("llt", "pt")
    ]  # fmt: skip
