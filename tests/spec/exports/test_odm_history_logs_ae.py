"""The audit history of log entries' values and adverse events' report fields in the ODM file and back (both
databases): ``tw:History`` in their ``ItemData``, as a form value's (``test_odm_history``).

The participant is randomized (the arm must not leak). A coordinator adds a conmeds entry (Enoxaparin, dose 40) and
amends the dose twice; an investigator reports an SAE and follows it up:

| ItemData                 | tw:History/tw:Earlier (oldest first)          | the ItemData's own AuditRecord         |
|--------------------------|-----------------------------------------------|----------------------------------------|
| IT.LOG.conmeds.dose = 80 | 40 (log.value_entered), 60 (log.value_changed, | log.value_changed, "source says 80"   |
|                          | "titrated")                                   |                                        |
| IT.AE.term               | Acute kidney injury (ae.reported)             | ae.followed_up, "transferred to ICU"   |
| IT.AE.grade = 4          | 3 (ae.reported)                               | ae.followed_up, "transferred to ICU"   |

A blinded data manager exports: the file is valid against ODM 1.3.2 with the extension, names no arm, and every
earlier record is an audit entry the data manager's audit page shows, with the value it set. ``import odm`` keeps
the earlier records (in the log entry's and the event's ``import.odm`` entries, counted in the summary),
export -> import -> export is byte-identical and ``audit verify`` (chain and replay) passes. Changed again in the
imported trial (dose 100, grade 3 "improved"), the imported latest record becomes the last earlier one, and that
file imports into a third trial byte for byte.

Refused, naming the element and the rule, nothing written:

| the file edited                                    | refused at                                                  |
|----------------------------------------------------|-------------------------------------------------------------|
| the dose's two earlier records swapped             | IT.LOG.conmeds.dose .../tw:Earlier[2]/.../DateTimeStamp    |
| the dose's earlier value not a number               | IT.LOG.conmeds.dose .../tw:Earlier[1]/@Value                |
| the grade's earlier report value with a status      | IT.AE.grade .../tw:Earlier[1]/tw:StoredValue: a report's field |
| the term's earlier record without its AuditRecord   | IT.AE.term .../tw:Earlier[1]/AuditRecord: required          |
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.spec.exports.test_odm_history import _record, third
from tests.spec.exports.test_odm_queries import _export, _valid
from tests.spec.forms.conftest import NOW, pid, trial
from tests.spec.logs.test_log_entries import HEPARIN
from tests.spec.logs.test_log_odm import target
from tests.spec.safety.test_safety_service import sae
from tests.trialfixtures import Trial, first_protocol, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS
from trialwright.services import audit
from trialwright.services.audit_trail import read_trail
from trialwright.services.logs import add_entry, amend_entry
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.replay import replay
from trialwright.services.safety import follow_up, report_event

__all__ = ["pid", "target", "third", "trial"]

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"
DOSE, TERM, GRADE = "IT.LOG.conmeds.dose", "IT.AE.term", "IT.AE.grade"


def _changed(trial: Trial, pid: str) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    coordinator, investigator = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.INVESTIGATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 60}, reason="titrated")
    amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 80}, reason="source says 80")
    assert report_event(trial.engine, investigator, pid, sae()).ae_number == "AE-0001"
    follow_up(trial.engine, investigator, "AE-0001",
              {"term": "Acute kidney failure", "grade": 4, "aware_at": NOW.isoformat()}, reason="transferred to ICU")


def _item(path: Path, oid: str) -> ET.Element:
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    (item,) = [i for i in root.iter(f"{ODM}ItemData") if i.get("ItemOID") == oid]
    return item


def _earlier(path: Path, oid: str) -> list[ET.Element]:
    return _item(path, oid).findall(f"{TW}History/{TW}Earlier")


def _entries(trial: Trial, prefix: str, name: str) -> list[Any]:
    return [e for e in reversed(audit.entries(trial.engine, action_prefix=prefix, limit=10_000)) if e.field == name]


def _source(e: Any) -> tuple[str | None, ...]:
    """The AuditRecord of entry ``e`` in a blinded export, which carries no entry's hash
    (tests/spec/audit/test_hash_of_a_masked_entry.py)."""
    return ("USR." + e.actor, e.at.isoformat(), e.reason, f"audit:{e.seq}:masked")


@pytest.mark.covers("REG-11")
def test_log_and_adverse_event_values_keep_their_earlier_records_through_the_round_trip_and_no_arm(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, third: Trial
) -> None:
    _changed(trial, pid)
    path = _export(trial, tmp_path / "odm")  # by the data manager, blinded
    assert _valid(path, tmp_path) == []
    doses = _entries(trial, "log.value_", "dose")
    assert [e.action for e in doses] == ["log.value_entered", "log.value_changed", "log.value_changed"]
    assert [e.get("Value") for e in _earlier(path, DOSE)] == ["40.0", "60.0"] and _item(path, DOSE).get("Value")
    assert [_record(e) for e in _earlier(path, DOSE)] == [_source(e) for e in doses[:2]]
    assert _record(_item(path, DOSE)) == _source(doses[2])
    for name, oid, before in (("term", TERM, "Acute kidney injury"), ("grade", GRADE, "3")):
        reported = _entries(trial, "ae.", name)
        assert [e.action for e in reported] == ["ae.reported", "ae.followed_up"]
        (earlier,) = _earlier(path, oid)
        assert earlier.get("Value") == before and _record(earlier) == _source(reported[0])
        assert _record(_item(path, oid)) == _source(reported[1])

    text = path.read_text(encoding="utf-8")
    for arm in first_protocol().protocol.arms:  # no arm code or name anywhere, the histories included
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code
    manager = who(trial, Role.DATA_MANAGER)
    shown = {f"audit:{x.seq}:{x.hash}": x for x in read_trail(trial.engine, manager, participant=pid, limit=1000)}
    for oid in (DOSE, TERM, GRADE):  # each earlier record is the entry as the data manager's audit page shows it
        for earlier in _earlier(path, oid):
            entry = shown[earlier.findtext(f"{ODM}AuditRecord/{ODM}SourceID") or ""]
            value = json.loads(entry.new_value or "null")
            value = value["value"] if isinstance(value, dict) else value
            assert str(float(value) if oid == DOSE else value) == earlier.get("Value")

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert report.earlier_records == text.count("<tw:Earlier") >= 4  # the dose's two, term, grade (and aware_at)
    assert report.audit_records + report.earlier_records == text.count("<AuditRecord")
    kept = [e for e in audit.entries(target.engine, action_prefix="import.odm") if '"history"' in (e.new_value or "")]
    assert sorted(str(e.form) for e in kept) == ["adverse_event:AE-0001", "conmeds"]
    chain, replayed = audit.verify(target.engine), replay(target.engine)
    assert chain.ok and replayed.ok, (chain.message, replayed.message)

    coordinator, investigator = who(target, Role.STUDY_COORDINATOR), who(target, Role.INVESTIGATOR)
    amend_entry(target.engine, coordinator, pid, "conmeds", 1, {"dose": 100}, reason="renal function")
    follow_up(target.engine, investigator, "AE-0001", {"grade": 3, "aware_at": NOW.isoformat()}, reason="improved")
    second = _export(target, tmp_path / "odm-again")
    (tmp_path / "second").mkdir()
    assert _valid(second, tmp_path / "second") == []
    assert [e.get("Value") for e in _earlier(second, DOSE)] == ["40.0", "60.0", "80.0"]
    assert [e.get("Value") for e in _earlier(second, GRADE)] == ["3", "4"] and _item(second, GRADE).get("Value") == "3"
    assert [_record(e) for e in _earlier(second, GRADE)] == [*map(_record, _earlier(path, GRADE)),
                                                              _record(_item(path, GRADE))]  # fmt: skip
    again = import_odm(third.engine, who(third, Role.DATA_MANAGER), second)
    assert again.byte_identical, again.reexport_difference
    written = second.read_text(encoding="utf-8").count("<tw:Earlier")
    assert again.earlier_records == written == report.earlier_records + 2  # the imported dose and grade


def _in_history(oid: str, change: Callable[[str], str]) -> Callable[[str], str]:
    """``change`` applied to ItemData ``oid``'s tw:History only."""

    def edit(text: str) -> str:
        found = re.search(r"<tw:History>.*?</tw:History>", text[text.index(f'<ItemData ItemOID="{oid}"') :], re.S)
        assert found is not None
        return text.replace(found.group(0), change(found.group(0)), 1)

    return edit


def _swap(history: str) -> str:
    first, second = re.findall(r" *<tw:Earlier[ >].*?</tw:Earlier>\n", history, re.S)
    return history.replace(first + second, second + first)


def _with_status(history: str) -> str:
    return history.replace("</AuditRecord>", '</AuditRecord><tw:StoredValue Status="not_done"/>', 1)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_in_history(DOSE, _swap), [f"ItemData[@ItemOID={DOSE}]/tw:History/tw:Earlier[2]/AuditRecord/DateTimeStamp:",
                                    "is before"]),
        (_in_history(DOSE, lambda h: h.replace('Value="40.0"', 'Value="forty"')),
         [f"ItemData[@ItemOID={DOSE}]/tw:History/tw:Earlier[1]/@Value"]),
        (_in_history(GRADE, _with_status), [f"ItemData[@ItemOID={GRADE}]/tw:History/tw:Earlier[1]"]),
        (_in_history(TERM, lambda h: re.sub(r"<AuditRecord.*?</AuditRecord>", "", h, count=1, flags=re.S)),
         [f"ItemData[@ItemOID={TERM}]/tw:History/tw:Earlier[1]/AuditRecord: required"]),
    ],
    ids=["log out of order", "log not a number", "report value with a status", "report no AuditRecord"],
)
def test_a_log_or_report_history_the_import_cannot_keep_exactly_is_refused_by_name_and_nothing_is_written(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, change: Callable[[str], str], named: list[str]
) -> None:
    _changed(trial, pid)
    path = _export(trial, tmp_path / "odm")
    bad = tmp_path / path.name
    bad.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    before = audit.count(target.engine)
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), bad)
    for words in named:
        assert words in str(refused.value), str(refused.value)
    assert audit.count(target.engine) == before
