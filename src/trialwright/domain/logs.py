"""What a log entry's values may not say together: the rules of a whole entry, past each field's own.

A log written to SDTM CM or MH may name a boolean field saying the medication or condition goes on
(``logs[].sdtm.ongoing``: --ENRTPT ONGOING) and a field holding its end date (the one filling CMENDTC or MHENDTC).
An entry that is ongoing has no end date: both at once would write --ENDTC and --ENRTPT ONGOING in SDTM, and a FHIR
MedicationStatement "active" with an end, which contradict each other. The entry's save (``services.logs``: add and
amend, from the CLI, the API and the pages) and the ODM import (``services.odm_import_subjects.refused_values``)
refuse it here, naming both fields; which fields they are comes from the protocol, never from their names.
"""

from __future__ import annotations

from collections.abc import Mapping

from trialwright.domain.forms import StoredValue
from trialwright.protocol.logs import LogDef

__all__ = ["LOG_END", "ONGOING_WITH_END", "entry_problems"]

#: Each domain's end date variable: an entry that is ongoing has none.
LOG_END = {"CM": "CMENDTC", "MH": "MHENDTC"}

#: The rule an ongoing entry with an end date breaks, as the refusal says it (after the two fields' ids).
ONGOING_WITH_END = "an entry that is ongoing has no end date; clear the end date, or record that it is not ongoing"


def _given(stored: StoredValue | None) -> bool:
    return stored is not None and stored.status in {"value", "derived"} and stored.value is not None


def entry_problems(log: LogDef, values: Mapping[str, StoredValue]) -> list[str]:
    """The entry's values (as they will be stored, after this change) breaking a rule of the whole entry, one
    ``fields: rule`` message each: an entry ongoing (its ``ongoing`` field yes) with an end date."""
    sdtm = log.sdtm
    if sdtm is None or sdtm.ongoing is None:
        return []
    end = sdtm.variables.get(LOG_END[sdtm.domain])
    ongoing = values.get(sdtm.ongoing)
    if end is None or not _given(values.get(end)) or ongoing is None or ongoing.value is not True:
        return []
    return [f"{end}, {sdtm.ongoing}: {ONGOING_WITH_END}"]
