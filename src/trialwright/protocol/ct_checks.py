"""The protocol's CDISC terms checked against the SDTM CT package trialwright ships (``cdisc_ct``).

Refused (``ct_checks``, for ``protocol check``, with the path of each): an LB or VS test code that is a CT term
whose declared test name is not that term's (--TESTCD and --TEST are paired by NCI code), and a test name that is
CT's name of another code. Noted (``ct_extensions``: the export writes them as sponsor extensions of extensible
code lists, ``def:ExtendedValue`` in define.xml): test codes, specimens and units outside their code lists, an
arm's route outside ROUTE, a visit's epoch outside EPOCH.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from trialwright.protocol.cdisc_ct import sdtm_ct
from trialwright.protocol.references import Found

if TYPE_CHECKING:
    from trialwright.protocol.model import Protocol

__all__ = ["BLINDING_EXTENDED", "ct_checks", "ct_extensions"]

#: ``masking.blinding`` values C66735 (Trial Blinding Schema Response, extensible) has no term for, with what the
#: SDTM export writes in TS TBLIND as a sponsor extension (``exports.sdtm_design``; walk 6 F6). ``custom`` has none:
#: which roles are masked is not one schema, so it is left out, never guessed.
BLINDING_EXTENDED = {"triple": "TRIPLE BLIND"}


def ct_checks(p: Protocol) -> Iterator[Found]:
    ct = sdtm_ct()
    for i, form in enumerate(p.forms):
        for j, f in enumerate(form.fields):
            test = f.codes.sdtm if f.codes is not None else None
            if test is None:
                continue
            path = f"forms[{i}].fields[{j}].codes.sdtm"
            codes, names = ct[f"{test.domain}TESTCD"], ct[f"{test.domain}TEST"]
            term = codes.terms.get(test.testcd)
            if term is not None:
                name = names.by_code(term.code)
                if name is not None and name.value != test.test:
                    yield f"{path}.test", (f"{test.domain}TESTCD {test.testcd} ({term.code}) is named "
                                           f"{name.value!r} in SDTM CT {ct.version}, not {test.test!r}")  # fmt: skip
            elif (other := names.terms.get(test.test)) is not None:
                code = codes.by_code(other.code)
                yield f"{path}.testcd", (f"{test.test!r} is SDTM CT {ct.version}'s {test.domain}TEST of "
                                         f"{code.value if code else other.code}, not of {test.testcd}")  # fmt: skip


def ct_extensions(p: Protocol) -> tuple[str, ...]:
    """Notes: what the SDTM export writes as a sponsor extension of an extensible CT code list."""
    ct = sdtm_ct()
    out: dict[str, list[str]] = {}

    def outside(short: str, value: str, where: str) -> None:
        if value not in ct[short]:
            out.setdefault(short, []).append(f"{value} ({where})")

    for form in p.forms:
        for f in form.fields:
            test = f.codes.sdtm if f.codes is not None else None
            if test is None:
                continue
            where = f"{form.id}.{f.id}"
            outside(f"{test.domain}TESTCD", test.testcd, where)
            if test.specimen:
                outside("SPECTYPE", test.specimen, where)
            for unit in test.units.values():
                outside("UNIT", unit, where)
    for arm in p.arms:
        outside("ROUTE", arm.intervention.route.upper(), f"arm {arm.code}")
    if p.masking.blinding is not None and p.masking.blinding.value in BLINDING_EXTENDED:
        outside("TBLIND", BLINDING_EXTENDED[p.masking.blinding.value], f"masking.blinding {p.masking.blinding.value}")
    for visit in p.visits:
        if visit.epoch:
            outside("EPOCH", visit.epoch, f"visit {visit.id}")
    return tuple(
        f"SDTM: not a term of CDISC CT {short} ({ct[short].code}, SDTM CT {ct.version}), written as a sponsor "
        f"extension: {', '.join(dict.fromkeys(values))}"
        for short, values in out.items()
    )
