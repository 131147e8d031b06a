"""The elements' own audit history in the ODM file and back (both databases): ``tw:History`` in ``SubjectData``,
``StudyEventData``, ``FormData`` and a log entry's or an adverse event's ``ItemGroupData``, and
``tw:RemovedItemData`` for a value its latest change removed (``trialwright.exports.odm.element_history``).

The participant is randomized, the pharmacist prepares the dose and the investigator unblinds it in an emergency (the
arm must not leak). Then:

| element              | what happens                                  | tw:Earlier Action (oldest first)       |
|----------------------|-----------------------------------------------|----------------------------------------|
| SubjectData          | enrolled, later withdrawn from follow-up      | participant.enrolled                   |
| StudyEventData day1  | missed ("unwell"): one entry, no history      |                                        |
| FormData performance | completed, verified, changed (verification    | form.completed, form.verified, ...     |
|                      | voided), verified again, signed               | (no form.value_* entry)                |
| conmeds entry 1      | added, verified, removed ("duplicate")        | log.entry_added, log.entry_verified    |
| AE-0001              | reported, coded, recoded                      | ..., ae.coded                          |
| labs crp             | entered 450, removed by its latest change     | tw:RemovedItemData, its Earlier 450    |

A blinded data manager's export is valid against ODM 1.3.2 with the extension; every earlier record is an audit entry
that data manager's audit page shows, with its action; no value entry is written twice (an element's history holds
none of its values' entries); no arm, lot, preparation code or arm-revealing entry is anywhere. ``import odm`` keeps
the element records (``earlier`` in each element's ``import.odm`` entry, counted with ``earlier_records``),
export -> import -> export is byte-identical and ``audit verify`` (chain and replay) passes on the imported trial.

Refused naming the element and the rule, nothing written: the form's earlier records swapped (out of time order), an
earlier record's SourceID left out, an Action not about a form, an earlier record without its AuditRecord, a history
on an element without its own AuditRecord, a tw:History on the logs' FormData (where the export writes none), a
removed value with an ItemData too.
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.exports.test_odm_history import _record
from tests.spec.exports.test_odm_queries import _export, _taken, _valid
from tests.spec.forms.conftest import TODAY, pid, trial
from tests.spec.logs.test_log_entries import HEPARIN
from tests.spec.logs.test_log_odm import target
from tests.spec.safety.test_safety_service import sae
from tests.trialfixtures import PASSWORD, Trial, first_protocol, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.audit_trail import read_trail
from trialwright.services.coding import code_event, load_meddra
from trialwright.services.exports import export_source
from trialwright.services.forms.log_review import verify_entry
from trialwright.services.logs import add_entry, remove_entry
from trialwright.services.odm_import import NOT_RESTORED, OdmImportError, import_odm
from trialwright.services.randomization import emergency_unblind, generate_list, prepare, randomize, what_to_prepare
from trialwright.services.replay import replay
from trialwright.services.safety import report_event
from trialwright.services.screening.withdrawal import withdraw

__all__ = ["pid", "target", "trial"]

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"
PREPARED = {"product_lot": "LOT-2021-07", "volume_ml": 3, "particles": 5e10}
CRP = "IT.labs.crp"


def _everything(trial: Trial, pid: str, tmp_path: Path) -> str:
    """The trial of the module's table; returns the preparation code."""
    e = trial.engine
    generate_list(e, who(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    investigator = who(trial, Role.INVESTIGATOR)
    code = randomize(e, investigator, pid).preparation_code
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    attributes = [a.id for a in what_to_prepare(e, pharmacist, code).attributes]
    prepare(e, pharmacist, code, {a: PREPARED[a] for a in attributes})
    emergency_unblind(e, investigator, pid, reason="anaphylaxis, arm needed", password=PASSWORD)
    coordinator, monitor = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.MONITOR)
    svc.miss_visit(e, coordinator, pid, "day1", "unwell")
    performance = {"assessed_on": TODAY.isoformat(), "status": "2"}
    svc.save_form(e, coordinator, pid, "baseline", "performance", performance, complete=True)
    svc.verify_form(e, monitor, pid, "baseline", "performance")
    svc.save_form(e, coordinator, pid, "baseline", "performance", {"status": "1"}, reason="source says 1")
    svc.verify_form(e, monitor, pid, "baseline", "performance")
    svc.sign_form(e, investigator, pid, "baseline", "performance", password=PASSWORD)
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": 450})
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": None}, reason="another patient's sample")
    add_entry(e, coordinator, pid, "conmeds", HEPARIN)
    verify_entry(e, monitor, pid, "conmeds", 1)
    remove_entry(e, coordinator, pid, "conmeds", 1, reason="duplicate")
    coder = who(trial, Role.CODER)
    load_meddra(e, coder, write_release(tmp_path / "MedAscii"), "27.1")
    assert report_event(e, investigator, pid, sae()).ae_number == "AE-0001"
    code_event(e, coder, "AE-0001", 90000011)
    code_event(e, coder, "AE-0001", 90000001, reason="the PT fits better")
    withdraw(e, investigator, pid, scope="follow_up", cause="other", reason="moved away", withdrawn_on=None)
    return code


def _root(path: Path) -> ET.Element:
    return ET.parse(path).getroot()  # noqa: S314 - our own file


def _actions(elem: ET.Element) -> list[str | None]:
    return [x.get("Action") for x in elem.findall(f"{TW}History/{TW}Earlier")]


def _one(root: ET.Element, tag: str, **attrs: str) -> ET.Element:
    (found,) = [x for x in root.iter(f"{ODM}{tag}") if all(x.get(k) == v for k, v in attrs.items())]
    return found


@pytest.mark.covers("REG-11")
def test_every_elements_earlier_records_and_a_removed_value_go_through_the_round_trip_and_no_arm(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    code = _everything(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")  # by the data manager, blinded
    assert _valid(path, tmp_path) == []
    root = _root(path)
    subject = _one(root, "SubjectData", SubjectKey=pid)
    assert _actions(subject) == ["participant.enrolled"]  # the withdrawal is its AuditRecord
    assert _one(root, "StudyEventData", StudyEventOID="SE.day1").find(f"{TW}History") is None  # one entry only
    form = _actions(_one(root, "FormData", FormOID="F.performance"))
    assert form[:2] == ["form.completed", "form.verified"] and "form.signed" not in form  # signed: its AuditRecord
    assert form.count("form.verified") == 2 and "form.verification_voided" in form  # reopened by the change
    entry = _one(root, "ItemGroupData", ItemGroupOID="IG.LOG.conmeds")
    assert _actions(entry)[:2] == ["log.entry_added", "log.entry_verified"]  # its removal: its AuditRecord
    event = _one(root, "ItemGroupData", ItemGroupOID="IG.AE")
    assert "ae.coded" in _actions(event)
    for a in (*_actions(subject), *form, *_actions(entry), *_actions(event)):  # no value's entry twice
        assert a is not None and not a.startswith(("form.value_", "log.value_"))
    (gone,) = root.iter(f"{TW}RemovedItemData")
    assert (gone.get("ItemOID"), gone.get("Removed")) == (CRP, "Yes")
    assert [x.get("Value") for x in gone.findall(f"{TW}History/{TW}Earlier")] == ["450.0"]
    assert _record(gone)[2] == "another patient's sample"
    assert not [i for i in root.iter(f"{ODM}ItemData") if i.get("ItemOID") == CRP]

    text = path.read_text(encoding="utf-8")
    for arm in first_protocol().protocol.arms:  # no arm code or name anywhere, the histories included
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code
    assert PREPARED["product_lot"] not in text and code not in text and "anaphylaxis" not in text
    # No entry's hash in a blinded export, nor on the entries the audit page shows them (``mask_entry``).
    by_source = {f"audit:{x.seq}:masked": x.action for x in audit.entries(trial.engine, limit=10_000)}
    sources = re.findall(r"<SourceID>([^<]*)</SourceID>", text)
    assert {by_source[s] for s in sources}.isdisjoint({"dose.prepared", "participant.randomized",
                                                       "participant.unblinded"})  # fmt: skip
    manager = who(trial, Role.DATA_MANAGER)
    shown = {f"audit:{x.seq}:{x.hash}": x for x in read_trail(trial.engine, manager, participant=pid, limit=1000)}
    for prefix in ("screening.", "consent."):  # its screening's entries, which name no participant (tw:Enrolment)
        shown |= {f"audit:{x.seq}:{x.hash}": x for x in read_trail(trial.engine, manager, action_prefix=prefix)}
    for earlier in root.iter(f"{TW}Earlier"):  # each earlier record: an entry the audit page shows, its action
        source = earlier.findtext(f"{ODM}AuditRecord/{ODM}SourceID")
        assert source in shown
        assert earlier.get("Action") in {None, shown[source].action}
        assert earlier.findtext(f"{ODM}AuditRecord/{ODM}DateTimeStamp") == shown[source].at.isoformat()

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert report.earlier_records == text.count("<tw:Earlier")
    assert report.audit_records + report.earlier_records == text.count("<AuditRecord")
    imports = audit.entries(target.engine, action_prefix="import.odm", limit=10_000)
    kept = [json.loads(x.new_value or "{}").get("earlier") for x in imports]
    # and the participant's screening's, which name no participant (tw:Enrolment's: odm_import, screening_earlier)
    kept += [(json.loads(x.new_value or "{}").get("screening_earlier") or {}).get("records") for x in imports]
    # every element's earlier record (a value's and a query's carry their Action too, kept in ``history``)
    owners = (*root.iter(f"{ODM}ItemData"), *root.iter(f"{TW}RemovedItemData"), *root.iter(f"{TW}Query"))
    valued = {id(x) for owner in owners for x in owner.findall(f"{TW}History/{TW}Earlier")}
    assert sum(len(k) for k in kept if k) == len([x for x in root.iter(f"{TW}Earlier") if id(x) not in valued])
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=_taken(path))
    (tmp_path / "again").mkdir()
    again = OdmExporter().write(made, tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()
    chain = audit.verify(target.engine)
    assert chain.ok, chain.message
    replayed = replay(target.engine)
    assert replayed.ok, replayed.message
    assert not [n for n in NOT_RESTORED if "earlier audit entries about the other elements" in n]
    assert "with the action each recorded" in report.summary()


def _in(tag: str, change: Callable[[str], str], key: str, after: str = "") -> Callable[[str], str]:
    """``change`` applied to the first ``tag`` element whose start holds ``key`` (from ``after`` in it on)."""

    def edit(text: str) -> str:
        start = text.index(f"<{tag} {key}")
        end = text.index(f"</{tag}>", start)
        start = text.index(after, start) if after else start
        return text[:start] + change(text[start:end]) + text[end:]

    return edit


def _swap(part: str) -> str:
    first, second = re.findall(r" *<tw:Earlier[ >].*?</tw:Earlier>\n", part, re.S)[:2]
    return part.replace(first + second, second + first, 1)


def _history_moved_to_logs(text: str) -> str:
    return text.replace('<FormData FormOID="F.LOG.conmeds">',
                        '<FormData FormOID="F.LOG.conmeds">\n<tw:History/>', 1)  # fmt: skip


FORM = 'FormOID="F.performance"'


def _form(change: Callable[[str], str]) -> Callable[[str], str]:
    """``change`` applied to the form's own extension (``tw:Form`` and its ``tw:History``), not its values'."""
    return _in("FormData", change, FORM, "<tw:Form ")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_form(_swap), ["FormData[@FormOID=F.performance]/tw:History/tw:Earlier[2]", "is before"]),
        (_form(lambda t: re.sub(r"\n *<SourceID>[^<]*</SourceID>", "", t, count=1)),
         ["F.performance]/tw:History/tw:Earlier[1]/AuditRecord/SourceID:", "is not audit:<seq>:<hash>"]),
        (_form(lambda t: t.replace('Action="form.completed"', 'Action="participant.randomized"', 1)),
         ["F.performance]/tw:History/tw:Earlier[1]/@Action: 'participant.randomized' is not an action about a form"]),
        (_form(lambda t: re.sub(r'(<tw:Earlier Action="form.completed">)\s*<AuditRecord.*?</AuditRecord>', r"\1", t,
                                count=1, flags=re.S)),
         ["F.performance]/tw:History/tw:Earlier[1]/AuditRecord: required"]),
        (_in("FormData", lambda t: re.sub(r"\n *<AuditRecord.*?</AuditRecord>", "", t, count=1, flags=re.S), FORM),
         ["FormData[@FormOID=F.performance]/tw:History: a history needs the form's own AuditRecord"]),
        (_history_moved_to_logs, ["F.LOG.conmeds]/tw:History: the import does not restore it here"]),
        (lambda t: t.replace(f'<tw:RemovedItemData ItemOID="{CRP}"',
                             f'<ItemData ItemOID="{CRP}" Value="1.0"/>\n<tw:RemovedItemData ItemOID="{CRP}"'),
         ["tw:RemovedItemData[@ItemOID=IT.labs.crp]: the value is in an ItemData too"]),
    ],
    ids=["out of order", "no SourceID", "not a form's action", "no AuditRecord", "no own record", "not written there",
         "removed and there"],
)
def test_an_element_history_the_import_cannot_keep_exactly_is_refused_by_name_and_nothing_is_written(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, change: Callable[[str], str], named: list[str]
) -> None:
    _everything(trial, pid, tmp_path)
    path = _export(trial, tmp_path / "odm")
    bad = tmp_path / path.name
    edited = change(path.read_text(encoding="utf-8"))
    assert edited != path.read_text(encoding="utf-8")
    bad.write_text(edited, encoding="utf-8")
    before = audit.count(target.engine)
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), bad)
    for words in named:
        assert words in str(refused.value)
    assert audit.count(target.engine) == before


def test_a_visits_earlier_record_a_file_holds_is_kept_and_written_back(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    """trialwright records a visit once (held or missed; no service changes it since), but the file of another trail
    may hold a visit's earlier record (here: held on a date, then recorded missed): the import keeps it with its
    action, and the export writes it back byte for byte."""
    e, coordinator = trial.engine, who(trial, Role.STUDY_COORDINATOR)
    svc.miss_visit(e, coordinator, pid, "day1", "unwell")
    path = _export(trial, tmp_path / "odm")
    text = path.read_text(encoding="utf-8")
    start = text.index('<SubjectData SubjectKey="')
    enrolled = re.search(r" *<AuditRecord>.*?</AuditRecord>\n", text[start:], re.S)
    assert enrolled is not None  # the enrolment's record (6 spaces in): earlier than the visit's
    latest = re.sub(r" *<tw:Action>[^<]*</tw:Action>\n", "", enrolled.group(0))  # an earlier record's: its Action
    record = "".join("      " + line for line in latest.splitlines(keepends=True))
    earlier = f'        <tw:History>\n          <tw:Earlier Action="visit.held">\n{record}          </tw:Earlier>\n' \
              "        </tw:History>\n"
    at = text.index('<StudyEventData StudyEventOID="SE.day1">')
    visit_end = text.index("      </StudyEventData>", at)
    (tmp_path / "edited").mkdir()
    source = tmp_path / "edited" / path.name
    source.write_text(text[:visit_end] + earlier + text[visit_end:], encoding="utf-8")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), source)
    enrolment = text[text.index("<tw:Enrolment "):text.index("</tw:Enrolment>")]
    assert report.earlier_records == 1 + enrolment.count("<tw:Earlier ")  # and its screening's (tw:Enrolment)
    assert report.byte_identical, report.reexport_difference
    (kept,) = [json.loads(x.new_value or "{}") for x in audit.entries(target.engine, action_prefix="import.odm")
               if '"earlier"' in (x.new_value or "")]  # fmt: skip
    assert [r["action"] for r in kept["earlier"]] == ["visit.held"]
