"""SDTM's exposure agrees with the analysis's own rule of "given" (SDTMIG 3.4 EX and DM): a participant has EX
records, RFXSTDTC and an actual arm exactly when the analysis plan's treatment ``given_field`` says the treatment
was given; anyone recorded as not given has no EX record, ACTARMCD/ACTARM null and ARMNRS ASSIGNED, NOT TREATED.

| given_field                        | EXSTDTC / RFXSTDTC                          | EXENDTC / EXDOSE                  |
|------------------------------------|---------------------------------------------|-----------------------------------|
| date-time (the first trial's)      | that moment, the site's local time          | the declared end and dose fields  |
| yes/no ("Infusion given")          | the treatment visit's date (no moment held) | the declared end and dose fields  |
| date-time, no end or dose declared | that moment, the site's local time          | empty: never inferred from others |

Expected rows are built here from the stored form records read as JSON, never with the exporter's or the
analysis's helpers, and compared with the XPT files read back with pyreadstat; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zoneinfo
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
from ruamel.yaml import YAML
from sqlalchemy import select

from tests.trialfixtures import FIRST_PROTOCOL, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.sdtm import SdtmExporter
from trialwright.protocol.loader import load_protocol_text
from trialwright.services.analysis import analysis_data
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.screening_tables import participants

_YAML = YAML(typ="safe")
SIMULATION = FIRST_PROTOCOL.with_name(f"{FIRST_PROTOCOL.stem}.simulation.yaml")


def _protocol(yes_no: bool, declared: bool = True) -> tuple[dict[str, Any], str, str]:
    """The first trial's protocol; with ``yes_no`` its administration form opens with a yes/no "Infusion given"
    field, which becomes the treatment's given field (the infusion start stays a date-time field after it), and
    the simulation answers it yes six times in ten. Returns the protocol as YAML data and text, and the simulation."""
    raw = _YAML.load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    sim = SIMULATION.read_text(encoding="utf-8")
    if yes_no:
        form = next(f for f in raw["forms"] if f["id"] == "administration")
        form["fields"].insert(
            0, {"id": "given", "label": "Infusion given", "type": "boolean", "translations": {"fa": "انفوزیون داده شد"}}
        )
        raw["analysis_plan"]["treatment"]["given_field"] = "given"
        sim = sim.replace(
            "  administration.volume:", "  administration.given: {bernoulli: 0.6}\n  administration.volume:"
        )
        assert "administration.given" in sim
    if not declared:  # the form still records the stop and the volume; the protocol names neither for SDTM
        for key in ("end_field", "dose_field"):
            del raw["analysis_plan"]["treatment"][key]
    buffer = io.StringIO()
    YAML().dump(raw, buffer)
    return raw, buffer.getvalue(), sim


def _xpt(folder: Path, code: str) -> pd.DataFrame:
    frame, _ = pyreadstat.read_xport(folder / "sdtm" / f"{code.lower()}.xpt")
    return frame


def _minute(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    local = moment.astimezone(zone)
    offset = local.utcoffset() or dt.timedelta()
    sign, total = ("+" if offset >= dt.timedelta() else "-"), abs(int(offset.total_seconds())) // 60
    return f"{local:%Y-%m-%dT%H:%M}{sign}{total // 60:02d}:{total % 60:02d}"


@pytest.mark.parametrize(
    ("yes_no", "declared"),
    [(False, True), (True, True), (False, False)],
    ids=["date-time given field", "yes/no given field", "no end or dose declared"],
)
def test_ex_and_dm_say_treated_exactly_when_the_given_field_says_given(
    database_url: str, tmp_path: Path, yes_no: bool, declared: bool
) -> None:
    raw, text, sim = _protocol(yes_no, declared)
    folder = tmp_path / "protocol"
    folder.mkdir()
    path = folder / FIRST_PROTOCOL.name
    path.write_text(text, encoding="utf-8")
    (folder / SIMULATION.name).write_text(sim, encoding="utf-8")
    trial = make_trial(database_url, load_protocol_text(text))
    simulate(trial.engine, path, 24, seed=11)
    zones = {s["code"]: zoneinfo.ZoneInfo(s["timezone"]) for s in raw["sites"]}
    t = raw["analysis_plan"]["treatment"]
    with trial.engine.connect() as c:
        found = c.execute(
            select(visit_records.c.participant_id, visit_records.c.visit_date, form_records.c.form_values)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .where(visit_records.c.visit_id == t["visit"], form_records.c.form_id == t["form"])
        ).all()
        site = dict(c.execute(select(participants.c.participant_id, participants.c.site)).all())
    study = raw["trial"]["ids"][0]["id"]
    expected: dict[str, tuple[str, str | None]] = {}  # USUBJID -> (EXSTDTC, EXENDTC)
    doses: dict[str, float | None] = {}  # USUBJID -> EXDOSE
    not_given = 0
    for pid, visit_date, values in found:
        body = json.loads(values)
        given = body.get(t["given_field"], {})
        if given.get("status", "value") != "value" or given.get("value") in (None, False):
            not_given += 1
            continue
        zone = zones[site[pid]]
        stop = body.get("stopped_at", {}).get("value") if declared else None
        end = _minute(dt.datetime.fromisoformat(stop), zone) if stop else None
        if yes_no:
            expected[f"{study}-{pid}"] = (visit_date.isoformat(), end)
        else:
            expected[f"{study}-{pid}"] = (_minute(dt.datetime.fromisoformat(given["value"]), zone), end)
        volume = body.get("volume", {}).get("value") if declared else None
        doses[f"{study}-{pid}"] = float(volume) if volume is not None else None
    if yes_no:
        assert not_given > 0 and expected, "the simulation records both given and not given"

    out = tmp_path / "sdtm"
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), out)
    ex = _xpt(out, "EX")
    got = {r.USUBJID: (r.EXSTDTC, r.EXENDTC or None) for r in ex[["USUBJID", "EXSTDTC", "EXENDTC"]].itertuples()}
    assert len(ex) == len(got)
    assert got == expected
    assert any(end for _, end in expected.values()) == declared  # the simulated stop is read only when declared
    dosed = {r.USUBJID: None if pd.isna(r.EXDOSE) else r.EXDOSE for r in ex.itertuples()}
    assert dosed == doses and any(d is not None for d in dosed.values()) == declared
    assert set(ex.EXDOSU) == ({"mL"} if declared else {""})

    dm = _xpt(out, "DM")
    randomized = dm[dm.ARMCD == "BLINDED"]
    arms = {r.USUBJID: (r.ACTARMCD, r.ACTARM, r.ARMNRS, r.RFXSTDTC) for r in randomized.itertuples()}
    treated_row = {u: ("BLINDED", "BLINDED", "", start) for u, (start, _) in expected.items()}
    untreated_row = ("", "", "ASSIGNED, NOT TREATED", "")
    assert arms == {u: treated_row.get(u, untreated_row) for u in arms}
    assert set(expected) <= set(arms)
    # SE: the element the first dose starts (the protocol's `starts_at: first_dose`) begins at EXSTDTC for each
    # treated subject, whatever the given field's type, and no untreated subject has it.
    dosed = {e["code"] if not e.get("arm") else "BLINDED" for e in raw["elements"] if e["starts_at"] == "first_dose"}
    se = _xpt(out, "SE")
    first_dose = {r.USUBJID: r.SESTDTC for r in se[se.ETCD.isin(dosed)].itertuples()}
    assert first_dose == {u: start for u, (start, _) in expected.items()}
    # The analysis on the same data counts the same participants as treated (the safety set).
    data = analysis_data(trial.engine, who(trial, Role.BLINDED_STATISTICIAN))
    treated = {f"{study}-{s.participant_id}" for s in data.subjects if s.treated}
    assert treated == set(expected)
    trial.engine.dispose()
