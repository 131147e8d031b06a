"""Revision 0041 on a trial with data (issue 22 item 4): the administered preparation codes are filled from the form
records by the rule the kit check uses, and the adverse events already reported get their numbers; on SQLite and
PostgreSQL. The trial is simulated at head, taken back to 0040 (the table and the column gone), changed there as data
from before the kit check could be, and upgraded again:

| the trial at 0040 holds                                   | after the upgrade                                      |
|-----------------------------------------------------------|--------------------------------------------------------|
| the simulation's administration records, codes given      | one row per record holding a code: what the saves wrote |
| a second participant's record holding the first's code    | its row too; the earlier record claims the code         |
| a record whose code was then marked "not done"            | no row                                                  |
| adverse events AE-0001 ... AE-000n                        | numbers 1 ... n; the next report is n + 1               |

The expected rows are read here from the records' JSON (status ``value``, a value: the code held). The revision
carries its own copy of the backfill (no application code called): on the same records, a code given twice, one
marked "not done" and one stored as a number among them, it fills the very rows ``store.administered.rebuild`` makes.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, select, update

from tests.migrations import downgrade
from tests.spec.safety.test_safety_service import sae
from tests.trialfixtures import FIRST_PROTOCOL, make_trial, who
from trialwright.domain.roles import Role
from trialwright.domain.treatment import kit_field
from trialwright.protocol import load_protocol
from trialwright.services.safety import report_event
from trialwright.services.simulation import simulate
from trialwright.store.administered import rebuild
from trialwright.store.data_tables import form_records
from trialwright.store.engine import session_scope
from trialwright.store.migrate import current_revision, head_revision, upgrade
from trialwright.store.safety_tables import adverse_events


def _rows(engine: Engine) -> set[tuple[int, str, str, str | None]]:
    from trialwright.store.data_tables import administered_codes

    with session_scope(engine) as session:
        rows = session.execute(select(administered_codes)).all()
    return {(r.form_record_id, r.preparation_code, r.participant_id, r.claim) for r in rows}


def _expected(engine: Engine) -> set[tuple[int, str, str, str | None]]:
    """Every administration record holding a code, the earliest record of each code claiming it."""
    with session_scope(engine) as session:
        records = session.execute(
            select(form_records).where(form_records.c.form_id == "administration").order_by(form_records.c.id)
        ).all()
    out, claimed = set(), set()
    for r in records:
        code = json.loads(r.form_values).get("preparation_code")
        if code is None or code.get("status", "value") != "value" or code.get("value") is None:
            continue
        value = str(code["value"])
        out.add((r.id, value, r.participant_id, None if value in claimed else value))
        claimed.add(value)
    return out


def _set_code(engine: Engine, record_id: int, stored: dict[str, Any]) -> None:
    with session_scope(engine) as session:
        text = session.execute(select(form_records.c.form_values).where(form_records.c.id == record_id)).scalar_one()
        values = {**json.loads(text), "preparation_code": stored}
        changed = update(form_records).where(form_records.c.id == record_id)
        session.execute(changed.values(form_values=json.dumps(values)))


def test_the_upgrade_fills_the_administered_codes_and_the_event_numbers(database_url: str) -> None:
    trial = make_trial(database_url)
    engine = trial.engine
    try:
        simulate(engine, FIRST_PROTOCOL, 12, seed=21)
        written = _rows(engine)
        assert len(written) >= 3 and written == _expected(engine)  # the saves wrote what the records hold
        with session_scope(engine) as session:
            numbered = dict(session.execute(select(adverse_events.c.ae_number, adverse_events.c.number)).all())
        assert numbered and all(number == int(name[3:]) for name, number in numbered.items())

        downgrade(engine, "0040")
        assert current_revision(engine) == "0040"
        (first, first_code, _, _), (second, _, second_pid, _), (third, _, _, _) = sorted(written)[:3]
        _set_code(engine, second, {"value": first_code})  # the first's code on another participant's record
        _set_code(engine, third, {"value": None, "status": "not_done", "reason": "not given"})

        assert upgrade(engine) == head_revision()
        filled = _rows(engine)
        assert filled == _expected(engine)
        assert (first, first_code, written_pid(written, first), first_code) in filled
        assert (second, first_code, second_pid, None) in filled  # held too, not claimed
        assert not any(row[0] == third for row in filled)
        with session_scope(engine) as session:
            renumbered = dict(session.execute(select(adverse_events.c.ae_number, adverse_events.c.number)).all())
        assert renumbered == numbered
        pid = min(p for _, _, p, _ in filled if p.startswith("RAZ-"))  # the investigator's site
        event = report_event(engine, who(trial, Role.INVESTIGATOR), pid, sae())
        assert event.ae_number == f"AE-{len(numbered) + 1:04d}"
    finally:
        engine.dispose()


def written_pid(rows: set[tuple[int, str, str, str | None]], record_id: int) -> str:
    return next(p for r, _, p, _ in rows if r == record_id)


def test_the_upgrade_fills_the_rows_rebuild_makes(database_url: str) -> None:
    trial = make_trial(database_url)
    engine = trial.engine
    try:
        simulate(engine, FIRST_PROTOCOL, 8, seed=5)
        written = sorted(_rows(engine))
        assert len(written) >= 4
        downgrade(engine, "0040")
        (_, first_code, _, _), (second, _, _, _), (third, _, _, _), (fourth, _, _, _) = written[:4]
        _set_code(engine, second, {"value": first_code})  # a code given twice
        _set_code(engine, third, {"value": None, "status": "not_done", "reason": "not given"})
        _set_code(engine, fourth, {"value": 4711})  # stored as a number: held as its text

        upgrade(engine)
        filled = _rows(engine)
        with engine.begin() as connection:
            assert rebuild(connection, kit_field(load_protocol(FIRST_PROTOCOL).protocol)) == len(filled)
        assert _rows(engine) == filled
        assert (second, first_code, written_pid(set(written), second), None) in filled
        assert not any(row[0] == third for row in filled)
        assert (fourth, "4711", written_pid(set(written), fourth), "4711") in filled
    finally:
        engine.dispose()
