"""SDTM DS COMPLETED: the participant completed the protocol's follow-up, never merely "alive at the death record"
(both databases).

The death record's status other than death says the participant was alive at its visit (the discharge); it is not
the end of follow-up when the protocol schedules visits after it. COMPLETED needs, besides that alive status and no
withdrawal from follow-up, every scheduled visit the participant's schedule places after the death record's date
held: a visit held after that date, or one whose window (from the participant's own reference event) closes after
it. DSSTDTC is then the latest of the death record's date and those visits' dates. Such a visit missed, or not yet
held: no COMPLETED (refused, never guessed), and README.txt's notes name the subject and the visit.

The first protocol (discharge is its last visit) and the same protocol with a day-30 visit after discharge
(walk 5: BER-019 and MAD-005 missed the day-30 call and were still written COMPLETED on the discharge date). Days
are after the infusion on day D (its visit held that day):

===========  ================  ==============================  ===================  ==============================
protocol     participant       records                         DS COMPLETED         README notes
===========  ================  ==============================  ===================  ==============================
with day 30  later_held        discharge alive D+10, day30     D+31 (the later      -
                               held D+31                       visit's date)
with day 30  later_missed      discharge alive D+10, day30     (none)               the subject, day30 missed and
                               missed                                               its reason
with day 30  later_not_held    discharge alive D+10, nothing   (none)               the subject, day30 not held
                               at day30
first        last_is_discharge discharge alive D+10 (day 7's   D+10 (unchanged)     -
                               window closed on D+8)
first        early_discharge   discharge alive D+2, day7       (none)               the subject, day7 missed
                               missed (window D+6..D+8)
===========  ================  ==============================  ===================  ==============================
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
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.sdtm import SdtmExporter
from trialwright.protocol.loader import load_protocol_text
from trialwright.services.exports import export_source
from trialwright.services.randomization import generate_list, randomize
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import participants

D = TODAY - dt.timedelta(days=40)

DAY30 = """\
  - id: day30
    name: Day 30 telephone follow-up
    translations: {fa: "پیگیری تلفنی روز ۳۰"}
    epoch: FOLLOW-UP
    reference: infusion
    day: 30
    window: {before: 3, after: 7}
    forms: [vitals]
"""

#: participant -> (protocol, discharge day, {visit: day held, or a missed reason})
CASES: dict[str, tuple[str, int, dict[str, int | str]]] = {
    "later_held": ("day30", 10, {"day30": 31}),
    "later_missed": ("day30", 10, {"day30": "Could not be reached by telephone"}),
    "later_not_held": ("day30", 10, {}),
    "last_is_discharge": ("first", 10, {}),
    "early_discharge": ("first", 2, {"day7": "Discharged home, did not return"}),
}
#: participant -> DSSTDTC of COMPLETED (days after D), or None; and the visit README.txt names (None: no note)
EXPECTED: dict[str, tuple[int | None, str | None]] = {
    "later_held": (31, None),
    "later_missed": (None, "day30 missed (Could not be reached by telephone)"),
    "later_not_held": (None, f"day30 not held (window closes {(D + dt.timedelta(days=37)).isoformat()})"),
    "last_is_discharge": (10, None),
    "early_discharge": (None, "day7 missed (Discharged home, did not return)"),
}


def _protocol(kind: str) -> Any:
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    if kind == "day30":  # a scheduled visit after the discharge (an event visit), as in walk 5's trial
        anchor = "\n# The trial's elements (SDTM TE, TA, SE)"
        text = text.replace(anchor, DAY30 + anchor, 1)
    return load_protocol_text(text, f"{kind}.yaml")


def _visit(session: Any, pid: str, visit: str, held: int | str, form: str, values: dict[str, Any]) -> None:
    day = D + dt.timedelta(days=held) if isinstance(held, int) else None
    row = session.execute(insert(visit_records).values(
        participant_id=pid, visit_id=visit, visit_date=day, missed_reason=held if day is None else None,
        unscheduled=False, created_at=NOW, created_by="setup",
    ).returning(visit_records.c.id)).scalar_one()  # fmt: skip
    if day is not None:
        session.execute(insert(form_records).values(
            participant_id=pid, visit_record_id=row, form_id=form, state="complete",
            form_values=json.dumps(values), version=1, protocol_version="1", updated_at=NOW, updated_by="setup",
        ))  # fmt: skip


def _trial(database_url: str, kind: str) -> tuple[Trial, dict[str, str]]:
    t = make_trial(database_url, _protocol(kind))
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=7)
    names = [name for name, case in CASES.items() if case[0] == kind]
    made = {name: enrolled(t) for name in names}
    with session_scope(t.engine) as session:
        session.execute(update(participants).values(enrolled_at=ENROLLED_AT))
    for pid in made.values():
        randomize(t.engine, who(t, Role.INVESTIGATOR), pid)
    for name in names:
        _, discharge, later = CASES[name]
        ended = (D + dt.timedelta(days=discharge)).isoformat()
        with session_scope(t.engine) as session:
            _visit(session, made[name], "infusion", 0, "vitals", {})
            _visit(session, made[name], "discharge", discharge, "hospital_course", {
                "status": {"value": "discharged", "status": "value"}, "ended_on": {"value": ended, "status": "value"}})
            for visit, held in later.items():
                _visit(session, made[name], visit, held, "vitals", {})
    return t, made


@pytest.fixture(params=["day30", "first"])
def trial(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[Trial, dict[str, str]]]:
    t, made = _trial(database_url, request.param)
    yield t, made
    t.engine.dispose()


def test_completed_only_when_the_follow_up_after_the_death_record_is_held(
    trial: tuple[Trial, dict[str, str]], tmp_path: Path
) -> None:
    t, made = trial
    source = export_source(t.engine, who(t, Role.DATA_MANAGER))
    SdtmExporter().write(source, tmp_path)
    ds, _ = pyreadstat.read_xport(tmp_path / "sdtm" / "ds.xpt")
    dm, _ = pyreadstat.read_xport(tmp_path / "sdtm" / "dm.xpt")
    readme = (tmp_path / "README.txt").read_text(encoding="utf-8")
    notes = readme.split("\nNotes:\n", 1)[1] if "\nNotes:\n" in readme else ""
    for name, pid in made.items():
        usubjid = f"{source.trial_id}-{pid}"
        offset, visit = EXPECTED[name]
        completed = ds[(usubjid == ds.USUBJID) & (ds.DSDECOD == "COMPLETED")]
        expected = [(D + dt.timedelta(days=offset)).isoformat()] if offset is not None else []
        assert list(completed.DSSTDTC) == expected, name
        said = [line for line in notes.splitlines() if f"DS {usubjid}: no COMPLETED" in line]
        assert len(said) == (0 if visit is None else 1), name
        if visit is not None:
            assert said[0].endswith(visit), (name, said[0])
            assert f"alive at discharge on {(D + dt.timedelta(days=CASES[name][1])).isoformat()}" in said[0], name
        else:  # RFENDTC/RFPENDTC reach the completion
            assert dm.set_index("USUBJID").loc[usubjid, "RFPENDTC"] == expected[0], name
    assert "COMPLETED when every scheduled visit" in readme
