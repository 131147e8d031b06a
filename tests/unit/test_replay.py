"""The replay's pure parts: the streamed list checksum is the list checksum, and the fold of the trail."""

from __future__ import annotations

import json

from trialwright.domain.randomization import Allocation, list_checksum
from trialwright.domain.replay import ChecksumBuilder, Replay, TrailEntry


def test_the_streamed_checksum_is_the_list_checksum() -> None:
    entries = [
        Allocation("site=RAZ", 1, 1, 4, 1, "EXO"),
        Allocation("site=RAZ", 2, 1, 4, 2, "PBO"),
        Allocation("site=GOL|age=<50", 1, None, None, None, "PBO"),
    ]
    for n in range(len(entries) + 1):
        built = ChecksumBuilder()
        for e in entries[:n]:
            built.add(e.stratum, e.sequence, e.block, e.block_size, e.position, e.arm)
        assert built.hexdigest() == list_checksum(entries[:n])


def _entry(seq: int, action: str, field: str | None, new: object) -> TrailEntry:
    detail = json.dumps({"visit": "baseline"})
    return TrailEntry(seq, action, "RAZ-001", "labs", field, None if new is None else json.dumps(new), None, detail)


def test_a_value_entered_changed_and_cleared_leaves_what_the_last_entry_says() -> None:
    replay = Replay()
    for entry in (
        _entry(1, "form.value_entered", "crp", {"status": "value", "value": 3}),
        _entry(2, "form.value_entered", "il6", {"status": "value", "value": 40}),
        _entry(3, "form.value_changed", "crp", {"status": "value", "value": 4}),
        _entry(4, "form.value_changed", "il6", None),
        _entry(5, "form.completed", None, "complete"),
    ):
        assert replay.apply(entry) is None
    stored = {"crp": {"status": "value", "value": 4}}
    assert list(replay.check_form("RAZ-001", "baseline", "labs", "complete", stored)) == []
    assert list(replay.leftovers()) == []


def test_an_entry_whose_values_cannot_be_read_is_reported() -> None:
    bad = TrailEntry(7, "visit.held", "RAZ-001", None, "visit_date", '"2021-05-01"', None, "{not json")
    found = Replay().apply(bad)
    assert found is not None and (found.table, found.problem, found.seq) == ("audit_entries", "unreadable", 7)
    assert "audit entry 7" in found.describe()
