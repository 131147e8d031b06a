"""The SDTM export follows SDTMIG 3.4: each rule below is computed here, independently of the export code, from the
XPT files read back with pyreadstat, the protocol file read as plain YAML and the trial's stored records.

| rule (SDTMIG 3.4)                                 | checked                                        | CORE-000...     |
|---------------------------------------------------|------------------------------------------------|-----------------|
| DM: COUNTRY required, ISO 3166-1 alpha-3          | each COUNTRY is the country its site declares  | none            |
| DM assumptions: ARMCD/ARM null only with ARMNRS   | ARMNRS iff an arm is null; blinded: BLINDED    | 045, 046, 119,  |
|                                                   |                                                | 120, 121, 223,  |
|                                                   |                                                | 224             |
| DM: DTHFL = Y with DTHDTC                         | DTHFL Y for a fatal AE, a DS DEATH, a DTHDTC   | 006, 007, 034,  |
|                                                   |                                                | 252, 253, 254   |
| 4.4 dates: ISO 8601, local time as collected      | every --DTC a date or a date-time with offset  | none            |
| 4.4.4 study day: --DY from RFSTDTC, no day 0      | every --DY recomputed from --DTC and RFSTDTC   | 529, 552, 553,  |
|                                                   |                                                | 138, 139, 354   |
| EPOCH                                             | a visit's records carry its protocol epoch;    | 271             |
|                                                   | every EPOCH is one of TA's                     |                 |
| --LOBXFL: last non-missing result before RFXSTDTC | recomputed per subject and test; one Y at most | 083, 105, 170   |
| AE: death is an outcome, not a term               | no AETERM names death; FATAL has AESDTH Y      | 126             |
| no empty dataset; DOMAIN names the dataset        | CM, MH without records not written, README     | 598             |

Run on SQLite and PostgreSQL. Each check names the CDISC CORE rules whose published text it implements
(``@core``, ids and texts in ``core_rules.py``) or says that none does (``@no_core``); ``test_core_rule_ids.py``
holds every check to one of the two.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from ruamel.yaml import YAML

from tests.spec.exports.core_rules import core, no_core
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.base import ExportSource
from trialwright.exports.sdtm import SdtmExporter, SdtmExportError
from trialwright.exports.sdtm_findings import finding_record
from trialwright.protocol import load_protocol
from trialwright.protocol.base import Range
from trialwright.protocol.checks import cross_check
from trialwright.protocol.loader import ProtocolError, load_protocol_text
from trialwright.services.exports import ExportError, export_source, run_export
from trialwright.services.forms import list_queries, save_form
from trialwright.services.safety import report_event
from trialwright.services.simulation import simulate
from trialwright.services.trial import current_protocol
from trialwright.web.i18n import translations
from trialwright.web.query_words import query_words

RAW = YAML(typ="safe").load(Path(FIRST_PROTOCOL).read_text(encoding="utf-8"))
COUNTRY = {s["code"]: s["country"] for s in RAW["sites"]}
ZONE = {s["code"]: zoneinfo.ZoneInfo(s["timezone"]) for s in RAW["sites"]}
EPOCH_OF_VISIT = {v["name"]: v["epoch"] for v in RAW["visits"]}
ARM_TERMS = {t for a in RAW["arms"] for t in (a["code"], a["name"])}
ARMNRS = {"NOT ASSIGNED", "ASSIGNED, NOT TREATED", "SCREEN FAILURE", "UNPLANNED TREATMENT", "NOT TREATED"}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}[+-]\d{2}:\d{2}$")
DEATH_WORDS = re.compile(r"^\W*(death|died|dead|fatal|deceased)\b", re.IGNORECASE)
DTC_DY = {
    "DS": {"DSSTDTC": "DSSTDY"},
    "EX": {"EXSTDTC": "EXSTDY", "EXENDTC": "EXENDY"},
    "AE": {"AESTDTC": "AESTDY", "AEENDTC": "AEENDY"},
    "SV": {"SVSTDTC": "SVSTDY", "SVENDTC": "SVENDY"},
    "LB": {"LBDTC": "LBDY"},
    "VS": {"VSDTC": "VSDY"},
}


@dataclasses.dataclass(frozen=True)
class Exported:
    trial: Trial
    blinded: Path
    with_arms: Path
    fatal: str  # the USUBJID of the participant given a fatal adverse event
    fatal_id: str  # their participant id
    predose: str  # the USUBJID whose baseline labs were sampled before the infusion


@pytest.fixture(scope="module")
def exported(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """A simulated trial of 10 screened; one RAZ participant's baseline labs sampled half an hour before the
    infusion (so a baseline flag is due) and another RAZ participant dying of respiratory failure."""
    trial = make_trial(module_database_url)
    simulate(trial.engine, FIRST_PROTOCOL, 10, seed=3)
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    given = {r.participant_id: r.values["started_at"]["value"] for r in source.forms("administration")
             if r.site == "RAZ" and r.values.get("started_at")}  # fmt: skip
    first, second = sorted(given)[:2]
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    sampled = (dt.datetime.fromisoformat(given[first]) - dt.timedelta(minutes=30)).isoformat()
    save_form(trial.engine, coordinator, first, "baseline", "labs",
              {"sampled_at": {"value": sampled}, "tnf_alpha": {"below_lloq": 1.5}, "il6": {"above_uloq": 5000}},
              reason="Sampling time and censored results from the laboratory report")  # fmt: skip
    day = dt.datetime.fromisoformat(given[second]).astimezone(ZONE["RAZ"]).date() + dt.timedelta(days=2)
    unrelated = next(c["code"] for c in RAW["safety"]["causality"] if not c["related"])
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), second, {
        "term": "Respiratory failure", "onset": day.isoformat(), "grade": 5, "serious": True,
        "seriousness_criteria": ["death"], "causality": unrelated, "action_taken": "not_applicable",
        "outcome": "fatal", "death_date": day.isoformat(), "death_cause": "Respiratory failure",
        "aware_at": dt.datetime.combine(day, dt.time(12), ZONE["RAZ"]).isoformat()})  # fmt: skip
    blinded, with_arms = tmp_path_factory.mktemp("sdtmig-blinded"), tmp_path_factory.mktemp("sdtmig-arms")
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), blinded)
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True),
                         with_arms)  # fmt: skip
    yield Exported(trial, blinded, with_arms, f"{source.trial_id}-{second}", second, f"{source.trial_id}-{first}")
    trial.engine.dispose()


def xpt(folder: Path, code: str) -> pd.DataFrame:
    frame, meta = pyreadstat.read_xport(folder / "sdtm" / f"{code.lower()}.xpt")
    assert meta.table_name == code
    return frame


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@no_core(
    "no published CORE rule checks COUNTRY's value; the generic 'Required variable is null' (CORE-000356) "
    "needs the CDISC Library's metadata"
)
def test_dm_country_is_the_site_s_declared_iso_3166_alpha_3_code(exported: Exported) -> None:
    """SDTMIG 3.4 DM: COUNTRY is required, ISO 3166-1 alpha-3, here from the protocol's sites[].country."""
    dm = xpt(exported.blinded, "DM")
    assert len(dm) > 0 and dm.USUBJID.is_unique
    assert all(re.fullmatch("[A-Z]{3}", c) for c in dm.COUNTRY)
    assert dict(zip(dm.SITEID, dm.COUNTRY, strict=True)).items() <= COUNTRY.items()
    assert set(dm.COUNTRY) == {"IRN"}


@core("CORE-000045", "CORE-000046", "CORE-000119", "CORE-000120", "CORE-000121", "CORE-000223", "CORE-000224")
def test_dm_arms_are_null_only_with_a_reason_and_a_blinded_extract_withholds_every_arm(exported: Exported) -> None:
    """SDTMIG 3.4 DM assumptions: ARMCD/ARM (and ACTARMCD/ACTARM) are null only when ARMNRS gives why (not
    assigned, assigned but not treated, ...). A blinded extract writes BLINDED where an arm is assigned: the
    same reasons, the same nulls as the extract with arms, and no arm code or name."""
    blinded, with_arms = xpt(exported.blinded, "DM"), xpt(exported.with_arms, "DM")
    for dm in (blinded, with_arms):
        null = (dm.ARMCD == "") | (dm.ACTARMCD == "")
        assert ((dm.ARMNRS != "") == null).all()
        assert set(dm.ARMNRS) - {""} <= ARMNRS
        assert ((dm.ARMCD == "") == (dm.ARM == "")).all() and ((dm.ACTARMCD == "") == (dm.ACTARM == "")).all()
        assert (dm.ACTARMUD == "").all()
    assert set(with_arms.ARMCD) - {""} <= ARM_TERMS and set(with_arms.ARMCD) - {""}
    merged = blinded.merge(with_arms, on="USUBJID", suffixes=("_b", "_u"))
    assert len(merged) == len(blinded) == len(with_arms)
    assert (merged.ARMNRS_b == merged.ARMNRS_u).all()
    for name in ("ARMCD", "ARM", "ACTARMCD", "ACTARM"):
        assert (merged[f"{name}_b"] == merged[f"{name}_u"].where(merged[f"{name}_u"] == "", "BLINDED")).all()
        assert not set(blinded[name]) & ARM_TERMS


@core("CORE-000598")
def test_a_domain_without_records_is_not_written_and_the_readme_names_it(exported: Exported, tmp_path: Path) -> None:
    """CG0413: a dataset's name is its DOMAIN value, which a dataset without records does not hold; SDTM submits
    no empty dataset. The simulated first trial has no entry in its medication and history logs (CM, MH), so CM
    and MH are not written, neither as XPT and CSV nor in define.xml, define.csv or the Dataset-JSON export, and
    each README.txt names them; every dataset written has its name in DOMAIN."""
    from trialwright.exports.dataset_json import DatasetJsonExporter

    source = export_source(exported.trial.engine, who(exported.trial, Role.DATA_MANAGER))
    assert {log["sdtm"]["domain"] for log in RAW["logs"]} == {"CM", "MH"} and not list(source.logs())
    for folder in (exported.blinded, exported.with_arms):
        files = {f.name for f in (folder / "sdtm").iterdir()}
        assert not {"cm.xpt", "cm.csv", "mh.xpt", "mh.csv"} & files and "dm.xpt" in files
        for path in (folder / "sdtm").glob("*.xpt"):
            frame, meta = pyreadstat.read_xport(path)
            assert len(frame) > 0, path.name
            if "DOMAIN" in frame.columns:
                assert set(frame.DOMAIN) == {meta.table_name}
        define = (folder / "sdtm" / "define.xml").read_text(encoding="utf-8")
        assert 'Name="CM"' not in define and 'Name="MH"' not in define and 'Name="DM"' in define
        assert not {"CM", "MH"} & set(pd.read_csv(folder / "sdtm" / "define.csv").dataset)
        readme = (folder / "README.txt").read_text(encoding="utf-8")
        assert re.search(r"Not written, no records \(.*\): CM, MH\.", readme)
    DatasetJsonExporter().write(source, tmp_path)
    assert not {"cm.json", "mh.json"} & {f.name for f in (tmp_path / "sdtm").iterdir()}
    assert re.search(r"Not written, no records \(.*\): CM, MH\.", (tmp_path / "README.txt").read_text("utf-8"))


@no_core("the published ISO 8601 rule for --DTC (CORE-000547) is SENDIG's; none for SDTMIG 3.4")
def test_every_date_is_iso_8601_in_the_site_s_local_time_as_collected(exported: Exported) -> None:
    """SDTMIG 3.4 4.4 (ISO 8601): a date stays a date; a date-time is the site's local clock time with its UTC
    offset (the offset the site's time zone had at that instant), and is the moment stored."""
    site = dict(zip(xpt(exported.blinded, "DM").USUBJID, xpt(exported.blinded, "DM").SITEID, strict=True))
    timed = 0
    for code in ("DM", "DS", "EX", "AE", "SV", "LB", "VS"):
        frame = xpt(exported.blinded, code)
        for name in (c for c in frame.columns if c.endswith("DTC")):
            for usubjid, value in zip(frame.USUBJID, frame[name], strict=True):
                assert value == "" or DATE.match(value) or DATETIME.match(value), (code, name, value)
                if DATETIME.match(value):
                    moment = local(value)
                    assert moment.utcoffset() == moment.astimezone(ZONE[site[usubjid]]).utcoffset(), value
                    timed += 1
    assert timed > 0
    source = export_source(exported.trial.engine, who(exported.trial, Role.DATA_MANAGER))
    stored = {f"{source.trial_id}-{r.participant_id}": dt.datetime.fromisoformat(r.values["started_at"]["value"])
              for r in source.forms("administration") if r.values.get("started_at")}  # fmt: skip
    ex = xpt(exported.blinded, "EX")
    assert len(ex) == len(stored)
    for usubjid, value in zip(ex.USUBJID, ex.EXSTDTC, strict=True):
        assert local(value) == stored[usubjid].replace(second=0, microsecond=0)
        assert value[11:16] == stored[usubjid].astimezone(ZONE[site[usubjid]]).strftime("%H:%M")


@core("CORE-000529", "CORE-000552", "CORE-000553", "CORE-000354", "CORE-000138", "CORE-000139")
def test_study_days_count_from_rfstdtc_with_no_day_zero(exported: Exported) -> None:
    """SDTMIG 3.4 4.4.4: --DY = date - RFSTDTC's date + 1 on or after it, date - RFSTDTC's date before it."""
    dm = xpt(exported.blinded, "DM")
    start = {u: dt.date.fromisoformat(s[:10]) for u, s in zip(dm.USUBJID, dm.RFSTDTC, strict=True) if s}
    checked = 0
    for code, pairs in DTC_DY.items():
        frame = xpt(exported.blinded, code)
        for dtc, dy in pairs.items():
            for usubjid, value, day in zip(frame.USUBJID, frame[dtc], frame[dy], strict=True):
                if len(value) < 10 or usubjid not in start:
                    assert pd.isna(day), (code, dy, value)
                    continue
                diff = (dt.date.fromisoformat(value[:10]) - start[usubjid]).days
                assert day == (diff + 1 if diff >= 0 else diff) and day != 0, (code, dy, value, day)
                checked += 1
    assert checked > 100


@core("CORE-000271")
def test_records_at_a_visit_carry_the_epoch_its_protocol_visit_declares(exported: Exported) -> None:
    """EPOCH (SDTMIG 3.4, CDISC EPOCH C99079): the protocol's visits[].epoch; an event's epoch, where the dates
    can tell it, is one the protocol declares; every EPOCH written is one of TA's."""
    declared = set(EPOCH_OF_VISIT.values())
    planned = set(xpt(exported.blinded, "TA").EPOCH)
    for code in ("DS", "EX", "AE", "SV", "LB", "VS", "SE"):
        assert set(xpt(exported.blinded, code).EPOCH) - {""} <= planned, code
    for code in ("EX", "SV", "LB", "VS"):
        frame = xpt(exported.blinded, code)
        assert len(frame) > 0 and (frame.VISIT.map(EPOCH_OF_VISIT) == frame.EPOCH).all(), code
    for code in ("DS", "AE"):
        assert set(xpt(exported.blinded, code).EPOCH) - {""} <= declared
    assert set(xpt(exported.blinded, "EX").EPOCH) == {"TREATMENT"}


@core("CORE-000083", "CORE-000105", "CORE-000170")
def test_the_last_result_before_the_first_exposure_is_flagged(exported: Exported) -> None:
    """--LOBXFL (SDTMIG 3.4): Y on each subject's last non-missing result of a test taken before RFXSTDTC;
    a result known only by its date on the day of the first exposure cannot be ordered and flags nothing."""
    dm = xpt(exported.blinded, "DM")
    exposure = {u: local(x) for u, x in zip(dm.USUBJID, dm.RFXSTDTC, strict=True) if DATETIME.match(x)}
    for code in ("LB", "VS"):
        frame = xpt(exported.blinded, code)
        expected: set[int] = set()
        for (usubjid, _), group in frame.groupby(["USUBJID", f"{code}TESTCD"]):
            if usubjid not in exposure:
                continue
            first = exposure[usubjid]
            done = group[group[f"{code}ORRES"] != ""]
            undated = done[done[f"{code}DTC"].str.len() == 10]
            if (undated[f"{code}DTC"].map(dt.date.fromisoformat) >= first.date()).any():
                continue
            before = done[done[f"{code}DTC"].map(lambda v, t=first: DATETIME.match(v) is not None and local(v) < t)]
            if len(before):
                expected.add(before[f"{code}DTC"].map(local).idxmax())
        flagged = set(frame.index[frame[f"{code}LOBXFL"] == "Y"])
        assert flagged == expected, code
        assert set(frame[f"{code}LOBXFL"]) <= {"Y", ""}
        flagged_rows = frame[frame[f"{code}LOBXFL"] == "Y"]
        assert (flagged_rows[f"{code}ORRES"] != "").all() and (flagged_rows[f"{code}STRESC"] != "").all()
        assert not frame[frame[f"{code}LOBXFL"] == "Y"].duplicated(["USUBJID", f"{code}TESTCD"]).any()
    lb = xpt(exported.blinded, "LB")
    mine = lb[(exported.predose == lb.USUBJID) & (lb.LBLOBXFL == "Y")]
    assert len(mine) > 0 and set(mine.VISIT) == {"Baseline (before infusion)"}


@core("CORE-000204")
def test_sv_has_a_record_per_visit_the_subject_s_forms_date(exported: Exported) -> None:
    """SDTMIG 3.4 SV: one record per subject and visit, VISITNUM in schedule order, SVSTDTC/SVENDTC the first
    and last date the visit's forms record (from every form, read here from the stored records) on each visit that
    occurred (SVOCCUR Y)."""
    source = export_source(exported.trial.engine, who(exported.trial, Role.DATA_MANAGER))
    dates: dict[tuple[str, str], list[dt.date]] = {}
    for r in source.forms():
        if r.visit_date is not None:
            dates.setdefault((f"{source.trial_id}-{r.participant_id}", r.visit_id), []).append(r.visit_date)
    number = {v["id"]: float(i + 1) for i, v in enumerate(RAW["visits"])}
    sv = xpt(exported.blinded, "SV")
    occurred = sv[sv.SVOCCUR == "Y"]  # the others are visits recorded as missed: SVOCCUR N, no dates
    got = {(u, n): (s, e) for u, n, s, e in zip(occurred.USUBJID, occurred.VISITNUM, occurred.SVSTDTC,
                                                 occurred.SVENDTC, strict=True)}  # fmt: skip
    assert got == {(u, number[v]): (min(d).isoformat(), max(d).isoformat()) for (u, v), d in dates.items()}
    assert set(sv.SVOCCUR) <= {"Y", "N"} and (sv[sv.SVOCCUR == "N"].SVSTDTC == "").all()
    assert not sv.duplicated(["USUBJID", "VISITNUM"]).any()


#: Reference ranges for the normal-range spec (the first trial's protocol declares none: its registry record
#: gives no laboratory reference ranges), in each field's canonical unit.
RANGES = {"crp": (None, 5.0), "tnf_alpha": (2.0, 8.1), "il6": (None, 7.0), "lymphocytes": (1000.0, 4800.0)}


@no_core(
    "LBNRIND from the declared ranges has no CORE rule; CORE-000289/290/298/299 (a range on a result "
    "that is not a number) disagree with the ranges written on a censored result such as <1.5 (exports.md)"
)
def test_lb_reference_ranges_and_the_indicator_follow_the_protocol_s_normal_ranges(
    exported: Exported, tmp_path: Path
) -> None:
    """SDTMIG 3.4 LB: LBORNRLO/HI and LBSTNRLO/HI from the field's declared normal_range, LBNRIND LOW, NORMAL or
    HIGH (CDISC NRIND) from the standard result; a censored result only where its limit tells (<1.5 under a lower
    limit of 2 is LOW); nothing for a test without a declared range (never assumed)."""
    source = export_source(exported.trial.engine, who(exported.trial, Role.DATA_MANAGER))
    protocol = source.protocol
    forms = []
    for form in protocol.forms:
        fields = [f.model_copy(update={"normal_range": Range(min=RANGES[f.id][0], max=RANGES[f.id][1])})
                  if form.id == "labs" and f.id in RANGES else f for f in form.fields]  # fmt: skip
        forms.append(form.model_copy(update={"fields": fields}))
    SdtmExporter().write(dataclasses.replace(source, protocol=protocol.model_copy(update={"forms": forms})), tmp_path)
    lb = xpt(tmp_path, "LB")
    code_of = {f["id"]: f["codes"]["sdtm"]["testcd"] for form in RAW["forms"] if form["id"] == "labs"
               for f in form["fields"] if (f.get("codes") or {}).get("sdtm")}  # fmt: skip
    ranged = {code_of[field]: bounds for field, bounds in RANGES.items()}
    seen = set()
    for row in lb.itertuples():
        if row.LBTESTCD not in ranged:
            assert (row.LBORNRLO, row.LBORNRHI, row.LBNRIND) == ("", "", "") and pd.isna(row.LBSTNRLO)
            continue
        low, high = ranged[row.LBTESTCD]
        assert (pd.isna(row.LBSTNRLO) if low is None else low == row.LBSTNRLO)
        assert (pd.isna(row.LBSTNRHI) if high is None else high == row.LBSTNRHI)
        if row.LBORRESU == row.LBSTRESU:  # entered in the standard unit: the same limits
            assert tuple("" if x is None else f"{x:g}" for x in (low, high)) == (row.LBORNRLO, row.LBORNRHI)
        if row.LBORRES.startswith("<"):
            expected = "LOW" if low is not None and low >= row.LBLLOQ else ""
        elif row.LBORRES.startswith(">"):
            expected = "HIGH" if high is not None and high <= row.LBULOQ else ""
        elif pd.isna(row.LBSTRESN):
            expected = ""
        else:
            expected = ("LOW" if low is not None and low > row.LBSTRESN
                        else "HIGH" if high is not None and high < row.LBSTRESN else "NORMAL")
        assert expected == row.LBNRIND, row
        seen.add(expected)
    assert {"LOW", "NORMAL", "HIGH"} <= seen
    assert set(lb[lb.LBORRES.str.startswith("<")].LBNRIND) == {"LOW"}


@core("CORE-000006", "CORE-000007", "CORE-000034", "CORE-000126", "CORE-000252", "CORE-000253", "CORE-000254")
def test_death_is_an_outcome_never_an_adverse_event_term(exported: Exported) -> None:
    """SDTMIG 3.4 AE: the term is what caused the death; AEOUT FATAL with AESDTH Y; DM DTHFL Y with DTHDTC
    (SDTMIG 3.4 DM), and for every subject with a fatal or death-flagged AE or a DS DEATH, whose DSSTDTC is
    DTHDTC."""
    ae = xpt(exported.blinded, "AE")
    assert not ae.AETERM.map(lambda t: bool(DEATH_WORDS.match(t))).any()
    fatal = ae[ae.AEOUT == "FATAL"]
    assert set(fatal.USUBJID) >= {exported.fatal} and (fatal.AESDTH == "Y").all()
    assert "Respiratory failure" in set(fatal.AETERM) and set(ae.AESDTH) <= {"Y", "N", ""}
    dm = xpt(exported.blinded, "DM")
    assert ((dm.DTHFL == "Y") == (dm.DTHDTC != "")).all() and set(dm.DTHFL) <= {"Y", ""}
    assert dm.set_index("USUBJID").loc[exported.fatal, "DTHFL"] == "Y"
    ds = xpt(exported.blinded, "DS")
    assert "DEATH" in set(ds[exported.fatal == ds.USUBJID].DSDECOD)
    died = dm[dm.DTHFL == "Y"].set_index("USUBJID").DTHDTC
    deaths = ds[ds.DSDECOD == "DEATH"]
    assert set(ae[(ae.AEOUT == "FATAL") | (ae.AESDTH == "Y")].USUBJID) | set(deaths.USUBJID) <= set(died.index)
    assert all(dtc == died[u] for u, dtc in zip(deaths.USUBJID, deaths.DSSTDTC, strict=True))


@no_core("what README.txt lists for correction; no CORE rule reads an AE term's wording")
def test_a_report_naming_death_is_accepted_queried_and_listed_for_correction(
    exported: Exported, tmp_path: Path
) -> None:
    """A serious report is due within hours, often before the cause of death is known: a term naming death itself
    ("Death (unknown cause)") is accepted, never blocking the report; the system asks for the cause at once by an
    automatic query on the participant (one per event, in English and Persian), and the SDTM export lists the term
    in README.txt as one to correct (death is the outcome, AEOUT FATAL); a term that only mentions death is neither
    queried nor listed."""
    unrelated = next(c["code"] for c in RAW["safety"]["causality"] if not c["related"])
    reported = []
    for term in ("Death (unknown cause)", "Sudden cardiac arrest"):
        event = report_event(exported.trial.engine, who(exported.trial, Role.INVESTIGATOR), exported.fatal_id, {
            "term": term, "onset": "2021-06-01", "grade": 5, "serious": True, "seriousness_criteria": ["death"],
            "causality": unrelated, "action_taken": "not_applicable", "outcome": "fatal",
            "death_date": "2021-06-01", "death_cause": "Not known yet",
            "aware_at": "2021-06-01T12:00:00+04:30"})  # fmt: skip
        reported.append(event.ae_number)
    SdtmExporter().write(export_source(exported.trial.engine, who(exported.trial, Role.DATA_MANAGER)), tmp_path)
    readme = (tmp_path / "README.txt").read_text(encoding="utf-8")
    assert f"AE {reported[0]}: the reported term 'Death (unknown cause)' names death" in readme
    assert f"AE {reported[1]}:" not in readme
    asked = {q.check_id: q for q in list_queries(exported.trial.engine, who(exported.trial, Role.DATA_MANAGER),
                                                 participant_id=exported.fatal_id)}  # fmt: skip
    query = asked[f"death-term:{reported[0]}"]
    assert query.status == "open" and query.origin == "system"
    assert query.text == (f"{reported[0]}: the reported term 'Death (unknown cause)' names death, which is the "
                          "outcome; please report the event that caused it as the term in a follow-up.")  # fmt: skip
    assert f"death-term:{reported[1]}" not in asked
    protocol = current_protocol(exported.trial.engine).protocol
    persian = query_words(protocol, "fa", translations("fa").gettext, lambda iso: iso)(query.text)
    assert persian.startswith(f"{reported[0]}: عنوان گزارش‌شده 'Death (unknown cause)' خود فوت است")


@no_core("the export's refusal of a site without its country; no CORE rule")
def test_an_export_without_a_site_s_country_is_refused_naming_the_site(exported: Exported, tmp_path: Path) -> None:
    """COUNTRY is never guessed: a protocol whose site declares no country cannot be exported as SDTM."""
    source = export_source(exported.trial.engine, who(exported.trial, Role.DATA_MANAGER))
    protocol = source.protocol
    sites = [s.model_copy(update={"country": None}) if s.code == "GOL" else s for s in protocol.sites]
    changed: ExportSource = dataclasses.replace(source, protocol=protocol.model_copy(update={"sites": sites}))
    with pytest.raises(SdtmExportError, match=r"sites GOL: no country"):
        SdtmExporter().write(changed, tmp_path)
    assert not (tmp_path / "sdtm").exists()


@no_core("a protocol check; no CORE rule")
def test_a_protocol_declares_every_visit_s_epoch_or_none() -> None:
    """EPOCH is never guessed: a protocol naming some visits' epochs but not all is refused at the check."""
    protocol = load_protocol(FIRST_PROTOCOL).protocol
    visits = [v.model_copy(update={"epoch": None}) if v.id == "day3" else v for v in protocol.visits]
    found = dict(cross_check(protocol.model_copy(update={"visits": visits})))
    assert "day3" in found["visits[3].epoch"] and not any("epoch" in k for k in dict(cross_check(protocol)))


@core("CORE-000199")
def test_a_test_name_longer_than_40_characters_is_refused_at_load_naming_the_field() -> None:
    """SDTMIG 3.4: --TEST holds at most 40 characters; a longer name is refused, never cut."""
    text = Path(FIRST_PROTOCOL).read_text(encoding="utf-8")
    assert "test: TLym Help/TLym Cytx\n" in text
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text.replace("test: TLym Help/TLym Cytx\n",
                                        "test: Helper T-Lymphocytes/Cytotoxic T-Lymphocytes\n"))  # fmt: skip
    message = str(caught.value)
    assert "codes.sdtm.test" in message and "44 characters; --TEST holds at most 40" in message


@no_core("--ORRES's digits and the XPT file's ASCII; no CORE rule")
def test_orres_is_the_number_as_collected_in_latin_digits_whatever_script_it_was_typed_in() -> None:
    """A result typed on a Persian page (``۴۵٫۵``, ``< ۱٫۵``) is the number collected: --ORRES writes it with Latin
    digits and a point, as the SAS transport file (ASCII) and every reader need; the unit typed is kept."""
    form = load_protocol(FIRST_PROTOCOL).protocol.form("labs")
    crp = form.field("crp")
    assert crp.codes is not None and crp.codes.sdtm is not None
    typed = finding_record("LB", crp.codes.sdtm, crp, {"value": 455.0, "entered": "۴۵٫۵", "unit": "mg/dL",
                                                        "status": "value"})  # fmt: skip
    # LBSTRESC: the value converted to mg/L, stored rounded to the field's decimals (2), written to those places.
    assert (typed["LBORRES"], typed["LBORRESU"], typed["LBSTRESC"]) == ("45.5", "mg/dL", "455.00")
    censored = finding_record("LB", crp.codes.sdtm, crp, {"value": None, "entered": "۱٫۵", "limit": 1.5,
                                                           "unit": "mg/L", "status": "below_lloq"})  # fmt: skip
    assert censored["LBORRES"] == "<1.5"


@no_core("a protocol check of --ORRESU's ASCII spelling; no CORE rule")
def test_a_unit_sdtm_cannot_write_as_spelled_is_refused_at_load_without_its_sdtm_unit() -> None:
    """--ORRESU is ASCII: a field with an SDTM test code whose unit (or alternative unit) is not ASCII must say the
    SDTM unit to write for it (``codes.sdtm.units``); it is refused at load, naming the unit, never written empty."""
    text = Path(FIRST_PROTOCOL).read_text(encoding="utf-8")
    before = "alternative_units: [{unit: mg/dL, factor: 10}]\n        hard_limits: {min: 0, max: 600}\n"
    assert text.count(before) == 1
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text.replace(before, before.replace("mg/dL, factor: 10", "µg/mL, factor: 1")))
    assert "codes.sdtm.units: give the SDTM unit (e.g. CDISC UNIT, ASCII) for µg/mL" in str(caught.value)
    mapped = text.replace(before, before.replace("mg/dL, factor: 10", "µg/mL, factor: 1")).replace(
        "            test: C Reactive Protein\n",
        "            test: C Reactive Protein\n            units: {µg/mL: ug/mL}\n",
    )
    assert load_protocol_text(mapped).protocol.form("labs").field("crp").codes.sdtm.units == {"µg/mL": "ug/mL"}


@core("CORE-000541")
def test_tv_and_ti_are_the_protocol_s_visits_and_criteria(exported: Exported) -> None:
    """SDTMIG 3.4 trial design: TV one record per planned visit (VISITNUM in schedule order, ARMCD empty for a
    visit every arm has); TI one record per criterion with IECAT INCLUSION or EXCLUSION, IETESTCD at most 8
    characters, the protocol's wording."""
    tv = xpt(exported.blinded, "TV")
    assert list(tv.VISIT) == [v["name"] for v in RAW["visits"]] and list(tv.VISITNUM) == [
        float(i + 1) for i in range(len(RAW["visits"]))]  # fmt: skip
    assert set(tv.ARMCD) == {""} and (tv.TVSTRL != "").all() and not set(tv.TVSTRL) & ARM_TERMS
    ti = xpt(exported.blinded, "TI")
    criteria = [("INCLUSION", c) for c in RAW["eligibility"]["inclusion"]] + [
        ("EXCLUSION", c) for c in RAW["eligibility"].get("exclusion", [])]  # fmt: skip
    assert list(zip(ti.IECAT, ti.IETESTCD, strict=True)) == [(cat, c["id"]) for cat, c in criteria]
    assert all(re.fullmatch("[A-Za-z_][A-Za-z0-9_]{0,7}", code) for code in ti.IETESTCD)
    assert set(ti.TIVERS) == {str(RAW["version"]["number"])}
    assert all(t == c["text"][:200] for t, (_, c) in zip(ti.IETEST, criteria, strict=True) if c["text"].isascii())


@no_core("the export service's refusal; no CORE rule")
def test_the_export_service_refuses_sdtm_for_a_protocol_without_site_countries(tmp_path: Path) -> None:
    """Through `trialwright export` and the exports page: refused as an export error naming the sites, with no
    folder left behind."""
    text = Path(FIRST_PROTOCOL).read_text(encoding="utf-8")
    assert text.count("    country: IRN") == 2
    loaded = load_protocol_text(re.sub(r"\n    country: IRN[^\n]*", "", text))
    trial = make_trial(f"sqlite:///{tmp_path / 'trial.db'}", loaded)
    with pytest.raises(ExportError, match=r"sites RAZ, GOL: no country \(sites\[\]\.country, ISO 3166-1 alpha-3"):
        run_export(trial.engine, who(trial, Role.DATA_MANAGER), "sdtm", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    trial.engine.dispose()
