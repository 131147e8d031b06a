"""Spec: a reader kept from the arms gets no audit entry's hash: not on an entry shown to them, not in an export made
without the arms.

An entry's hash is a SHA-256 of every field of the entry and of the entry before's hash (``domain.audit.canonical``).
A reader kept from the arms knows every field of an entry but the masked ones (the audit page and the API show the
rest), so given the entry's hash, or the hash of the entry after it and of the entry before, a masked value of few
possibilities (a count, a lot, a volume, an arm) could be found by trying each. So ``mask_entry`` (the page, the
API, ``audit show --json``) masks every entry's hash and previous hash, and an export without the arms carries no
entry's hash at all: ``ExportSource.audit_columns`` (the ODM export's audit records, ``SourceID``
``audit:<seq>:masked``), its entries and its lock records. The unblinded statistician's export keeps them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from tests.trialfixtures import make_trial, who
from trialwright.domain.audit import AuditEntry, entry_hash
from trialwright.domain.audit_masking import AUDITED, OTHER, Shown, mask_entry
from trialwright.domain.masking import MASKED
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.exports import export_source
from trialwright.store.tables import audit_entries

_AT = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)


def _entry(action: str, key: str, value: object = 3) -> AuditEntry:
    if key == "reason":
        entry = AuditEntry(seq=41, at=_AT, actor="someone", action=action, reason=str(value))
    else:
        entry = AuditEntry(seq=41, at=_AT, actor="someone", action=action, detail=json.dumps({key: value}))
    return replace(entry, hash=entry_hash(entry))


def _hidden() -> list[tuple[str, str]]:
    """Every value a masked reader may not read: each key classified arm-revealing, each action's other keys
    (``*``), and a key nobody classified under every action (masked until someone decides)."""
    out = [(action, "lot" if key == OTHER else key)
           for action, keys in AUDITED.items() for key, shown in keys.items()
           if shown is not Shown.VISIBLE]  # fmt: skip
    out += [(action, "a_key_nobody_classified") for action in AUDITED]
    return out


@pytest.mark.parametrize(("action", "key"), _hidden())
def test_an_entry_with_a_value_masked_is_shown_with_its_hash_masked(action: str, key: str) -> None:
    entry = _entry(action, key)
    shown = mask_entry(entry)
    assert (shown.reason if key == "reason" else json.loads(shown.detail or "{}")[key]) == MASKED
    assert (shown.hash, shown.prev_hash) == (MASKED, MASKED), f"{action} {key}: a hash is shown"


def test_an_entry_a_masked_reader_may_read_whole_is_shown_whole_but_its_hashes() -> None:
    """Even an entry with nothing masked carries no hash to a masked reader: with the next entry's fields, its hash
    and the previous hash would let them try the values of an entry with a masked value between two visible ones."""
    visible = [(action, key) for action, keys in AUDITED.items() for key, shown in keys.items()
               if key != OTHER and shown is Shown.VISIBLE]  # fmt: skip
    assert len(visible) > 300
    for action, key in visible:
        entry = replace(_entry(action, key), prev_hash="ab" * 32)
        shown = mask_entry(entry)
        assert (shown.hash, shown.prev_hash) == (MASKED, MASKED)
        assert replace(shown, hash=entry.hash, prev_hash=entry.prev_hash) == entry, f"{action} {key}: a value changed"


def test_an_export_without_the_arms_carries_no_entry_s_hash(database_url: str) -> None:
    """Read as the ODM export reads the trail (``audit_columns``), whatever columns are read with it: every hash is
    ``masked`` for the blinded data manager, the entry with a masked value (a key nobody classified, as a future
    version might write) and the one after it alike (the second hash would let a reader try the first entry's value
    too); the unblinded statistician's export (``with_arms``) has the stored hashes; so do the source's entries."""
    trial = make_trial(database_url)
    try:
        common = {"actor": "someone", "action": "form.value_entered", "participant": "RAZ-001", "site": "RAZ",
                  "form": "vitals", "field": "spo2"}  # fmt: skip
        odd = audit.record_now(
            trial.engine, **common, new_value=91, detail={"visit": "day1", "a_key_nobody_classified": 2}
        )
        after = audit.record_now(trial.engine, **common, new_value=92, detail={"visit": "day1"})
        with trial.engine.connect() as conn:
            stored = dict(conn.execute(select(audit_entries.c.seq, audit_entries.c.hash)).all())
        actions = {"form.value_entered"}
        masked = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
        unmasked = export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True)
        for columns in (("seq", "hash", "detail"), ("seq", "hash"), ("hash", "seq", "new_value")):
            for source, shown in ((masked, lambda seq: MASKED), (unmasked, stored.__getitem__)):
                rows = {row[columns.index("seq")]: row[columns.index("hash")]
                        for row in source.audit_columns(columns, actions, only={"new_value": actions})}  # fmt: skip
                assert rows == {odd: shown(odd), after: shown(after)}, columns
        entries = {e.seq: e for e in masked.audit() if e.seq in (odd, after)}
        assert {(e.hash, e.prev_hash) for e in entries.values()} == {(MASKED, MASKED)}
        assert {e.seq: e.hash for e in unmasked.audit() if e.seq in (odd, after)} == {
            odd: stored[odd],
            after: stored[after],
        }
    finally:
        trial.engine.dispose()
