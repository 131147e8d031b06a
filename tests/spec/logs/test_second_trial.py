"""A second trial's log, written from the docs alone (EXAMPLE-CAP-3ARM's `antibiotics`, its own field names and
units, SDTM CM with `ongoing_until: DAY 28` and `atc_class_level: 3`), run through the same service and exports on
both databases: nothing in the code knows either trial's logs.

| entered                                    | stored                 | SDTM CM                                        |
|--------------------------------------------|------------------------|------------------------------------------------|
| Amoxicillin 3 g a day by mouth, continuing | 3000 mg (g converted)  | CMDOSTOT 3000, CMDOSU mg (the field's unit),   |
|                                            |                        | CMDOSE empty, CMROUTE ORAL, CMENTPT DAY 28     |
| coded to the fictional Z02BE01             |                        | CMDECOD Blorpamol, CMCLAS at level 3 (Z02B)    |
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyreadstat
import pytest

from tests.conftest import ROOT, fresh_database
from tests.spec.logs.fictional_atc import write_index
from trialwright.protocol import load_protocol
from trialwright.services.exports import run_export
from trialwright.services.logs import LogError, add_entry
from trialwright.services.medication_coding import code_medication, load_atc
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user
from trialwright.store.engine import make_engine
from trialwright.store.screening_tables import participants

CAP = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_second_trials_antibiotic_log_reaches_sdtm_cm(
    kind: str, tmp_path: Path, postgres_available: str | None
) -> None:
    from sqlalchemy import select

    with fresh_database(kind, tmp_path, postgres_available if kind == "postgresql" else None) as url:
        engine = make_engine(url)
        try:
            init_trial(engine, load_protocol(CAP))
            simulate(engine, CAP, None, 5, enrolled=2)
            with engine.connect() as conn:
                pid = conn.execute(select(participants.c.participant_id).order_by(participants.c.participant_id)
                                   ).scalars().first()  # fmt: skip
            coordinator = get_user(engine, "sim-study-coordinator")
            coder = get_user(engine, "sim-coder")
            assert coordinator is not None and coder is not None and pid is not None
            started = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)).isoformat()
            entry = {"drug": "Amoxicillin", "daily_dose": {"value": 3, "unit": "g"}, "given_by": "ORAL",
                     "first_dose_on": started, "continuing": True}  # fmt: skip
            with pytest.raises(LogError, match=r"^given_by: 'NASAL' is not one of"):
                add_entry(engine, coordinator, pid, "antibiotics", {**entry, "given_by": "NASAL"})
            with pytest.raises(LogError, match=r"protocol declares no log 'conmeds' \(logs: antibiotics\)"):
                add_entry(engine, coordinator, pid, "conmeds", entry)
            added = add_entry(engine, coordinator, pid, "antibiotics", entry)
            assert (added.values["daily_dose"].value, added.values["daily_dose"].unit) == (3000, "g")
            load_atc(engine, coder, write_index(tmp_path / "atc.csv"), "2026")
            code_medication(engine, coder, pid, "antibiotics", 1, "Z02BE01")
            run_export(engine, get_user(engine, "sim-data-manager"), "sdtm", tmp_path / "out")  # type: ignore[arg-type]
            cm, _ = pyreadstat.read_xport(tmp_path / "out" / "sdtm" / "cm.xpt")
            (row,) = cm.to_dict("records")
            assert row["CMDOSE"] != row["CMDOSE"]  # NaN: the log records a total daily dose, not a dose per intake
            assert {k: row[k] for k in ("CMSPID", "CMTRT", "CMDOSTOT", "CMDOSU", "CMROUTE", "CMSTDTC", "CMENRTPT",
                                        "CMENTPT", "CMDECOD", "CMCLAS", "CMCLASCD")} == {
                "CMSPID": "1", "CMTRT": "Amoxicillin", "CMDOSTOT": 3000.0, "CMDOSU": "mg", "CMROUTE": "ORAL",
                "CMSTDTC": started,
                "CMENRTPT": "ONGOING", "CMENTPT": "DAY 28", "CMDECOD": "Blorpamol",
                "CMCLAS": "Fictional other analgesics", "CMCLASCD": "Z02B",
            }  # fmt: skip
            assert not (tmp_path / "out" / "sdtm" / "mh.xpt").exists()  # SDTM submits no empty dataset
            readme = (tmp_path / "out" / "README.txt").read_text(encoding="utf-8")
            assert "MH: no records: the protocol declares no log written to MH" in readme
            assert re.search(r"Not written, no records \(.*\): (\w+, )*MH\b", readme)
        finally:
            engine.dispose()
