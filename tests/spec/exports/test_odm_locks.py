"""The trial lock and the soft locks in the ODM export and back (both databases): issue 25 item 4, "import odm
restores the whole trial exactly".

The source trial, through the services: site RAZ soft-locked for an interim analysis and the lock lifted, one
participant soft-locked (held), and the trial database locked by the data manager's override while things still
block it (``OpenBlockers``). ODM 1.3.2 has no element for a lock, so each change goes into the vendor extension:

| change                        | element, where                                        | AuditRecord's tw:Action |
|-------------------------------|-------------------------------------------------------|-------------------------|
| a participant soft-locked     | ``tw:SoftLock`` in their ``SubjectData``              | lock.soft_locked        |
| a site soft-locked, lifted    | ``tw:SoftLock Site="RAZ"`` in ``ClinicalData`` (two)  | lock.soft_(un)locked    |
| the trial locked (override)   | ``tw:TrialLock OpenBlockers="N"`` in ``ClinicalData`` | trial.locked            |

each with ``Locked`` (Yes/No), ``At``, ``By`` and ``Reason`` as the row holds them, and the AuditRecord of its audit
entry as recorded. The file stays valid against CDISC's ODM 1.3.2 schema with the extension; no arm is in it.

``import odm`` restores them after all the data (the trial lock it restores does not refuse the import's own writes),
so the imported trial is locked, the participant soft-locked and the site open, every row as the source holds it; its
re-export is byte-identical (checked by the import itself, and here again); ``audit verify`` passes.

What cannot be restored exactly is refused naming the element or attribute and the rule, and nothing is written:

| the file edited                                   | refused at                                              |
|---------------------------------------------------|---------------------------------------------------------|
| a site soft lock of a site the protocol lacks     | ClinicalData/tw:SoftLock[1]/@Site                       |
| the trial lock's time written with Z              | ClinicalData/tw:TrialLock[1]/@At: not as the export writes |
| the trial lock's time not a time                  | ClinicalData/tw:TrialLock[1]/@At: not a date and time    |
| the site's lock and unlock times swapped          | ClinicalData/tw:SoftLock[2]/@At: lifted before ...      |
| the site's lock left out (its unlock first)       | ClinicalData/tw:SoftLock[1]/@Locked: lifted before set  |
| the override's reason left out                    | ClinicalData/tw:TrialLock[1]/@Reason: required (override) |
| the override's blockers with a leading zero       | ClinicalData/tw:TrialLock[1]/@OpenBlockers              |
| an attribute the export never writes              | ClinicalData/tw:TrialLock[1]/@Arm                       |
| a participant's soft lock naming a site           | SubjectData[...]/tw:SoftLock[1]/@Site                   |
| a participant's soft lock by someone else         | .../tw:SoftLock[1]/AuditRecord/UserRef: names ... By    |

and a target that already has a lock history (its rows and the file's would not pair with their records).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from tests.spec.exports.test_odm_queries import _export, _taken, _valid
from tests.spec.logs.test_log_odm import target
from tests.spec.randomization.test_randomize_service import TYPED
from tests.trialfixtures import PASSWORD, Trial, first_protocol, make_trial, screener, username, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter
from trialwright.services import audit
from trialwright.services.exports import export_source
from trialwright.services.forms.queries import raise_query
from trialwright.services.lock import active_soft_locks, lock_state, lock_trial, soft_lock, soft_unlock
from trialwright.services.odm_import import NOT_RESTORED, OdmImportError, import_odm
from trialwright.services.replay import replay
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.store.data_tables import soft_locks, trial_locks
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import participants

__all__ = ["target"]

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"


@pytest.fixture
def trial(database_url: str) -> Any:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _locked_trial(trial: Trial) -> str:
    """Two participants at RAZ; RAZ soft-locked and lifted, the second participant soft-locked (held), the trial
    locked by an override with a reason (an open query blocks it). Returns the held participant."""
    # screening is a coordinator's (docs/roles.md)
    e, admin, manager = trial.engine, screener(trial.engine), who(trial, Role.DATA_MANAGER)
    now = dt.datetime.now(dt.UTC)
    enrolled = []
    for _ in range(2):
        s = screen(e, admin, site="RAZ", screened_on=now.date(), values=TYPED)
        record_consent(e, admin, s.id, form_version="1.0", given_by="participant", obtained_by="Dr K",
                       obtained_at=now - dt.timedelta(minutes=30))  # fmt: skip
        made = enrol(e, admin, s.id).participant
        assert made is not None
        enrolled.append(made.participant_id)
    raise_query(e, who(trial, Role.MONITOR), enrolled[0], "Consent time does not match the source")  # a blocker
    soft_lock(e, manager, 'Interim analysis "A" & <B>', site="RAZ")
    soft_unlock(e, manager, "Interim analysis done", site="RAZ")
    soft_lock(e, manager, "Source data under review", participant_id=enrolled[1])
    state = lock_trial(e, manager, "Final analysis; the open visits will not be held", password=PASSWORD)
    assert state.locked and state.open_blockers  # an override: blockers left open
    return enrolled[1]


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The lock tables as they hold them, ids left out (a target's rows in the order made)."""
    t, s = trial_locks.c, soft_locks.c
    with session_scope(engine) as session:
        return {
            "trial": [tuple(r) for r in session.execute(select(t.locked, t.at, t.by, t.reason, t.open_blockers)
                                                        .order_by(t.id))],
            "soft": sorted((tuple(r) for r in session.execute(select(s.scope, s.target, s.locked, s.at, s.by, s.reason)
                                                               .order_by(s.id))), key=lambda r: (r[0], r[1])),
        }  # fmt: skip


def _count(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        n = [session.execute(select(func.count()).select_from(t)).scalar_one()
             for t in (participants, trial_locks, soft_locks)]  # fmt: skip
    return n[0], n[1], n[2]


def test_every_lock_change_is_in_the_file_with_its_audit_record_and_no_arm(trial: Trial, tmp_path: Path) -> None:
    held = _locked_trial(trial)
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    text = path.read_text(encoding="utf-8")
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    clinical = root.find(f"{ODM}ClinicalData")
    assert clinical is not None
    rows = _rows(trial.engine)
    manager = username(Role.DATA_MANAGER)
    (lock,) = clinical.findall(f"{TW}TrialLock")
    (locked, at, _, reason, blockers) = rows["trial"][0]
    assert lock.attrib == {"Locked": "Yes", "At": at.isoformat(), "By": manager, "Reason": reason,
                           "OpenBlockers": str(blockers)}  # fmt: skip
    assert locked and blockers >= 1
    sites = clinical.findall(f"{TW}SoftLock")
    assert [(x.get("Site"), x.get("Locked"), x.get("Reason")) for x in sites] == [
        ("RAZ", "Yes", 'Interim analysis "A" & <B>'), ("RAZ", "No", "Interim analysis done")]
    assert [x.get("At") for x in sites] == [r[3].isoformat() for r in rows["soft"] if r[0] == "site"]
    assert [c.tag for c in clinical][-3:] == [f"{TW}TrialLock", f"{TW}SoftLock", f"{TW}SoftLock"]  # at the end
    subjects = {s.get("SubjectKey"): s for s in clinical.iter(f"{ODM}SubjectData")}
    (mine,) = subjects[held].findall(f"{TW}SoftLock")
    assert mine.attrib == {"Locked": "Yes", "At": next(r[3] for r in rows["soft"] if r[0] == "participant").isoformat(),
                           "By": manager, "Reason": "Source data under review"}  # fmt: skip
    assert all(not s.findall(f"{TW}SoftLock") for pid, s in subjects.items() if pid != held)
    # Each with the AuditRecord of its own audit entry, as recorded: the action it recorded, its user and SourceID.
    entries = {e.seq: e for e in audit.entries(trial.engine, limit=10_000)}
    for x, action in [(lock, "trial.locked"), (sites[0], "lock.soft_locked"), (sites[1], "lock.soft_unlocked"),
                      (mine, "lock.soft_locked")]:  # fmt: skip
        record = x.find(f"{ODM}AuditRecord")
        assert record is not None
        assert record.findtext(f"{TW}Action") == action
        seq, digest = (record.findtext(f"{ODM}SourceID") or "").split(":")[1:]
        entry = entries[int(seq)]
        # The data manager's export carries no entry's hash (tests/spec/audit/test_hash_of_a_masked_entry.py).
        assert (entry.action, "masked", entry.actor, entry.reason) == (action, digest, manager, x.get("Reason"))
        assert record.findtext(f"{ODM}DateTimeStamp") == entry.at.isoformat()
    for arm in first_protocol().protocol.arms:  # the blind: no arm code or name
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code


def test_export_import_export_restores_the_locks_exactly_and_is_byte_identical(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    held = _locked_trial(trial)
    path = _export(trial, tmp_path / "odm")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert report.locks == 4 and "locks:          4 changes" in report.summary()
    assert _rows(target.engine) == _rows(trial.engine)
    assert lock_state(target.engine) == lock_state(trial.engine)  # locked, by, when, why, the override's blockers
    assert lock_state(target.engine).locked and lock_state(target.engine).banner == lock_state(trial.engine).banner
    assert active_soft_locks(target.engine) == active_soft_locks(trial.engine)
    assert [(s.scope, s.target) for s in active_soft_locks(target.engine)] == [("participant", held)]  # RAZ: lifted
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=_taken(path))
    (tmp_path / "again").mkdir()
    again = OdmExporter().write(made, tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()
    imported = audit.entries(target.engine, action_prefix="import.odm", limit=10_000)
    (kept,) = [json.loads(e.new_value or "{}")["locks"] for e in imported if '"locks"' in (e.new_value or "")]
    assert [(k["scope"], k["locked"], k["recorded"]["action"]) for k in kept] == [
        ("trial", True, "trial.locked"), ("site", True, "lock.soft_locked"), ("site", False, "lock.soft_unlocked"),
        ("participant", True, "lock.soft_locked")]  # fmt: skip
    chain = audit.verify(target.engine)
    assert chain.ok, chain.message
    replayed = replay(target.engine)
    assert replayed.ok, replayed.message
    assert not [line for line in NOT_RESTORED if "lock" in line]  # restored now: not listed as not restored
    assert "starts open" not in report.summary()


def _edit(pattern: str, replacement: str, count: int = 1) -> Any:
    def edit(text: str) -> str:
        changed, n = re.subn(pattern, replacement, text, count=count, flags=re.S)
        assert n, f"the export has no {pattern!r} to edit"
        return changed

    return edit


def _swap_site_times(text: str) -> str:
    first, second = re.findall(r'<tw:SoftLock Site="RAZ" [^>]*At="([^"]+)"', text)
    assert first != second
    swapped = {first: second, second: first}
    return re.sub(r'(<tw:SoftLock Site="RAZ" [^>]*At=)"([^"]+)"', lambda m: f'{m[1]}"{swapped[m[2]]}"', text)


# the file edited, how, and what the refusal names (see the module's table)
REFUSED = [
    ("an unknown site", _edit(r'<tw:SoftLock Site="RAZ"', '<tw:SoftLock Site="XXX"'),
     ["ClinicalData/tw:SoftLock[1]/@Site: 'XXX' is not a site of the protocol"]),
    ("a time with Z", _edit(r'(<tw:TrialLock [^>]*At="[^"]+)\+00:00"', r'\1Z"'),
     ["ClinicalData/tw:TrialLock[1]/@At", "is not written as the export writes a time"]),
    ("a time that is not one", _edit(r'(<tw:TrialLock [^>]*At=)"[^"]+"', r'\1"yesterday"'),
     ["ClinicalData/tw:TrialLock[1]/@At: 'yesterday' is not a date and time"]),
    ("the site's times swapped", _swap_site_times,
     ["ClinicalData/tw:SoftLock[2]/@At:", "is before ClinicalData/tw:SoftLock[1]'s", "site RAZ lifted before"]),
    ("the site's lock left out", _edit(r' *<tw:SoftLock Site="RAZ" Locked="Yes".*?</tw:SoftLock>\n', ""),
     ["ClinicalData/tw:SoftLock[1]/@Locked: its first change is an unlock: a lock lifted before it was set"]),
    ("the override without its reason", _edit(r'(<tw:TrialLock [^>]*) Reason="[^"]*"', r"\1"),
     ["ClinicalData/tw:TrialLock[1]/@Reason: required (an override of the lock readiness"]),
    ("blockers with a leading zero", _edit(r'OpenBlockers="', 'OpenBlockers="0'),
     ["ClinicalData/tw:TrialLock[1]/@OpenBlockers:", "is not a count as the export writes one"]),
    ("an attribute the export never writes", _edit(r"<tw:TrialLock ", '<tw:TrialLock Arm="A" '),
     ["ClinicalData/tw:TrialLock[1]/@Arm: the export never writes it here"]),
    ("a participant's soft lock naming a site", _edit(r'<tw:SoftLock Locked="Yes"', '<tw:SoftLock Site="RAZ" '
                                                      'Locked="Yes"'),
     ["/tw:SoftLock[1]/@Site: a participant's soft lock names no site"]),
    ("a participant's soft lock by another user", _edit(r'(<tw:SoftLock Locked="Yes" [^>]*By=)"[^"]*"',
                                                        rf'\1"{username(Role.ADMINISTRATOR)}"'),
     ["/tw:SoftLock[1]/AuditRecord/UserRef: names", f"but By is {username(Role.ADMINISTRATOR)}"]),
]  # fmt: skip


def test_what_cannot_be_restored_exactly_is_refused_by_name_and_nothing_is_written(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    _locked_trial(trial)
    text = _export(trial, tmp_path / "odm").read_text(encoding="utf-8")
    manager = who(target, Role.DATA_MANAGER)
    before = (_count(target.engine), audit.count(target.engine))
    for case, change, named in REFUSED:
        bad = tmp_path / f"{case.replace(' ', '-')}.odm.xml"
        bad.write_text(change(text), encoding="utf-8")
        with pytest.raises(OdmImportError) as refused:
            import_odm(target.engine, manager, bad)
        for words in named:
            assert words in str(refused.value), (case, str(refused.value))
        assert (_count(target.engine), audit.count(target.engine)) == before, case


def test_a_trial_with_a_lock_history_of_its_own_is_refused(trial: Trial, tmp_path: Path, target: Trial) -> None:
    """The target's rows and the file's would not pair with their audit records (and the target would not be the
    source's state), so the file's locks go into a trial without any."""
    _locked_trial(trial)
    path = _export(trial, tmp_path / "odm")
    manager = who(target, Role.DATA_MANAGER)
    soft_lock(target.engine, manager, "Checking the site", site="RAZ")
    soft_unlock(target.engine, manager, "Checked", site="RAZ")
    before = (_count(target.engine), audit.count(target.engine))
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, manager, path)
    assert "trial: this trial already has 2 lock and unlock changes" in str(refused.value)
    assert (_count(target.engine), audit.count(target.engine)) == before


def test_an_export_of_some_sites_holds_only_their_soft_locks_and_their_participants(trial: Trial) -> None:
    """A site-scoped export (a coordinator's) writes the trial lock, its sites' soft locks and its participants' only:
    a participant soft-locked at another site is neither written nor paired with its entries (review)."""
    from trialwright.services.export_locks import lock_records

    held = _locked_trial(trial)  # at RAZ
    with session_scope(trial.engine) as session:
        everyone = lock_records(session, masked=True)
        gol = lock_records(session, ("GOL",), masked=True)
        raz = lock_records(session, ("RAZ",), masked=True)
    assert {(r.scope, r.target) for r in everyone} == {("trial", None), ("site", "RAZ"), ("participant", held)}
    assert {(r.scope, r.target) for r in gol} == {("trial", None)}
    assert {(r.scope, r.target) for r in raz} == {("trial", None), ("site", "RAZ"), ("participant", held)}
