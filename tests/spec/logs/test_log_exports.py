"""Log entries in the exports (both databases): each log is its own table in the tabular exports (one row per entry,
removed ones included with the reason); SDTM CM and MH take each variable from the field the protocol maps to it,
leave removed entries out, write ONGOING with the declared time point, and count study days from RFSTDTC (checked
here by hand from DM's RFSTDTC: no day 0).

| entry                                 | tabular (logs/conmeds, logs/medical_history) | SDTM                          |
|---------------------------------------|----------------------------------------------|-------------------------------|
| Enoxaparin 40 mg SC QD, ongoing       | row 1, active                                | CM, CMENRTPT ONGOING          |
| Paracetamol 1 g oral, stopped         | row 2, active                                | CM, CMENDTC, CMENDY           |
| Aspirin, removed                      | row 3, removed with its reason               | left out, counted in README   |
| Type 2 diabetes, ongoing              | row 1                                        | MH, MHENRTPT ONGOING          |
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pyreadstat
import xmlschema

from tests.spec.forms.conftest import TEHRAN, TODAY
from tests.spec.logs.test_log_entries import HEPARIN, STARTED
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.exports import run_export
from trialwright.services.logs import add_entry, remove_entry

PARACETAMOL_FROM = (TODAY - dt.timedelta(days=5)).isoformat()
PARACETAMOL_TO = (TODAY - dt.timedelta(days=3)).isoformat()


def _entries(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    add_entry(trial.engine, coordinator, pid, "conmeds", {
        "medication": "Paracetamol", "dose": {"value": 1, "unit": None}, "dose_unit": "g", "route": "ORAL",
        "started_on": PARACETAMOL_FROM, "stopped_on": PARACETAMOL_TO, "ongoing": False,
    })  # fmt: skip
    add_entry(trial.engine, coordinator, pid, "conmeds", {"medication": "Aspirin", "started_on": STARTED,
                                                          "ongoing": True})  # fmt: skip
    remove_entry(trial.engine, coordinator, pid, "conmeds", 3, reason="another patient's chart")
    add_entry(trial.engine, coordinator, pid, "medical_history", {"condition": "Type 2 diabetes", "ongoing": True})


def _study_day(on: str, reference: str) -> int:
    days = (dt.date.fromisoformat(on[:10]) - dt.date.fromisoformat(reference[:10])).days
    return days + 1 if days >= 0 else days


def test_each_log_is_its_own_table_with_removed_entries_kept(trial: Trial, pid: str, tmp_path: Path) -> None:
    _entries(trial, pid)
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "csv", tmp_path / "out")
    with (tmp_path / "out" / "logs" / "conmeds.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["participant_id"], r["sequence"], r["medication"], r["entry_state"], r["removed_reason"])
            for r in rows] == [(pid, "1", "Enoxaparin", "active", ""), (pid, "2", "Paracetamol", "active", ""),
                               (pid, "3", "Aspirin", "removed", "another patient's chart")]  # fmt: skip
    assert (rows[0]["dose"], rows[0]["route"], rows[0]["started_on"], rows[0]["ongoing"]) == (
        "40", "SUBCUTANEOUS", STARTED, "1")
    assert rows[0]["atc_code"] == ""  # not coded
    with (tmp_path / "out" / "logs" / "medical_history.csv").open(encoding="utf-8") as f:
        (history,) = csv.DictReader(f)
    assert (history["condition"], history["ongoing"], history["diagnosed_on"]) == ("Type 2 diabetes", "1", "")
    readme = (tmp_path / "out" / "README.txt").read_text(encoding="utf-8")
    assert "logs/conmeds.csv" in readme and "logs/medical_history.csv" in readme


def test_sdtm_cm_and_mh_follow_the_protocol_mapping(trial: Trial, pid: str, tmp_path: Path) -> None:
    _entries(trial, pid)
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "sdtm", tmp_path / "out")
    folder = tmp_path / "out" / "sdtm"
    dm, _ = pyreadstat.read_xport(folder / "dm.xpt")
    (reference,) = dm["RFSTDTC"]
    cm, meta = pyreadstat.read_xport(folder / "cm.xpt")
    assert meta.table_name == "CM"
    rows = cm.to_dict("records")
    assert [(r["CMSEQ"], r["CMSPID"], r["CMTRT"]) for r in rows] == [(1, "1", "Enoxaparin"), (2, "2", "Paracetamol")]
    heparin, paracetamol = rows
    assert {k: heparin[k] for k in ("STUDYID", "DOMAIN", "USUBJID", "CMINDC", "CMDOSE", "CMDOSU", "CMDOSFRQ",
                                    "CMROUTE", "CMSTDTC", "CMENDTC", "CMENRTPT", "CMENTPT", "CMDECOD")} == {
        "STUDYID": "IRCT20190101042197N2", "DOMAIN": "CM", "USUBJID": f"IRCT20190101042197N2-{pid}",
        "CMINDC": "thromboprophylaxis", "CMDOSE": 40.0, "CMDOSU": "mg", "CMDOSFRQ": "QD", "CMROUTE": "SUBCUTANEOUS",
        "CMSTDTC": STARTED, "CMENDTC": "", "CMENRTPT": "ONGOING", "CMENTPT": "END OF STUDY", "CMDECOD": "",
    }  # fmt: skip
    assert (paracetamol["CMDOSE"], paracetamol["CMDOSU"], paracetamol["CMENDTC"], paracetamol["CMENRTPT"]) == (
        1.0, "g", PARACETAMOL_TO, "")
    assert heparin["CMSTDY"] == _study_day(STARTED, reference)
    assert (paracetamol["CMSTDY"], paracetamol["CMENDY"]) == (_study_day(PARACETAMOL_FROM, reference),
                                                              _study_day(PARACETAMOL_TO, reference))  # fmt: skip
    mh, _ = pyreadstat.read_xport(folder / "mh.xpt")
    (history,) = mh.to_dict("records")
    assert (history["MHSEQ"], history["MHTERM"], history["MHSTDTC"], history["MHENRTPT"], history["MHENTPT"]) == (
        1, "Type 2 diabetes", "", "ONGOING", "END OF STUDY")
    readme = (tmp_path / "out" / "README.txt").read_text(encoding="utf-8")
    assert "CM: 1 removed entry of logs/conmeds left out" in readme
    assert "CM: 2 medication(s) not coded to ATC (CMDECOD, CMCLAS empty)." in readme


def test_a_start_recorded_with_its_time_is_written_as_the_sites_local_time(database_url: str, tmp_path: Path) -> None:
    """A log date-time field mapped to CMSTDTC (stored in UTC) is written as SDTM writes moments: the site's local
    time with its offset (it was left empty before)."""
    from tests.spec.forms.conftest import enrolled_ten_days_ago
    from tests.spec.protocol.conftest import mutated_text
    from trialwright.protocol import load_protocol_text

    def timed(document: Any) -> None:
        (log,) = [x for x in document["logs"] if x["id"] == "conmeds"]
        started = next(f for f in log["fields"] if f["id"] == "started_on")
        started["type"] = "datetime"
        stopped = next(f for f in log["fields"] if f["id"] == "stopped_on")
        stopped.pop("not_before", None)

    trial = make_trial(database_url, load_protocol_text(mutated_text(timed)))
    try:
        pid = enrolled_ten_days_ago(trial)
        at = dt.datetime.combine(TODAY - dt.timedelta(days=2), dt.time(8, 15), TEHRAN)
        add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", {
            **HEPARIN, "started_on": at.isoformat(),
        })  # fmt: skip
        run_export(trial.engine, who(trial, Role.DATA_MANAGER), "sdtm", tmp_path / "out")
        cm, _ = pyreadstat.read_xport(tmp_path / "out" / "sdtm" / "cm.xpt")
        (row,) = cm.to_dict("records")
        assert row["CMSTDTC"] == at.isoformat(timespec="minutes")  # e.g. 2026-12-03T08:15+03:30
    finally:
        trial.engine.dispose()


def test_define_names_the_shipped_ct_package_and_each_term_s_nci_code(trial: Trial, pid: str, tmp_path: Path) -> None:
    """Every CDISC code list in define.xml, the CM lists whose terms the protocol declares (``logs[].sdtm.terminology``)
    included, names the one CT standard, SDTM CT 2025-03-28, the package trialwright ships; each item that is a term
    of the code list carries the term's NCI code (``Alias nci:ExtCodeID``) and each that is not is a sponsor
    extension (``def:ExtendedValue="Yes"``), both read here from NCI's file as shipped (``csv``, not the export's
    reader). Valid against Define-XML 2.1."""
    import xml.etree.ElementTree as ET

    from tests.spec.exports.test_define_xml import CDISC_DEFINE, NS
    from trialwright.protocol import cdisc_ct

    _entries(trial, pid)
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "sdtm", tmp_path / "out")
    define = tmp_path / "out" / "sdtm" / "define.xml"
    xmlschema.XMLSchema(str(CDISC_DEFINE / "cdisc-define-2.1" / "define2-1-0.xsd")).validate(str(define))
    meta = ET.parse(define).getroot().find("odm:Study/odm:MetaDataVersion", NS)  # noqa: S314 - our own file
    assert meta is not None
    standards = {s.get("OID"): (s.get("Type"), s.get("Version"))
                 for s in meta.findall("def:Standards/def:Standard", NS)}  # fmt: skip
    assert sorted(v for t, v in standards.values() if t == "CT") == ["2025-03-28"]
    shipped = Path(cdisc_ct.__file__).parent / "data" / "SDTM_CT_2025-03-28.tsv"
    with shipped.open(encoding="utf-8", newline="") as f:
        terms = {(r["Codelist Code"], r["CDISC Submission Value"]): r["Code"]
                 for r in csv.DictReader(f, delimiter="\t") if r["Codelist Code"]}  # fmt: skip
    of, ext = f"{{{NS['def']}}}StandardOID", f"{{{NS['def']}}}ExtendedValue"
    checked = 0
    for c in meta.findall("odm:CodeList", NS):
        if c.get(of) is None:
            continue
        assert standards[c.get(of)] == ("CT", "2025-03-28")
        (alias,) = [a.get("Name") for a in c.findall("odm:Alias", NS)]
        for item in [*c.findall("odm:CodeListItem", NS), *c.findall("odm:EnumeratedItem", NS)]:
            value, codes = item.get("CodedValue"), [a.get("Name") for a in item.findall("odm:Alias", NS)]
            code = terms.get((alias, value))
            assert codes == ([code] if code else []), (c.get("OID"), value)
            assert (item.get(ext) == "Yes") == (code is None), (c.get("OID"), value)
            checked += 1
    assert checked > 40
    # every value the XPT files hold in a variable with a code list is one of its items
    items = {c.get("OID"): {i.get("CodedValue") for i in [*c.findall("odm:CodeListItem", NS),
                                                           *c.findall("odm:EnumeratedItem", NS)]}
             for c in meta.findall("odm:CodeList", NS)}  # fmt: skip
    listed = {d.get("OID"): d.find("odm:CodeListRef", NS) for d in meta.findall("odm:ItemDef", NS)}
    seen = 0
    for group in meta.findall("odm:ItemGroupDef", NS):
        frame, _ = pyreadstat.read_xport(tmp_path / "out" / "sdtm" / f"{group.get('Name').lower()}.xpt")
        for ref in group.findall("odm:ItemRef", NS):
            codelist = listed[ref.get("ItemOID")]
            if codelist is None:
                continue
            name = ref.get("ItemOID").rsplit(".", 1)[1]
            values = {v for v in frame[name] if isinstance(v, str) and v != ""}
            assert values <= items[codelist.get("CodeListOID")], (group.get("Name"), name, values)
            seen += len(values)
    assert seen > 20
    route = next(c for c in meta.findall("odm:CodeList", NS) if c.get("OID") == "CL.CMROUTE")
    assert {i.get("CodedValue") for i in route.findall("odm:EnumeratedItem", NS)} >= {"ORAL", "INTRAVENOUS"}
