"""A data query's audit history in the ODM file and back (both databases): ``tw:History`` in ``tw:Query``.

A monitor raises a query on CRP, a coordinator answers it, the monitor closes it:

| in the file                           | who         | SourceID         |
|---------------------------------------|-------------|------------------|
| tw:Query's own AuditRecord            | monitor     | query.closed     |
| tw:Query/tw:History/tw:Earlier[1]     | monitor     | query.raised     |
| tw:Query/tw:History/tw:Earlier[2]     | coordinator | query.answered   |

Each earlier record carries the action it recorded (``Action``, as an element's earlier records do) and is the
query's audit entry as the exporter's audit page shows it (a blinded data manager's
export of a randomized participant names no arm); the file is valid against ODM 1.3.2 with the extension; the import
keeps both records in the query's ``import.odm`` entry (``history``, counted in the summary), export -> import ->
export is byte-identical and ``audit verify`` passes. Refused, naming the element and the rule, nothing written: the
two earlier records swapped (out of time order), an earlier record holding a value (a query's holds none), an earlier
record without its AuditRecord.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.spec.exports.test_odm_history import _record
from tests.spec.exports.test_odm_queries import _export, _valid
from tests.spec.forms.conftest import pid, trial
from tests.spec.logs.test_log_odm import target
from tests.trialfixtures import Trial, first_protocol, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.audit_trail import read_trail
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.replay import replay

__all__ = ["pid", "target", "trial"]

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"


def _query_closed(trial: Trial, pid: str) -> int:
    e = trial.engine
    generate_list(e, who(trial, Role.UNBLINDED_STATISTICIAN), seed=7)
    randomize(e, who(trial, Role.INVESTIGATOR), pid)
    monitor, coordinator = who(trial, Role.MONITOR), who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": 45})
    asked = svc.raise_query(e, monitor, pid, "Source shows CRP 35.0", visit_id="baseline", form_id="labs",
                            field_id="crp")  # fmt: skip
    svc.answer_query(e, coordinator, asked.id, "Corrected to 35.0")
    svc.close_query(e, monitor, asked.id, "agreed")
    return asked.id


def _query(path: Path, number: int) -> ET.Element:
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    (found,) = [q for q in root.iter(f"{TW}Query") if q.get("ID") == str(number)]
    return found


def test_a_closed_querys_earlier_records_travel_and_come_back_exactly(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    number = _query_closed(trial, pid)
    path = _export(trial, tmp_path / "odm")  # by the data manager, blinded
    assert _valid(path, tmp_path) == []
    entries = [x for x in reversed(audit.entries(trial.engine, action_prefix="query.", limit=1000))]
    assert [x.action for x in entries] == ["query.raised", "query.answered", "query.closed"]
    # A blinded export carries no entry's hash (tests/spec/audit/test_hash_of_a_masked_entry.py).
    expected = [("USR." + x.actor, x.at.isoformat(), x.reason, f"audit:{x.seq}:masked") for x in entries]
    q = _query(path, number)
    earlier = q.findall(f"{TW}History/{TW}Earlier")
    assert [_record(x) for x in earlier] == expected[:2] and _record(q) == expected[2]
    # a query's earlier record holds no value, only its action
    assert [x.attrib for x in earlier] == [{"Action": "query.raised"}, {"Action": "query.answered"}]
    text = path.read_text(encoding="utf-8")
    for arm in first_protocol().protocol.arms:
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code
    manager = who(trial, Role.DATA_MANAGER)
    shown = {f"audit:{x.seq}:{x.hash}" for x in read_trail(trial.engine, manager, participant=pid, limit=1000)}
    assert {str(r[3]) for r in expected} <= shown

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert report.earlier_records == text.count("<tw:Earlier") >= 2
    (kept,) = [x for x in audit.entries(target.engine, action_prefix="import.odm")
               if '"query"' in (x.new_value or "") and '"history"' in (x.new_value or "")]  # fmt: skip
    assert kept.field == "crp"
    chain, replayed = audit.verify(target.engine), replay(target.engine)
    assert chain.ok and replayed.ok, (chain.message, replayed.message)


def _in_query(change: Callable[[str], str]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        found = re.search(r"<tw:Query [^>]*>.*?</tw:Query>", text, re.S)
        assert found is not None and "<tw:History>" in found.group(0)
        return text.replace(found.group(0), change(found.group(0)), 1)

    return edit


def _swap(query: str) -> str:
    first, second = re.findall(r" *<tw:Earlier[ >].*?</tw:Earlier>\n", query, re.S)
    return query.replace(first + second, second + first)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_in_query(_swap), "tw:History/tw:Earlier[2]/AuditRecord/DateTimeStamp:"),
        (_in_query(lambda q: q.replace("<tw:Earlier ", '<tw:Earlier Value="35" ', 1)),
         "tw:History/tw:Earlier[1]/@Value: a query's earlier record holds no value"),
        (_in_query(lambda q: re.sub(r"(<tw:Earlier[^>]*>)\s*<AuditRecord.*?</AuditRecord>", r"\1", q, count=1,
                                    flags=re.S)),
         "tw:History/tw:Earlier[1]/AuditRecord: required"),
    ],
    ids=["out of order", "with a value", "no AuditRecord"],
)
def test_a_query_history_the_import_cannot_keep_exactly_is_refused_by_name_and_nothing_is_written(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, change: Callable[[str], str], named: str
) -> None:
    _query_closed(trial, pid)
    path = _export(trial, tmp_path / "odm")
    bad = tmp_path / path.name
    bad.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    before = audit.count(target.engine)
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), bad)
    assert "tw:Query[@ID=" in str(refused.value) and named in str(refused.value), str(refused.value)
    assert audit.count(target.engine) == before
