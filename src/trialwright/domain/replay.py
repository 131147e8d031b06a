"""Replaying the audit trail: what the data tables must hold now, by the trail alone.

The hash chain proves the trail was not edited; it says nothing of the data tables beside it. Someone
holding the database file can change a value in ``form_records``, insert a form, or flip an arm in
``allocation_entries`` without touching the trail. The replay folds the trail, in sequence order, into the
state it implies (every form's values and state, every visit held or missed, every participant's
randomization, every allocation list's checksum) and compares that state with the stored rows. Anything that
differs, that the trail says exists but the tables lack, or that the tables hold but no entry explains, is a
``Disagreement`` naming the audit entry (``seq``) the expected value came from.

The state kept is the current data, never the trail: a trail of millions of entries replays in the memory
of the data it describes. No arm is ever read from the trail (it carries none) or written to a
disagreement: an allocation is checked through the list checksum the trail records when a list is made, and
the seal (a digest keyed by the list's sealed seed, see ``trialwright.domain.randomization.allocation_seal``)
recorded when a participant is randomized.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "FORM_ACTIONS",
    "REPLAYED_ACTIONS",
    "ChecksumBuilder",
    "Disagreement",
    "Problem",
    "Replay",
    "ReplayReport",
    "TrailEntry",
    "canonical_text",
]

Problem = Literal["differs", "missing", "unexplained", "unreadable"]

#: Lifecycle actions of a form: their new value is the form's state.
_STATE_ACTIONS = frozenset(
    {
        "form.started",
        "form.completed",
        "form.verified",
        "form.signed",
        "form.locked",
        "form.unlocked",
        "form.signature_voided",
        "form.verification_voided",
    }
)
_VALUE_ACTIONS = frozenset({"form.value_entered", "form.value_changed", "form.value_derived"})
#: Every action of a form the replay reads.
FORM_ACTIONS = _STATE_ACTIONS | _VALUE_ACTIONS
#: Every action the replay reads (the service asks the database for these only).
REPLAYED_ACTIONS = FORM_ACTIONS | {
    "visit.held",
    "visit.missed",
    "import.odm",
    "participant.randomized",
    "randomization.list_generated",
    "randomization.list_extended",
}


def canonical_text(value: object) -> str | None:
    """A value as the report shows it: canonical JSON (None for absent)."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


_text = canonical_text


@dataclass(frozen=True)
class Disagreement:
    """One place where a data table and the audit trail disagree.

    ``table`` and ``participant``, ``visit``, ``form``, ``field`` say where (``field`` names the column or form
    field; for an allocation list ``form`` holds the list, e.g. ``extension 2 of site=RAZ``); ``stored`` is what
    the table holds and ``expected`` what the trail says (canonical JSON text; None where there is nothing);
    ``seq`` is the audit entry the expected value came from (None for a row no entry explains). An
    ``unreadable`` disagreement is an entry of a replayed action whose values cannot be read (``seq`` names it).
    """

    table: str
    problem: Problem
    participant: str | None = None
    visit: str | None = None
    form: str | None = None
    field: str | None = None
    stored: str | None = None
    expected: str | None = None
    seq: int | None = None

    def describe(self) -> str:
        where = " ".join(x for x in (self.participant, self.visit, self.form, self.field) if x)
        source = f" (audit entry {self.seq})" if self.seq is not None else ""
        if self.problem == "unreadable":
            return f"audit entry {self.seq} {where}: its values cannot be read ({self.stored})"
        if self.problem == "unexplained":
            return f"{self.table} {where}: holds {self.stored} that no audit entry explains"
        if self.problem == "missing":
            return f"{self.table} {where}: the trail says {self.expected}{source} but the table has nothing"
        return f"{self.table} {where}: the table holds {self.stored}, the trail says {self.expected}{source}"


@dataclass(frozen=True)
class ReplayReport:
    """The result of replaying the trail against the data tables.

    ``count`` is every disagreement found; ``disagreements`` the first of them (at most the limit asked),
    in the order found (forms, visits, randomizations, lists, log entries).
    """

    ok: bool
    entries: int
    rows: int
    count: int
    disagreements: tuple[Disagreement, ...]
    message: str


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """The parts of an audit entry the replay reads (values still as the stored JSON text)."""

    seq: int
    action: str
    participant: str | None = None
    form: str | None = None
    field: str | None = None
    new_value: str | None = None
    reason: str | None = None
    detail: str | None = None
    actor: str | None = None


@dataclass(slots=True)
class _Form:
    state: tuple[str, int]
    values: dict[str, tuple[Any, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Visit:
    visit_date: str | None
    missed: str | None
    seq: int


@dataclass(frozen=True, slots=True)
class _Allocation:
    number: int
    code: str
    stratum: str
    seal: str | None
    seq: int


class ChecksumBuilder:
    """``list_checksum`` over entries fed one at a time (the same JSON text, hashed as it streams)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"[")
        self._first = True

    def add(
        self, stratum: str, sequence: int, block: int | None, size: int | None, position: int | None, arm: str
    ) -> None:
        item = json.dumps([stratum, sequence, block, size, position, arm], separators=(",", ":"))
        self._hash.update((item if self._first else "," + item).encode())
        self._first = False

    def hexdigest(self) -> str:
        done = self._hash.copy()
        done.update(b"]")
        return done.hexdigest()


def _list_name(key: tuple[str | None, int | None]) -> str:
    stratum, number = key
    return "the allocation list" if stratum is None else f"extension {number} of {stratum}"


class Replay:
    """The state the trail implies, folded entry by entry (``apply``), then checked row by row.

    Each ``check_*`` consumes the expected state of the row it is given, so after every stored row was
    checked, ``leftovers`` names what the trail says exists and the tables lack.
    """

    def __init__(self) -> None:
        self.entries = 0
        self._forms: dict[tuple[str, str, str], _Form] = {}
        self._visits: dict[tuple[str, str], _Visit] = {}
        self._allocations: dict[str, _Allocation] = {}
        self._lists: dict[tuple[str | None, int | None], tuple[str, int]] = {}

    # --- folding the trail ------------------------------------------------------------------------

    def apply(self, entry: TrailEntry) -> Disagreement | None:
        """Fold one entry in; an entry of a replayed action whose values cannot be read is itself reported."""
        self.entries += 1
        try:
            self._apply(entry)
        except (ValueError, KeyError, TypeError) as exc:
            return Disagreement("audit_entries", "unreadable", entry.participant, None, entry.form, entry.field,
                                _text(type(exc).__name__), None, entry.seq)  # fmt: skip
        return None

    def _apply(self, entry: TrailEntry) -> None:
        action = entry.action
        detail = json.loads(entry.detail) if entry.detail else {}
        new = json.loads(entry.new_value) if entry.new_value is not None else None
        if action in FORM_ACTIONS:
            if entry.participant is None or entry.form is None or "visit" not in detail:
                return
            key = (entry.participant, str(detail["visit"]), entry.form)
            form = self._forms.get(key)
            if form is None:
                form = self._forms[key] = _Form(("draft", entry.seq))
            if action in _STATE_ACTIONS:
                form.state = (str(new), entry.seq)
            elif entry.field is not None:
                if new is None:
                    form.values.pop(entry.field, None)
                else:
                    form.values[entry.field] = (new, entry.seq)
        elif action == "visit.held" and entry.participant is not None:
            self._visits[(entry.participant, str(detail["visit"]))] = _Visit(new, None, entry.seq)
        elif action == "visit.missed" and entry.participant is not None:
            self._visits[(entry.participant, str(detail["visit"]))] = _Visit(None, entry.reason, entry.seq)
        elif action == "import.odm" and entry.participant is not None and isinstance(new, dict):
            if "visit" not in detail:
                return  # the participant's own import entry (its AuditRecord, randomization as the file stated it)
            visit = str(detail.get("visit"))
            if entry.form is None:
                self._visits[(entry.participant, visit)] = _Visit(new.get("visit_date"), entry.reason, entry.seq)
            else:
                values = {name: (value, entry.seq) for name, value in (new.get("values") or {}).items()}
                self._forms[(entry.participant, visit, entry.form)] = _Form((str(new["state"]), entry.seq), values)
        elif action == "participant.randomized" and entry.participant is not None and isinstance(new, dict):
            self._allocations[entry.participant] = _Allocation(
                int(new["randomization_number"]), str(new["preparation_code"]), str(new["stratum"]), new.get("seal"),
                entry.seq,
            )  # fmt: skip
        elif action == "randomization.list_generated" and isinstance(new, dict):
            self._lists[(None, None)] = (str(new["checksum"]), entry.seq)
        elif action == "randomization.list_extended" and isinstance(new, dict):
            self._lists[(str(new["stratum"]), int(new["extension"]))] = (str(new["checksum"]), entry.seq)

    # --- checking the stored rows -------------------------------------------------------------------

    def check_form(
        self, participant: str, visit: str, form_id: str, state: str, values: Mapping[str, Any]
    ) -> Iterator[Disagreement]:
        """One stored form (its state and its values, field id -> stored value as JSON)."""

        def at(problem: Problem, name: str | None, held: object, trail: object, seq: int | None) -> Disagreement:
            return Disagreement(
                "form_records", problem, participant, visit, form_id, name, _text(held), _text(trail), seq
            )

        expected = self._forms.pop((participant, visit, form_id), None)
        if expected is None:
            yield at("unexplained", None, {"state": state, **values}, None, None)
            return
        if expected.state[0] != state:
            yield at("differs", "state", state, expected.state[0], expected.state[1])
        for name in sorted(set(values) | set(expected.values)):
            held = values.get(name)
            trail = expected.values.get(name)
            if trail is None:
                yield at("unexplained", name, held, None, None)
            elif name not in values:
                yield at("missing", name, None, trail[0], trail[1])
            elif _text(held) != _text(trail[0]):
                yield at("differs", name, held, trail[0], trail[1])

    def check_visit(
        self, participant: str, visit: str, visit_date: str | None, missed: str | None
    ) -> Iterator[Disagreement]:
        """One stored visit record (its date, ISO, or the reason it was missed)."""
        expected = self._visits.pop((participant, visit), None)
        if expected is None:
            stored = _text({"visit_date": visit_date, "missed": missed})
            yield Disagreement("visit_records", "unexplained", participant, visit, stored=stored)
            return
        for name, held, trail in (
            ("visit_date", visit_date, expected.visit_date),
            ("missed_reason", missed, expected.missed),
        ):
            if held != trail:
                yield Disagreement("visit_records", "differs", participant, visit, None, name, _text(held),
                                   _text(trail), expected.seq)  # fmt: skip

    def check_allocation(
        self, participant: str, number: int | None, code: str, stratum: str, seal: str
    ) -> Iterator[Disagreement]:
        """One claimed allocation entry; ``seal`` is the seal recomputed from the stored row (arm included)."""
        expected = self._allocations.pop(participant, None)
        if expected is None:
            stored = _text({"randomization_number": number, "preparation_code": code, "stratum": stratum})
            yield Disagreement("allocation_entries", "unexplained", participant, field="participant_id", stored=stored)
            return
        pairs = (("randomization_number", number, expected.number), ("preparation_code", code, expected.code),
                 ("stratum", stratum, expected.stratum))  # fmt: skip
        for name, held, trail in pairs:
            if held != trail:
                yield Disagreement("allocation_entries", "differs", participant, None, None, name, _text(held),
                                   _text(trail), expected.seq)  # fmt: skip
        if expected.seal is not None and seal != expected.seal:
            # Digests only: the seal is keyed by the sealed seed, so neither side tells an arm.
            yield Disagreement("allocation_entries", "differs", participant, None, None, "seal (arm, entry)",
                               _text(seal[:16]), _text(expected.seal[:16]), expected.seq)  # fmt: skip

    def expects_seal(self, participant: str) -> bool:
        found = self._allocations.get(participant)
        return found is not None and found.seal is not None

    def check_list(
        self, stratum: str | None, number: int | None, checksum: str, recomputed: str | None
    ) -> Iterator[Disagreement]:
        """One allocation list: the checksum stored with it and (but under minimization, which allocates as it
        goes) the checksum recomputed from its entries as they stand."""
        key = (stratum, number)
        name = _list_name(key)
        expected = self._lists.pop(key, None)
        if expected is None:
            yield Disagreement("allocation_lists", "unexplained", form=name, field="checksum", stored=_text(checksum))
            return
        if checksum != expected[0]:
            yield Disagreement("allocation_lists", "differs", form=name, field="checksum", stored=_text(checksum),
                               expected=_text(expected[0]), seq=expected[1])  # fmt: skip
        if recomputed is not None and recomputed != expected[0]:
            yield Disagreement("allocation_entries", "differs", form=name, field="checksum of the entries",
                               stored=_text(recomputed), expected=_text(expected[0]), seq=expected[1])  # fmt: skip

    def leftovers(self) -> Iterator[Disagreement]:
        """What the trail says exists that no stored row held (after every row was checked)."""
        for (participant, visit, form_id), form in self._forms.items():
            yield Disagreement("form_records", "missing", participant, visit, form_id, "state",
                               expected=_text(form.state[0]), seq=form.state[1])  # fmt: skip
        for (participant, visit), held in self._visits.items():
            trail = _text(held.visit_date or held.missed)
            yield Disagreement("visit_records", "missing", participant, visit, expected=trail, seq=held.seq)
        for participant, allocation in self._allocations.items():
            yield Disagreement("allocation_entries", "missing", participant, field="randomization_number",
                               expected=_text(allocation.number), seq=allocation.seq)  # fmt: skip
        for key, (checksum, seq) in self._lists.items():
            yield Disagreement("allocation_lists", "missing", form=_list_name(key), field="checksum",
                               expected=_text(checksum), seq=seq)  # fmt: skip
