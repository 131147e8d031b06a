"""Medical coding dictionaries: MedDRA's distribution files, read and checked.

MedDRA (the Medical Dictionary for Regulatory Activities) is licensed: the sponsor loads the release it holds a
licence for; trialwright ships none of it. A release is a folder of ``$``-delimited ASCII files, one record a line,
each line ending with ``$``:

=============  ======================================================================================
file           fields (in order; those trialwright reads are named, the others are kept unread)
=============  ======================================================================================
soc.asc        soc_code, soc_name, soc_abbrev, then 7 legacy codes (WHO-ART, HARTS, COSTART, ICD ...)
hlgt.asc       hlgt_code, hlgt_name, then 7 legacy codes
hlt.asc        hlt_code, hlt_name, then 7 legacy codes
pt.asc         pt_code, pt_name, null_field, pt_soc_code (the primary SOC), then 7 legacy codes
llt.asc        llt_code, llt_name, pt_code, 6 legacy codes, llt_currency (Y/N), llt_jart_code
soc_hlgt.asc   soc_code, hlgt_code
hlgt_hlt.asc   hlgt_code, hlt_code
hlt_pt.asc     hlt_code, pt_code
mdhier.asc     pt_code, hlt_code, hlgt_code, soc_code, pt_name, hlt_name, hlgt_name, soc_name, soc_abbrev,
               null_field, pt_soc_code, primary_soc_fg (Y/N)
=============  ======================================================================================

A PT may sit under several HLTs (and so several SOCs); ``mdhier.asc`` lists every path and flags exactly one per
PT as primary. ``read_meddra`` refuses a release that breaks any link, naming the file, the line and the rule
(``DictionaryError``): a code that is not in its own file, a link to a term that does not exist, a PT without its
primary path, a primary path whose SOC is not the PT's ``pt_soc_code``, a path that the link files do not hold.
Nothing here reads files: the caller passes each file's text.

``term_table`` gives the safety tables their lines by SOC and PT from the events' codings (``TermRow``), with the
events not coded yet as their own line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "MEDDRA_FILES",
    "NOT_CODED",
    "DictionaryError",
    "Llt",
    "MeddraRelease",
    "MeddraTerm",
    "Path",
    "TermRow",
    "check_version",
    "read_meddra",
    "term_table",
]

#: The files of a MedDRA ASCII release and how many fields each line holds (before the closing ``$``).
MEDDRA_FILES: Mapping[str, int] = {
    "soc.asc": 10,
    "hlgt.asc": 9,
    "hlt.asc": 9,
    "pt.asc": 11,
    "llt.asc": 11,
    "soc_hlgt.asc": 2,
    "hlgt_hlt.asc": 2,
    "hlt_pt.asc": 2,
    "mdhier.asc": 12,
}

_VERSION = re.compile(r"\d{1,3}\.\d{1,2}")
_NAME_LIMIT = 100  # MedDRA's term names are at most 100 characters


class DictionaryError(ValueError):
    """A dictionary file that breaks a rule; the message is ``file line N: rule``."""


@dataclass(frozen=True)
class MeddraTerm:
    """A SOC, HLGT, HLT or PT."""

    level: str  # soc, hlgt, hlt, pt
    code: int
    name: str
    abbrev: str | None = None  # SOCs only
    primary_soc: int | None = None  # PTs only
    line: int = 0  # where its file lists it


@dataclass(frozen=True)
class Llt:
    """A lowest level term: its PT, and whether it is current (non-current LLTs stay for old data only)."""

    code: int
    name: str
    pt_code: int
    current: bool


@dataclass(frozen=True)
class Path:
    """One PT's place in the hierarchy: PT -> HLT -> HLGT -> SOC, and whether it is the PT's primary path."""

    pt_code: int
    hlt_code: int
    hlgt_code: int
    soc_code: int
    primary: bool


@dataclass(frozen=True)
class MeddraRelease:
    """A release read and checked: every term, LLT and path."""

    terms: tuple[MeddraTerm, ...]
    llts: tuple[Llt, ...]
    paths: tuple[Path, ...]

    def counts(self) -> dict[str, int]:
        """How many terms of each level, and paths."""
        out = {level: 0 for level in ("soc", "hlgt", "hlt", "pt")}
        for t in self.terms:
            out[t.level] += 1
        return {**out, "llt": len(self.llts), "paths": len(self.paths)}


def check_version(version: str) -> str:
    """The MedDRA version as written on the release (e.g. ``27.1``), or ``DictionaryError``."""
    if not _VERSION.fullmatch(version):
        raise DictionaryError(f"--version: {version!r} is not a MedDRA version such as 27.1")
    return version


def _rows(name: str, text: str) -> list[tuple[int, list[str]]]:
    """The lines of one file as (line number, fields), checked for the field count and the closing ``$``."""
    want = MEDDRA_FILES[name]
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if not line.endswith("$"):
            raise DictionaryError(f"{name} line {number}: a record ends with '$'")
        fields = line[:-1].split("$")
        if len(fields) != want:
            raise DictionaryError(f"{name} line {number}: {want} fields expected, found {len(fields)}")
        out.append((number, fields))
    if not out:
        raise DictionaryError(f"{name} line 1: the file is empty")
    return out


def _code(name: str, number: int, value: str, what: str) -> int:
    if not value.isdigit() or not 0 < len(value) <= 9:
        raise DictionaryError(f"{name} line {number}: {what} {value!r} is not a MedDRA code (digits)")
    return int(value)


def _name(name: str, number: int, value: str, what: str) -> str:
    text = value.strip()
    if not text or len(text) > _NAME_LIMIT:
        raise DictionaryError(f"{name} line {number}: {what} must be 1-{_NAME_LIMIT} characters")
    return text


def _flag(name: str, number: int, value: str, what: str) -> bool:
    if value not in ("Y", "N"):
        raise DictionaryError(f"{name} line {number}: {what} is {value!r}, not Y or N")
    return value == "Y"


def _terms(name: str, text: str, level: str, socs: Mapping[int, MeddraTerm] | None = None) -> dict[int, MeddraTerm]:
    """The terms of one level's file by code, in file order; for PTs, ``socs`` checks each ``pt_soc_code``."""
    out: dict[int, MeddraTerm] = {}
    for number, f in _rows(name, text):
        code = _code(name, number, f[0], f"{level}_code")
        if code in out:
            raise DictionaryError(f"{name} line {number}: {level}_code {code} is listed twice")
        primary_soc = None
        if socs is not None:
            primary_soc = _code(name, number, f[3], "pt_soc_code")
            if primary_soc not in socs:
                raise DictionaryError(f"{name} line {number}: pt_soc_code {primary_soc} is not in soc.asc")
        out[code] = MeddraTerm(
            level,
            code,
            _name(name, number, f[1], f"{level}_name"),
            abbrev=(f[2].strip() or None) if level == "soc" else None,
            primary_soc=primary_soc,
            line=number,
        )
    return out


def _links(
    name: str, text: str, upper: Mapping[int, MeddraTerm], lower: Mapping[int, MeddraTerm]
) -> set[tuple[int, int]]:
    """A link file's (upper, lower) pairs, each code checked to be in its own file, and every lower term linked."""
    up_level, low_level = next(iter(upper.values())).level, next(iter(lower.values())).level
    out: set[tuple[int, int]] = set()
    for number, f in _rows(name, text):
        up = _code(name, number, f[0], f"{up_level}_code")
        low = _code(name, number, f[1], f"{low_level}_code")
        if up not in upper:
            raise DictionaryError(f"{name} line {number}: {up_level.upper()} {up} is not in {up_level}.asc")
        if low not in lower:
            raise DictionaryError(f"{name} line {number}: {low_level.upper()} {low} is not in {low_level}.asc")
        out.add((up, low))
    linked = {low for _, low in out}
    for code, term in lower.items():
        if code not in linked:
            raise DictionaryError(
                f"{low_level}.asc line {term.line}: {low_level.upper()} {code} is under no {up_level.upper()} in {name}"
            )
    return out


def read_meddra(files: Mapping[str, str]) -> MeddraRelease:
    """A MedDRA release from the text of its nine files (by file name), every link checked."""
    missing = [n for n in MEDDRA_FILES if n not in files]
    if missing:
        raise DictionaryError(f"{missing[0]}: the file is missing from the release")
    soc = _terms("soc.asc", files["soc.asc"], "soc")
    hlgt = _terms("hlgt.asc", files["hlgt.asc"], "hlgt")
    hlt = _terms("hlt.asc", files["hlt.asc"], "hlt")
    pt = _terms("pt.asc", files["pt.asc"], "pt", soc)
    llts: dict[int, Llt] = {}
    for number, f in _rows("llt.asc", files["llt.asc"]):
        code = _code("llt.asc", number, f[0], "llt_code")
        if code in llts:
            raise DictionaryError(f"llt.asc line {number}: llt_code {code} is listed twice")
        parent = _code("llt.asc", number, f[2], "pt_code")
        if parent not in pt:
            raise DictionaryError(f"llt.asc line {number}: PT {parent} is not in pt.asc")
        llts[code] = Llt(
            code, _name("llt.asc", number, f[1], "llt_name"), parent, _flag("llt.asc", number, f[9], "llt_currency")
        )
    for code, term in pt.items():
        if code not in llts or llts[code].pt_code != code:
            raise DictionaryError(f"pt.asc line {term.line}: PT {code} has no LLT of the same code in llt.asc")
    soc_hlgt = _links("soc_hlgt.asc", files["soc_hlgt.asc"], soc, hlgt)
    hlgt_hlt = _links("hlgt_hlt.asc", files["hlgt_hlt.asc"], hlgt, hlt)
    hlt_pt = _links("hlt_pt.asc", files["hlt_pt.asc"], hlt, pt)
    paths: list[Path] = []
    primary: dict[int, int] = {}
    for number, f in _rows("mdhier.asc", files["mdhier.asc"]):
        p, h, g, s = (
            _code("mdhier.asc", number, f[i], what)
            for i, what in enumerate(("pt_code", "hlt_code", "hlgt_code", "soc_code"))
        )
        for code, table, level in ((p, pt, "pt"), (h, hlt, "hlt"), (g, hlgt, "hlgt"), (s, soc, "soc")):
            if code not in table:
                raise DictionaryError(f"mdhier.asc line {number}: {level.upper()} {code} is not in {level}.asc")
        for pair, links, link in (
            ((h, p), hlt_pt, "hlt_pt.asc"),
            ((g, h), hlgt_hlt, "hlgt_hlt.asc"),
            ((s, g), soc_hlgt, "soc_hlgt.asc"),
        ):
            if pair not in links:
                raise DictionaryError(f"mdhier.asc line {number}: the link {pair[0]} -> {pair[1]} is not in {link}")
        is_primary = _flag("mdhier.asc", number, f[11], "primary_soc_fg")
        if is_primary:
            if p in primary:
                raise DictionaryError(f"mdhier.asc line {number}: PT {p} has a second primary path")
            if s != pt[p].primary_soc:
                raise DictionaryError(
                    f"mdhier.asc line {number}: the primary path of PT {p} ends in SOC {s}, "
                    f"but pt.asc gives its primary SOC as {pt[p].primary_soc}"
                )
            primary[p] = number
        paths.append(Path(p, h, g, s, is_primary))
    for code, term in pt.items():
        if code not in primary:
            raise DictionaryError(
                f"pt.asc line {term.line}: PT {code} has no primary path in mdhier.asc (primary_soc_fg Y)"
            )
    terms = (*soc.values(), *hlgt.values(), *hlt.values(), *pt.values())
    return MeddraRelease(terms=terms, llts=tuple(llts.values()), paths=tuple(paths))


# -- the adverse event table by SOC and PT ----------------------------------------------------------------

#: The table's line for events not coded yet (or coded for a reported term that has changed since).
NOT_CODED = "Not yet coded"


@dataclass(frozen=True)
class TermRow:
    """One line of the adverse event table by MedDRA term, per group: participants with at least one such event and
    how many events. A SOC line has ``pt`` None; a PT line names its SOC; the events not coded yet have ``soc`` None
    (``label`` NOT_CODED)."""

    soc: str | None
    pt: str | None
    participants: Mapping[str, int]  # group -> participants with at least one such event
    events: Mapping[str, int]  # group -> events
    totals: Mapping[str, int]  # group -> participants in the group (the denominator)

    @property
    def label(self) -> str:
        return self.pt or self.soc or NOT_CODED

    @property
    def level(self) -> str:
        """soc, pt or not_coded."""
        return "pt" if self.pt else "soc" if self.soc else "not_coded"

    def cell(self, group: str) -> str:
        """``n (p%) [events]`` for a group."""
        n, total, e = self.participants.get(group, 0), self.totals.get(group, 0), self.events.get(group, 0)
        return (f"{n} ({100 * n / total:.0f}%)" if total else f"{n}") + f" [{e}]"


def term_table(
    events: Iterable[tuple[str, str | None, str | None]],
    group_of: Mapping[str, str],
    groups: Sequence[str],
    totals: Mapping[str, int] | None = None,
) -> list[TermRow]:
    """The usual adverse event table: each SOC (by name) with its PTs (by name) under it, participants with at least
    one event and the events, per group; then the events not coded yet as their own line (never dropped, never
    guessed). ``events`` are (participant, primary SOC name, PT name), SOC and PT None for an event not coded;
    ``group_of`` maps each participant in the denominator to its group; events of others are left out. ``totals``:
    each group's denominator when the database counted it (``group_of`` then needs only the participants with
    events)."""
    if totals is None:
        totals = {g: 0 for g in groups}
        for group in group_of.values():
            totals[group] += 1
    else:
        totals = {g: int(totals.get(g, 0)) for g in groups}
    who: dict[tuple[str | None, str | None], dict[str, set[str]]] = {}
    count: dict[tuple[str | None, str | None], dict[str, int]] = {}

    def add(key: tuple[str | None, str | None], group: str, pid: str) -> None:
        who.setdefault(key, {g: set() for g in groups})[group].add(pid)
        count.setdefault(key, dict.fromkeys(groups, 0))[group] += 1

    for pid, soc, pt in events:
        held = group_of.get(pid)
        if held is None:
            continue
        if soc is None or pt is None:
            add((None, None), held, pid)
        else:
            add((soc, None), held, pid)
            add((soc, pt), held, pid)

    def row(key: tuple[str | None, str | None]) -> TermRow:
        held = who.get(key, {g: set() for g in groups})
        return TermRow(
            key[0], key[1], {g: len(held[g]) for g in groups}, dict(count.get(key, dict.fromkeys(groups, 0))),
            dict(totals),
        )  # fmt: skip

    coded = sorted((k for k in who if k[0] is not None), key=lambda k: (k[0] or "", k[1] is not None, k[1] or ""))
    return [*(row(k) for k in coded), row((None, None))]
