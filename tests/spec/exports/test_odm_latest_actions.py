"""The action of each element's and value's latest AuditRecord in the ODM file and back (both databases).

ODM's ``AuditRecord`` says who, where, when and why, not what was done. The export writes the audit action of the
latest record of every participant, visit, form, log entry, adverse event, value and query as ``tw:Action``, the
AuditRecord's last child (ODM 1.3.2's ``AuditRecordElementExtension``, redefined in the shipped extension schema); an
earlier record's action stays its ``tw:Earlier``'s ``Action`` (an element's), never written twice. ``import odm`` keeps
it (``action`` of the record in the ``import.odm`` entry), so a trial imported from a file knows its latest records'
actions: export -> import -> export is byte-identical, and after a change in the imported trial the record the change
supersedes goes to the element's history with its action.

The trial of ``test_odm_history_elements`` (randomized, prepared and unblinded: no arm may leak; a missed visit, a form
completed, verified, changed, verified and signed, a lab value removed, a log entry removed, an adverse event coded
twice, a withdrawal). Refused naming the element and the rule, nothing written: a latest record's action that is not
one of the element's, an action in an earlier record's AuditRecord, an action twice. A file written before the export
carried ``tw:Action`` still imports, byte-identical; its latest records' actions are unknown (``NOT_RESTORED``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.spec.exports.test_odm_history_elements import _everything
from tests.spec.exports.test_odm_queries import _export, _taken, _valid
from tests.spec.forms.conftest import pid, trial
from tests.spec.logs.test_log_odm import target
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.audit_trail import read_trail
from trialwright.services.exports import export_source
from trialwright.services.odm_import import NOT_RESTORED, OdmImportError, import_odm

__all__ = ["pid", "target", "trial"]

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"


def _latest(root: ET.Element) -> list[ET.Element]:
    """Every AuditRecord that is an element's or value's own (not in a ``tw:Earlier``)."""
    earlier = {id(r) for e in root.iter(f"{TW}Earlier") for r in e.iter(f"{ODM}AuditRecord")}
    return [r for r in root.iter(f"{ODM}AuditRecord") if id(r) not in earlier]


def _reexport(target: Trial, path: Path, folder: Path) -> Path:
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=_taken(path))
    folder.mkdir()
    return OdmExporter().write(made, folder)[0]


@pytest.mark.covers("REG-11")
def test_every_latest_audit_record_names_its_action_and_the_import_keeps_it(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    _everything(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")  # by the data manager, blinded
    assert _valid(path, tmp_path) == []  # CDISC's ODM 1.3.2 with the extension schema shipped beside the file
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    manager = who(trial, Role.DATA_MANAGER)
    shown = {f"audit:{x.seq}:{x.hash}": x.action for x in read_trail(trial.engine, manager, participant=pid,
                                                                     limit=1000)}  # fmt: skip
    latest = _latest(root)
    assert len(latest) > 10
    for record in latest:  # each names the action of the entry it comes from, as the audit page shows it
        assert [a.text for a in record.findall(f"{TW}Action")] == [shown[record.findtext(f"{ODM}SourceID") or ""]]
        assert record[-1].tag == f"{TW}Action"  # the AuditRecord's last child
    for earlier in root.iter(f"{TW}Earlier"):  # an earlier record's action: its tw:Earlier's, never written twice
        assert earlier.find(f"{ODM}AuditRecord/{TW}Action") is None
    actions = {record.findtext(f"{TW}Action") for record in latest}
    assert {"participant.withdrawn", "visit.missed", "form.signed", "log.entry_removed", "ae.recoded"} <= actions
    assert {"form.value_changed", "log.value_entered", "ae.reported"} <= actions  # values' (and the labs form's)
    assert actions.isdisjoint({"participant.randomized", "dose.prepared", "participant.unblinded"})

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    kept: list[str] = []
    for entry in audit.entries(target.engine, action_prefix="import.odm", limit=10_000):
        imported = json.loads(entry.new_value or "{}")
        records = [imported.get("recorded"), *(imported.get("items") or {}).values()]
        kept += [r["action"] for r in records if isinstance(r, dict)]
    assert sorted(kept) == sorted(record.findtext(f"{TW}Action") or "" for record in latest)
    assert not [n for n in NOT_RESTORED if "latest AuditRecord is not in the file" in n]

    # A change in the imported trial: the form's imported latest record (its signature) goes to its history, with
    # the action the file named; no element's earlier record is without its action.
    svc.lock_form(target.engine, who(target, Role.DATA_MANAGER), pid, "baseline", "performance")
    again = ET.parse(_reexport(target, path, tmp_path / "again")).getroot()  # noqa: S314 - our own file
    (form,) = [f for f in again.iter(f"{ODM}FormData") if f.get("FormOID") == "F.performance"]
    assert [x.get("Action") for x in form.findall(f"{TW}History/{TW}Earlier")][-1] == "form.signed"
    assert form.findtext(f"{ODM}AuditRecord/{TW}Action") == "form.locked"
    for parent in again.iter():
        if parent.tag in {f"{ODM}SubjectData", f"{ODM}StudyEventData", f"{ODM}FormData", f"{ODM}ItemGroupData"}:
            assert None not in [x.get("Action") for x in parent.findall(f"{TW}History/{TW}Earlier")]


def test_a_file_written_before_the_export_named_the_latest_actions_still_imports_byte_identical(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    """Without ``tw:Action`` the latest records are kept without an action (unknown: ``NOT_RESTORED`` says so), and
    the re-export gives the file back as it was."""
    _everything(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    text = re.sub(r"\n *<tw:Action>[^<]*</tw:Action>", "", path.read_text(encoding="utf-8"))
    assert "tw:Action" not in text
    (tmp_path / "old").mkdir()
    old = tmp_path / "old" / path.name
    old.write_text(text, encoding="utf-8")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), old)
    assert report.byte_identical, report.reexport_difference
    for entry in audit.entries(target.engine, action_prefix="import.odm", limit=10_000):
        imported = json.loads(entry.new_value or "{}")
        for record in [imported.get("recorded"), *(imported.get("items") or {}).values()]:
            assert not isinstance(record, dict) or "action" not in record
    assert [n for n in NOT_RESTORED if "written before the export named them" in n]


def _form_record(change: Callable[[str], str]) -> Callable[[str], str]:
    """``change`` applied to the signed form's own latest AuditRecord."""

    def edit(text: str) -> str:
        start = text.index('<FormData FormOID="F.performance">')
        end = text.index("</AuditRecord>", start)
        return text[:start] + change(text[start:end]) + text[end:]

    return edit


def _in_earlier(text: str) -> str:
    start = text.index('<tw:Earlier Action="form.completed">')
    end = text.index("</SourceID>", start) + len("</SourceID>")
    return text[:end] + "\n<tw:Action>form.completed</tw:Action>" + text[end:]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_form_record(lambda t: t.replace("<tw:Action>form.signed<", "<tw:Action>participant.randomized<")),
         ["FormData[@FormOID=F.performance]/AuditRecord/tw:Action: 'participant.randomized' is not an action about "
          "this element (one of ", "form.signed"]),
        (_form_record(lambda t: t.replace("<tw:Action>form.signed<", "<tw:Action>log.value_entered<")),
         ["F.performance]/AuditRecord/tw:Action: 'log.value_entered' is not an action about this element"]),
        (lambda t: t.replace("<tw:Action>visit.missed<", "<tw:Action>form.signed<"),
         ["StudyEventData[@StudyEventOID=SE.day1]/AuditRecord/tw:Action: 'form.signed' is not an action about this "
          "element (one of visit.held, visit.missed)"]),
        (_in_earlier, ["F.performance]/tw:History/tw:Earlier[1]/AuditRecord/tw:Action: the export writes an action "
                       "only in an element's or value's latest AuditRecord"]),
        (_form_record(lambda t: t.replace("<tw:Action>form.signed</tw:Action>",
                                          "<tw:Action>form.signed</tw:Action><tw:Action>form.signed</tw:Action>")),
         ["F.performance]/AuditRecord/tw:Action: once"]),
    ],
    ids=["not an action about a form", "another element's value action", "not a visit's", "in an earlier record",
         "twice"],
)
def test_an_action_the_import_cannot_keep_exactly_is_refused_by_name_and_nothing_is_written(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, change: Callable[[str], str], named: list[str]
) -> None:
    _everything(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    edited = change(path.read_text(encoding="utf-8"))
    assert edited != path.read_text(encoding="utf-8")
    (tmp_path / "bad").mkdir()
    bad = tmp_path / "bad" / path.name
    bad.write_text(edited, encoding="utf-8")
    before = audit.count(target.engine)
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), bad)
    for words in named:
        assert words in str(refused.value)
    assert audit.count(target.engine) == before
