"""Data queries in the ODM export and back (both databases): each query is a ``tw:Query`` on the element it concerns,
with its number, field (``ItemOID``), origin, check, text, status, answer and closing note, who raised, answered and
closed it and when, and the ``AuditRecord`` of the latest audit entry about it. The file stays valid against CDISC's
ODM 1.3.2 schema with the extension, names no arm, and importing it into a fresh trial restores every query exactly,
so export -> import -> export is byte-identical and ``audit verify`` (chain and replay) passes on both trials.

| query                                         | on                         | origin     | status   | by            |
|-----------------------------------------------|----------------------------|------------|----------|---------------|
| CRP 450 outside the expected range            | baseline labs, crp         | soft_limit | closed   | the system    |
| CD4% + CD8% above CD3% (one per field read)   | baseline labs, 3 fields    | data_check | closed   | the system    |
| CRP 450 again                                 | baseline labs, crp         | soft_limit | open     |               |
| "Source shows CRP 35.0"                       | baseline labs, crp         | manual     | closed   | monitor       |
| "Was the sample haemolysed?"                  | baseline labs (the form)   | manual     | answered | data manager  |
| "Dose per day or per dose?"                   | conmeds entry 1, dose      | manual     | answered | monitor       |
| "Duplicate of entry 1?"                       | conmeds entry 2            | manual     | closed   | data manager  |
| "Diagnosed when?" (a line break, quotes, &)   | medical_history entry 1    | manual     | open     | monitor       |
| the death check                               | the participant            | system     | open     |               |
| "AE-0001 (coding): ..." (the coder's)         | the participant            | manual     | open     | coder         |

Where the tables hold them (``queries``) is read here by SQL, independently of the export.

What the import cannot restore is refused naming the element or attribute and the rule, and nothing is written:

| the file edited                                  | refused at                                                     |
|--------------------------------------------------|----------------------------------------------------------------|
| a closed query without ClosedBy                  | tw:Query[@ID=n]/@ClosedAt: ClosedAt and ClosedBy come together  |
| an answered query said to be open                | @Status: an open query has no answer                           |
| an attribute the import does not know            | @Priority: not a part of a query the import restores           |
| a query moved into an ItemData                   | tw:Query in ItemData: ... (refused, never dropped)             |
| two queries with one number                      | @ID: query n appears twice                                     |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.forms.conftest import pid, trial
from tests.spec.logs.test_log_exports import _entries
from tests.spec.logs.test_log_odm import CDISC_ODM, target
from tests.spec.safety.test_safety_service import ARM_WORDS, sae
from tests.trialfixtures import Trial, first_protocol, username, who
from trialwright.domain.roles import SYSTEM_ACTOR, Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter, extension_schema
from trialwright.exports.odm.schema import EXTENDED_SCHEMA
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.coding import load_meddra, query_event
from trialwright.services.exports import export_source
from trialwright.services.forms.queries import raise_automatic_query
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.replay import replay
from trialwright.services.safety import report_event
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.log_tables import log_entries
from trialwright.store.screening_tables import participants
from trialwright.store.tables import audit_entries

__all__ = ["pid", "target", "trial"]

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"
TRICKY = 'Diagnosed when?\nThe letter says "2019" & the chart <2020>'


def _queries_everywhere(trial: Trial, pid: str, tmp_path: Path) -> None:
    """The queries of the table above, raised, answered and closed through the services."""
    e = trial.engine
    coordinator, monitor, manager = (who(trial, r) for r in (Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER))
    generate_list(e, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    randomize(e, who(trial, Role.INVESTIGATOR), pid)
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": 450, "cd3_pct": 60, "cd4_pct": 40, "cd8_pct": 26})
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": 350, "cd8_pct": 25}, reason="lab re-run")
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": 450}, reason="second re-run")
    on_crp = svc.raise_query(e, monitor, pid, "Source shows CRP 35.0", visit_id="baseline", form_id="labs",
                             field_id="crp")  # fmt: skip
    svc.answer_query(e, coordinator, on_crp.id, "Corrected to 35.0")
    svc.close_query(e, monitor, on_crp.id, "agreed")
    on_form = svc.raise_query(e, manager, pid, "Was the sample haemolysed?", visit_id="baseline", form_id="labs")
    svc.answer_query(e, coordinator, on_form.id, "No")
    _entries(trial, pid)
    on_dose = svc.raise_query(e, monitor, pid, "Dose per day or per dose?", log_id="conmeds", sequence=1,
                              field_id="dose")  # fmt: skip
    svc.answer_query(e, coordinator, on_dose.id, "Per day")
    on_entry = svc.raise_query(e, manager, pid, "Duplicate of entry 1?", log_id="conmeds", sequence=2)
    svc.close_query(e, manager, on_entry.id)
    svc.raise_query(e, monitor, pid, TRICKY, log_id="medical_history", sequence=1)
    raise_automatic_query(e, pid, "The reported death has no hospital course", check_id="death_course")
    coder = who(trial, Role.CODER)
    load_meddra(e, coder, write_release(tmp_path / "MedAscii"), "27.1")
    event = report_event(e, who(trial, Role.INVESTIGATOR), pid, sae()).ae_number
    query_event(e, coder, event, "Kidney injury or a raised creatinine only?")


def _as_stored(engine: Engine) -> list[tuple[Any, ...]]:
    """Every query as the table holds it, its form record and log entry named by visit, form, log and sequence."""
    q, f, v, e = queries.c, form_records.c, visit_records.c, log_entries.c
    columns = [c for c in queries.c if c.name not in {"form_record_id", "log_entry_id"}]
    query = (
        select(*columns, v.visit_id, f.form_id, e.log_id, e.sequence)
        .outerjoin(form_records, f.id == q.form_record_id)
        .outerjoin(visit_records, v.id == f.visit_record_id)
        .outerjoin(log_entries, e.id == q.log_entry_id)
        .order_by(q.id)
    )
    with session_scope(engine) as session:
        return [tuple(r) for r in session.execute(query)]


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


def test_each_query_is_on_what_it_concerns_with_its_state_and_audit_record(
    trial: Trial, pid: str, tmp_path: Path
) -> None:
    _queries_everywhere(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    text = path.read_text(encoding="utf-8")
    for arm in first_protocol().protocol.arms:  # the blind: no arm code, arm or intervention name
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code
    asked = " ".join(" ".join(q.attrib.values()) for q in ET.parse(path).getroot().iter(f"{TW}Query"))  # noqa: S314
    for word in ARM_WORDS:  # the study's title names the product; no query does
        assert word not in asked, word

    with session_scope(trial.engine) as session:
        trail = session.execute(
            select(audit_entries.c.seq, audit_entries.c.hash, audit_entries.c.new_value)
            .where(audit_entries.c.action.like("query.%")).order_by(audit_entries.c.seq)
        ).all()  # fmt: skip
    latest = {}
    for seq, _digest, new in trail:  # a blinded export carries no entry's hash (test_hash_of_a_masked_entry.py)
        latest[str(json.loads(new)["query"])] = f"audit:{seq}:masked"

    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    subject = next(s for s in root.iter(f"{ODM}SubjectData") if s.get("SubjectKey") == pid)
    found: dict[str, list[tuple[str | None, ...]]] = {}

    def gather(where: str, parent: ET.Element) -> None:
        for q in parent.findall(f"{TW}Query"):
            source = q.find(f"{ODM}AuditRecord/{ODM}SourceID")
            assert source is not None and source.text == latest[q.get("ID", "")], q.get("ID")
            found.setdefault(where, []).append(
                (q.get("ItemOID"), q.get("Origin"), q.get("Status"), q.get("RaisedBy"), q.get("AnsweredBy"),
                 q.get("ClosedBy"))
            )  # fmt: skip

    gather("participant", subject)
    for event in subject.findall(f"{ODM}StudyEventData"):
        for form in event.findall(f"{ODM}FormData"):
            for group in form.findall(f"{ODM}ItemGroupData"):
                key = group.get("ItemGroupRepeatKey")
                gather(f"{event.get('StudyEventOID')} {form.get('FormOID')}{' ' + key if key else ''}", group)
            assert form.find(f".//{ODM}ItemData/{TW}Query") is None
    coordinator, monitor, manager = (username(r) for r in (Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER))
    system = SYSTEM_ACTOR
    crp = "IT.labs.crp"
    with session_scope(trial.engine) as session:  # the check's queries in the order it raised them (by number)
        checked = session.execute(
            select(queries.c.field).where(queries.c.origin == "data_check").order_by(queries.c.id)
        ).scalars().all()  # fmt: skip
    assert sorted(checked) == ["cd3_pct", "cd4_pct", "cd8_pct"]
    assert found == {
        "SE.baseline F.labs": [
            (crp, "soft_limit", "closed", system, None, system),
            *((f"IT.labs.{name}", "data_check", "closed", system, None, system)
              for name in checked),
            (crp, "soft_limit", "open", system, None, None),
            (crp, "manual", "closed", monitor, coordinator, monitor),
            (None, "manual", "answered", manager, coordinator, None),
        ],
        "SE.LOGS F.LOG.conmeds 1": [("IT.LOG.conmeds.dose", "manual", "answered", monitor, coordinator, None)],
        "SE.LOGS F.LOG.conmeds 2": [(None, "manual", "closed", manager, None, manager)],
        "SE.LOGS F.LOG.medical_history 1": [(None, "manual", "open", monitor, None, None)],
        "participant": [(None, "system", "open", system, None, None),
                        (None, "manual", "open", username(Role.CODER), None, None)],
    }  # fmt: skip
    assert len(_as_stored(trial.engine)) == 12 == sum(map(len, found.values()))  # every query is in the file


def test_export_import_export_with_queries_in_every_state_is_byte_identical(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    _queries_everywhere(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    text = path.read_text(encoding="utf-8")
    assert 'Text="Diagnosed when?&#10;The letter says &quot;2019&quot; &amp; the chart &lt;2020&gt;"' in text

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert report.queries == 12 and "queries:        12 (open, answered and closed" in report.summary()
    assert not any("queries" in line for line in report.not_restored)
    source_rows = _as_stored(trial.engine)
    assert _as_stored(target.engine) == source_rows
    assert TRICKY in {r[6] for r in source_rows}
    statuses = sorted(r[7] for r in source_rows)
    assert statuses == ["answered"] * 2 + ["closed"] * 6 + ["open"] * 4
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=_taken(path))
    (tmp_path / "again").mkdir()
    again = OdmExporter().write(made, tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()
    for engine in (trial.engine, target.engine):  # `audit verify`: the chain, then the replay
        chain = audit.verify(engine)
        assert chain.ok, chain.message
        replayed = replay(engine)
        assert replayed.ok, replayed.message
    # The next query raised in the imported trial takes the next number (on PostgreSQL too).
    largest = max(r[0] for r in source_rows)
    after = svc.raise_query(target.engine, who(target, Role.MONITOR), pid, "Anything else?")
    assert after.id == largest + 1


def _taken(path: Path) -> dt.datetime:
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    return dt.datetime.fromisoformat(root.get("AsOfDateTime", ""))


def _move_into_item_data(text: str) -> str:
    """The open query on medical_history entry 1 moved into the entry's first ItemData."""
    query = re.search(r'\n *<tw:Query [^>]*Text="Diagnosed when\?[^>]*>.*?</tw:Query>', text, re.S)
    assert query is not None
    text = text.replace(query.group(0), "", 1)
    item = re.search(r'<ItemData ItemOID="IT\.LOG\.medical_history\.condition"[^>]*?(/?)>', text)
    assert item is not None
    if item.group(1):
        opened = item.group(0)[:-2] + ">" + query.group(0) + "</ItemData>"
    else:
        opened = item.group(0) + query.group(0)
    return text.replace(item.group(0), opened, 1)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            lambda t: re.sub(r'(<tw:Query [^>]*Status="closed"[^>]*?) ClosedBy="[^"]*"', r"\1", t, count=1),
            "/@ClosedAt: ClosedAt and ClosedBy come together or not at all",
        ),
        (
            lambda t: t.replace('Status="answered"', 'Status="open"', 1),
            "/@Status: an open query has no answer and is not closed",
        ),
        (
            lambda t: t.replace("<tw:Query ", '<tw:Query Priority="high" ', 1),
            "/@Priority: not a part of a query the import restores (refused, never dropped)",
        ),
        (
            _move_into_item_data,
            "tw:Query in ItemData: the import restores a query on the SubjectData or a form's or log entry's "
            "ItemGroupData only",
        ),
        (lambda t: re.sub(r'(<tw:Query ID=")\d+', r"\g<1>1", t), "/@ID: query 1 appears twice in the file"),
        (lambda t: re.sub(r'<tw:Query ID="(\d+)"', r'<tw:Query ID="0\1"', t, count=1), "is not a query's number"),
        (lambda t: re.sub(r'<tw:Query ID="\d+"', '<tw:Query ID="\u0663"', t, count=1), "is not a query's number"),
        (lambda t: re.sub(r'<tw:Query ID="\d+"', '<tw:Query ID="\u00b2"', t, count=1), "is not a query's number"),
        (
            lambda t: re.sub(r'(<tw:Query [^>]*RaisedAt="[^"]*)\+00:00"', r'\1Z"', t, count=1),
            "/@RaisedAt: ",
        ),
    ],
    ids=["closed-without-closer", "answered-said-open", "unknown-attribute", "inside-item-data", "number-twice",
         "number-leading-zero", "number-arabic-indic", "number-superscript", "time-not-as-written"],
)
def test_a_query_the_import_cannot_restore_is_refused_naming_it_and_nothing_is_written(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, edit: Any, named: str
) -> None:
    _queries_everywhere(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    text = path.read_text(encoding="utf-8")
    edited = edit(text)
    assert edited != text
    path.write_text(edited, encoding="utf-8")
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert named in str(refused.value) and f"SubjectKey={pid}" in str(refused.value)
    with session_scope(target.engine) as session:
        assert session.execute(select(participants)).first() is None
        assert session.execute(select(queries)).first() is None
