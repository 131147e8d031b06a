"""CDISC SDTM Controlled Terminology as shipped data: the one package trialwright checks terms against.

``SDTM_CT_VERSION`` is the package date; ``sdtm_ct()`` reads ``data/SDTM_CT_<date>.tsv`` (an extract of NCI EVS's
``SDTM Terminology.txt``, made by ``scripts/extract_sdtm_ct.py``; ``data/NOTICE.md`` says where it comes from) once
per process. A code list is found by its NCI code (``C66731``) or its submission value (``SEX``); a term by its
submission value. No term is typed in Python: the export's fixed terms (``AESEV`` MILD, ``NY`` Y, ...) are looked up
here, and a term that is not in a code list can only be written as a sponsor extension of an extensible one.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["SDTM_CT_VERSION", "CtCodelist", "CtPackage", "CtTerm", "UnknownCodelist", "sdtm_ct"]

#: The SDTM CT package trialwright ships and checks against (NCI EVS's quarterly release date).
SDTM_CT_VERSION = "2025-03-28"


class UnknownCodelist(KeyError):
    """A code list the shipped extract does not hold."""


@dataclass(frozen=True, slots=True)
class CtTerm:
    code: str  # the term's NCI code (C-code)
    value: str  # the CDISC submission value
    preferred: str  # the NCI preferred term (the decode a define.xml may show)


@dataclass(frozen=True, slots=True)
class CtCodelist:
    code: str  # the code list's NCI code
    short: str  # its submission value (SEX, LBTESTCD)
    name: str  # its name (Sex, Laboratory Test Code)
    extensible: bool
    terms: Mapping[str, CtTerm]  # by submission value, in the package's order

    def __contains__(self, value: object) -> bool:
        return value in self.terms

    def term(self, value: str) -> CtTerm:
        try:
            return self.terms[value]
        except KeyError:
            raise KeyError(f"{value!r} is not a term of CDISC CT {self.short} ({self.code}, SDTM CT "
                           f"{SDTM_CT_VERSION})") from None  # fmt: skip

    def by_code(self, code: str) -> CtTerm | None:
        """The term with this NCI code (a test code's test name shares its C-code), or None."""
        return next((t for t in self.terms.values() if t.code == code), None)


@dataclass(frozen=True, slots=True)
class CtPackage:
    version: str
    codelists: Mapping[str, CtCodelist]  # by NCI code

    def __getitem__(self, key: str) -> CtCodelist:
        """A code list by NCI code (C66731) or submission value (SEX)."""
        found = self.codelists.get(key) or next((c for c in self.codelists.values() if c.short == key), None)
        if found is None:
            raise UnknownCodelist(
                f"code list {key!r} is not in the shipped SDTM CT {self.version} extract "
                "(src/trialwright/protocol/data; scripts/extract_sdtm_ct.py lists what it holds)"
            )
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self.codelists or any(c.short == key for c in self.codelists.values()))


@cache
def sdtm_ct() -> CtPackage:
    """The shipped SDTM CT package, read once."""
    text = resources.files("trialwright.protocol").joinpath(f"data/SDTM_CT_{SDTM_CT_VERSION}.tsv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    heads: dict[str, dict[str, str]] = {}
    terms: dict[str, dict[str, CtTerm]] = {}
    for r in rows:
        parent = r["Codelist Code"]
        if not parent:
            heads[r["Code"]] = r
            terms.setdefault(r["Code"], {})
        else:
            value = r["CDISC Submission Value"]
            terms.setdefault(parent, {})[value] = CtTerm(r["Code"], value, r["NCI Preferred Term"])
    lists = {
        code: CtCodelist(code, h["CDISC Submission Value"], h["Codelist Name"],
                         h["Codelist Extensible (Yes/No)"] == "Yes", terms[code])
        for code, h in heads.items()
    }  # fmt: skip
    return CtPackage(SDTM_CT_VERSION, lists)
