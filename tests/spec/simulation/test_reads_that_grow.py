"""A simulated patient's statements do not read tables that grow with the trial whole (issue 22 item 4): at
100,000 participants a statement that reads every form record at each administration saved costs more than the rest
of the patient (docs/benchmarks.md, simulation at scale). On SQLite each distinct statement a simulation runs is
asked for its plan (``EXPLAIN QUERY PLAN``): one that scans (rather than searches by an index) a table of the
participants' data is refused, unless it is one of the few still known to (listed below, each with why it stays).

And an automatic query raised on a form record its own transaction inserted reads nothing first: a record this
transaction made has no query to find open (``forms.common.no_query_on``), as closing them reads nothing.
"""

from __future__ import annotations

import json

from sqlalchemy import Engine, event, select

from tests.spec.simulation.test_simulate import _trial
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.services.simulation import simulate
from trialwright.store.data_tables import form_records, queries
from trialwright.store.engine import session_scope

#: Tables whose size does not grow with the participants: scanning them is reading a handful of rows.
SMALL = {"trial", "trial_locks", "dsmb_decisions", "allocation_lists", "sites", "users", "protocol_versions"}

#: Scans of growing tables still there, by the start of their statement: each is a known cost at scale, not new.
KNOWN = {
    # The head of the audit trail: the newest entry by its key, read backwards; SQLite stops at the first row.
    "SELECT audit_entries.seq, audit_entries.hash, audit_entries.mac FROM audit_entries ORDER BY audit_entries.seq "
    "DESC LIMIT",
    # The preparation codes in use, read when a list is generated or extended (new codes are drawn unlike them).
    "SELECT allocation_entries.preparation_code FROM allocation_entries",
    # The look-ahead of one save, with the audit head among its columns (as above).
    "SELECT participants.participant_id, participants.site, participants.number, participants.screening_id",
}


def _scans(plan: list[str]) -> set[str]:
    """The tables a plan scans (SQLite's words: "SCAN t", "SCAN t USING ... INDEX ..."), constants aside."""
    return {line.split()[1] for line in plan if line.startswith("SCAN ") and "CONSTANT" not in line}


def test_no_statement_of_a_simulation_scans_a_growing_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = _trial(f"sqlite:///{tmp_path / 'trial.db'}")
    plans: dict[str, set[str]] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def planned(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        sql = " ".join(statement.split())
        if executemany or sql in plans or not sql.startswith(("SELECT", "UPDATE", "DELETE")):
            return
        rows = conn.connection.driver_connection.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
        plans[sql] = _scans([row[3] for row in rows])

    summary = simulate(engine, FIRST_PROTOCOL, 30, seed=21)
    engine.dispose()
    assert summary.randomized > 5 and summary.forms_saved > 200
    growing = {sql[:160]: sorted(tables - SMALL) for sql, tables in plans.items()
               if tables - SMALL and not sql.startswith(tuple(KNOWN))}  # fmt: skip
    assert growing == {}
    # The kit check ran (the administration form names a preparation code) and found the code's holders by the index
    # of the administered codes, not by reading the administration records; the save recorded each code there.
    kit = [sql for sql in plans if sql.startswith("SELECT administered_codes.participant_id")]
    assert kit and all(plans[sql] <= SMALL for sql in kit)
    assert not any(sql.startswith("SELECT form_records.form_values FROM form_records WHERE") for sql in plans)
    assert _administered(engine) == _held_by_records(engine) != set()


def _administered(engine: Engine) -> set[tuple[int, str, str]]:
    from trialwright.store.data_tables import administered_codes

    with session_scope(engine) as session:
        rows = session.execute(select(administered_codes)).all()
    return {(r.form_record_id, r.preparation_code, r.participant_id) for r in rows}


def _held_by_records(engine: Engine) -> set[tuple[int, str, str]]:
    """The codes the administration records hold, read from their JSON here (the independent reading)."""
    with session_scope(engine) as session:
        rows = session.execute(select(form_records).where(form_records.c.form_id == "administration")).all()
    held = set()
    for r in rows:
        code = json.loads(r.form_values).get("preparation_code")
        if code is not None and code.get("status", "value") == "value" and code.get("value") is not None:
            held.add((r.id, str(code["value"]), r.participant_id))
    return held


def test_a_query_raised_on_a_record_its_transaction_inserted_reads_no_open_query_first(database_url: str) -> None:
    engine = _trial(database_url)
    looked: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT queries.id \nFROM queries"):
            looked.append(statement)

    simulate(engine, FIRST_PROTOCOL, 12, seed=21)
    with session_scope(engine) as session:
        raised = session.execute(queries.select().where(queries.c.origin.in_(["soft_limit", "data_check"]))).all()
    engine.dispose()
    # Automatic queries were raised; each raised on a record another transaction inserted was looked for first (a
    # data check over two visits' forms), those on a record their own transaction inserted were not: fewer look-ups
    # than queries raised (one look-up before each, without ``no_query_on``).
    assert len(raised) >= 3
    assert len(looked) < len(raised)
