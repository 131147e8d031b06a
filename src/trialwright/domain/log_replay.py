"""Replaying the audit trail for log entries: what ``log_entries`` must hold now, by the trail alone.

A log entry (``trialwright.services.logs``) is added (``log.entry_added``), its values entered and changed one
field at a time (``log.value_entered``, ``log.value_changed``: the new value, None when cleared) and removed with a
reason (``log.entry_removed``). Folded in sequence order, those entries give each entry's state, values and removal
reason; each stored row is then checked against them, so a value altered, an entry inserted or deleted, or a
removal undone in the database without the services is named with the audit entry the expected value came from.
Its review too: who verified it and who signed it (``log.entry_verified``, ``log.entry_signed``), cleared by
``log.verification_voided`` and ``log.signature_voided``, so a signature or verification written by SQL is named.
An entry restored by an ODM import (``import.odm`` whose ``form`` is the log and whose detail names the
sequence: ``takes``) is taken whole from that entry: state, removal reason, values and review.
Codings (``log_codings``) are not replayed here: a coding is not an entry's value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trialwright.domain.replay import Disagreement, Problem, TrailEntry
from trialwright.domain.replay import canonical_text as text_of

__all__ = ["LOG_ACTIONS", "LogReplay", "entry_label"]

#: Every action of a log entry the replay reads.
LOG_ACTIONS = frozenset({
    "log.entry_added", "log.value_entered", "log.value_changed", "log.entry_removed",
    "log.entry_verified", "log.entry_signed", "log.verification_voided", "log.signature_voided",
})  # fmt: skip
#: The review an entry carries, by the action that sets it and the one that voids it.
_REVIEW = {"log.entry_verified": ("verified_by", True), "log.verification_voided": ("verified_by", False),
           "log.entry_signed": ("signed_by", True), "log.signature_voided": ("signed_by", False)}  # fmt: skip

_TABLE = "log_entries"


def entry_label(log_id: str, sequence: int) -> str:
    """How a disagreement names an entry (in its ``form``): the log and the entry's sequence."""
    return f"{log_id} entry {sequence}"


@dataclass(slots=True)
class _Entry:
    state: tuple[str, int]
    removed_reason: str | None = None
    values: dict[str, tuple[Any, int]] = field(default_factory=dict)
    review: dict[str, tuple[str | None, int]] = field(default_factory=dict)  # verified_by / signed_by, and by which


class LogReplay:
    """The log entries the trail implies (``apply``), then checked row by row (``check``) and what is left
    (``leftovers``)."""

    @staticmethod
    def takes(action: str, form: str | None, detail: str | None) -> bool:
        """Whether an audit entry is this replay's: a ``log.*`` action, or an ODM import's entry of a log entry."""
        if action in LOG_ACTIONS:
            return True
        if action != "import.odm" or form is None or not detail or '"sequence"' not in detail:
            return False
        try:
            parsed = json.loads(detail)
        except ValueError:
            return False  # the forms' replay reports it unreadable
        return isinstance(parsed, dict) and "sequence" in parsed and "visit" not in parsed

    def __init__(self) -> None:
        self.entries = 0
        self._entries: dict[tuple[str, str, int], _Entry] = {}

    def apply(self, entry: TrailEntry) -> Disagreement | None:
        """Fold one entry in; one whose values cannot be read is itself reported (as ``Replay.apply`` does)."""
        self.entries += 1
        try:
            detail = json.loads(entry.detail) if entry.detail else {}
            new = json.loads(entry.new_value) if entry.new_value is not None else None
            self._apply(entry.seq, entry.action, entry.participant, entry.form, entry.field, new, entry.reason,
                        detail, entry.actor)  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            return Disagreement("audit_entries", "unreadable", entry.participant, None, entry.form, entry.field,
                                text_of(type(exc).__name__), None, entry.seq)  # fmt: skip
        return None

    def _apply(self, seq: int, action: str, participant: str | None, log_id: str | None, name: str | None,
               new: object, reason: str | None, detail: Mapping[str, Any],
               actor: str | None = None) -> None:  # fmt: skip
        if participant is None or log_id is None or "sequence" not in detail:
            return
        key = (participant, log_id, int(detail["sequence"]))
        if action == "import.odm":  # an entry as an ODM import wrote it: state, values, removal and review at once
            if not isinstance(new, Mapping):
                raise TypeError("import.odm")
            review = new.get("review") or {}
            self._entries[key] = _Entry(
                (str(new["state"]), seq), new.get("removed_reason"),
                {name: (value, seq) for name, value in (new.get("values") or {}).items()},
                {column: (review.get(column), seq) for column in ("verified_by", "signed_by")},
            )  # fmt: skip
            return
        if action == "log.entry_added":
            self._entries[key] = _Entry(("active", seq))
            return
        entry = self._entries.get(key)
        if entry is None:  # a value or removal of an entry the trail never added: it is still expected
            entry = self._entries[key] = _Entry(("active", seq))
        if action in _REVIEW:
            column, given = _REVIEW[action]
            entry.review[column] = (actor if given else None, seq)
        elif action == "log.entry_removed":
            entry.state = (str(new), seq)
            entry.removed_reason = reason
        elif name is not None:
            if new is None:
                entry.values.pop(name, None)
            else:
                entry.values[name] = (new, seq)

    def check(
        self, participant: str, log_id: str, sequence: int, state: str, removed_reason: str | None,
        values: Mapping[str, Any], review: Mapping[str, str | None] | None = None,
    ) -> Iterator[Disagreement]:  # fmt: skip
        """One stored entry (its state, removal reason and values, field id -> stored value as JSON; ``review``: who
        verified and signed it now, ``verified_by`` and ``signed_by``, None for neither)."""
        where = entry_label(log_id, sequence)

        def at(problem: Problem, name: str | None, held: object, trail: object, seq: int | None) -> Disagreement:
            return Disagreement(_TABLE, problem, participant, None, where, name, text_of(held), text_of(trail), seq)

        expected = self._entries.pop((participant, log_id, sequence), None)
        if expected is None:
            yield at("unexplained", None, {"state": state, **values}, None, None)
            return
        if expected.state[0] != state:
            yield at("differs", "state", state, expected.state[0], expected.state[1])
        if (removed_reason or None) != (expected.removed_reason or None):
            yield at("differs", "removed_reason", removed_reason, expected.removed_reason, expected.state[1])
        for column, held_by in (review or {}).items():
            by, seq = expected.review.get(column, (None, None))
            if held_by != by:
                yield at("differs" if by is not None else "unexplained", column, held_by, by, seq)
        for name in sorted(set(values) | set(expected.values)):
            held = values.get(name)
            trail = expected.values.get(name)
            if trail is None:
                yield at("unexplained", name, held, None, None)
            elif name not in values:
                yield at("missing", name, None, trail[0], trail[1])
            elif text_of(held) != text_of(trail[0]):
                yield at("differs", name, held, trail[0], trail[1])

    def leftovers(self) -> Iterator[Disagreement]:
        """The entries the trail says exist that no stored row held."""
        for (participant, log_id, sequence), entry in self._entries.items():
            yield Disagreement(_TABLE, "missing", participant, None, entry_label(log_id, sequence), "state",
                               expected=text_of(entry.state[0]), seq=entry.state[1])  # fmt: skip
