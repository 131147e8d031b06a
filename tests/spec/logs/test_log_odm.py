"""Log entries in the ODM export (both databases): the logs are in the metadata (a common study event ``SE.LOGS``,
a form and a repeating item group per log) and each participant's entries in the clinical data, one
``ItemGroupData`` per entry (``ItemGroupRepeatKey`` its sequence) with its values and the AuditRecord of the latest
audit entry about it (and about each value), removed entries kept with their reason (``tw:LogEntry``). The file is
valid against CDISC's ODM 1.3.2 schema with the extension, and names no arm. Importing it is refused, naming the
rule, and changes nothing: the import does not restore log entries and never drops them.

| entry                      | ItemGroupRepeatKey | tw:LogEntry                                   |
|----------------------------|--------------------|-----------------------------------------------|
| conmeds 1, Enoxaparin      | 1                  | active                                        |
| conmeds 2, Paracetamol     | 2                  | active                                        |
| conmeds 3, Aspirin         | 3                  | removed, "another patient's chart"            |
| medical_history 1          | 1                  | active                                        |

Expected values and audit records are read here from the tables (``log_entries``, ``audit_entries``) as JSON.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import fresh_database
from tests.spec.logs.test_log_exports import _entries
from tests.trialfixtures import Trial, first_protocol, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter, extension_schema
from trialwright.exports.odm.schema import EXTENDED_SCHEMA
from trialwright.services.exports import export_source
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.store.engine import session_scope
from trialwright.store.log_tables import log_entries
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
    for a in trail:
        sequence = str(json.loads(a.detail)["sequence"])
        latest[(a.form, sequence)] = f"audit:{a.seq}:{a.hash}"
        if a.action in {"log.value_entered", "log.value_changed"}:
            latest_value[(a.form, sequence, a.field)] = f"audit:{a.seq}:{a.hash}"

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


def test_importing_a_file_with_log_entries_is_refused_naming_the_rule(
    trial: Trial, pid: str, tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    _entries(trial, pid)
    path = _export(trial, tmp_path / "odm")
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    reason = request.getfixturevalue("postgres_available") if kind == "postgresql" else None
    with fresh_database(kind, tmp_path / "target", reason) as url:
        (tmp_path / "target").mkdir(exist_ok=True)
        target = make_trial(url)
        try:
            with pytest.raises(OdmImportError) as refused:
                import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
            message = str(refused.value)
            assert f"SubjectKey={pid}" in message and "StudyEventData[@StudyEventOID=SE.LOGS]" in message
            assert "log entries (F.LOG.conmeds, F.LOG.medical_history)" in message
            assert "never drops data, so the file is refused; nothing was written" in message
            with session_scope(target.engine) as session:
                assert session.execute(select(participants)).first() is None
        finally:
            target.engine.dispose()
