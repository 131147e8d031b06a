"""The analysis snapshot's SHA-256, on both databases: the streaming hash (``SnapshotHash``, one subject's JSON
at a time, computed once per snapshot) gives exactly the value of the whole-text definition, written out
here as it was first written: ``json.dumps`` of each subject as ``dataclasses.asdict`` without its grouping,
in participant order, then the screening counts, with sorted keys, compact separators and ``str`` for dates.

| input                                          | hash                                      |
|------------------------------------------------|-------------------------------------------|
| a simulated trial (16 screened, seed 5)        | equals the whole-text definition          |
| no subjects, only screening counts             | equals the whole-text definition          |
| subjects fed out of participant order          | refused (another order is another hash)   |
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.analysis.dataset import AnalysisData, SnapshotHash
from trialwright.domain.roles import Role
from trialwright.services.analysis import analysis_data
from trialwright.services.simulation import simulate


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 16, seed=5)
    yield t
    t.engine.dispose()


def whole_text_sha256(data: AnalysisData) -> str:
    """The definition: the whole snapshot as one JSON text (as ``snapshot_sha256`` computed it before)."""
    content: list[Any] = [
        {**{k: v for k, v in dataclasses.asdict(s).items() if k not in {"group", "treated_group"}},
         "missed_visits": sorted(s.missed_visits)}  # a set: in one order
        for s in sorted(data.subjects, key=lambda s: s.participant_id)
    ]
    content.append(dataclasses.asdict(data.screened))
    text = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_streaming_hash_equals_the_whole_text_definition_on_a_simulated_trial(trial: Trial) -> None:
    data = analysis_data(trial.engine, who(trial, Role.BLINDED_STATISTICIAN))
    assert len(data.subjects) > 3
    assert any(s.events for s in data.subjects) or any(s.stay for s in data.subjects)  # nested records hashed
    assert data.snapshot_sha256 == whole_text_sha256(data)
    assert data.snapshot_sha256 is data.snapshot_sha256  # computed once per snapshot


def test_a_snapshot_with_no_subjects_hashes_as_the_definition(trial: Trial) -> None:
    data = analysis_data(trial.engine, who(trial, Role.BLINDED_STATISTICIAN))
    empty = dataclasses.replace(data, subjects=())
    assert empty.snapshot_sha256 == whole_text_sha256(empty) != data.snapshot_sha256


def test_subjects_out_of_participant_order_are_refused(trial: Trial) -> None:
    data = analysis_data(trial.engine, who(trial, Role.BLINDED_STATISTICIAN))
    first, second = sorted(data.subjects, key=lambda s: s.participant_id)[:2]
    digest = SnapshotHash()
    digest.add(second)
    with pytest.raises(ValueError, match="participant order"):
        digest.add(first)
