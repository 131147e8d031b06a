"""Coding log entries: medications to the WHO ATC index (loading an index, listing what is left to code, coding or
recoding one entry of a log the protocol writes to SDTM CM to a level-5 code, the chemical substance, with its levels
1 to 4), and medical history (a log written to SDTM MH) to MedDRA with the adverse events' machinery.

The coder codes (``trialwright.services.coding.CODERS``); an index is loaded by the coder or the data manager
(``LOADERS``), whole or not at all, after ``trialwright.domain.atc.read_atc`` has checked every code and parent.
Coding uses the index loaded last; each coding records the index's version, the verbatim name it coded (the
entry's CMTRT field) and the whole path, so a later index never changes what was coded. An amendment of the
medication's name voids the coding (``services/logs.py``), so nothing coded for another name is exported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from trialwright.domain.atc import AtcCode, check_atc_version, path_of, read_atc
from trialwright.domain.coding import DictionaryError
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.protocol.logs import LOG_TOPIC
from trialwright.services import audit, clock
from trialwright.services.coding import CODERS, LOADERS, CodingError, _role
from trialwright.services.lock import require_unlocked
from trialwright.services.logs import LogCoding, entry_for_coding
from trialwright.services.screening import NotFound
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.log_tables import atc_codes, atc_releases, log_codings, log_entries
from trialwright.store.screening_tables import participants

__all__ = [
    "AtcRelease",
    "LogEntryToCode",
    "MedicationToCode",
    "code_history",
    "code_medication",
    "entry_to_code",
    "load_atc",
    "log_entries_to_code",
    "medications_to_code",
]

_BATCH = 5000


@dataclass(frozen=True)
class AtcRelease:
    """A loaded ATC index."""

    version: str
    loaded_at: dt.datetime
    loaded_by: str
    counts: Mapping[str, int]


@dataclass(frozen=True)
class MedicationToCode:
    """A medication entry not coded yet: where it is and the name to code."""

    participant_id: str
    log_id: str
    sequence: int
    verbatim: str


def load_atc(engine: Engine, actor: UserView, path: Path, version: str) -> AtcRelease:
    """Load the ATC index in ``path`` (the CSV layout of ``trialwright.domain.atc``) as ``version``: checked whole,
    stored in one transaction, audited (``coding.dictionary_loaded`` with the file's SHA-256 and the counts)."""
    _role(actor, LOADERS, "load a dictionary")
    try:
        check_atc_version(version)
        if not path.is_file():
            raise CodingError(f"{path.name}: no such file")
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise CodingError(f"{path.name} line {line}: not UTF-8 text") from None
        index = read_atc(text, path.name)
    except DictionaryError as exc:
        raise CodingError(str(exc)) from None
    digests = {path.name: hashlib.sha256(data).hexdigest()}
    counts = index.counts()
    now = clock.now()
    with session_scope(engine) as session:
        if session.execute(select(atc_releases.c.version).where(atc_releases.c.version == version)).first():
            raise CodingError(f"--version: ATC {version} is loaded already")
        session.execute(insert(atc_releases).values(version=version, loaded_at=now, loaded_by=actor.username,
                                                    files=json.dumps(digests), counts=json.dumps(counts)))  # fmt: skip
        rows = [{"version": version, "code": c.code, "level": c.level, "name": c.name, "search_name": c.name.lower()}
                for c in index.codes.values()]  # fmt: skip
        for start in range(0, len(rows), _BATCH):
            session.execute(insert(atc_codes), rows[start : start + _BATCH])
        loaded = {"dictionary": "ATC", "version": version, "files": digests, "counts": counts}
        audit.record(session, actor=actor.username, role=actor.role.value, action="coding.dictionary_loaded",
                     new_value=loaded)  # fmt: skip
    return AtcRelease(version, now, actor.username, counts)


def _topics(protocol: Protocol, domain: str) -> dict[str, str]:
    """Each log written to ``domain`` (CM or MH), with the field its topic variable (CMTRT, MHTERM) reads."""
    return {g.id: g.sdtm.variables[LOG_TOPIC[domain]] for g in protocol.logs if g.sdtm and g.sdtm.domain == domain}


def medications_to_code(engine: Engine, actor: UserView) -> tuple[MedicationToCode, ...]:
    """Every active medication entry without a coding, by log, participant and sequence (coder)."""
    _role(actor, CODERS, "code medications")
    logs = _topics(current_protocol(engine).protocol, "CM")
    with read_scope(engine) as session:
        rows = session.execute(
            select(log_entries)
            .outerjoin(log_codings, log_codings.c.entry_id == log_entries.c.id)
            .where(log_entries.c.log_id.in_(list(logs)), log_entries.c.state == "active",
                   log_codings.c.entry_id.is_(None))
            .order_by(log_entries.c.log_id, log_entries.c.participant_id, log_entries.c.sequence)
        ).all()  # fmt: skip
    out = []
    for r in rows:
        value = json.loads(r.entry_values).get(logs[r.log_id], {}).get("value")
        out.append(MedicationToCode(r.participant_id, r.log_id, r.sequence, str(value or "")))
    return tuple(out)


def _path_json(path: tuple[AtcCode, ...]) -> list[dict[str, Any]]:
    return [{"level": c.level, "code": c.code, "name": c.name} for c in path]


def _entry(session: Session, participant_id: str, log_id: str, sequence: int) -> tuple[Any, str]:
    """The entry's row (locked) and its participant's site, once the locks allow a change and it is active."""
    site = session.execute(
        select(participants.c.site).where(participants.c.participant_id == participant_id)
    ).scalar_one_or_none()
    if site is None:
        raise CodingError(f"participant: no participant {participant_id}")
    require_unlocked(session, participant_id, site=site)
    entry = session.execute(
        select(log_entries).where(log_entries.c.participant_id == participant_id, log_entries.c.log_id == log_id,
                                  log_entries.c.sequence == sequence).with_for_update()
    ).first()  # fmt: skip
    if entry is None:
        raise CodingError(f"sequence: {participant_id} has no entry {sequence} in log {log_id}")
    if entry.state != "active":
        raise CodingError(f"sequence: entry {sequence} of {log_id} was removed; there is nothing to code")
    return entry, site


def _store(
    session: Session,
    actor: UserView,
    entry: Any,
    site: str,
    new: dict[str, Any],
    reason: str | None,
) -> dict[str, Any]:
    """Store ``new`` as the entry's coding: ``log.coded``, or ``log.recoded`` with the old one and a reason."""
    log_id, sequence = entry.log_id, entry.sequence
    old_row = session.execute(select(log_codings).where(log_codings.c.entry_id == entry.id)).first()
    where = {"actor": actor.username, "role": actor.role.value, "site": site, "participant": entry.participant_id,
             "form": log_id, "detail": {"sequence": sequence}}  # fmt: skip
    values = {**new, "path": json.dumps(new["path"]), "coded_at": clock.now(), "coded_by": actor.username}
    if old_row is None:
        session.execute(insert(log_codings).values(entry_id=entry.id, **values))
        audit.record(session, action="log.coded", new_value=new, **where)
        return new
    old = {"dictionary": old_row.dictionary, "version": old_row.version, "verbatim": old_row.verbatim,
           "code": old_row.code, "name": old_row.name, "path": json.loads(old_row.path)}  # fmt: skip
    if (old_row.code, old_row.version, old_row.verbatim) == (new["code"], new["version"], new["verbatim"]):
        raise CodingError(f"code: entry {sequence} of {log_id} is coded to {new['code']} already")
    if not (reason or "").strip():
        raise CodingError(f"reason: entry {sequence} of {log_id} is coded already (to {old_row.code} "
                          f"{old_row.name}); recoding needs a reason")  # fmt: skip
    session.execute(log_codings.update().where(log_codings.c.entry_id == entry.id).values(**values))
    audit.record(session, action="log.recoded", old_value=old, new_value=new, reason=(reason or "").strip(), **where)
    return new


def code_medication(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    log_id: str,
    sequence: int,
    atc_code: str,
    *,
    reason: str | None = None,
) -> dict[str, Any]:
    """Code one medication entry to a level-5 ATC code of the index loaded last, its levels 1 to 4 read from the
    index (each must be there); audited ``log.coded``, or ``log.recoded`` with the old coding and a reason. The
    coding as stored (dictionary, version, verbatim, code, name, path)."""
    _role(actor, CODERS, "code medications")
    checked_text(reason, "reason", error=CodingError)
    logs = _topics(current_protocol(engine).protocol, "CM")
    if log_id not in logs:
        raise CodingError(f"log: {log_id!r} is not written to SDTM CM; medications are coded from "
                          f"{', '.join(logs) or 'no log'}")  # fmt: skip
    with session_scope(engine) as session:
        entry, site = _entry(session, participant_id, log_id, sequence)
        release = session.execute(
            select(atc_releases.c.version).order_by(atc_releases.c.loaded_at.desc()).limit(1)
        ).scalar_one_or_none()
        if release is None:
            raise CodingError("dictionary: no ATC index is loaded (coding load atc)")
        wanted = [atc_code[:n] for n in (1, 3, 4, 5, 7)]
        found = {r.code: AtcCode(r.code, r.level, r.name) for r in session.execute(
            select(atc_codes).where(atc_codes.c.version == release, atc_codes.c.code.in_(wanted)))}  # fmt: skip
        if atc_code not in found:
            raise CodingError(f"atc: {atc_code} is not a code of ATC {release}")
        if found[atc_code].level != 5:
            raise CodingError(f"atc: {atc_code} is a level {found[atc_code].level} code; code to a level 5 "
                              "substance")  # fmt: skip
        try:
            path = path_of(found, atc_code)
        except KeyError:
            missing = [c for c in wanted if c not in found]
            raise CodingError(f"atc: {atc_code}'s parent {missing[0]} is not in ATC {release}") from None
        verbatim = str(json.loads(entry.entry_values).get(logs[log_id], {}).get("value") or "")
        new = {"dictionary": "ATC", "version": release, "verbatim": verbatim, "code": atc_code,
               "name": found[atc_code].name, "path": _path_json(path)}  # fmt: skip
        return _store(session, actor, entry, site, new, reason)


#: MedDRA's levels as a coding's path stores them: level 1 the SOC down to level 5 the LLT.
_MEDDRA_DEPTH = (("soc", 1), ("hlgt", 2), ("hlt", 3), ("pt", 4), ("llt", 5))


def code_history(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    log_id: str,
    sequence: int,
    llt_code: int,
    *,
    reason: str | None = None,
) -> dict[str, Any]:
    """Code one medical history entry to a current LLT of the MedDRA release loaded last, with its PT and primary
    HLT, HLGT and SOC (the machinery adverse events are coded with); the path is stored SOC first (level 1) to the
    LLT (level 5). Audited ``log.coded``, or ``log.recoded`` with a reason. SDTM MH's MHDECOD is the PT, MHBODSYS
    the SOC."""
    from trialwright.services.coding import _active, _path

    _role(actor, CODERS, "code medical history")
    checked_text(reason, "reason", error=CodingError)
    logs = _topics(current_protocol(engine).protocol, "MH")
    if log_id not in logs:
        raise CodingError(f"log: {log_id!r} is not written to SDTM MH; medical history is coded from "
                          f"{', '.join(logs) or 'no log'}")  # fmt: skip
    with session_scope(engine) as session:
        entry, site = _entry(session, participant_id, log_id, sequence)
        version = _active(session)
        found = _path(session, version, llt_code)
        path = [{"level": depth, "code": str(found[f"{level}_code"]), "name": found[f"{level}_name"]}
                for level, depth in _MEDDRA_DEPTH]  # fmt: skip
        verbatim = str(json.loads(entry.entry_values).get(logs[log_id], {}).get("value") or "")
        new = {"dictionary": "MedDRA", "version": version, "verbatim": verbatim, "code": str(llt_code),
               "name": found["llt_name"], "path": path}  # fmt: skip
        return _store(session, actor, entry, site, new, reason)


@dataclass(frozen=True)
class LogEntryToCode:
    """A log entry as the coder sees it: where it is, the dictionary it is coded to (ATC for a log written to CM,
    MedDRA for MH), the text to code and its coding now (None while not coded)."""

    participant_id: str
    site: str
    log_id: str
    sequence: int
    dictionary: str
    verbatim: str
    removed: bool
    coding: LogCoding | None


def _dictionaries(protocol: Protocol) -> dict[str, tuple[str, str]]:
    """Each coded log: its dictionary and the field its topic reads."""
    return {**{log: ("ATC", topic) for log, topic in _topics(protocol, "CM").items()},
            **{log: ("MedDRA", topic) for log, topic in _topics(protocol, "MH").items()}}  # fmt: skip


def entry_to_code(engine: Engine, actor: UserView, participant_id: str, log_id: str, sequence: int) -> LogEntryToCode:
    """One log entry for its coding page (coder): refused for a log the protocol codes to no dictionary (a log not
    written to CM or MH), ``NotFound`` for no such entry."""
    _role(actor, CODERS, "code log entries")
    coded = _dictionaries(current_protocol(engine).protocol)
    if log_id not in coded:
        raise CodingError(f"log: {log_id!r} is written to neither SDTM CM nor MH; coded logs: "
                          f"{', '.join(coded) or 'none'}")  # fmt: skip
    entry = entry_for_coding(engine, participant_id, log_id, sequence)
    if entry is None:
        raise NotFound(f"{participant_id} has no entry {sequence} in log {log_id}")
    dictionary, topic = coded[log_id]
    stored = entry.values.get(topic)
    verbatim = "" if stored is None or stored.value is None else str(stored.value)
    return LogEntryToCode(participant_id, entry.site, log_id, sequence, dictionary, verbatim, entry.removed,
                          entry.coding)  # fmt: skip


def log_entries_to_code(engine: Engine, actor: UserView) -> tuple[LogEntryToCode, ...]:
    """Every active entry of a coded log (CM: ATC, MH: MedDRA) without a coding, by log, participant and sequence
    (coder)."""
    _role(actor, CODERS, "code log entries")
    coded = _dictionaries(current_protocol(engine).protocol)
    with read_scope(engine) as session:
        rows = session.execute(
            select(log_entries, participants.c.site)
            .join(participants, participants.c.participant_id == log_entries.c.participant_id)
            .outerjoin(log_codings, log_codings.c.entry_id == log_entries.c.id)
            .where(log_entries.c.log_id.in_(list(coded)), log_entries.c.state == "active",
                   log_codings.c.entry_id.is_(None))
            .order_by(log_entries.c.log_id, log_entries.c.participant_id, log_entries.c.sequence)
        ).all()  # fmt: skip
    out = []
    for r in rows:
        dictionary, topic = coded[r.log_id]
        value = json.loads(r.entry_values).get(topic, {}).get("value")
        out.append(LogEntryToCode(r.participant_id, r.site, r.log_id, r.sequence, dictionary, str(value or ""), False,
                                  None))  # fmt: skip
    return tuple(out)
