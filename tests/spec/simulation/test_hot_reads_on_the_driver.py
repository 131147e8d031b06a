"""The look-ups every simulated patient's transactions repeat run on the driver's cursor, compiled once (issue 22
item 4): which protocol version the trial runs under (every use case's first statement), the audit trail's head
(a transaction's first chained entry), the trial lock's latest row (every data change) and a form record's update
(every save, verification and signature). SQLAlchemy's work per statement (building it, its cache key, its execution
context) was about a fifth of the simulator's CPU on SQLite (docs/benchmarks.md), so these go through
``store.prepared.Prepared`` on both databases.

Each of them is still seen by the engine's cursor events (counted, faults injectable), now with no SQLAlchemy
execution context (``context`` None): none went through ``session.execute``. What they store is unchanged: the
fast path gives the slow path's trial entry for entry (``test_batched.py``).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import event

from tests.spec.simulation.test_simulate import _trial
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.services.simulation import simulate

#: The start of each hot statement's SQL, the same on both databases.
HOT = {
    "the protocol version": "SELECT (SELECT protocol_versions.sha256",
    "the audit head": "SELECT audit_entries.seq, audit_entries.hash, audit_entries.mac \nFROM audit_entries ORDER BY",
    "the trial lock": "SELECT trial_locks.id,",
    "a form record's update": "UPDATE form_records SET",
}


def test_the_hot_look_ups_of_a_simulation_run_on_the_driver_cursor(database_url: str) -> None:
    engine = _trial(database_url)
    on_driver: Counter[str] = Counter()
    through_sqlalchemy: Counter[str] = Counter()
    everything = Counter[str]()

    @event.listens_for(engine, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        everything["statements"] += 1
        for name, start in HOT.items():
            if statement.startswith(start):
                (on_driver if context is None else through_sqlalchemy)[name] += 1

    summary = simulate(engine, FIRST_PROTOCOL, 6, seed=21)
    engine.dispose()
    assert summary.screened == 6 and summary.forms_saved > 20
    assert through_sqlalchemy == Counter(), f"through session.execute: {dict(through_sqlalchemy)}"
    # Every one of them seen, many times: each use case reads the version, each form step updates its record.
    assert set(on_driver) == set(HOT) and on_driver["the protocol version"] > summary.screened
    assert on_driver["a form record's update"] > summary.forms_saved / 4
    assert sum(on_driver.values()) > everything["statements"] / 10
