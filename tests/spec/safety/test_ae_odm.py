"""Adverse events in the ODM export and its import (both databases): the metadata has a common study event ``SE.AE``
with one form and an item group that repeats, one ``ItemGroupData`` per event keyed by its AE number, whose
``ItemData`` are the event as its latest report states it (each with the AuditRecord of the latest report entry
about that field) and whose ``tw:AdverseEvent`` keeps every report (assessment, classification, reporter, time,
reason), the reports due, the submissions and the MedDRA coding. The file is valid against CDISC's ODM 1.3.2 schema
with the extension, and names no arm.

Importing the file into a fresh trial restores every event exactly, so export -> import -> export is byte-identical,
``audit verify`` holds and both trials replay clean; what the import cannot restore is refused naming it, and
nothing is written:

| the file edited                               | refused at                                             |
|-----------------------------------------------|--------------------------------------------------------|
| the grade item differs from the latest report | ItemData[@ItemOID=IT.AE.grade]: ... not the latest     |
| a due time moved                              | tw:Due: ... are not the reports due                    |
| an attribute the export never writes          | tw:Report[1]/@Source: the export writes no such        |
| the SAE's classification said not serious     | tw:Report[1]/@Serious: False is not what protocol ...  |
| a second event with the same AE number        | @ItemGroupRepeatKey: AE-0001 appears twice in the file |
| a unit added to the grade                     | ItemData[@ItemOID=IT.AE.grade]/tw:StoredValue          |
| CreatedAt at +03:30 (the same instant)        | tw:AdverseEvent/@CreatedAt: not as the export writes   |
| ReportedAt written with Z                     | tw:Report[1]/@ReportedAt: not as the export writes     |
| SubmittedAt with a seventh, zero, digit       | tw:Submission/@SubmittedAt: not as the export writes   |
| a submission's RecordedAt written with Z      | tw:Submission/@RecordedAt: not as the export writes    |
| CodedAt at +03:30                             | tw:Coding/@CodedAt: not as the export writes           |
| a MedDRA code with a leading zero             | tw:Coding/@LltCode: '090000011' is not a MedDRA code   |
| a MedDRA code ending in a superscript two     | tw:Coding/@LltCode: '90000011²' is not a MedDRA code   |
| a MedDRA code in Arabic-Indic digits          | tw:Coding/@LltCode: '٩٠٠٠٠٠١١' is not a MedDRA code    |

| event   | reported by           | reports                         | submission     | coding                          |
|---------|-----------------------|---------------------------------|----------------|---------------------------------|
| AE-0001 | investigator, a SUSAR | initial, follow-up "ICU" (term) | sae_to_sponsor | Acute zorbic kidney (now stale) |
| AE-0002 | coordinator, not SAE  | initial                         | -              | Blorp creatinine high           |

Expected rows and audit records are read here from the tables (``ae_reports``, ``audit_entries``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.forms.conftest import NOW
from tests.spec.safety.test_safety_service import sae
from tests.trialfixtures import Trial, first_protocol, second_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter, extension_schema
from trialwright.exports.odm.schema import EXTENDED_SCHEMA
from trialwright.services import audit
from trialwright.services.coding import code_event, load_meddra
from trialwright.services.exports import export_source
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.replay import replay
from trialwright.services.safety import follow_up, record_submission, report_event
from trialwright.store.coding_tables import ae_codings
from trialwright.store.engine import session_scope
from trialwright.store.safety_tables import adverse_events, ae_reports, ae_submissions
from trialwright.store.screening_tables import participants
from trialwright.store.tables import audit_entries

CDISC_ODM = Path(__file__).resolve().parents[2] / "data" / "odm-1.3.2"
ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"


def _events(trial: Trial, pid: str, tmp_path: Path) -> None:
    """The two events of the table above, through the services."""
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)  # the participant has an arm: none may leak
    investigator, coder = who(trial, Role.INVESTIGATOR), who(trial, Role.CODER)
    assert report_event(trial.engine, investigator, pid, sae()).ae_number == "AE-0001"
    load_meddra(trial.engine, coder, write_release(tmp_path / "MedAscii"), "27.1")
    code_event(trial.engine, coder, "AE-0001", 90000011)
    follow_up(trial.engine, investigator, "AE-0001",
              {"term": "Acute kidney failure", "grade": 4, "aware_at": NOW.isoformat()}, reason="transferred to ICU")
    record_submission(trial.engine, investigator, "AE-0001", "sae_to_sponsor", NOW.isoformat(), note="by fax")
    second = sae(term="Blorp creatinine high", serious=False, seriousness_criteria=[], grade=2, causality="unlikely",
                 narrative='Lab "high" & <flagged>')
    assert report_event(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, second).ae_number == "AE-0002"
    code_event(trial.engine, coder, "AE-0002", 90000021)


def _export(trial: Trial, folder: Path) -> Path:
    folder.mkdir()
    path, *_ = OdmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), folder)
    return path


def _valid(path: Path, tmp_path: Path) -> list[str]:
    import xmlschema

    check = tmp_path / "check"
    shutil.copytree(CDISC_ODM, check)
    extension_schema(check)
    return [str(e) for e in xmlschema.XMLSchema(str(check / EXTENDED_SCHEMA)).iter_errors(str(path))]


def _as_stored(engine: Engine) -> list[Any]:
    """Every event, report, submission and coding as the tables hold them (database ids left out)."""
    out: list[Any] = []
    with session_scope(engine) as session:
        numbers = {r.id: r.ae_number for r in session.execute(select(adverse_events))}
        for table in (adverse_events, ae_reports, ae_submissions, ae_codings):
            for row in session.execute(select(table)):
                held = row._asdict()
                key = numbers[held.pop("event_id", None) or held["id"]]
                held.pop("id", None)
                out.append((table.name, key, sorted(held.items())))
    return sorted(out, key=repr)


@pytest.fixture
def target(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Trial]:
    """A fresh trial of the same protocol on a second database of the same kind."""
    with second_trial(tmp_path, database_url, request) as fresh:
        yield fresh


def test_adverse_events_are_repeating_item_groups_keyed_by_ae_number_with_their_audit_records(
    trial: Trial, pid: str, tmp_path: Path
) -> None:
    _events(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    text = path.read_text(encoding="utf-8")
    for arm in first_protocol().protocol.arms:  # as the ODM spec checks it: no arm code, arm or intervention name
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code
    assert '<StudyEventDef OID="SE.AE" Name="Adverse events" Repeating="No" Type="Common">' in text
    assert '<ItemGroupDef OID="IG.AE" Name="Adverse events" Repeating="Yes">' in text

    with session_scope(trial.engine) as session:
        trail = session.execute(
            select(audit_entries).where(audit_entries.c.form.like("adverse_event:%")).order_by(audit_entries.c.seq)
        ).all()
        stored = {}
        for row in session.execute(
            select(adverse_events.c.ae_number, ae_reports.c.sequence, ae_reports.c.assessment, ae_reports.c.serious,
                   ae_reports.c.susar, ae_reports.c.reason)
            .join(ae_reports, ae_reports.c.event_id == adverse_events.c.id)
        ):  # fmt: skip
            stored[(row.ae_number, row.sequence)] = row
    latest: dict[str, str] = {}
    latest_field: dict[tuple[str, str], str] = {}
    # Oldest first: the last one about a thing is its latest; a blinded export carries no entry's hash
    # (tests/spec/audit/test_hash_of_a_masked_entry.py).
    for a in trail:
        number = a.form.removeprefix("adverse_event:")
        latest[number] = f"audit:{a.seq}:masked"
        if a.action in {"ae.reported", "ae.followed_up"}:
            latest_field[(number, a.field)] = f"audit:{a.seq}:masked"
    assert {a.action for a in trail} == {"ae.reported", "ae.coded", "ae.followed_up", "ae.submitted"}

    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    subject = next(s for s in root.iter(f"{ODM}SubjectData") if s.get("SubjectKey") == pid)
    (event,) = [e for e in subject.findall(f"{ODM}StudyEventData") if e.get("StudyEventOID") == "SE.AE"]
    (form,) = event.findall(f"{ODM}FormData")
    found = {}
    for group in form.findall(f"{ODM}ItemGroupData"):
        number = group.get("ItemGroupRepeatKey", "")
        assert group.get("ItemGroupOID") == "IG.AE"
        record = group.find(f"{ODM}AuditRecord/{ODM}SourceID")
        assert record is not None and record.text == latest[number]
        items = {i.get("ItemOID", "").removeprefix("IT.AE."): i for i in group.findall(f"{ODM}ItemData")}
        last = max(seq for n, seq in stored if n == number)
        current = json.loads(stored[(number, last)].assessment)
        assert set(items) == {k for k, v in current.items() if v is not None}
        for name, item in items.items():
            source = item.find(f"{ODM}AuditRecord/{ODM}SourceID")
            assert source is not None and source.text == latest_field[(number, name)], (number, name)
        tw = group.find(f"{TW}AdverseEvent")
        assert tw is not None
        kept = [(r.get("Sequence"), r.get("Serious"), r.get("Susar"), r.get("Reason"),
                 json.loads(r.findtext(f"{TW}Assessment") or "")) for r in tw.findall(f"{TW}Report")]  # fmt: skip
        assert kept == [(str(seq), str(r.serious).lower(), str(r.susar).lower(), r.reason, json.loads(r.assessment))
                        for (n, seq), r in sorted(stored.items()) if n == number]  # fmt: skip
        coding = tw.find(f"{TW}Coding")
        found[number] = (items["term"].get("Value"), items["grade"].get("Value"), len(kept),
                         [(d.get("Kind"), d.get("SubmittedAt") is not None) for d in tw.findall(f"{TW}Submission")],
                         [d.get("Kind") for d in tw.findall(f"{TW}Due")],
                         coding.get("LltName") if coding is not None else None,
                         coding.get("Verbatim") if coding is not None else None)  # fmt: skip
    assert found == {
        "AE-0001": ("Acute kidney failure", "4", 2, [("sae_to_sponsor", True)], ["sae_to_sponsor", "susar_initial"],
                    "Acute zorbic kidney", "Acute kidney injury"),
        "AE-0002": ("Blorp creatinine high", "2", 1, [], [], "Blorp creatinine high", "Blorp creatinine high"),
    }


def _taken(path: Path) -> dt.datetime:
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    return dt.datetime.fromisoformat(root.get("AsOfDateTime", ""))


def test_export_import_export_of_adverse_events_is_byte_identical(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    """Every event comes back exactly (its row, both reports of the SAE with the follow-up's reason, the submission,
    the codings, the stale one included), the re-export is the file byte for byte (every AuditRecord as recorded),
    the import says so, the new trail verifies and both trials replay clean."""
    _events(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert report.adverse_events == 2 and "adverse events: 2 (every report" in report.summary()
    assert "does not hold: adverse events" not in " ".join(report.not_restored)
    source_rows = _as_stored(trial.engine)
    assert _as_stored(target.engine) == source_rows
    assert [(t, n) for t, n, _ in source_rows].count(("ae_reports", "AE-0001")) == 2
    assert ("ae_submissions", "AE-0001") in [(t, n) for t, n, _ in source_rows]
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=_taken(path))
    (tmp_path / "again").mkdir()
    again = OdmExporter().write(made, tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()
    assert audit.verify(target.engine).ok
    for engine in (trial.engine, target.engine):
        replayed = replay(engine)
        assert replayed.ok, replayed.message
    entries = [e for e in audit.entries(target.engine, action_prefix="import.odm", limit=1000)
               if (e.form or "").startswith("adverse_event:")]  # fmt: skip
    assert sorted(json.loads(e.detail or "{}")["ae_number"] for e in entries) == ["AE-0001", "AE-0002"]


def _at(write: Callable[[dt.datetime], str]) -> Callable[[re.Match[str]], str]:
    """A replacement writing the matched time (group 2, after group 1) otherwise: the same instant."""
    return lambda m: f'{m[1]}"{write(dt.datetime.fromisoformat(m[2]))}"'


_TEHRAN = dt.timezone(dt.timedelta(hours=3, minutes=30))
_NOT_AS_WRITTEN = "is not written as the export writes a time"


@pytest.mark.parametrize(
    ("pattern", "replacement", "named"),
    [
        (r'(<ItemData ItemOID="IT\.AE\.grade" Value=)"4"', r'\1"3"',
         "ItemData[@ItemOID=IT.AE.grade]: 3 is not the latest report's grade (4)"),
        (r'(<tw:Due Kind="sae_to_sponsor" DueAt=")[0-9]{4}', r"\g<1>2001", "tw:Due: [('sae_to_sponsor', '2001"),
        (r'<tw:Report Sequence="0"', '<tw:Report Source="fax" Sequence="0"',
         "tw:Report[1]/@Source: the export writes no such attribute"),
        (r'(<tw:Report Sequence="0"[^>]*) Serious="true"', r'\1 Serious="false"',
         "tw:Report[1]/@Serious: False is not what protocol version"),
        (r'ItemGroupRepeatKey="AE-0002"', 'ItemGroupRepeatKey="AE-0001"', "AE-0001 appears twice in the file"),
        (r'(?s)(<ItemData ItemOID="IT\.AE\.grade" Value="4">.*?)(</ItemData>)', r'\1<tw:StoredValue Unit="points"/>\2',
         "ItemData[@ItemOID=IT.AE.grade]/tw:StoredValue: a report's field holds a value and nothing else"),
        (r'(<tw:AdverseEvent CreatedAt=)"([^"]+)"', _at(lambda t: t.astimezone(_TEHRAN).isoformat()),
         f"tw:AdverseEvent/@CreatedAt: | {_NOT_AS_WRITTEN}"),
        (r'(<tw:Report Sequence="0" ReportedAt=)"([^"]+)\+00:00"', r'\1"\2Z"',
         f"tw:Report[1]/@ReportedAt: | {_NOT_AS_WRITTEN}"),
        (r'(<tw:Submission Kind="sae_to_sponsor" SubmittedAt=)"([^"]+)"',
         _at(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f0+00:00")), f"tw:Submission/@SubmittedAt: | {_NOT_AS_WRITTEN}"),
        (r'(<tw:Submission [^>]*RecordedAt=)"([^"]+)\+00:00"', r'\1"\2Z"',
         f"tw:Submission/@RecordedAt: | {_NOT_AS_WRITTEN}"),
        (r'(<tw:Coding [^>]*CodedAt=)"([^"]+)"', _at(lambda t: t.astimezone(_TEHRAN).isoformat()),
         f"tw:Coding/@CodedAt: | {_NOT_AS_WRITTEN}"),
        ('LltCode="90000011"', 'LltCode="090000011"', "tw:Coding/@LltCode: '090000011' is not a MedDRA code"),
        ('LltCode="90000011"', 'LltCode="90000011\u00b2"', "tw:Coding/@LltCode: '90000011\u00b2' is not a MedDRA code"),
        ('LltCode="90000011"', 'LltCode="\u0669\u0660\u0660\u0660\u0660\u0660\u0661\u0661"',
         "tw:Coding/@LltCode: '\u0669\u0660\u0660\u0660\u0660\u0660\u0661\u0661' is not a MedDRA code"),
    ],
)
def test_an_adverse_event_the_import_cannot_restore_is_refused_naming_it_and_nothing_is_written(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, pattern: str, replacement: Any, named: str
) -> None:
    _events(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    edited, n = re.subn(pattern, replacement, path.read_text(encoding="utf-8"), count=1)
    assert n == 1
    path.write_text(edited, encoding="utf-8")
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    for part in named.split(" | "):  # the element or attribute, then the rule
        assert part in str(refused.value), str(refused.value)
    assert f"SubjectKey={pid}" in str(refused.value)
    with session_scope(target.engine) as session:
        assert session.execute(select(participants)).first() is None
        assert session.execute(select(adverse_events)).first() is None
