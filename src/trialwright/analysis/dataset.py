"""The analysis data set: one frozen snapshot of what the analysis reads, already in analysis units.

``services.analysis`` builds it from the database in one transaction; everything in ``analysis`` works on
it without I/O. Each participant carries the *label* of the group they are analysed in, never an arm code:
the arm's name in an unblinded analysis, ``Group A`` / ``Group B`` when the protocol lets the blinded team
see unnamed groups, or one pooled group. So nothing downstream of this module can reveal more than the
mode it was built for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

__all__ = ["AnalysisData", "Event", "Grouping", "Screened", "SnapshotHash", "Stay", "Subject"]


class Grouping(StrEnum):
    """How participants are grouped in this analysis."""

    BY_ARM = "by_arm"  # unblinded: the arms' names
    UNNAMED_GROUPS = "unnamed_groups"  # blinded, Group A, B, ... in an order fixed by a secret
    POOLED = "pooled"  # blinded, everyone in one group


@dataclass(frozen=True, slots=True)
class Event:
    """One adverse event as its latest report assesses it (onset in days from day 0 of the adverse events' clock,
    the treatment: ``Subject.treatment_day`` days after randomization)."""

    onset_day: int
    grade: int
    serious: bool
    related: bool
    expected_event: str | None
    fatal: bool


@dataclass(frozen=True, slots=True)
class Stay:
    """The end of the hospital stay: days from admission and how it ended (discharged, died, censored)."""

    days: float | None
    status: str


_NOTHING: Mapping[str, Any] = {}  # a visit without values (never written to)


@dataclass(frozen=True, slots=True)
class Subject:
    """One randomized participant as the analysis sees them."""

    participant_id: str
    site: str
    stratum: str
    group: str  # the group analysed as randomized (a label, see the module docstring)
    treated: bool  # received any of the intervention (the safety set)
    treated_group: str | None  # the group of what was received (as treated), None if not treated
    per_protocol: bool
    not_per_protocol: tuple[str, ...]  # why not, in words
    withdrawn: tuple[str, ...]  # withdrawal scopes: intervention, follow_up, data_use
    emergency_unblinded: bool
    values: Mapping[str, Mapping[str, float | str | None]]  # visit -> form.field -> analysis value
    events: tuple[Event, ...] = ()
    stay: Stay | None = None
    death_day: int | None = None  # days from randomization to death, from whichever record says so first
    treatment_day: int = 0  # days from randomization to day 0 of the adverse events' clock (the treatment)
    followed_days: int | None = None  # days from randomization to the data cut-off (site date of the lock, or now)
    withdrawn_day: int | None = None  # days from randomization to withdrawal from follow-up
    withdrawn_cause: str | None = None  # why they left follow-up (a WithdrawalCause); None if not recorded
    stopped_day: int | None = None  # days from randomization to withdrawal from the intervention
    visit_days: Mapping[str, int] = field(default_factory=dict)  # visit -> days from randomization it was held
    randomized_on: dt.date | None = None  # the date of randomization in the site's zone (day 0 of every "day")
    #: Visits recorded as missed (with a reason): an outcome at one is missed, never "not yet due".
    missed_visits: frozenset[str] = frozenset()
    #: The screening record's values a ``screening.<field>`` source of Table 1 reads (``protocol.sources``), typed,
    #: derived ones computed; only the fields the plan names.
    screening: Mapping[str, Any] = field(default_factory=dict)

    def value(self, visit: str, variable: str) -> float | str | None:
        """One value at one visit (None if missing)."""
        return self.values.get(visit, _NOTHING).get(variable)


@dataclass(frozen=True, slots=True)
class Screened:
    """Screening counts for the CONSORT diagram and the pilot's feasibility rates."""

    assessed: int
    eligible: int
    not_eligible: int
    declined: int
    other_reasons: Mapping[str, int]
    consented: int
    by_representative: int
    enrolled: int
    site_months: float  # months each site has been recruiting, summed


@dataclass(frozen=True, slots=True)
class AnalysisData:
    """Everything one analysis reads, with how it was grouped and where it came from."""

    trial_id: str
    protocol_version: str
    grouping: Grouping
    groups: tuple[str, ...]  # group labels in display order (the reference group first)
    subjects: tuple[Subject, ...]
    screened: Screened
    taken_at: dt.datetime
    audit_seq: int  # the last audit entry the snapshot includes
    below_limit_rule: str
    notes: tuple[str, ...] = field(default=())
    lock_banner: str | None = None  # a lock made over open blockers (trialwright.services.lock.override_banner)
    #: The data cut-off when it is not ``taken_at``: the moment of the lock of a locked trial (follow-up, not yet
    #: due, censoring and recruitment months are counted to it); None: to ``taken_at``.
    cut_off_at: dt.datetime | None = None
    #: Every adverse event as (participant, primary SOC name, PT name) of its current MedDRA coding, SOC and PT None
    #: when not coded (or coded for a term changed since): the table by SOC and PT (``domain.coding.term_table``).
    ae_terms: tuple[tuple[str, str | None, str | None], ...] = ()
    #: How many form records the snapshot read, by state (draft, complete, verified, signed, locked, each listed
    #: with its count, zeros too): the analysis reads every record whatever its state. Trial-wide, never by arm.
    form_states: Mapping[str, int] = field(default_factory=dict)

    _sha256: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def snapshot_sha256(self) -> str:
        """A hash of the data analysed (not of the grouping), so the same data give the same hash in every mode;
        computed once, streaming (``SnapshotHash``)."""
        if self._sha256 is None:
            digest = SnapshotHash()
            for s in sorted(self.subjects, key=lambda s: s.participant_id):
                digest.add(s)
            object.__setattr__(self, "_sha256", digest.finish(self.screened))  # a cache of a pure function
        assert self._sha256 is not None
        return self._sha256


#: Subject's fields in the hash: everything but the grouping (the labels differ by mode, the data do not).
_HASHED = tuple(f.name for f in fields(Subject) if f.name not in {"group", "treated_group", "missed_visits"})
_EVENT = tuple(f.name for f in fields(Event))
_STAY = tuple(f.name for f in fields(Stay))
_SCREENED = tuple(f.name for f in fields(Screened))


#: ``json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))``, by one encoder made once; without
#: the circular-reference check, which changes no text of the acyclic content it is given (dicts, lists, values).
_ENCODE = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"), check_circular=False).encode


def _plain(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in names}


class SnapshotHash:
    """The snapshot's SHA-256, fed one subject at a time in participant order, then the screening counts.

    The hash is of one JSON text: a list of each subject's fields but the grouping, then the screening counts,
    with sorted keys, compact separators and ``str`` for dates. It is never built whole: each subject's JSON
    goes into the digest as it comes, so the cost is one subject's text, not the snapshot's (the value is the
    one ``json.dumps`` of the whole list gives; ``tests/spec/analysis/test_snapshot_hash.py`` holds them equal)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256(b"[")
        self._last: str | None = None

    def _item(self, content: Any) -> None:
        if self._last is not None:
            self._digest.update(b",")
        self._digest.update(_ENCODE(content).encode())

    def add(self, s: Subject) -> None:
        """One more subject; subjects come in participant order (another order would be another hash)."""
        if self._last is not None and s.participant_id <= self._last:
            raise ValueError(f"subjects: {s.participant_id} comes after {self._last}; the hash needs participant order")
        content = _plain(s, _HASHED)
        content["events"] = [_plain(e, _EVENT) for e in s.events]
        content["stay"] = _plain(s.stay, _STAY) if s.stay is not None else None
        content["missed_visits"] = sorted(s.missed_visits)  # a set, hashed in one order
        self._item(content)
        self._last = s.participant_id

    def finish(self, screened: Screened) -> str:
        """The hex digest, with the screening counts last."""
        if self._last is not None:
            self._digest.update(b",")
        self._digest.update(_ENCODE(_plain(screened, _SCREENED)).encode())
        self._digest.update(b"]")
        return self._digest.hexdigest()
