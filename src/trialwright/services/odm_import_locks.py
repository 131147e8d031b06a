"""Importing the trial lock and the soft locks of an ODM file exactly, after all the data.

The export writes them (``trialwright.exports.odm.locks``): ``tw:SoftLock`` in ``SubjectData`` (the participant's),
``tw:TrialLock`` and ``tw:SoftLock Site=...`` in ``ClinicalData`` after the DSMB's decisions, each change with
``Locked`` (``Yes``/``No``), ``At``, ``By``, ``Reason`` (and a trial lock's ``OpenBlockers``, the override's open
blockers, and ``Withheld``, the forms kept from a masked locker; absent: none) and its audit entry's ``AuditRecord`` as
recorded. ``read_subject_locks`` reads a participant's while ``odm_import`` reads the participant, ``read_trial_locks``
the rest when ``ClinicalData`` ends (both into ``reader.locks``); ``write_locks`` writes them last, in the import's
transaction, after every participant, visit, form, log entry, query, adverse event and DSMB decision: the import writes
rows directly and asks no lock, so a lock it restores never refuses the import's own data, and the byte-identical
re-export only reads. A locked source gives a locked trial; its history is whole (every row, in each target's order) and
kept in one trial-level ``import.odm`` entry (``locks``: each row and its AuditRecord as recorded), which the export
reads back (``trialwright.services.export_locks``).

Refused naming the element or attribute and the rule, never guessed nor dropped: an attribute or child the export never
writes, ``Locked`` other than Yes or No, a time not written as the export writes one (``exact_moment``), no ``By`` or no
``Reason`` (an override without its reason among them), ``OpenBlockers`` on an unlock or not a count, ``Withheld`` on an
unlock or naming anything but a form of the protocol that reveals the arm, a site soft lock of a site the protocol does
not have (or a ``Site`` on a participant's), a target's first change an unlock or two locks (or unlocks) in a row, a
change before the one it follows (a lock lifted before it was set), an AuditRecord naming another action or user than
the change's; and any lock into a trial that already has a lock history (its rows and the file's would not pair with
their records).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from trialwright.services import audit
from trialwright.services.odm_import_common import OdmImportError, odm_tag
from trialwright.services.odm_import_records import exact_moment
from trialwright.store.data_tables import soft_locks, trial_locks

if TYPE_CHECKING:
    from trialwright.services.odm_import_reader import Reader
    from trialwright.services.odm_import_writer import Writer

__all__ = ["read_subject_locks", "read_trial_locks", "write_locks"]

_COUNT = re.compile(r"[1-9][0-9]*", re.ASCII)
_ACTIONS = {("trial", True): "trial.locked", ("trial", False): "trial.unlocked"}


def _action(scope: str, locked: bool) -> str:
    if scope == "trial":
        return _ACTIONS[(scope, locked)]
    return "lock.soft_locked" if locked else "lock.soft_unlocked"


def _one(reader: Reader, elem: ET.Element, where: str, scope: str, target: str | None) -> dict[str, Any]:
    allowed = {"Locked", "At", "By", "Reason"} | ({"OpenBlockers", "Withheld"} if scope == "trial" else set())
    allowed |= {"Site"} if scope == "site" else set()
    strays = sorted(set(elem.attrib) - allowed)
    if strays:
        raise OdmImportError(f"{where}/@{strays[0]}: the export never writes it here; it cannot be restored, so it is "
                             "refused, never dropped")  # fmt: skip
    children = [child.tag for child in elem]
    if children and children != [odm_tag("AuditRecord")]:
        raise OdmImportError(f"{where}: holds {children[0] if children[0] != odm_tag('AuditRecord') else children[1]}; "
                             "the export writes one AuditRecord here and nothing else")  # fmt: skip
    locked_text = elem.get("Locked")
    if locked_text not in ("Yes", "No"):
        raise OdmImportError(f"{where}/@Locked: {locked_text!r} is not Yes (a lock) or No (an unlock)")
    locked = locked_text == "Yes"
    at = exact_moment(elem.get("At"), f"{where}/@At")
    by, reason = elem.get("By"), elem.get("Reason")
    if by is None or not by.strip():
        raise OdmImportError(f"{where}/@By: required (who {'set' if locked else 'lifted'} it)")
    blockers_text = elem.get("OpenBlockers")
    if reason is None or not reason.strip():
        what = "an override of the lock readiness" if blockers_text else ("a lock" if locked else "an unlock")
        raise OdmImportError(f"{where}/@Reason: required ({what} is always made with its reason)")
    blockers = None
    if blockers_text is not None:
        if not locked:
            raise OdmImportError(f"{where}/@OpenBlockers: only a lock (Locked=\"Yes\") is an override with open "
                                 "blockers")  # fmt: skip
        if not _COUNT.fullmatch(blockers_text):
            raise OdmImportError(f"{where}/@OpenBlockers: {blockers_text!r} is not a count as the export writes one "
                                 "(ASCII digits, no leading zero, at least 1)")  # fmt: skip
        blockers = int(blockers_text)
    withheld = _withheld(reader, elem.get("Withheld"), locked, where)
    action = _action(scope, locked)
    recorded = reader.audit_record(elem, where, frozenset({action}))
    if recorded is not None and recorded["by"] != by:
        raise OdmImportError(f"{where}/AuditRecord/UserRef: names {recorded['by']}, but By is {by}: a change and its "
                             "audit entry are one user's")  # fmt: skip
    return {"scope": scope, "target": target, "locked": locked, "at": at, "by": by, "reason": reason,
            "open_blockers": blockers, "recorded": recorded, "where": where,
            **({"withheld": withheld} if withheld is not None else {})}  # fmt: skip


def _withheld(reader: Reader, text: str | None, locked: bool, where: str) -> str | None:
    """A trial lock's ``Withheld``: the forms kept from a masked locker, each a form of the protocol that reveals the
    arm, comma-joined as the export writes them; None when absent (a file without it: none withheld)."""
    if text is None:
        return None
    if not locked:
        raise OdmImportError(f'{where}/@Withheld: only a lock (Locked="Yes") is made over forms withheld')
    if text == "":  # a lock over no form withheld, whose count leaves out the forms that reveal the arm
        return text
    forms = text.split(",")
    revealing = {f.id for f in reader.protocol.forms if f.reveals_arm}
    for form in forms:
        if form not in revealing:
            raise OdmImportError(f"{where}/@Withheld: {form!r} is not a form of the protocol that reveals the arm "
                                 "(reveals_arm); the export writes those form ids, comma-joined")  # fmt: skip
    return text


def _in_order(changes: list[dict[str, Any]], what: str) -> None:
    """A target's changes: a lock first, then alternating, each no earlier than the one before."""
    for n, c in enumerate(changes):
        before = changes[n - 1] if n else None
        expected = True if before is None else not before["locked"]
        if c["locked"] != expected:
            rule = ("its first change is an unlock: a lock lifted before it was set" if before is None else
                    f"two {'locks' if c['locked'] else 'unlocks'} of {what} in a row")  # fmt: skip
            raise OdmImportError(f"{c['where']}/@Locked: {rule} (the service never records one)")
        if before is not None and c["at"] < before["at"]:
            word = "lifted" if not c["locked"] else "set again"
            raise OdmImportError(f"{c['where']}/@At: {c['at'].isoformat()} is before {before['where']}'s "
                                 f"({before['at'].isoformat()}): {what} {word} before the change it "
                                 "follows")  # fmt: skip


def read_subject_locks(reader: Reader, elem: ET.Element, pid: str) -> None:
    """The participant's ``tw:SoftLock`` elements (in their ``SubjectData``), checked, into ``reader.locks``."""
    where = f"SubjectData[@SubjectKey={pid}]"
    changes = []
    for n, x in enumerate(elem.findall(reader.ext_tag("SoftLock")), start=1):
        at = f"{where}/tw:SoftLock[{n}]"
        if "Site" in x.attrib:
            raise OdmImportError(f"{at}/@Site: a participant's soft lock names no site (a site's is in ClinicalData)")
        changes.append(_one(reader, x, at, "participant", pid))
    _in_order(changes, f"participant {pid}")
    reader.locks.extend(changes)


def read_trial_locks(reader: Reader, clinical: ET.Element) -> None:
    """``ClinicalData``'s ``tw:TrialLock`` and ``tw:SoftLock`` elements (a site's), checked, into ``reader.locks``."""
    trial = [_one(reader, x, f"ClinicalData/tw:TrialLock[{n}]", "trial", None)
             for n, x in enumerate(clinical.findall(reader.ext_tag("TrialLock")), start=1)]  # fmt: skip
    _in_order(trial, "the trial")
    by_site: dict[str, list[dict[str, Any]]] = {}
    for n, x in enumerate(clinical.findall(reader.ext_tag("SoftLock")), start=1):
        where = f"ClinicalData/tw:SoftLock[{n}]"
        site = x.get("Site")
        if site is None or site not in reader.protocol.site_codes or site not in reader.locations:
            raise OdmImportError(f"{where}/@Site: {site!r} is not a site of the protocol (a site's soft lock names "
                                 "its site; a participant's is in their SubjectData)")  # fmt: skip
        by_site.setdefault(site, []).append(_one(reader, x, where, "site", site))
    for site, changes in by_site.items():
        _in_order(changes, f"site {site}")
    reader.locks.extend(trial)
    for changes in by_site.values():
        reader.locks.extend(changes)


def write_locks(writer: Writer, locks: list[dict[str, Any]]) -> None:
    """The locks, last, in the import's transaction: the trial's rows in order, then the soft locks' by time (each
    target's in its order), and one ``import.odm`` entry keeping each with its AuditRecord as recorded."""
    if not locks:
        return
    session = writer.session
    held = sum(session.execute(select(func.count()).select_from(t)).scalar_one() for t in (trial_locks, soft_locks))
    if held:
        raise OdmImportError(f"trial: this trial already has {held} lock and unlock changes; the file's trial lock and "
                             "soft locks are restored only into a trial that has none (trialwright init with the same "
                             "protocol)")  # fmt: skip
    trial = [c for c in locks if c["scope"] == "trial"]
    soft = sorted((c for c in locks if c["scope"] != "trial"), key=lambda c: c["at"])  # stable: a target's order kept
    for c in trial:
        session.execute(trial_locks.insert().values(locked=c["locked"], at=c["at"], by=c["by"], reason=c["reason"],
                                                    open_blockers=c["open_blockers"],
                                                    withheld=c.get("withheld")))  # fmt: skip
    for c in soft:
        session.execute(soft_locks.insert().values(scope=c["scope"], target=c["target"], locked=c["locked"],
                                                   at=c["at"], by=c["by"], reason=c["reason"]))  # fmt: skip
    kept = [{**{k: v for k, v in c.items() if k != "where"}, "at": c["at"].isoformat()} for c in [*trial, *soft]]
    audit.record(
        session, actor=writer.actor.username, role=writer.actor.role.value, action="import.odm",
        new_value={"locks": kept}, detail=dict(writer.detail),
    )  # fmt: skip
    writer.counts["locks"] += len(kept)
