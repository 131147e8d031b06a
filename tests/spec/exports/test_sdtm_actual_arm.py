"""SDTM DM's actual arm is the arm received, not the arm allocated (SDTMIG 3.4 DM assumption 4): the treatment form's
preparation code (``analysis_plan.treatment.code_field``) names the arm of what was given.

| treatment form records                      | ACTARMCD / ACTARM | ARMNRS                | ACTARMUD       |
|---------------------------------------------|-------------------|-----------------------|----------------|
| the participant's own code                  | the allocated arm | empty                 | empty          |
| another participant's code, of another arm  | that other arm    | empty                 | empty          |
| a code in no allocation list                | empty             | UNPLANNED TREATMENT   | names the code |
| not given                                   | empty             | ASSIGNED, NOT TREATED | empty          |
| (blinded extract) any of the above, given   | BLINDED           | empty                 | empty          |

ARMCD is the allocated arm throughout (BLINDED in the blinded extract).

The codes are changed in the database behind the kit check (as a legacy or imported record could hold them), and the
expected rows are made here from the allocation list and the stored form values read as JSON; on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyreadstat
from sqlalchemy import select, update

from tests.trialfixtures import FIRST_PROTOCOL, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.sdtm import SdtmExporter
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.randomization_tables import allocation_entries

UNKNOWN = "NOT-A-KIT-99"


def _dm(folder: Path) -> pd.DataFrame:
    frame, _ = pyreadstat.read_xport(folder / "sdtm" / "dm.xpt")
    return frame.set_index("USUBJID")


def test_actual_arm_follows_the_preparation_code_given(database_url: str, tmp_path: Path) -> None:
    trial = make_trial(database_url)
    simulate(trial.engine, FIRST_PROTOCOL, 30, seed=5)
    study = export_source(trial.engine, who(trial, Role.DATA_MANAGER)).trial_id
    with trial.engine.begin() as c:
        code_arm = dict(c.execute(select(allocation_entries.c.preparation_code, allocation_entries.c.arm)).all())
        allocated = {
            pid: (code, arm)
            for pid, code, arm in c.execute(
                select(allocation_entries.c.participant_id, allocation_entries.c.preparation_code,
                       allocation_entries.c.arm).where(allocation_entries.c.participant_id.is_not(None))
            )
        }  # fmt: skip
        records = c.execute(
            select(form_records.c.id, visit_records.c.participant_id, form_records.c.form_values)
            .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
            .where(visit_records.c.visit_id == "infusion", form_records.c.form_id == "administration")
            .order_by(visit_records.c.participant_id)
        ).all()
        given = [(rid, pid, json.loads(v)) for rid, pid, v in records
                 if json.loads(v).get("started_at", {}).get("value") is not None]  # fmt: skip
        # One participant given another arm's preparation (a code of the list with the other arm), one a code no
        # list holds.
        swapped_rid, swapped_pid, swapped_values = given[0]
        other = next(code for code, arm in code_arm.items() if arm != allocated[swapped_pid][1])
        unknown_rid, unknown_pid, unknown_values = given[1]
        for rid, values, code in ((swapped_rid, swapped_values, other), (unknown_rid, unknown_values, UNKNOWN)):
            values["preparation_code"] = {**values["preparation_code"], "value": code}
            c.execute(update(form_records).where(form_records.c.id == rid).values(form_values=json.dumps(values)))
        # And one not given: the start of the infusion left unrecorded.
        untreated_rid, untreated_pid, untreated_values = given[2]
        del untreated_values["started_at"]
        c.execute(update(form_records).where(form_records.c.id == untreated_rid)
                  .values(form_values=json.dumps(untreated_values)))  # fmt: skip
    treated = {pid for _, pid, _ in given} - {untreated_pid}
    assert len(treated) < len(allocated), "the simulation leaves someone randomized and not treated"

    out = tmp_path / "unblinded"
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True), out)
    dm = _dm(out)
    for pid, (_, arm) in allocated.items():
        row = dm.loc[f"{study}-{pid}"]
        if pid == swapped_pid:
            expected = (arm, code_arm[other], "", "")
        elif pid == unknown_pid:
            expected = (arm, "", "UNPLANNED TREATMENT", f"Unplanned treatment: preparation code {UNKNOWN}: in no "
                        "allocation list")  # fmt: skip
        elif pid in treated:
            expected = (arm, arm, "", "")
        else:
            expected = (arm, "", "ASSIGNED, NOT TREATED", "")
        assert expected == (row.ARMCD, row.ACTARMCD, row.ARMNRS, row.ACTARMUD), pid
    assert dm.loc[f"{study}-{swapped_pid}"].ACTARMCD != dm.loc[f"{study}-{swapped_pid}"].ARMCD

    out = tmp_path / "blinded"
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), out)
    dm = _dm(out)
    for pid in allocated:
        row = dm.loc[f"{study}-{pid}"]
        expected = ("BLINDED", "BLINDED", "", "") if pid in treated else ("BLINDED", "", "ASSIGNED, NOT TREATED", "")
        assert expected == (row.ARMCD, row.ACTARMCD, row.ARMNRS, row.ACTARMUD), pid
    trial.engine.dispose()
