"""A form value's audit history in the ODM file and back (both databases): ``tw:History`` in ``ItemData``.

A coordinator enters a participant's CRP (450 mg/L), changes it to 350 ("lab re-run"), then to 45 ("unit misread"):

| in the file                       | who, why              | SourceID                        | value |
|-----------------------------------|-----------------------|---------------------------------|-------|
| ItemData's own AuditRecord        | coordinator, unit ... | the second form.value_changed   | 45    |
| tw:History/tw:Earlier[1]          | coordinator, none     | form.value_entered              | 450   |
| tw:History/tw:Earlier[2]          | coordinator, lab ...  | the first form.value_changed    | 350   |

Imported, then changed again in the imported trial (46, "rounding"): the file of the imported trial holds three
earlier records (the two kept and the imported latest), its own entry as the AuditRecord, and imports again exactly.

The file stays valid against CDISC's ODM 1.3.2 schema with the extension; the import keeps both earlier records as
recorded (its summary counts them), export -> import -> export is byte-identical, and ``audit verify`` (chain and
replay) passes on the imported trial.

A history the import cannot keep exactly is refused naming the element and the rule, and nothing is written:

| the file edited                                  | refused at                                                   |
|--------------------------------------------------|--------------------------------------------------------------|
| the two earlier records swapped                  | tw:Earlier[2]/AuditRecord/DateTimeStamp: ... is before       |
| an earlier record's SourceID left out            | tw:Earlier[1]/AuditRecord/SourceID: ... is not audit:<seq>   |
| an earlier value that is not a decimal           | tw:Earlier[2]/@Value                                         |
| an earlier record without its AuditRecord        | tw:Earlier[1]/AuditRecord: required                          |
| Removed="Yes" on a record with a value           | tw:Earlier[1]/@Removed                                       |
| a history on a value without its AuditRecord     | tw:History: a history needs the value's own AuditRecord      |

Blinding: the participant is randomized and the pharmacist records the preparation (lot, volume, particles: the
attributes that could tell the arm); a blinded data manager's export holds the history and no arm code, arm name or
preparation attribute anywhere, and every earlier record is the audit entry as the audit page shows it to that role.
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fresh_database
from tests.spec.exports.test_odm_queries import _export, _taken, _valid
from tests.spec.forms.conftest import pid, trial
from tests.spec.logs.test_log_odm import target
from tests.trialfixtures import Trial, first_protocol, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.audit_trail import read_trail
from trialwright.services.exports import export_source
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.randomization import generate_list, prepare, randomize, what_to_prepare
from trialwright.services.replay import replay

__all__ = ["pid", "target", "trial"]

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"
CRP = "IT.labs.crp"
PREPARED = {"product_lot": "LOT-2021-07", "volume_ml": 3, "particles": 5e10}


def _crp_changed_twice(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 450})
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 350}, reason="lab re-run")
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 45}, reason="unit misread")


def _crp(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    (item,) = [i for i in root.iter(f"{ODM}ItemData") if i.get("ItemOID") == CRP]
    return item


def _record(elem: ET.Element) -> tuple[str | None, ...]:
    """An element's AuditRecord: user, time, reason, source entry."""
    r = elem.find(f"{ODM}AuditRecord")
    assert r is not None
    return tuple(
        None if x is None else (x.get("UserOID") or x.text)
        for x in (r.find(f"{ODM}UserRef"), r.find(f"{ODM}DateTimeStamp"), r.find(f"{ODM}ReasonForChange"),
                  r.find(f"{ODM}SourceID"))
    )  # fmt: skip


@pytest.mark.covers("REG-11")
def test_a_value_changed_twice_keeps_both_earlier_records_through_the_round_trip(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    _crp_changed_twice(trial, pid)
    entries = [e for e in reversed(audit.entries(trial.engine, action_prefix="form.value_")) if e.field == "crp"]
    assert [e.action for e in entries] == ["form.value_entered", "form.value_changed", "form.value_changed"]
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    item = _crp(path)
    earlier = item.findall(f"{TW}History/{TW}Earlier")
    assert item.get("Value") == "45.0" and [e.get("Value") for e in earlier] == ["450.0", "350.0"]
    # The data manager's export carries no entry's hash (tests/spec/audit/test_hash_of_a_masked_entry.py).
    expected = [
        ("USR." + e.actor, e.at.isoformat(), e.reason, f"audit:{e.seq}:masked") for e in entries
    ]  # fmt: skip
    assert [_record(e) for e in earlier] == expected[:2]
    assert _record(item) == expected[2]
    assert expected[1][2] == "lab re-run" and expected[2][2] == "unit misread"

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    text = path.read_text(encoding="utf-8")
    assert report.earlier_records == text.count("<tw:Earlier") >= 2
    assert report.audit_records + report.earlier_records == text.count("<AuditRecord")
    assert f"audit history:  {report.earlier_records} earlier records" in report.summary()
    imports = audit.entries(target.engine, action_prefix="import.odm")
    (kept,) = [e for e in imports  # a query's import entry may keep its own history (a soft limit's query)
               if '"history"' in (e.new_value or "") and '"query"' not in (e.new_value or "")]
    assert kept.form == "labs" and "lab re-run" in (kept.new_value or "")  # the form's import entry keeps it
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=_taken(path))
    (tmp_path / "again").mkdir()
    again = OdmExporter().write(made, tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()
    for engine in (trial.engine, target.engine):  # `audit verify`: the chain, then the replay
        chain = audit.verify(engine)
        assert chain.ok, chain.message
        replayed = replay(engine)
        assert replayed.ok, replayed.message


@pytest.fixture
def third(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Trial]:
    """A third fresh trial of the same protocol, on a database of the same kind."""
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    reason = request.getfixturevalue("postgres_available") if kind == "postgresql" else None
    (tmp_path / "third").mkdir()
    with fresh_database(kind, tmp_path / "third", reason) as url:
        fresh = make_trial(url)
        try:
            yield fresh
        finally:
            fresh.engine.dispose()


def test_a_value_changed_after_an_import_adds_to_the_history_it_kept(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, third: Trial
) -> None:
    """Imported, then changed again in the imported trial: the imported latest record becomes the third earlier one,
    after the two the import kept, and the new change is the value's AuditRecord (an entry of the imported trial's own
    trail); that file too comes back byte for byte through a second import."""
    _crp_changed_twice(trial, pid)
    first = _export(trial, tmp_path / "odm")
    assert import_odm(target.engine, who(target, Role.DATA_MANAGER), first).byte_identical
    svc.save_form(target.engine, who(target, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 46},
                  reason="rounding")  # fmt: skip
    second = _export(target, tmp_path / "odm-again")
    assert _valid(second, tmp_path) == []
    item = _crp(second)
    earlier = item.findall(f"{TW}History/{TW}Earlier")
    assert [e.get("Value") for e in earlier] == ["450.0", "350.0", "45.0"] and item.get("Value") == "46.0"
    kept = [_record(e) for e in _crp(first).iter(f"{TW}Earlier")]
    assert [_record(e) for e in earlier] == [*kept, _record(_crp(first))]
    (changed,) = [e for e in audit.entries(target.engine, action_prefix="form.value_changed") if e.field == "crp"]
    assert _record(item) == ("USR." + changed.actor, changed.at.isoformat(), "rounding",
                             f"audit:{changed.seq}:masked")  # fmt: skip
    report = import_odm(third.engine, who(third, Role.DATA_MANAGER), second)
    assert report.byte_identical, report.reexport_difference
    assert report.earlier_records == second.read_text(encoding="utf-8").count("<tw:Earlier")
    chain = audit.verify(third.engine)
    assert chain.ok, chain.message


def _edit_history(change: Callable[[str], str]) -> Callable[[str], str]:
    """``change`` applied to CRP's tw:History only."""

    def edit(text: str) -> str:
        found = re.search(r"<tw:History>.*?</tw:History>", text[text.index(f'<ItemData ItemOID="{CRP}"') :], re.S)
        assert found is not None
        return text.replace(found.group(0), change(found.group(0)), 1)

    return edit


def _swap(history: str) -> str:
    first, second = re.findall(r" *<tw:Earlier[ >].*?</tw:Earlier>\n", history, re.S)
    return history.replace(first + second, second + first)


def _own_record_removed(text: str) -> str:
    at = text.index(f'<ItemData ItemOID="{CRP}"')
    record = re.search(r"\n *<AuditRecord.*?</AuditRecord>", text[at:], re.S)
    assert record is not None
    return text[:at] + text[at:].replace(record.group(0), "", 1)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_edit_history(_swap), ["tw:History/tw:Earlier[2]/AuditRecord/DateTimeStamp:", "is before"]),
        (_edit_history(lambda h: re.sub(r"\n *<SourceID>[^<]*</SourceID>", "", h, count=1)),
         ["tw:History/tw:Earlier[1]/AuditRecord/SourceID:", "is not audit:<seq>:<hash>"]),
        (_edit_history(lambda h: h.replace('Value="350.0"', 'Value="three fifty"')),
         ["tw:History/tw:Earlier[2]/@Value:"]),
        (_edit_history(lambda h: re.sub(r"<AuditRecord.*?</AuditRecord>", "", h, count=1, flags=re.S)),
         ["tw:History/tw:Earlier[1]/AuditRecord: required"]),
        (_edit_history(lambda h: h.replace("<tw:Earlier ", '<tw:Earlier Removed="Yes" ', 1)),
         ["tw:History/tw:Earlier[1]/@Removed:"]),
        (_own_record_removed, ["tw:History: a history needs the value's own AuditRecord"]),
    ],
    ids=["out of order", "no SourceID", "not a decimal", "no AuditRecord", "removed with a value", "no own record"],
)
def test_a_history_the_import_cannot_keep_exactly_is_refused_by_name_and_nothing_is_written(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, change: Callable[[str], str], named: list[str]
) -> None:
    _crp_changed_twice(trial, pid)
    path = _export(trial, tmp_path / "odm")
    bad = tmp_path / path.name
    bad.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    before = audit.count(target.engine)
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), bad)
    for words in named:
        assert words in str(refused.value)
    assert f"ItemData[@ItemOID={CRP}]" in str(refused.value)
    assert audit.count(target.engine) == before


def test_a_blinded_exporters_history_holds_no_arm_and_is_the_trail_as_the_audit_page_shows_it(
    trial: Trial, pid: str, tmp_path: Path
) -> None:
    e = trial.engine
    generate_list(e, who(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    code = randomize(e, who(trial, Role.INVESTIGATOR), pid).preparation_code
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    attributes = [a.id for a in what_to_prepare(e, pharmacist, code).attributes]
    assert attributes, "the arm declares preparation attributes"
    prepare(e, pharmacist, code, {a: PREPARED[a] for a in attributes})
    _crp_changed_twice(trial, pid)
    manager = who(trial, Role.DATA_MANAGER)
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    text = path.read_text(encoding="utf-8")
    assert text.count("<tw:Earlier") >= 2
    for arm in first_protocol().protocol.arms:  # no arm code or name anywhere, the history included
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code
    assert PREPARED["product_lot"] not in text and code not in text  # nor what the pharmacist prepared, nor its code
    # No entry's hash in a blinded export, nor on the entries the audit page shows them (``mask_entry``).
    by_source = {f"audit:{x.seq}:masked": x.action for x in audit.entries(e, limit=10_000)}
    sources = re.findall(r"<SourceID>([^<]*)</SourceID>", text)
    assert {by_source[s] for s in sources}.isdisjoint({"dose.prepared", "participant.randomized"})
    shown: dict[str, Any] = {f"audit:{x.seq}:{x.hash}": x for x in read_trail(e, manager, participant=pid, limit=1000)}
    assert {x.hash for x in shown.values()} == {"masked"}
    for earlier in _crp(path).iter(f"{TW}Earlier"):
        source = earlier.find(f"{ODM}AuditRecord/{ODM}SourceID")
        assert source is not None and source.text in shown  # an entry the data manager's audit page shows
        entry = shown[source.text]
        assert (entry.action, entry.field) in {("form.value_entered", "crp"), ("form.value_changed", "crp")}
        assert json.loads(entry.new_value or "null")["value"] == float(earlier.get("Value") or "nan")
        assert entry.at.isoformat() == earlier.findtext(f"{ODM}AuditRecord/{ODM}DateTimeStamp")


def test_a_value_entered_once_has_no_history(trial: Trial, pid: str, tmp_path: Path) -> None:
    """The history grows with changes, not with values: a value entered once is written as before."""
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 450})
    path = _export(trial, tmp_path / "odm")
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    # the only history: the participant's screening's entries, which name no participant (tw:Enrolment's)
    held = [parent.tag for parent in root.iter() if parent.find(f"{TW}History") is not None]
    assert _crp(path).find(f"{TW}History") is None and held == [f"{TW}Enrolment"]
