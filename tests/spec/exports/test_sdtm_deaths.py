"""SDTM DM's DTHDTC and DTHFL, and DS DEATH, from the earliest death the records give (both databases).

One rule says when a participant died, for the visits after a death and for the export alike
(``trialwright.domain.deaths``; ``trialwright.services.deaths.death_of`` reads it for one participant): a fatal
adverse event (its death date), the death record at its visit (the hospital course ended in death), any
vital-status field the protocol declares, at any visit. The export writes the earliest date; sources that disagree
on the date are listed in README.txt, and so is a status saying died without a date (no death counted, no date
guessed).

The first protocol with a vital-status field (the hospital course's status at any visit), and these participants
(days after the first day D):

=================  =====================================================  ==========  ===============================
participant        records                                                DTHDTC      README
=================  =====================================================  ==========  ===============================
record_then_event  death record D+3 (discharge); fatal AE D+5             D+3         the two dates disagree
event_then_record  fatal AE D+4; death record D+6 (the form read first)   D+4         the two dates disagree
vital_status       hospital course "died" at day 1, D+2 (not the death     D+2         -
                   record's visit: only the vital-status field says it)
undated            death record "died" at discharge, no date              (empty)     says died but gives no date
alive              hospital course "discharged" at discharge, D+6         (empty)     -
=================  =====================================================  ==========  ===============================
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyreadstat
import pytest
from sqlalchemy import insert, update

from tests.spec.forms.conftest import ENROLLED_AT, NOW, TODAY
from tests.spec.randomization.test_randomize_service import enrolled
from tests.spec.safety.test_safety_service import sae
from tests.spec.worklist.test_after_death import VITAL_STATUS
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.sdtm import SdtmExporter
from trialwright.protocol.loader import load_protocol_text
from trialwright.services.deaths import death_of
from trialwright.services.exports import export_source
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.safety import report_event
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.screening_tables import participants

D = TODAY - dt.timedelta(days=9)

#: participant -> (death record / hospital course rows as (visit, status, day offset or None), fatal AE day offset)
RECORDS: dict[str, tuple[list[tuple[str, str, int | None]], int | None]] = {
    "record_then_event": ([("discharge", "died", 3)], 5),
    "event_then_record": ([("discharge", "died", 6)], 4),
    "vital_status": ([("day1", "died", 2)], None),
    "undated": ([("discharge", "died", None)], None),
    "alive": ([("discharge", "discharged", 6)], None),
}
EXPECTED = {"record_then_event": 3, "event_then_record": 4, "vital_status": 2, "undated": None, "alive": None}


def _protocol() -> Any:
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    anchor = "    cause_field: death_cause\n"
    return load_protocol_text(text.replace(anchor, anchor + VITAL_STATUS, 1), "with-vital-status.yaml")


def _course(session: Any, pid: str, visit: str, status: str, offset: int | None) -> None:
    day = D + dt.timedelta(days=offset if offset is not None else 1)
    row = session.execute(insert(visit_records).values(
        participant_id=pid, visit_id=visit, visit_date=day, unscheduled=False, created_at=NOW, created_by="setup",
    ).returning(visit_records.c.id)).scalar_one()  # fmt: skip
    values: dict[str, Any] = {"status": {"value": status, "status": "value"}}
    if offset is not None:
        values["ended_on"] = {"value": day.isoformat(), "status": "value"}
    session.execute(insert(form_records).values(
        participant_id=pid, visit_record_id=row, form_id="hospital_course", state="complete",
        form_values=json.dumps(values), version=1, protocol_version="1", updated_at=NOW, updated_by="setup",
    ))  # fmt: skip


@pytest.fixture
def deaths(database_url: str) -> Iterator[tuple[Trial, dict[str, str]]]:
    t = make_trial(database_url, _protocol())
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=7)
    made = {name: enrolled(t) for name in RECORDS}
    with session_scope(t.engine) as session:
        session.execute(update(participants).values(enrolled_at=ENROLLED_AT))
    for pid in made.values():
        randomize(t.engine, who(t, Role.INVESTIGATOR), pid)
    for name, (courses, fatal) in RECORDS.items():
        with session_scope(t.engine) as session:
            for visit, status, offset in courses:
                _course(session, made[name], visit, status, offset)
        if fatal is not None:
            day = (D + dt.timedelta(days=fatal)).isoformat()
            report_event(t.engine, who(t, Role.INVESTIGATOR), made[name], sae(
                term="Respiratory failure", onset=day, grade=5, seriousness_criteria=["death"], outcome="fatal",
                death_date=day, death_cause="Respiratory failure"))  # fmt: skip
    yield t, made
    t.engine.dispose()


def test_dm_takes_the_earliest_death_of_every_source_and_lists_disagreements(
    deaths: tuple[Trial, dict[str, str]], tmp_path: Path
) -> None:
    trial, made = deaths
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    SdtmExporter().write(source, tmp_path)
    dm, _ = pyreadstat.read_xport(tmp_path / "sdtm" / "dm.xpt")
    ds, _ = pyreadstat.read_xport(tmp_path / "sdtm" / "ds.xpt")
    rows = dm.set_index("USUBJID")
    readme = (tmp_path / "README.txt").read_text(encoding="utf-8")
    protocol = _protocol().protocol
    for name, pid in made.items():
        usubjid = f"{source.trial_id}-{pid}"
        offset = EXPECTED[name]
        expected = (D + dt.timedelta(days=offset)).isoformat() if offset is not None else ""
        assert (rows.loc[usubjid, "DTHDTC"], rows.loc[usubjid, "DTHFL"]) == (expected, "Y" if expected else ""), name
        with read_scope(trial.engine) as session:  # the same rule as the visits after a death
            death = death_of(session, protocol, pid)
        assert (death.on.isoformat() if death else "") == expected, name
        dying = ds[(usubjid == ds.USUBJID) & (ds.DSDECOD == "DEATH")]
        assert list(dying.DSSTDTC) == ([expected] if expected else []), name
        disagree = f"DM {usubjid}: the records disagree on the date of death"
        assert (disagree in readme) == (name in {"record_then_event", "event_then_record"}), name
        undated = f"DM {usubjid}: hospital_course.status at discharge says died but gives no date"
        assert (undated in readme) == (name == "undated"), name
    first = f"DM {source.trial_id}-{made['record_then_event']}: the records disagree on the date of death: "
    line = next(line for line in readme.splitlines() if first in line)
    assert f"{(D + dt.timedelta(days=3)).isoformat()} (hospital_course.status at discharge)" in line
    assert f"{(D + dt.timedelta(days=5)).isoformat()} (adverse event " in line and line.count("(hospital_course") == 1
    assert readme.count("says died but gives no date") == 1
