"""The tables by arm count their denominators in SQL: a load reads as many rows from the allocation entries whatever
the number randomized.

The DSMB's safety tables by arm and the recruitment dashboard by arm verify the allocation entries added or changed
since their last load (``tests/spec/audit/test_verified_allocations.py``), then let the database count the
participants per arm (a ``GROUP BY`` over the claimed entries): no randomized participant's arm is read into Python
for a denominator. What a load still reads from the entries is bounded: the sweep (here ``SWEEP`` = 2), the entries
that changed (none in a steady load), the counts per arm, and the arms of the participants with adverse events (the
tables attribute their events to arms). So a steady load of either reads the same number of rows from
``allocation_entries`` at 4 and at 12 randomized (one of them with an event both times), and the numbers are those
counted independently from every entry. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import CursorResult

from tests.spec.randomization.test_randomize_service import enrolled
from tests.spec.safety.test_read_in_sql import _report
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services import allocation_checkpoints
from trialwright.services.audit_keys import checked_allocations
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.recruitment import recruitment_status
from trialwright.services.safety import report_event, safety_tables
from trialwright.services.trial import current_protocol
from trialwright.store.engine import read_scope
from trialwright.store.screening_tables import participants, screenings


@pytest.fixture
def trial(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trial]:
    monkeypatch.setattr(allocation_checkpoints, "SWEEP", 2)
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=2021)
    yield t
    t.engine.dispose()


def _randomize(trial: Trial, n: int) -> list[str]:
    investigator = who(trial, Role.INVESTIGATOR)
    out = []
    for _ in range(n):
        participant = enrolled(trial)
        randomize(trial.engine, investigator, participant)
        out.append(participant)
    return out


def _rows_from_allocations(
    monkeypatch: pytest.MonkeyPatch, load: Callable[[], Any], reading: str = "allocation_entries"
) -> tuple[int, Any]:
    """Rows fetched into Python during ``load()`` from statements that read ``reading`` (the allocation entries, or
    their arm column), and its result."""
    fetched = [0]

    def reads(result: Any) -> bool:
        statement = getattr(result.context, "statement", None) or ""
        return reading in statement and statement.lstrip().upper().startswith(("SELECT", "WITH"))

    def counting(name: str) -> None:
        real = getattr(CursorResult, name)

        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            out = real(self, *args, **kwargs)
            if reads(self):
                if name == "_fetchone_impl":
                    fetched[0] += out is not None
                elif name == "_fetchiter_impl":
                    return _counted(out)
                else:
                    fetched[0] += len(out)
            return out

        monkeypatch.setattr(CursorResult, name, wrapped)

    def _counted(rows: Iterator[Any]) -> Iterator[Any]:
        for row in rows:
            fetched[0] += 1
            yield row

    for name in ("_fetchone_impl", "_fetchall_impl", "_fetchmany_impl", "_fetchiter_impl"):
        counting(name)
    try:
        result = load()
    finally:
        for name in ("_fetchone_impl", "_fetchall_impl", "_fetchmany_impl", "_fetchiter_impl"):
            monkeypatch.setattr(CursorResult, name, CursorResult.__dict__[name])
    return fetched[0], result


def _steady(
    trial: Trial, monkeypatch: pytest.MonkeyPatch, load: Callable[[], Any], reading: str = "allocation_entries"
) -> tuple[int, Any]:
    load()  # verifies the new entries and remembers them
    return _rows_from_allocations(monkeypatch, load, reading)


def test_the_safety_tables_by_arm_read_as_many_allocation_rows_whatever_the_number_randomized(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsmb = who(trial, Role.DSMB_MEMBER)
    first = _randomize(trial, 4)
    mild = _report(serious=False, seriousness_criteria=[], grade=2, causality="not_related")  # no safety pause
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), first[0], mild)
    few, small = _steady(trial, monkeypatch, lambda: safety_tables(trial.engine, dsmb))
    _randomize(trial, 8)
    many, large = _steady(trial, monkeypatch, lambda: safety_tables(trial.engine, dsmb))
    assert small.participants == 4 and large.participants == 12
    assert few == many, (few, many)  # the sweep, the counts per arm, the arm of the one participant with an event
    with read_scope(trial.engine) as session:
        arms = Counter(r.arm for r in checked_allocations(session))
    names = {a.code: a.name for a in current_protocol(trial.engine).protocol.arms}
    (any_event,) = [r for r in large.rows if r.label == "Any adverse event"]
    assert dict(any_event.totals) == {names[code]: arms[code] for code in names}  # counted from every entry
    assert sum(any_event.counts.values()) == 1 and large.events == 1


def test_the_recruitment_dashboard_by_arm_reads_no_arm_per_participant(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsmb = who(trial, Role.DSMB_MEMBER)

    def arm_rows() -> tuple[int, Any]:
        # every row that carries an arm: the counts per arm and series point, the sweep (2), the changed entries
        return _steady(trial, monkeypatch, lambda: recruitment_status(trial.engine, dsmb), "allocation_entries.arm")

    _randomize(trial, 4)
    few, small = arm_rows()
    _randomize(trial, 8)
    many, large = arm_rows()
    assert few == many, (few, many)  # rows of (arm, series point, count), not one per participant
    assert sum(a.randomized for a in small.arms) == 4 and sum(a.randomized for a in large.arms) == 12
    # the same numbers as counted from every entry, on each participant's site calendar
    protocol = current_protocol(trial.engine).protocol
    zones = {s.code: ZoneInfo(s.timezone) for s in protocol.sites}
    with read_scope(trial.engine) as session:
        site_of = dict(
            session.execute(
                select(participants.c.participant_id, screenings.c.site).join(
                    screenings, screenings.c.id == participants.c.screening_id
                )
            ).all()
        )
        entries = [(r.arm, r.randomized_at.astimezone(zones[site_of[r.participant_id]]).date())
                   for r in checked_allocations(session)]  # fmt: skip
    for arm in large.arms:
        assert arm.randomized == sum(code == arm.code for code, _ in entries)
        by_hand = [sum(code == arm.code and day <= p.on for code, day in entries) for p in large.series]
        assert list(arm.series) == by_hand
