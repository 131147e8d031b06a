"""The trial lock and the soft locks in the ODM file: every change, with the AuditRecord of its audit entry.

ODM 1.3.2 has no element for a lock, so they go into the vendor extension where its ``...ElementExtension`` groups
admit them (``schema``):

* ``tw:SoftLock`` in ``SubjectData``, after the participant's ``tw:History`` and before its queries: each soft lock
  and unlock of the participant, in the order made;
* ``tw:TrialLock`` in ``ClinicalData``, after the DSMB's decisions: each lock and unlock of the trial database, in the
  order made (``OpenBlockers``: the blockers the data manager's override left open; ``Withheld``: the forms that
  reveal the arm kept from a masked data manager who locked); then ``tw:SoftLock Site=...``:
  each soft lock and unlock of a site, by site, in the order made.

Each has ``Locked`` (``Yes`` a lock, ``No`` an unlock), ``At``, ``By`` and ``Reason``, and the ``AuditRecord`` of its
audit entry (its ``tw:Action`` the action recorded), as recorded: in a trial imported from ODM, the record the import
kept. A trial lock's entry names no site, and ODM's ``AuditRecord`` needs a ``LocationRef``: it names the protocol's
first site (the import gives it back as it finds it, so the re-export is the same). ``odm_import_locks`` restores them.

No arm: a lock names the trial, a site or a participant, who, when and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trialwright.exports.base import LockRecord
from trialwright.exports.odm.indexed import Audited
from trialwright.exports.odm.xmlstream import XmlStream

__all__ = ["HeldLocks"]

AuditWriter = Callable[[Audited | None, str], None]


def _audited(recorded: Mapping[str, Any] | None) -> Audited | None:
    if recorded is None:
        return None
    r = recorded
    return Audited(int(r["seq"]), str(r["at"]), str(r["by"]), r.get("role"), r.get("site"), r.get("reason"),
                   str(r["hash"]), None, r.get("action"))  # fmt: skip


class HeldLocks:
    """The source's lock history (a few rows), held while the file is written: by participant, and trial-level."""

    def __init__(self, records: Sequence[LockRecord]) -> None:
        self.participants: dict[str, list[LockRecord]] = {}
        self.trial = [r for r in records if r.scope == "trial"]
        self.sites = sorted((r for r in records if r.scope == "site"), key=lambda r: str(r.target))  # stable
        for r in records:
            if r.scope == "participant":
                self.participants.setdefault(str(r.target), []).append(r)
        self.users = {str(r.recorded["by"]): r.recorded.get("role") for r in records if r.recorded is not None}

    def add_users(self, users: dict[str, str | None]) -> None:
        """The users the lock records name, for ``AdminData`` (those the audit index names keep their role)."""
        for name, role in self.users.items():
            users.setdefault(name, role)

    def subject(self, xml: XmlStream, pid: str, site: str, audit_record: AuditWriter) -> None:
        """The participant's ``tw:SoftLock`` elements."""
        for r in self.participants.pop(pid, ()):
            _write(xml, "tw:SoftLock", {}, r, site, audit_record)

    def clinical(self, xml: XmlStream, first_site: str, audit_record: AuditWriter) -> None:
        """``tw:TrialLock`` elements, then the sites' ``tw:SoftLock``s (in ``ClinicalData``, after the decisions)."""
        for r in self.trial:
            blockers = None if r.open_blockers is None else str(r.open_blockers)
            # The forms kept from a masked locker (form ids; "" none: a lock whose count leaves out the forms that
            # reveal the arm; absent: a lock made before the count did, migration 0042).
            withheld = None if r.withheld is None or not r.locked else ",".join(r.withheld)
            _write(xml, "tw:TrialLock", {}, r, first_site, audit_record, {"OpenBlockers": blockers,
                                                                           "Withheld": withheld})  # fmt: skip
        for r in self.sites:
            _write(xml, "tw:SoftLock", {"Site": r.target}, r, str(r.target), audit_record)


def _write(
    xml: XmlStream, tag: str, first: dict[str, str | None], r: LockRecord, site: str, audit_record: AuditWriter,
    more: Mapping[str, str | None] | None = None,
) -> None:  # fmt: skip
    attrs = {**first, "Locked": "Yes" if r.locked else "No", "At": r.at.isoformat(), "By": r.by, "Reason": r.reason,
             **(more or {})}  # fmt: skip
    audited = _audited(r.recorded)
    if audited is None:
        xml.leaf(tag, attrs)
        return
    with xml.element(tag, attrs):
        audit_record(audited, site)
