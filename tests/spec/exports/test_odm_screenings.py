"""Every screening never enrolled in the ODM export and back (both databases), with its audit entries as recorded.

A trial (the consents module's protocol, two consent form versions), through the services:

| screening | what happened                                                             | enrolled | why not      |
|-----------|---------------------------------------------------------------------------|----------|--------------|
| RAZ-S0001 | screened aged 10, corrected to 12 with a reason (screen failure)          | never    | not_eligible |
| RAZ-S0002 | eligible; the participant refuses consent                                 | never    | declined     |
| RAZ-S0003 | eligible, aged 45 corrected to 47 with a reason, consents, enrolled; 48   | RAZ-001  |              |
| RAZ-S0004 | eligible, no consent: transferred (text with quotes, ampersand, brackets) | never    | other        |

In the file: a ``tw:Screening`` in ``ClinicalData`` after the participants for each screening never enrolled (S0001,
S0002, S0004, in the order screened), with its number, date, why not enrolled (and the text), its values, its consent
records if any; its ``AuditRecord`` is the latest audit entry about it (``tw:Action``), and every earlier one is a
``tw:Earlier`` of its ``tw:History`` with its ``Action``, oldest first: for S0001 ``screening.created``,
``screening.changed`` (with the reason) then ``screening.not_enrolled``; for S0002 ``screening.created``,
``consent.refuse``, ``screening.changed`` (the consent field set) then ``screening.not_enrolled``; for S0004
``screening.created`` then ``screening.not_enrolled``. Each record's user, site, time, reason and ``SourceID``
(``audit:<seq>:<hash>``) are the source trail's entry's, read from the table independently. The users they name are
listed in ``AdminData``. The file is valid against CDISC's ODM 1.3.2 schema with the extension and names no arm.

The enrolled screening's entries made before its enrolment name no participant either (``ENROLLED``:
``screening.created``, ``screening.changed`` with the reason, ``consent.consent``, ``screening.changed``, the consent
field set; and ``screening.changed`` after enrolment, age 48, which names no participant either): they are the
``tw:History`` of RAZ-001's ``tw:Enrolment``, after its consent records, each a
``tw:Earlier`` with its ``Action`` and AuditRecord, oldest first (no latest record: the enrolment is the participant's
own, ``participant.enrolled``), as the trail holds them. The import keeps them as recorded in RAZ-001's ``import.odm``
entry (``screening_earlier``: the screening's number and the records) and the re-export writes them back; a file
written before the export carried them (no ``tw:History`` in ``tw:Enrolment``) imports as before, byte-identical.

Export -> import -> export is byte-identical; the screenings come back (number, date, values, decision, reason and
text), each with one ``import.odm`` entry that keeps its records as recorded (``recorded``, ``earlier``: user, site,
time, reason, seq, hash, action), and the imported trial's audit chain verifies.

Refused, naming the element or attribute and the rule, nothing written:

| the file edited                                                    | refused at                                      |
|--------------------------------------------------------------------|-------------------------------------------------|
| S0001's AuditRecord by a user the AdminData does not list          | tw:Screening[1]/AuditRecord/UserRef/@UserOID    |
| S0001's first earlier record with the action of a form             | .../tw:History/tw:Earlier[1]/@Action            |
| S0001's earlier records out of time order (the first dated later)  | tw:Screening[1]/tw:History                      |
| the refusal recorded by a user the AdminData does not list         | tw:Screening[2]/tw:Consent[1]/@RecordedBy       |
| RAZ-001's screening entries out of time order (the first later)    | ...]/tw:Enrolment/tw:History/tw:Earlier[2]      |
| RAZ-001's first screening entry with the action of a form          | ...tw:Enrolment/tw:History/tw:Earlier[1]/@Action|
| RAZ-001's first screening entry by a user AdminData does not list  | ...tw:Earlier[1]/AuditRecord/UserRef/@UserOID   |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.spec.exports.test_odm_consents import _edit, _taken
from tests.spec.exports.test_odm_consents import target as target
from tests.spec.exports.test_odm_consents import trial as trial
from tests.spec.exports.test_odm_queries import _export, _valid
from tests.spec.randomization.test_randomize_service import TYPED
from tests.trialfixtures import Trial, first_protocol, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter
from trialwright.services import audit
from trialwright.services.exports import export_source
from trialwright.services.odm_import import NOT_RESTORED, OdmImportError, import_odm
from trialwright.services.screening import enrol, record_consent, screen, set_non_enrolment, update_screening
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import screenings
from trialwright.store.tables import audit_entries

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"
TRANSFERRED = 'transferred to "ICU B" & <ward 3>'
#: The actions about each screening never enrolled, oldest first (the last its AuditRecord's).
ACTIONS = {
    "RAZ-S0001": ["screening.created", "screening.changed", "screening.not_enrolled"],
    "RAZ-S0002": ["screening.created", "consent.refuse", "screening.changed", "screening.not_enrolled"],
    "RAZ-S0004": ["screening.created", "screening.not_enrolled"],
}
#: The actions about the enrolled screening that name no participant, oldest first (``tw:Enrolment``'s
#: ``tw:History``): before its enrolment, and a change of its values after.
ENROLLED = ["screening.created", "screening.changed", "consent.consent", "screening.changed", "screening.changed"]


def _screenings(trial: Trial) -> None:
    """The four screenings of the module's table, through the services."""
    e, coordinator = trial.engine, who(trial, Role.STUDY_COORDINATOR)
    now = dt.datetime.now(dt.UTC)
    failed = screen(e, coordinator, site="RAZ", screened_on=now.date(), values={**TYPED, "age": 10})
    update_screening(e, coordinator, failed.id, values={"age": 12}, reason="age as charted, not as told")
    assert failed.decision == "not_eligible"
    set_non_enrolment(e, coordinator, failed.id, reason="not_eligible")
    refused = screen(e, coordinator, site="RAZ", screened_on=now.date(), values=TYPED).id
    record_consent(e, coordinator, refused, form_version="2.0", given_by="participant", obtained_by="Dr K",
                   obtained_at=now - dt.timedelta(minutes=5), decision="refuse")  # fmt: skip
    set_non_enrolment(e, coordinator, refused, reason="declined")
    enrolled = screen(e, coordinator, site="RAZ", screened_on=now.date(), values=TYPED).id
    update_screening(e, coordinator, enrolled, values={"age": 47}, reason="age from the ID card")
    record_consent(e, coordinator, enrolled, form_version="2.0", given_by="participant", obtained_by="Dr K",
                   obtained_at=now - dt.timedelta(minutes=4))  # fmt: skip
    enrol(e, coordinator, enrolled)
    update_screening(e, coordinator, enrolled, values={"age": 48}, reason="birthday")  # after: names no participant
    moved = screen(e, coordinator, site="RAZ", screened_on=now.date(), values=TYPED).id
    set_non_enrolment(e, coordinator, moved, reason="other", text_=TRANSFERRED)


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    """The screenings as restored: number, date, values, decision, why not enrolled (no database id)."""
    s = screenings.c
    query = select(s.site, s.number, s.screened_on, s.screening_values, s.decision, s.non_enrolment_reason,
                   s.non_enrolment_text).order_by(s.site, s.number)  # fmt: skip
    with session_scope(engine) as session:
        return [tuple(r) for r in session.execute(query)]


def _trail(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """The source's audit entries about each screening, read from the table (not through the export): who, where,
    when, why and seq, oldest first, and the hash as a blinded export gives it: ``masked``
    (tests/spec/audit/test_hash_of_a_masked_entry.py)."""
    a = audit_entries.c
    found: dict[str, list[dict[str, Any]]] = {}
    with session_scope(engine) as session:
        for r in session.execute(select(audit_entries).where(a.participant.is_(None)).order_by(a.seq)):
            about = json.loads(r.detail) if r.detail else {}
            if r.form in {"screening", "consent"} and isinstance(about, dict) and "screening" in about:
                entry = {"action": r.action, "by": r.actor, "site": r.site, "at": r.at.isoformat(),
                         "reason": r.reason, "seq": r.seq, "hash": "masked"}  # fmt: skip
                found.setdefault(about["screening"], []).append(entry)
    return found


def _record(elem: ET.Element) -> dict[str, Any]:
    """An AuditRecord as the file states it."""
    user, site = elem.find(f"{ODM}UserRef"), elem.find(f"{ODM}LocationRef")
    assert user is not None and site is not None
    _, seq, digest = (elem.findtext(f"{ODM}SourceID") or "").split(":")
    return {"by": (user.get("UserOID") or "").removeprefix("USR."), "site": site.get("LocationOID"),
            "at": elem.findtext(f"{ODM}DateTimeStamp"), "reason": elem.findtext(f"{ODM}ReasonForChange"),
            "seq": int(seq), "hash": digest}  # fmt: skip


def test_every_screening_never_enrolled_is_in_the_file_with_its_audit_records(trial: Trial, tmp_path: Path) -> None:
    _screenings(trial)
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    clinical = root.find(f"{ODM}ClinicalData")
    assert clinical is not None
    written = clinical.findall(f"{TW}Screening")
    assert [s.get("ScreeningNumber") for s in written] == ["RAZ-S0001", "RAZ-S0002", "RAZ-S0004"]
    assert [(s.get("NonEnrolmentReason"), s.get("NonEnrolmentText")) for s in written] == [
        ("not_eligible", None), ("declined", None), ("other", TRANSFERRED)
    ]  # fmt: skip
    values = [json.loads(s.findtext(f"{TW}ScreeningValues") or "") for s in written]
    assert values[0]["age"] == 12 and values[1]["informed_consent"] is False and "informed_consent" not in values[2]
    assert [len(s.findall(f"{TW}Consent")) for s in written] == [0, 1, 0]
    trail = _trail(trial.engine)
    assert {n: [e["action"] for e in entries] for n, entries in trail.items() if n != "RAZ-S0003"} == ACTIONS
    listed = {(u.get("OID") or "").removeprefix("USR.") for u in root.iter(f"{ODM}User")}
    for s in written:
        entries = trail[s.get("ScreeningNumber", "")]
        latest = s.find(f"{ODM}AuditRecord")
        assert latest is not None
        assert latest.findtext(f"{TW}Action") == entries[-1]["action"]
        earlier = s.findall(f"{TW}History/{TW}Earlier")
        assert [e.get("Action") for e in earlier] == [e["action"] for e in entries[:-1]]
        found = [_record(r) for r in (*(e.find(f"{ODM}AuditRecord") for e in earlier), latest) if r is not None]
        assert found == [{k: v for k, v in e.items() if k != "action"} for e in entries]
        assert {f["by"] for f in found} <= listed
    assert trail["RAZ-S0001"][1]["reason"] == "age as charted, not as told"
    tags = [c.tag for c in clinical]
    assert tags.index(f"{TW}Screening") > max(i for i, t in enumerate(tags) if t == f"{ODM}SubjectData")
    text = path.read_text(encoding="utf-8")
    for arm in first_protocol().protocol.arms:  # the blind: no arm code or name
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code


def test_export_import_export_is_byte_identical_and_the_screenings_come_back_with_their_records(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    _screenings(trial)
    path = _export(trial, tmp_path / "odm")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert (report.screenings, report.consents) == (3, 2)
    assert "screenings:     3 never enrolled" in report.summary()
    assert _rows(target.engine) == _rows(trial.engine)
    trail = _trail(trial.engine)
    a = audit_entries.c
    with session_scope(target.engine) as session:
        kept = {
            json.loads(r.detail)["screening"]: json.loads(r.new_value)
            for r in session.execute(select(audit_entries).where(a.action == "import.odm", a.participant.is_(None)))
            if "screening" in json.loads(r.detail or "{}")
        }
    assert sorted(kept) == ["RAZ-S0001", "RAZ-S0002", "RAZ-S0004"]
    for number, imported in kept.items():
        records = [*imported["earlier"], imported["recorded"]]
        assert [{k: r[k] for k in ("action", "by", "site", "at", "reason", "seq", "hash")} for r in records] == trail[
            number
        ], number
    made = export_source(target.engine, who(target, Role.DATA_MANAGER))
    (tmp_path / "again").mkdir()
    again = OdmExporter().write(dataclasses.replace(made, taken_at=_taken(path)), tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()
    chain = audit.verify(target.engine)
    assert chain.ok, chain.message
    text = " ".join(NOT_RESTORED)
    assert "screenings never enrolled that have no consent record" not in text


def _enrolment_history(root: ET.Element, pid: str) -> list[ET.Element]:
    """The ``tw:Earlier`` records of a participant's ``tw:Enrolment``."""
    subject = next(s for s in root.iter(f"{ODM}SubjectData") if s.get("SubjectKey") == pid)
    return subject.findall(f"{TW}Enrolment/{TW}History/{TW}Earlier")


def test_an_enrolled_screenings_entries_before_enrolment_are_in_its_participants_enrolment(
    trial: Trial, tmp_path: Path
) -> None:
    _screenings(trial)
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    trail = _trail(trial.engine)["RAZ-S0003"]
    assert [e["action"] for e in trail] == ENROLLED
    assert trail[1]["reason"] == "age from the ID card"
    earlier = _enrolment_history(root, "RAZ-001")
    assert [e.get("Action") for e in earlier] == ENROLLED
    found = [_record(r) for r in (e.find(f"{ODM}AuditRecord") for e in earlier) if r is not None]
    assert found == [{k: v for k, v in e.items() if k != "action"} for e in trail]
    assert all(e.find(f"{ODM}AuditRecord/{TW}Action") is None for e in earlier)  # the action is the tw:Earlier's
    listed = {(u.get("OID") or "").removeprefix("USR.") for u in root.iter(f"{ODM}User")}
    assert {f["by"] for f in found} <= listed
    subject = next(s for s in root.iter(f"{ODM}SubjectData") if s.get("SubjectKey") == "RAZ-001")
    enrolment = subject.find(f"{TW}Enrolment")
    assert enrolment is not None and [c.tag for c in enrolment][-1] == f"{TW}History"  # after the consent records
    # the participant's own records are still its own: enrolled, not a screening's entry
    own = subject.find(f"{ODM}AuditRecord/{TW}Action")
    assert own is not None and own.text == "participant.enrolled"


def _participant_entry(engine: Engine, pid: str) -> dict[str, Any]:
    """The participant's own ``import.odm`` entry, as stored."""
    a = audit_entries.c
    with session_scope(engine) as session:
        found = session.execute(
            select(a.new_value).where(a.action == "import.odm", a.participant == pid, a.form.is_(None))
        ).scalar_one()
    kept: dict[str, Any] = json.loads(found)
    return kept


def test_the_entries_before_enrolment_come_back_in_the_participants_import_entry(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    _screenings(trial)
    path = _export(trial, tmp_path / "odm")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    kept = _participant_entry(target.engine, "RAZ-001")["screening_earlier"]
    assert kept["screening"] == "RAZ-S0003"
    fields = ("action", "by", "site", "at", "reason", "seq", "hash")
    assert [{k: r[k] for k in fields} for r in kept["records"]] == _trail(trial.engine)["RAZ-S0003"]
    chain = audit.verify(target.engine)
    assert chain.ok, chain.message
    assert not any("before a participant's screening was enrolled (they name no participant" in line
                   for line in NOT_RESTORED)  # fmt: skip


def test_a_file_written_before_the_export_carried_them_imports_as_before(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    _screenings(trial)
    text = _export(trial, tmp_path / "odm").read_text(encoding="utf-8")
    older, n = re.subn(r"(<tw:Enrolment [\s\S]*?)\s*<tw:History>[\s\S]*?</tw:History>(\s*</tw:Enrolment>)", r"\1\2",
                       text)  # fmt: skip
    assert n == 1 and "<tw:History>" in older  # only tw:Enrolment's: the screenings' histories stay
    path = tmp_path / "older.odm.xml"
    path.write_text(older, encoding="utf-8")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert "screening_earlier" not in _participant_entry(target.engine, "RAZ-001")
    chain = audit.verify(target.engine)
    assert chain.ok, chain.message


def _later(m: re.Match[str]) -> str:
    return m.group(1) + "2099-01-01T00:00:00+00:00" + m.group(2)


REFUSED: list[tuple[str, Callable[[str], str], list[str]]] = [
    ("an unknown user", _edit(r'(<tw:Screening ScreeningNumber="RAZ-S0001"[^>]*>\s*<AuditRecord>\s*<UserRef '
                              r'UserOID=)"[^"]*"', r'\1"USR.nobody"'),
     ["tw:Screening[1]/AuditRecord/UserRef/@UserOID: USR.nobody is not a User of the AdminData"]),
    ("a form's action", _edit(r'(<tw:Screening [^>]*>[\s\S]*?)Action="screening.created"', r'\1Action="form.started"'),
     ["tw:Screening[1]/tw:History/tw:Earlier[1]/@Action: 'form.started' is not an action about a screening"]),
    ("out of time order", _edit(r'(<tw:Screening [^>]*>[\s\S]*?<tw:Earlier Action="screening.created">\s*<AuditRecord>'
                                r'(?:\s*<[^D][^>]*>)*\s*<DateTimeStamp>)[^<]*(</DateTimeStamp>)', _later),
     ["tw:Screening[1]/tw:History"]),
    ("an unknown recorder", _edit(r'(<tw:Consent [^>]*Decision="refuse" [^>]*RecordedBy=)"[^"]*"', r'\1"nobody"'),
     ["tw:Screening[2]/tw:Consent[1]/@RecordedBy: nobody is not a User of the AdminData"]),
    # what set_non_enrolment refuses (review: the import wrote it as the file said)
    ("an unknown reason", _edit(r'NonEnrolmentReason="declined"', 'NonEnrolmentReason="busy"'),
     ["tw:Screening[2]/@NonEnrolmentReason: must be one of not_eligible, declined"]),
    ("other without its description", _edit(r' NonEnrolmentText="[^"]*"', ""),
     ["tw:Screening[3]/@NonEnrolmentText: 'other' needs a description"]),
    ("not eligible for a patient who is not", _edit(r'NonEnrolmentReason="other"', 'NonEnrolmentReason="not_eligible"'),
     ["tw:Screening[3]/@NonEnrolmentReason: the patient is", "not 'not eligible'"]),
    ("a number not as the export writes it", _edit(r'ScreeningNumber="RAZ-S0004"', 'ScreeningNumber="RAZ-S4"'),
     ["tw:Screening[3]/@ScreeningNumber: 'RAZ-S4' is not written as the export writes a screening number (RAZ-S0004)"]),
    # the enrolled screening's entries before its enrolment (RAZ-001's tw:Enrolment, the first in the file)
    ("RAZ-001's out of time order", _edit(r'(<tw:Earlier Action="screening.created">\s*<AuditRecord>'
                                          r'(?:\s*<[^D][^>]*>)*\s*<DateTimeStamp>)[^<]*(</DateTimeStamp>)', _later),
     ["SubjectData[@SubjectKey=RAZ-001]/tw:Enrolment/tw:History/tw:Earlier[2]/AuditRecord/DateTimeStamp: ",
      "the record before it; a history comes oldest first"]),
    ("RAZ-001's form action", _edit(r'Action="screening.created"', 'Action="form.started"'),
     ["SubjectData[@SubjectKey=RAZ-001]/tw:Enrolment/tw:History/tw:Earlier[1]/@Action: 'form.started' is not an "
      "action about a screening"]),
    ("RAZ-001's unknown user", _edit(r'(<tw:Earlier Action="screening.created">\s*<AuditRecord>\s*<UserRef '
                                     r'UserOID=)"[^"]*"', r'\1"USR.nobody"'),
     ["SubjectData[@SubjectKey=RAZ-001]/tw:Enrolment/tw:History/tw:Earlier[1]/AuditRecord/UserRef/@UserOID: "
      "USR.nobody is not a User of the AdminData"]),
]  # fmt: skip


def test_what_cannot_be_restored_exactly_is_refused_by_name_and_nothing_is_written(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    _screenings(trial)
    text = _export(trial, tmp_path / "odm").read_text(encoding="utf-8")
    manager = who(target, Role.DATA_MANAGER)
    before = (_rows(target.engine), audit.count(target.engine))
    for case, change, named in REFUSED:
        bad = tmp_path / f"{case.replace(' ', '-')}.odm.xml"
        bad.write_text(change(text), encoding="utf-8")
        with pytest.raises(OdmImportError) as refused:
            import_odm(target.engine, manager, bad)
        for words in named:
            assert words in str(refused.value), (case, str(refused.value))
        assert (_rows(target.engine), audit.count(target.engine)) == before, case
