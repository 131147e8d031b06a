"""Invariants of the audit chain, on the pure domain model: every honest chain verifies; any single
change to any stored field of any entry is detected at that entry."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialwright.domain.audit import GENESIS, AuditEntry, entry_hash, verify_chain

_text = st.one_of(st.none(), st.text(max_size=12))
_payload = st.fixed_dictionaries(
    {
        "actor": st.text(min_size=1, max_size=8),
        "action": st.sampled_from(["form.saved", "user.sign_in", "randomized"]),
        "participant": _text,
        "old_value": _text,
        "new_value": _text,
        "reason": _text,
    }
)


def _chain(payloads: list[dict[str, object]]) -> list[AuditEntry]:
    start = dt.datetime(2021, 5, 20, tzinfo=dt.UTC)
    entries, prev = [], GENESIS
    for i, payload in enumerate(payloads, 1):
        entry = AuditEntry(seq=i, at=start + dt.timedelta(seconds=i), prev_hash=prev, **payload)  # type: ignore[arg-type]
        entry = replace(entry, hash=entry_hash(entry))
        entries.append(entry)
        prev = entry.hash
    return entries


@settings(max_examples=50)
@given(st.lists(_payload, max_size=12))
def test_any_honest_chain_verifies(payloads: list[dict[str, object]]) -> None:
    report = verify_chain(_chain(payloads))
    assert report.ok and report.count == len(payloads)


@settings(max_examples=100)
@given(
    st.lists(_payload, min_size=1, max_size=8),
    st.data(),
)
@pytest.mark.covers("REG-1")
def test_any_single_change_is_detected_at_that_entry(payloads: list[dict[str, object]], data: st.DataObject) -> None:
    entries = _chain(payloads)
    index = data.draw(st.integers(0, len(entries) - 1))
    name = data.draw(st.sampled_from(["actor", "action", "participant", "old_value", "new_value", "reason", "at"]))
    original = getattr(entries[index], name)
    if name == "at":
        changed = original + dt.timedelta(microseconds=1)
    else:
        changed = data.draw(st.text(max_size=12).filter(lambda v: v != original))
    entries[index] = replace(entries[index], **{name: changed})
    report = verify_chain(entries)
    assert not report.ok and report.first_bad_seq == index + 1 and report.problem == "altered"


@pytest.mark.covers("REG-1")
@given(st.lists(_payload, min_size=3, max_size=8), st.data())
def test_removing_or_reordering_is_detected(payloads: list[dict[str, object]], data: st.DataObject) -> None:
    entries = _chain(payloads)
    i = data.draw(st.integers(0, len(entries) - 2))
    removed = entries[:i] + entries[i + 1 :]
    assert verify_chain(removed).problem == "removed"
    swapped = list(entries)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    assert not verify_chain(swapped).ok
