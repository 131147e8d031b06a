"""The action of a value's and a query's earlier audit records in the ODM file and back (both databases).

An element's earlier records carry the action each recorded (``<tw:Earlier Action="...">``); a value's and a query's
carry it the same way, written by the same code (``history.open_earlier``). The trial (randomized: no arm may leak):

| what                                      | its earlier records (tw:Earlier/@Action), oldest first | latest         |
|-------------------------------------------|--------------------------------------------------------|----------------|
| CRP entered 450, changed to 350, to 45    | form.value_entered, form.value_changed                 | value_changed  |
| a conmed's dose 40, changed to 60, to 80  | log.value_entered, log.value_changed                   | value_changed  |
| an SAE's term and grade followed up       | ae.reported                                            | ae.followed_up |
| a monitor's query on CRP: answered twice  | query.raised, query.answered, query.answered           | query.closed   |
| (the answer corrected), then closed       |                                                        |                |

Every such ``Action`` is the action of the source database's audit row its ``SourceID`` names (read from the
``audit_entries`` table itself, not through the export's own reading); the file stays valid against CDISC's ODM 1.3.2
schema with the extension; ``import odm`` keeps each earlier record's action (``action`` of the record in the
``history`` of the form's, log entry's, adverse event's or query's ``import.odm`` entry), equal to the source row's;
exporting the imported trial gives the file back byte for byte.

A file written before the export named these actions (no ``Action`` on a value's or a query's ``tw:Earlier``; an
element's had one already) still imports byte-identical, its records kept without an action (unknown, as
``NOT_RESTORED`` says). An ``Action`` that is not an action about the value or query is refused naming the element and
the rule, and nothing is written:

| the file edited                                        | refused at                                           |
|--------------------------------------------------------|------------------------------------------------------|
| CRP's first earlier record named ``query.raised``      | ItemData[@ItemOID=IT.labs.crp]/.../@Action           |
| the dose's first earlier record named a form's action  | ItemData[@ItemOID=IT.LOG.conmeds.dose]/.../@Action   |
| the query's first earlier record named ``form.signed`` | tw:Query[@ID=...]/tw:History/tw:Earlier[1]/@Action   |
| the grade's earlier record named ``no.such_action``    | ItemData[@ItemOID=IT.AE.grade]/.../@Action           |
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.spec.exports.test_odm_history import _crp_changed_twice
from tests.spec.exports.test_odm_history_logs_ae import _changed
from tests.spec.exports.test_odm_latest_actions import _reexport
from tests.spec.exports.test_odm_queries import _export, _valid
from tests.spec.forms.conftest import pid, trial
from tests.spec.logs.test_log_odm import target
from tests.trialfixtures import Trial, first_protocol, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.odm_import import NOT_RESTORED, OdmImportError, import_odm
from trialwright.store.tables import audit_entries

__all__ = ["pid", "target", "trial"]

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"
CRP, DOSE, GRADE = "IT.labs.crp", "IT.LOG.conmeds.dose", "IT.AE.grade"


def _amended_and_queried(trial: Trial, pid: str) -> int:
    """The trial of the table above; the monitor's query's number."""
    _changed(trial, pid)  # randomized; the dose changed twice; the SAE followed up
    _crp_changed_twice(trial, pid)
    monitor, coordinator = who(trial, Role.MONITOR), who(trial, Role.STUDY_COORDINATOR)
    asked = svc.raise_query(trial.engine, monitor, pid, "Source shows CRP 35.0", visit_id="baseline", form_id="labs",
                            field_id="crp")  # fmt: skip
    svc.answer_query(trial.engine, coordinator, asked.id, "Checking the lab sheet")
    svc.answer_query(trial.engine, coordinator, asked.id, "Corrected to 35.0")
    svc.close_query(trial.engine, monitor, asked.id, "agreed")
    return asked.id


def _source_actions(trial: Trial) -> dict[str, str]:
    """The source database's audit rows, read directly: ``audit:<seq>:masked`` -> the action recorded (a blinded
    export carries no entry's hash: tests/spec/audit/test_hash_of_a_masked_entry.py)."""
    with trial.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.seq, audit_entries.c.action)).all()
    return {f"audit:{seq}:masked": action for seq, action in rows}


def _value_and_query_earlier(root: ET.Element) -> list[ET.Element]:
    """Every ``tw:Earlier`` of a value (``ItemData``, ``tw:RemovedItemData``) and of a query (``tw:Query``)."""
    owners = [*root.iter(f"{ODM}ItemData"), *root.iter(f"{TW}RemovedItemData"), *root.iter(f"{TW}Query")]
    return [e for owner in owners for e in owner.findall(f"{TW}History/{TW}Earlier")]


def _source_id(earlier: ET.Element) -> str:
    return earlier.findtext(f"{ODM}AuditRecord/{ODM}SourceID") or ""


def _kept(trial: Trial) -> list[dict[str, Any]]:
    """The earlier records of values and queries the import kept (``history`` of its ``import.odm`` entries)."""
    kept: list[dict[str, Any]] = []
    for entry in audit.entries(trial.engine, action_prefix="import.odm", limit=10_000):
        history = json.loads(entry.new_value or "{}").get("history")
        if isinstance(history, list):  # a query's
            kept += history
        elif isinstance(history, dict):  # a form's, log entry's or adverse event's values', by field
            kept += [record for records in history.values() for record in records]
    return kept


@pytest.mark.covers("REG-11")
def test_a_values_and_a_querys_earlier_records_carry_their_actions_through_the_round_trip(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    number = _amended_and_queried(trial, pid)
    path = _export(trial, tmp_path / "odm")  # by the data manager, blinded
    assert _valid(path, tmp_path) == []  # CDISC's ODM 1.3.2 with the extension schema shipped beside the file
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    source = _source_actions(trial)

    def actions(owner: ET.Element) -> list[str | None]:
        return [e.get("Action") for e in owner.findall(f"{TW}History/{TW}Earlier")]

    items = {i.get("ItemOID"): i for i in root.iter(f"{ODM}ItemData")}
    (query,) = [q for q in root.iter(f"{TW}Query") if q.get("ID") == str(number)]
    assert actions(items[CRP]) == ["form.value_entered", "form.value_changed"]
    assert actions(items[DOSE]) == ["log.value_entered", "log.value_changed"]
    assert actions(items[GRADE]) == ["ae.reported"]
    assert actions(query) == ["query.raised", "query.answered", "query.answered"]
    earlier = _value_and_query_earlier(root)
    assert len(earlier) >= 10
    for e in earlier:  # each the action of the source row its SourceID names, never in its AuditRecord too
        assert e.get("Action") == source[_source_id(e)], _source_id(e)
        assert e.find(f"{ODM}AuditRecord/{TW}Action") is None
    text = path.read_text(encoding="utf-8")
    for arm in first_protocol().protocol.arms:
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    kept = _kept(target)
    assert sorted(f"audit:{r['seq']}:{r['hash']}" for r in kept) == sorted(_source_id(e) for e in earlier)
    for record in kept:  # the imported trial's audit entries: each earlier record's action, the source row's
        assert record["action"] == source[f"audit:{record['seq']}:{record['hash']}"]
    again = _reexport(target, path, tmp_path / "again")
    assert again.read_bytes() == path.read_bytes()


def _without_value_and_query_actions(text: str) -> str:
    """The file as the export wrote it before a value's and a query's ``tw:Earlier`` named its action."""
    text = re.sub(r'(<tw:Earlier (?:Value="[^"]*"|IsNull="Yes"|Removed="Yes")) Action="[^"]*"', r"\1", text)
    return re.sub(
        r"<tw:Query [^>]*>.*?</tw:Query>",
        lambda q: re.sub(r'<tw:Earlier Action="[^"]*">', "<tw:Earlier>", q.group(0)),
        text,
        flags=re.S,
    )


def test_a_file_written_before_the_export_named_these_actions_still_imports_byte_identical(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    """The records are kept without an action (unknown, as ``NOT_RESTORED`` says) and the file comes back as it was;
    an element's earlier records keep theirs."""
    _amended_and_queried(trial, pid)
    path = _export(trial, tmp_path / "odm")
    text = _without_value_and_query_actions(path.read_text(encoding="utf-8"))
    (tmp_path / "old").mkdir()
    old = tmp_path / "old" / path.name
    old.write_text(text, encoding="utf-8")
    root = ET.parse(old).getroot()  # noqa: S314 - our own file
    assert [e.get("Action") for e in _value_and_query_earlier(root)] == [None] * len(_value_and_query_earlier(root))
    assert [e.get("Action") for e in root.iter(f"{TW}Earlier") if e.get("Action")]  # the elements' named theirs

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), old)
    assert report.byte_identical, report.reexport_difference
    kept = _kept(target)
    assert len(kept) == len(_value_and_query_earlier(root)) >= 10
    assert all("action" not in record for record in kept)
    assert _reexport(target, old, tmp_path / "again").read_bytes() == old.read_bytes()
    (said,) = [n for n in NOT_RESTORED if "written before the export named them" in n]
    assert "none of a value's and a query's earlier records" in said
    assert "the actions of a value's and a query's earlier records are not in the file" not in " ".join(NOT_RESTORED)


def _first_earlier_of(opening: str, closing: str, action: str) -> Callable[[str], str]:
    """The first ``tw:Earlier`` of the first element opened by ``opening`` (a pattern) that has one, named
    ``action``."""

    def edit(text: str) -> str:
        for owner in re.finditer(opening, text):
            end = text.index(closing, owner.end())
            found = re.compile(r'(<tw:Earlier [^>]*Action=")[^"]*(")').search(text, owner.end(), end)
            if found is not None:
                return text[: found.start()] + found.group(1) + action + found.group(2) + text[found.end() :]
        raise AssertionError(f"no {opening} with an earlier record")

    return edit


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            _first_earlier_of(f'<ItemData ItemOID="{CRP}"', "</ItemData>", "query.raised"),
            f"ItemData[@ItemOID={CRP}]/tw:History/tw:Earlier[1]/@Action: 'query.raised' is not an action about this "
            "value (one of form.value_changed, form.value_derived, form.value_entered)",
        ),
        (
            _first_earlier_of(f'<ItemData ItemOID="{DOSE}"', "</ItemData>", "form.value_entered"),
            f"ItemData[@ItemOID={DOSE}]/tw:History/tw:Earlier[1]/@Action: 'form.value_entered' is not an action about "
            "this value (one of log.value_changed, log.value_entered)",
        ),
        (
            _first_earlier_of('<tw:Query ID="[^>]*[^/]>', "</tw:Query>", "form.signed"),
            "]/tw:History/tw:Earlier[1]/@Action: 'form.signed' is not an action about this query (one of "
            "query.answered, query.closed, query.raised)",
        ),
        (
            _first_earlier_of(f'<ItemData ItemOID="{GRADE}"', "</ItemData>", "no.such_action"),
            f"ItemData[@ItemOID={GRADE}]/tw:History/tw:Earlier[1]/@Action: 'no.such_action' is not an action about "
            "this value (one of ae.followed_up, ae.reported)",
        ),
    ],
    ids=["a query's action on a form value", "a form's on a log value", "a form's on a query", "no action at all"],
)
def test_an_earlier_action_the_audit_vocabulary_does_not_know_for_it_is_refused_by_name_and_nothing_is_written(
    trial: Trial, pid: str, tmp_path: Path, target: Trial, change: Callable[[str], str], named: str
) -> None:
    _amended_and_queried(trial, pid)
    path = _export(trial, tmp_path / "odm")
    edited = change(path.read_text(encoding="utf-8"))
    assert edited != path.read_text(encoding="utf-8")
    (tmp_path / "bad").mkdir()
    bad = tmp_path / "bad" / path.name
    bad.write_text(edited, encoding="utf-8")
    before = audit.count(target.engine)
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), bad)
    assert named in str(refused.value), str(refused.value)
    assert ("tw:Query[@ID=" in str(refused.value)) == ("this query" in named)
    assert audit.count(target.engine) == before
