"""SDTM writes what the data record, no more and no less (SDTMIG 3.4 DM, EX, LB, VS).

RFXENDTC, the end of the last exposure, is what the data record of it, never the first dose by default:

| the treatment form                                        | RFXENDTC                          | README.txt       |
|-----------------------------------------------------------|-----------------------------------|------------------|
| records the infusion's stop (the first trial)             | the latest EXENDTC                | -                |
| records no end (the stop field taken out)                 | empty                             | names the subject |
| records no end, `single_administration: true` declared    | the latest EXSTDTC (given once)   | -                |

--ORRES is the result as collected, so a field declared with ``decimals: 1`` and stored as 4.0 is ``4.0``, not
``4``; --STRESC, the stored value in the standard unit, has the same places (a value converted from another unit
is stored rounded to them).

Expected values are built here from the stored form records read as JSON and the protocol read as plain YAML, and
compared with the XPT files read back with pyreadstat; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zoneinfo
from decimal import Decimal
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
from trialwright.services.exports import export_source
from trialwright.services.forms import save_form
from trialwright.services.simulation import simulate
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.screening_tables import participants

_YAML = YAML(typ="safe")
SIMULATION = FIRST_PROTOCOL.with_name(f"{FIRST_PROTOCOL.stem}.simulation.yaml")


def _xpt(folder: Path, code: str) -> pd.DataFrame:
    frame, _ = pyreadstat.read_xport(folder / "sdtm" / f"{code.lower()}.xpt")
    return frame


def _minute(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    local = moment.astimezone(zone)
    offset = local.utcoffset() or dt.timedelta()
    sign, total = ("+" if offset >= dt.timedelta() else "-"), abs(int(offset.total_seconds())) // 60
    return f"{local:%Y-%m-%dT%H:%M}{sign}{total // 60:02d}:{total % 60:02d}"


def _trial(database_url: str, tmp_path: Path, raw: dict[str, Any], screened: int, seed: int):  # type: ignore[no-untyped-def]
    buffer = io.StringIO()
    YAML().dump(raw, buffer)
    folder = tmp_path / "protocol"
    folder.mkdir()
    path = folder / FIRST_PROTOCOL.name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    (folder / SIMULATION.name).write_text(SIMULATION.read_text(encoding="utf-8"), encoding="utf-8")
    trial = make_trial(database_url, load_protocol_text(buffer.getvalue()))
    simulate(trial.engine, path, screened, seed=seed)
    return trial


def _stored(trial: Any, form_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(participant id, visit id, stored values as JSON) of every record of a form."""
    with trial.engine.connect() as c:
        rows = c.execute(
            select(visit_records.c.participant_id, visit_records.c.visit_id, form_records.c.form_values)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .where(form_records.c.form_id == form_id)
        ).all()
    return [(pid, visit, json.loads(values)) for pid, visit, values in rows]


@pytest.mark.parametrize("case", ["end recorded", "end not recorded", "single administration"])
def test_rfxendtc_is_the_recorded_end_of_the_last_exposure_never_the_first_dose(
    database_url: str, tmp_path: Path, case: str
) -> None:
    raw = _YAML.load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    if case != "end recorded":  # the treatment form has no stop field: the data do not record the end
        form = next(f for f in raw["forms"] if f["id"] == "administration")
        form["fields"] = [f for f in form["fields"] if f["id"] != "stopped_at"]
        del raw["analysis_plan"]["treatment"]["end_field"]
    if case == "single administration":
        raw["analysis_plan"]["treatment"]["single_administration"] = True
    trial = _trial(database_url, tmp_path, raw, 12, 11)
    zones = {s["code"]: zoneinfo.ZoneInfo(s["timezone"]) for s in raw["sites"]}
    with trial.engine.connect() as c:
        site = dict(c.execute(select(participants.c.participant_id, participants.c.site)).all())
    t = raw["analysis_plan"]["treatment"]
    study = raw["trial"]["ids"][0]["id"]
    expected: dict[str, str] = {}  # USUBJID -> RFXENDTC, for each treated subject
    for pid, visit, body in _stored(trial, t["form"]):
        start = body.get(t["given_field"], {})
        if visit != t["visit"] or start.get("status", "value") != "value" or not start.get("value"):
            continue
        stop = body.get("stopped_at", {}).get("value")
        zone = zones[site[pid]]
        if case == "end recorded":
            expected[f"{study}-{pid}"] = _minute(dt.datetime.fromisoformat(stop), zone) if stop else ""
        elif case == "single administration":
            expected[f"{study}-{pid}"] = _minute(dt.datetime.fromisoformat(start["value"]), zone)
        else:
            expected[f"{study}-{pid}"] = ""
    assert expected, "the simulation treats someone"
    if case == "end recorded":
        assert any(expected.values()), "the simulation records a stop"

    out = tmp_path / "sdtm"
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), out)
    dm = _xpt(out, "DM")
    got = {r.USUBJID: r.RFXENDTC for r in dm.itertuples() if r.USUBJID in expected}
    assert got == expected
    # Never the first dose by default: without a recorded end (and no single administration), no RFXENDTC at all.
    starts = dict(zip(dm.USUBJID, dm.RFXSTDTC, strict=True))
    if case == "end not recorded":
        assert all(starts[u] for u in expected) and not any(got.values())
    readme = (out / "README.txt").read_text(encoding="utf-8")
    unrecorded = sorted(u for u, end in expected.items() if not end)
    for usubjid in unrecorded:
        assert f"DM {usubjid}: RFXENDTC empty" in readme
    assert readme.count(": RFXENDTC empty") == len(unrecorded)
    trial.engine.dispose()


def test_orres_and_stresc_keep_the_declared_decimals_of_the_stored_value(database_url: str, tmp_path: Path) -> None:
    raw = _YAML.load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    trial = _trial(database_url, tmp_path, raw, 8, 3)
    # A whole number in a field declared with decimals, saved as a number (as the API and an import send it):
    # weight 72.0 (VS, decimals 1) and CRP 4.0 (LB, decimals 2) for the first participant with those records.
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    for form_id, field_id, value in (("demographics", "weight", 72.0), ("labs", "crp", 4.0)):
        pid, visit, _ = sorted(_stored(trial, form_id))[0]
        save_form(trial.engine, coordinator, pid, visit, form_id, {field_id: {"value": value}},
                  reason="Corrected from the source document")  # fmt: skip

    study = raw["trial"]["ids"][0]["id"]
    visit_name = {v["id"]: v["name"] for v in raw["visits"]}
    expected: dict[tuple[str, str, str, str], tuple[str, str]] = {}  # (domain, USUBJID, VISIT, TESTCD) -> texts
    whole = 0
    for form in raw["forms"]:
        tested = [f for f in form["fields"] if f.get("codes", {}).get("sdtm") and f.get("decimals") is not None
                  and f["type"] == "decimal"]  # fmt: skip
        if not tested:
            continue
        for pid, visit, body in _stored(trial, form["id"]):
            for f in tested:
                stored = body.get(f["id"])
                if not stored or stored.get("status", "value") != "value":
                    continue
                places = f["decimals"]
                value = stored["value"]
                standard = f"{Decimal(repr(float(value))):.{places}f}"
                entered = stored.get("entered", value)
                if stored.get("unit", f.get("unit")) == f.get("unit"):
                    original = f"{Decimal(str(entered)):.{places}f}"
                else:  # typed in another unit: no declared places; written as typed
                    original = str(entered) if isinstance(entered, str) else f"{float(entered)!r}".removesuffix(".0")
                whole += float(value).is_integer() and places > 0
                sdtm = f["codes"]["sdtm"]
                expected[(sdtm["domain"], f"{study}-{pid}", visit_name[visit], sdtm["testcd"])] = (original, standard)
    assert whole >= 2, "whole numbers in fields with decimals are among the results"
    assert {k[0] for k in expected} == {"LB", "VS"}

    out = tmp_path / "sdtm"
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), out)
    got: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    for domain in ("LB", "VS"):
        frame = _xpt(out, domain)
        for r in frame.itertuples():
            key = (domain, r.USUBJID, r.VISIT, getattr(r, f"{domain}TESTCD"))
            if key in expected:
                got[key] = (getattr(r, f"{domain}ORRES"), getattr(r, f"{domain}STRESC"))
    assert got == expected
    trial.engine.dispose()
