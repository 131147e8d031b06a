"""Encounter classes: what the FHIR export needs to say where a visit happens.

``EncounterClass`` is the HL7 v3 ActCode value set that FHIR R4 binds ``Encounter.class`` to
(``http://terminology.hl7.org/ValueSet/v3-ActEncounterCode``, the codes under ``_ActEncounterCode``, with their
displays as the R4 expansion of ActCode writes them). It is a table of the standard, not of a trial: which class a
visit has is the protocol's word (``visits[].encounter_class``), never guessed from a visit's name.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ACT_CODE_SYSTEM", "EncounterClass", "encounter_class_display"]

#: The code system of the v3 ActCode concepts, as FHIR R4 names it.
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


class EncounterClass(StrEnum):
    """Where and how a visit happens: a code of HL7 v3 ActEncounterCode (FHIR R4 Encounter.class)."""

    AMB = "AMB"
    EMER = "EMER"
    FLD = "FLD"
    HH = "HH"
    IMP = "IMP"
    ACUTE = "ACUTE"
    NONAC = "NONAC"
    OBSENC = "OBSENC"
    PRENC = "PRENC"
    SS = "SS"
    VR = "VR"


_DISPLAY = {
    EncounterClass.AMB: "ambulatory",
    EncounterClass.EMER: "emergency",
    EncounterClass.FLD: "field",
    EncounterClass.HH: "home health",
    EncounterClass.IMP: "inpatient encounter",
    EncounterClass.ACUTE: "inpatient acute",
    EncounterClass.NONAC: "inpatient non-acute",
    EncounterClass.OBSENC: "observation encounter",
    EncounterClass.PRENC: "pre-admission",
    EncounterClass.SS: "short stay",
    EncounterClass.VR: "virtual",
}


def encounter_class_display(code: EncounterClass) -> str:
    """The display the standard gives the code (e.g. IMP: inpatient encounter)."""
    return _DISPLAY[code]
