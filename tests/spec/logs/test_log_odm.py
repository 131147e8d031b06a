"""Log entries in the ODM export (both databases): the logs are in the metadata (a common study event ``SE.LOGS``,
a form and a repeating item group per log) and each participant's entries in the clinical data, one
``ItemGroupData`` per entry (``ItemGroupRepeatKey`` its sequence) with its values and the AuditRecord of the latest
audit entry about it (and about each value), removed entries kept with their reason (``tw:LogEntry``). The file is
valid against CDISC's ODM 1.3.2 schema with the extension, and names no arm. Each entry also carries who added it
and when, its source data verification and signature (``tw:LogEntry``; a signed one also ODM's ``Signature``) and
its coding (``tw:Coding``: ATC for conmeds, MedDRA for medical history, with the path as ``tw:Level``).

Importing the file into a fresh trial restores every entry exactly (its row, its coding, its and its values'
AuditRecords as recorded), so export -> import -> export is byte-identical and both trials replay clean; what the
import cannot restore is refused naming it, and nothing is written:

| the file edited                              | refused at                                                    |
|----------------------------------------------|---------------------------------------------------------------|
| an entry without CreatedAt                   | tw:LogEntry/@CreatedAt: required                              |
| an entry without ProtocolVersion             | tw:LogEntry/@ProtocolVersion: required                        |
| an ATC coding said to be MedDRA              | tw:Coding/@Dictionary: conmeds is coded to ATC                 |
| two entries with one ItemGroupRepeatKey      | @ItemGroupRepeatKey: 1 appears twice                          |
| a removed entry without its reason           | @RemovedReason                                                |
| a coding level written 01                    | tw:Coding/tw:Level/@Level: '01' is not a level                |
| a coding level ending in a superscript two   | tw:Coding/tw:Level/@Level: '1²' is not a level                |

| entry                      | ItemGroupRepeatKey | tw:LogEntry                                   |
|----------------------------|--------------------|-----------------------------------------------|
| conmeds 1, Enoxaparin      | 1                  | active                                        |
| conmeds 2, Paracetamol     | 2                  | active                                        |
| conmeds 3, Aspirin         | 3                  | removed, "another patient's chart"            |
| medical_history 1          | 1                  | active                                        |

Expected values and audit records are read here from the tables (``log_entries``, ``audit_entries``) as JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.logs.fictional_atc import write_index
from tests.spec.logs.test_log_exports import _entries
from tests.trialfixtures import PASSWORD, Trial, first_protocol, second_trial, username, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter, extension_schema
from trialwright.exports.odm.schema import EXTENDED_SCHEMA
from trialwright.services.coding import load_meddra
from trialwright.services.exports import export_source
from trialwright.services.forms import casebook, sign_casebook, verify_entries
from trialwright.services.logs import amend_entry
from trialwright.services.medication_coding import code_history, code_medication, load_atc
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.replay import replay
from trialwright.store.engine import session_scope
from trialwright.store.log_tables import log_codings, log_entries
from trialwright.store.screening_tables import participants
from trialwright.store.tables import audit_entries

CDISC_ODM = Path(__file__).resolve().parents[2] / "data" / "odm-1.3.2"
ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"


def _export(trial: Trial, folder: Path) -> Path:
    folder.mkdir()
    path, *_ = OdmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), folder)
    return path


def test_log_entries_are_repeating_item_groups_with_their_audit_records(
    trial: Trial, pid: str, tmp_path: Path
) -> None:
    import xmlschema

    _entries(trial, pid)
    path = _export(trial, tmp_path / "odm")
    check = tmp_path / "check"
    shutil.copytree(CDISC_ODM, check)
    extension_schema(check)
    assert [str(e) for e in xmlschema.XMLSchema(str(check / EXTENDED_SCHEMA)).iter_errors(str(path))] == []
    text = path.read_text(encoding="utf-8")
    for arm in first_protocol().protocol.arms:  # as the ODM spec checks it: no arm code, arm or intervention name
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code

    with session_scope(trial.engine) as session:
        stored = {(r.log_id, r.sequence): r for r in session.execute(select(log_entries))}
        trail = session.execute(
            select(audit_entries).where(audit_entries.c.action.like("log.%"), audit_entries.c.participant == pid)
            .order_by(audit_entries.c.seq)
        ).all()  # fmt: skip
    latest: dict[tuple[str, str], str] = {}
    latest_value: dict[tuple[str, str, str], str] = {}
    for a in trail:  # a blinded export carries no entry's hash (tests/spec/audit/test_hash_of_a_masked_entry.py)
        sequence = str(json.loads(a.detail)["sequence"])
        latest[(a.form, sequence)] = f"audit:{a.seq}:masked"
        if a.action in {"log.value_entered", "log.value_changed"}:
            latest_value[(a.form, sequence, a.field)] = f"audit:{a.seq}:masked"

    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    subject = next(s for s in root.iter(f"{ODM}SubjectData") if s.get("SubjectKey") == pid)
    (event,) = [e for e in subject.findall(f"{ODM}StudyEventData") if e.get("StudyEventOID") == "SE.LOGS"]
    found = {}
    for form in event.findall(f"{ODM}FormData"):
        log_id = form.get("FormOID", "").removeprefix("F.LOG.")
        for group in form.findall(f"{ODM}ItemGroupData"):
            assert group.get("ItemGroupOID") == f"IG.LOG.{log_id}"
            key = group.get("ItemGroupRepeatKey", "")
            tw = group.find(f"{TW}LogEntry")
            assert tw is not None
            items = {i.get("ItemOID", "").removeprefix(f"IT.LOG.{log_id}."): i for i in group.findall(f"{ODM}ItemData")}
            row = stored[(log_id, int(key))]
            values = json.loads(row.entry_values)
            assert set(items) == set(values)
            for name, item in items.items():
                if isinstance(values[name].get("value"), str) and values[name].get("status", "value") == "value":
                    assert item.get("Value") == values[name]["value"], name
                source = item.find(f"{ODM}AuditRecord/{ODM}SourceID")
                assert source is not None and source.text == latest_value[(log_id, key, name)]
            record = group.find(f"{ODM}AuditRecord/{ODM}SourceID")
            assert record is not None and record.text == latest[(log_id, key)]
            found[(log_id, key)] = (tw.get("State"), tw.get("RemovedReason"), items["medication" if log_id ==
                                    "conmeds" else "condition"].get("Value"))  # fmt: skip
    assert found == {
        ("conmeds", "1"): ("active", None, "Enoxaparin"),
        ("conmeds", "2"): ("active", None, "Paracetamol"),
        ("conmeds", "3"): ("removed", "another patient's chart", "Aspirin"),
        ("medical_history", "1"): ("active", None, "Type 2 diabetes"),
    }


# --- export -> import -> export ------------------------------------------------------------------------------------


def _reviewed_and_coded(trial: Trial, pid: str, tmp_path: Path) -> None:
    """The entries above, entry 2 amended with a reason, entry 1 coded to ATC and the history entry to MedDRA, both
    verified by the monitor and signed by the investigator through the casebook."""
    _entries(trial, pid)
    amend_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 2, {"dose": 2},
                reason="source says 2 g")  # fmt: skip
    coder = who(trial, Role.CODER)
    load_atc(trial.engine, coder, write_index(tmp_path / "atc.csv"), "2026")
    code_medication(trial.engine, coder, pid, "conmeds", 1, "Z01AB05")
    load_meddra(trial.engine, coder, write_release(tmp_path / "MedAscii"), "27.1")
    code_history(trial.engine, coder, pid, "medical_history", 1, 90000011)
    verify_entries(trial.engine, who(trial, Role.MONITOR), [(pid, "conmeds", 1), (pid, "medical_history", 1)])
    investigator = who(trial, Role.INVESTIGATOR)
    seals = {e.key: e.seal for e in casebook(trial.engine, investigator, pid).entries if e.key != ("conmeds", 2)}
    signed = sign_casebook(trial.engine, investigator, pid, {}, password=PASSWORD, entries=seals)
    assert [(e.log_id, e.sequence) for e in signed.entries_done] == [("conmeds", 1), ("medical_history", 1)]


def _logs_as_stored(engine: Engine) -> list[tuple[Any, ...]]:
    """Every log entry and its coding as the tables hold them (database ids left out)."""
    e, c = log_entries.c, log_codings.c
    query = select(*(col for col in log_entries.c if col.name != "id"),
                   *(col for col in log_codings.c if col.name != "entry_id")
                   ).outerjoin(log_codings, c.entry_id == e.id)
    query = query.order_by(e.participant_id, e.log_id, e.sequence)  # fmt: skip
    with session_scope(engine) as session:
        return [tuple(r) for r in session.execute(query)]


@pytest.fixture
def target(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Trial]:
    """A fresh trial of the same protocol on a second database of the same kind."""
    with second_trial(tmp_path, database_url, request) as fresh:
        yield fresh


def test_export_import_export_of_log_entries_is_byte_identical(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    """Every entry comes back exactly (sequence, values, state, version, removal reason, who added and changed it
    and when, verification, signature and coding with its path, coder and time), the re-export is the file byte for
    byte (every AuditRecord as recorded: the amendment's reason, the coder's, the monitor's and the investigator's
    entries), the import says so, and both trials replay clean against their audit trails."""
    _reviewed_and_coded(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    text = path.read_text(encoding="utf-8")
    assert '<tw:Coding Dictionary="ATC"' in text and '<tw:Coding Dictionary="MedDRA"' in text
    assert "source says 2 g" in text and f"SIG.{pid}.LOG.conmeds.1" in text
    import xmlschema

    check = tmp_path / "check"
    shutil.copytree(CDISC_ODM, check)
    extension_schema(check)
    assert [str(e) for e in xmlschema.XMLSchema(str(check / EXTENDED_SCHEMA)).iter_errors(str(path))] == []

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert (report.log_entries, report.codings) == (4, 2)
    assert "log entries:    4 (2 coded" in report.summary()
    source_rows = _logs_as_stored(trial.engine)
    assert _logs_as_stored(target.engine) == source_rows
    # log, sequence, state, version, removal reason, verified by, signed, coded to
    states = [(r[1], r[2], r[4], r[5], r[11], r[13], r[15] is not None, r[20]) for r in source_rows]
    assert states == [
        ("conmeds", 1, "active", 1, None, username(Role.MONITOR), True, "Z01AB05"),
        ("conmeds", 2, "active", 2, None, None, False, None),
        ("conmeds", 3, "removed", 2, "another patient's chart", None, False, None),
        ("medical_history", 1, "active", 1, None, username(Role.MONITOR), True, "90000011"),
    ]
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=_taken(path))
    (tmp_path / "again").mkdir()
    again = OdmExporter().write(made, tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()
    for engine in (trial.engine, target.engine):
        replayed = replay(engine)
        assert replayed.ok, replayed.message
    entry = (log_entries.c.log_id == "conmeds") & (log_entries.c.sequence == 2)
    with session_scope(target.engine) as session:  # an imported value altered by SQL is named by the replay
        held = session.execute(select(log_entries.c.entry_values).where(entry)).scalar_one()
        session.execute(log_entries.update().where(entry).values(entry_values=held.replace("Paracetamol", "Ibuprofen")))
    altered = replay(target.engine)
    assert not altered.ok and "conmeds entry 2" in altered.message and "Ibuprofen" in altered.message


def _taken(path: Path) -> dt.datetime:
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    return dt.datetime.fromisoformat(root.get("AsOfDateTime", ""))


@pytest.mark.parametrize(
    ("pattern", "replacement", "named"),
    [
        (r' CreatedAt="[^"]*"', "", "tw:LogEntry/@CreatedAt: required"),
        (r' ProtocolVersion="[^"]*"', "", "tw:LogEntry/@ProtocolVersion: required"),
        (r'<tw:Coding Dictionary="ATC"', '<tw:Coding Dictionary="MedDRA"',
         "tw:LogEntry/tw:Coding/@Dictionary: 'MedDRA'; the entries of log conmeds are coded to ATC"),
        (r'ItemGroupRepeatKey="2"', 'ItemGroupRepeatKey="1"', "@ItemGroupRepeatKey: 1 appears twice"),
        (r' RemovedReason="[^"]*"', "", "@RemovedReason: a removed entry has its reason"),
        ('<tw:Level Level="1"', '<tw:Level Level="01"', "tw:Coding/tw:Level/@Level: '01' is not a level (1, 2, ...)"),
        ('<tw:Level Level="1"', '<tw:Level Level="1\u00b2"', "tw:Coding/tw:Level/@Level: '1\u00b2' is not a level"),
    ],
)
def test_a_log_entry_the_import_cannot_restore_is_refused_naming_it_and_nothing_is_written(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, pattern: str, replacement: str, named: str
) -> None:
    _reviewed_and_coded(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    text = path.read_text(encoding="utf-8")
    edited, n = re.subn(pattern, replacement, text, count=1)
    assert n == 1
    path.write_text(edited, encoding="utf-8")
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert named in str(refused.value) and f"SubjectKey={pid}" in str(refused.value)
    with session_scope(target.engine) as session:
        assert session.execute(select(participants)).first() is None
        assert session.execute(select(log_entries)).first() is None
