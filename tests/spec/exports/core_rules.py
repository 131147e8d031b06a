"""The CDISC CORE rules the SDTM conformance checks implement, each by its published id.

A check in ``test_sdtmig.py`` or ``test_sdtm_design.py`` names the CORE rules whose text it implements with
``@core("CORE-000045", ...)``, or says why none does with ``@no_core("...")``; ``test_core_rule_ids.py`` holds
every check to one of the two and every id to this table. The ids and texts were read from CDISC's published
rules (the ``Published/`` folder of the cdisc-org/cdisc-open-rules repository, commit 618ab81d of 2026-08-22),
keeping only rules whose authorities cite SDTMIG 3.4; an id is cited only where the rule's check, read in its
``rule.yml``, is what the spec asserts. The text here is a short restatement of the rule's description, with the
SDTM/SDTMIG conformance rule (CG), or the FDA business rule (FB), it carries out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

#: CORE id -> (the SDTMIG conformance rule it carries out, what the rule raises an error for).
CORE_RULES: dict[str, tuple[str, str]] = {
    "CORE-000006": ("CG0131", "DM DTHFL populated with anything but Y"),
    "CORE-000007": ("CG0435", "DM DTHDTC populated but DTHFL not Y"),
    "CORE-000027": ("CG0328/CG0329", "a TE element with neither TEENRL nor TEDUR"),
    "CORE-000034": ("CG0069", "DS DSDECOD DEATH with DSSTDTC not equal to DM.DTHDTC"),
    "CORE-000037": ("CG0653", "SV SVPRESP neither Y nor null"),
    "CORE-000038": ("CG0654", "SV SVOCCUR populated while SVPRESP is not Y"),
    "CORE-000045": ("CG0517", "DM ARMCD null and ARMNRS null"),
    "CORE-000046": ("CG0519", "DM ARM null and ARMNRS null"),
    "CORE-000047": ("CG0518", "DM ARM populated and not among TA.ARM"),
    "CORE-000083": ("CG0553", "--ORRES null on a record with --LOBXFL Y (not derived)"),
    "CORE-000097": ("CG0218", "SV EPOCH not SE.EPOCH of an SE record whose SESTDTC-SEENDTC holds SVSTDTC"),
    "CORE-000105": ("CG0569", "--STRESC empty on a record with --LOBXFL Y"),
    "CORE-000119": ("CG0521", "DM ARM populated while ARMCD is null"),
    "CORE-000120": ("CG0522", "DM ACTARM populated while ACTARMCD is null"),
    "CORE-000121": ("CG0520", "DM ARMNRS populated while both ARMCD and ACTARMCD are populated"),
    "CORE-000126": ("CG0391", "AE AESDTH populated with anything but Y or N"),
    "CORE-000134": ("CG0203", "SUPP-- RDOMAIN other than DM with IDVAR empty"),
    "CORE-000138": ("CG0221", "--STDY populated while the date of --STDTC or DM.RFSTDTC is incomplete"),
    "CORE-000139": ("CG0223", "--ENDY populated while the date of --ENDTC or DM.RFSTDTC is incomplete"),
    "CORE-000144": ("CG0247", "TA TAETORD not unique within an arm"),
    "CORE-000170": ("CG0541", "--LOBXFL neither Y nor null"),
    "CORE-000199": ("CG0406", "--TEST longer than 40 characters"),
    "CORE-000204": ("CG0410", "SV VISITNUM of a planned visit (in TV) not unique within a subject"),
    "CORE-000208": ("CG0512", "DM ACTARMCD populated and not among TA.ARMCD"),
    "CORE-000209": ("CG0514", "DM ACTARM populated and not among TA.ARM"),
    "CORE-000210": ("CG0516", "DM ARMCD populated and not among TA.ARMCD"),
    "CORE-000221": (
        "CG0417",
        "SUPP-- QNAM over 8 characters, or other than upper-case letters, digits and _, or starting with a digit",
    ),
    "CORE-000223": ("CG0513", "DM ACTARMCD null and ARMNRS null"),
    "CORE-000224": ("CG0515", "DM ACTARM null and ARMNRS null"),
    "CORE-000252": ("CG0136", "a DS record with DSDECOD DEATH while DM DTHFL is not Y"),
    "CORE-000253": ("CG0135", "an AE record with AESDTH Y while DM DTHFL is not Y"),
    "CORE-000254": ("CG0134", "an AE record with AEOUT FATAL while DM DTHFL is not Y"),
    "CORE-000271": ("CG0009", "EPOCH not among TA.EPOCH"),
    "CORE-000294": ("CG0270", "TS AGEMAX's TSVAL not ISO 8601"),
    "CORE-000354": ("CG0007", "--DY populated while the date of --DTC or DM.RFSTDTC is incomplete"),
    "CORE-000457": ("CG0373", "SUPP-- RDOMAIN naming no dataset of the study"),
    "CORE-000502": ("CG0369", "RDOMAIN populated but no dataset of the study has that domain"),
    "CORE-000505": ("TRC1734c", "TS SSTDTC's TSVAL not ISO 8601"),
    "CORE-000529": ("CG0006", "--DY (complete dates) not the study day algorithm's non-zero integer"),
    "CORE-000541": (
        "CG0372",
        "IETESTCD over 8 characters, or other than letters, digits and _, or starting with a digit",
    ),
    "CORE-000552": ("CG0220", "--STDY not the study day algorithm's value"),
    "CORE-000553": ("CG0222", "--ENDY not the study day algorithm's value"),
    "CORE-000594": ("CG0359", "a variable label not in title case (a pattern: each word capitalized but a, of, ...)"),
    "CORE-000598": ("CG0413", "a dataset whose name does not begin with its DOMAIN value"),
    "CORE-000784": ("CG0217", "SV TAETORD not SE.TAETORD of an SE record whose SESTDTC-SEENDTC holds SVSTDTC"),
    "CORE-000867": ("FB1501", "a character value beginning with a space (FDA business rule)"),
}


def core(*ids: str) -> Callable[[F], F]:
    """The CORE rules (ids of ``CORE_RULES``) whose text the check implements."""

    def mark(check: F) -> F:
        check.core_rules = ids  # type: ignore[attr-defined]
        return check

    return mark


def no_core(why: str) -> Callable[[F], F]:
    """No published CORE rule (SDTMIG 3.4) says what the check asserts; ``why`` says what it checks instead."""

    def mark(check: F) -> F:
        check.core_rules = ()  # type: ignore[attr-defined]
        check.no_core_rule = why  # type: ignore[attr-defined]
        return check

    return mark
