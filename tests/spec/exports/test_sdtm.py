"""SDTM-style domains of the simulated trial of this chapter (see test_tabular), read back with pyreadstat.

| domain | one record per              | must have (besides STUDYID, DOMAIN, USUBJID)                          |
|--------|-----------------------------|-----------------------------------------------------------------------|
| DM     | participant                 | SUBJID SITEID COUNTRY RFSTDTC RFENDTC AGE AGEU SEX ARMCD ARM ACTARM.. |
| DS     | consent, randomization, end | DSSEQ DSTERM DSDECOD DSCAT DSSTDTC                                    |
| EX     | infusion given              | EXSEQ EXTRT EXDOSE EXDOSU EXROUTE EXSTDTC                             |
| AE     | adverse event               | AESEQ AETERM AEDECOD AESEV AETOXGR AESER AEREL AEOUT AESTDTC          |
| LB     | laboratory value            | LBSEQ LBTESTCD LBTEST LBORRES LBORRESU LBSTRESN LBSTRESU LBSTAT ...   |
| VS     | vital sign                  | VSSEQ VSTESTCD VSTEST VSORRES VSORRESU VSSTRESN VSSTRESU VSDTC ...    |

Test codes are CDISC controlled terminology where a term exists (IL-6 is INTLK6, TNF-alpha TNF, CD3 TLYCE,
CD4 TLYH, CD8 TLC); a blinded extract names no arm and masks the treatment; one made with arms names the
arm in DM only.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from tests.spec.exports.test_tabular import (
    PROTOCOL,
    arm_terms,
    arms_named_in,
    blinded_source,
    simulated_trial,
    unblinded_source,
)
from tests.trialfixtures import Trial
from trialwright.exports.sdtm import BLINDED_ARM, BLINDED_TREATMENT, DOMAINS, SdtmExporter

REQUIRED = {
    "DM": "SUBJID SITEID COUNTRY RFSTDTC RFENDTC RFPENDTC AGE AGEU SEX ARMCD ARM ACTARMCD ACTARM ARMNRS",
    "DS": "DSSEQ DSTERM DSDECOD DSCAT DSSTDTC",
    "EX": "EXSEQ EXTRT EXDOSE EXDOSU EXROUTE EXSTDTC",
    "AE": "AESEQ AETERM AEDECOD AESEV AETOXGR AESER AEREL AEOUT AESTDTC",
    "LB": "LBSEQ LBTESTCD LBTEST LBORRES LBORRESU LBSTRESN LBSTRESU LBSTAT LBREASND LBDTC VISITNUM",
    "VS": "VSSEQ VSTESTCD VSTEST VSORRES VSORRESU VSSTRESN VSSTRESU VSDTC VISITNUM",
}
LB_CODES = {"CRP", "INTLK6", "TNF", "DDIMER", "LYM", "TLYCE", "TLYLY", "TLYH", "TLC", "TLYHTLYC", "CD4LY", "CD8LY"}
VS_CODES = {"SYSBP", "PULSE", "RESP", "TEMP", "OXYSAT", "WEIGHT", "HEIGHT"}


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:
    return simulated_trial(tmp_path_factory)


@pytest.fixture(scope="module")
def blinded(trial: Trial, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sdtm-blinded")
    SdtmExporter().write(blinded_source(trial), folder)
    return folder


@pytest.fixture(scope="module")
def with_arms(trial: Trial, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sdtm-arms")
    SdtmExporter().write(unblinded_source(trial), folder)
    return folder


def domain(folder: Path, code: str) -> pd.DataFrame:
    frame, meta = pyreadstat.read_xport(folder / "sdtm" / f"{code.lower()}.xpt")
    assert meta.table_name == code
    return frame


def test_every_domain_is_an_xpt_and_a_csv_with_the_required_variables(blinded: Path) -> None:
    """Dataset name = domain; the common identifiers and each domain's variables; 8-character names,
    40-character labels; the CSV holds the same records."""
    for code, required in REQUIRED.items():
        frame, meta = pyreadstat.read_xport(blinded / "sdtm" / f"{code.lower()}.xpt")
        assert meta.table_name == code
        assert {"STUDYID", "DOMAIN", "USUBJID", *required.split()} <= set(frame.columns), code
        assert all(len(n) <= 8 for n in frame.columns) and all(len(x or "") <= 40 for x in meta.column_labels)
        assert set(frame["DOMAIN"]) <= {code} and set(frame["STUDYID"]) <= {PROTOCOL.trial_id}
        text = pd.read_csv(blinded / "sdtm" / f"{code.lower()}.csv", dtype=str, keep_default_na=False)
        assert list(text.columns) == list(frame.columns) and len(text) == len(frame), code
    for code in ("DS", "EX", "AE", "LB", "VS"):
        frame = domain(blinded, code)
        assert not frame.duplicated(["USUBJID", f"{code}SEQ"]).any(), code


def test_dm_has_one_record_per_participant_with_a_unique_usubjid(blinded: Path, trial: Trial) -> None:
    """USUBJID = STUDYID-participant id, unique; sex and age from the forms."""
    people = list(blinded_source(trial).participants())
    dm = domain(blinded, "DM")
    assert dm["USUBJID"].is_unique and len(dm) == len(people)
    assert set(dm["USUBJID"]) == {f"{PROTOCOL.trial_id}-{p.participant_id}" for p in people}
    assert set(dm["SEX"]) <= {"F", "M"} and dm["AGE"].between(18, 65).all() and set(dm["AGEU"]) == {"YEARS"}


def test_lb_uses_cdisc_test_codes_and_keeps_censored_and_not_done_values(blinded: Path, trial: Trial) -> None:
    """One record per laboratory value of the mapped fields; <limit with LBLLOQ/LBULOQ; NOT DONE with reason."""
    lb = domain(blinded, "LB")
    assert set(lb["LBTESTCD"]) == LB_CODES
    source = blinded_source(trial)
    mapped = {"crp", "il6", "tnf_alpha", "ddimer", "lymphocytes", "cd3_abs", "cd3_pct", "cd4_abs", "cd4_pct",
              "cd8_abs", "cd8_pct", "cd4_cd8_ratio"}  # fmt: skip
    assert len(lb) == sum(len(mapped & set(r.values)) for r in source.forms("labs"))
    tnf = lb[lb.LBORRES.str.startswith("<")].iloc[0]
    assert (tnf.LBTESTCD, tnf.LBORRES, tnf.LBSTRESC, tnf.LBLLOQ) == ("TNF", "<1.5", "<1.5", 1.5)
    assert pd.isna(tnf.LBSTRESN)
    il6 = lb[lb.LBORRES.str.startswith(">")].iloc[0]
    got = (il6.LBTESTCD, il6.LBORRES, il6.LBORRESU, il6.LBSTRESU, il6.LBULOQ)
    assert got == ("INTLK6", ">5000", "ng/L", "pg/mL", 5000.0)
    crp = lb[lb.LBSTAT == "NOT DONE"]
    assert list(crp.LBTESTCD) == ["CRP"] and list(crp.LBREASND) == ["Sample clotted"] and list(crp.LBORRES) == [""]
    values = lb[(lb.LBSTAT == "") & ~lb.LBORRES.str.match("[<>]")]
    assert values.LBSTRESN.notna().all() and (values.LBSTRESC.astype(float) == values.LBSTRESN).all()


def test_vs_uses_cdisc_test_codes_and_units(blinded: Path) -> None:
    """SYSBP mmHg, PULSE beats/min, RESP breaths/min, TEMP C, OXYSAT %, WEIGHT kg, HEIGHT cm; a temperature
    typed in °F keeps its original value and unit and is standardised to C."""
    vs = domain(blinded, "VS")
    assert set(vs["VSTESTCD"]) == VS_CODES
    units = dict(zip(vs.VSTESTCD, vs.VSSTRESU, strict=True))
    assert units == {"SYSBP": "mmHg", "PULSE": "beats/min", "RESP": "breaths/min", "TEMP": "C", "OXYSAT": "%",
                     "WEIGHT": "kg", "HEIGHT": "cm"}  # fmt: skip
    fahrenheit = vs[vs.VSORRESU == "F"]
    assert list(zip(fahrenheit.VSORRES, fahrenheit.VSSTRESN, strict=True)) == [("100.4", 38.0)]


def test_ds_ex_and_ae_follow_the_participants_and_their_events(blinded: Path, trial: Trial) -> None:
    """Consent and randomization milestones for everyone randomized; one EX record per infusion given; one AE
    record per adverse event, with seriousness Y/N and CDISC outcome terms."""
    source = blinded_source(trial)
    people = list(source.participants())
    ds = domain(blinded, "DS")
    assert (ds.DSDECOD == "RANDOMIZED").sum() == sum(p.randomized_at is not None for p in people)
    assert set(ds.DSDECOD) <= {"INFORMED CONSENT OBTAINED", "RANDOMIZED", "COMPLETED", "DEATH",
                               "WITHDRAWAL BY SUBJECT", "WITHDRAWAL OF CONSENT"}  # fmt: skip
    given = [r for r in source.forms("administration") if r.values.get("started_at")]
    ex = domain(blinded, "EX")
    assert len(ex) == len(given) and set(ex.EXROUTE) == {"INTRAVENOUS"} and set(ex.EXDOSU) == {"mL"}
    events = list(source.events())
    ae = domain(blinded, "AE")
    assert len(ae) == len(events) and set(ae.AESER) <= {"Y", "N"}
    assert set(ae.AEOUT) <= {"RECOVERED/RESOLVED", "RECOVERING/RESOLVING", "NOT RECOVERED/NOT RESOLVED",
                             "RECOVERED/RESOLVED WITH SEQUELAE", "FATAL", "UNKNOWN"}  # fmt: skip


def test_define_describes_every_variable_with_its_length(blinded: Path) -> None:
    """define.csv: every variable of every domain with label, type, a length that fits the data, terms and
    origin; testcodes.csv says which test codes are CDISC terms and which are sponsor-defined."""
    with (blinded / "sdtm" / "define.csv").open(encoding="utf-8") as f:
        define = list(csv.DictReader(f))
    readme = (blinded / "README.txt").read_text(encoding="utf-8")
    for code in DOMAINS:
        if not (blinded / "sdtm" / f"{code.lower()}.csv").exists():  # no records: not written, README.txt says
            assert re.search(rf"Not written, no records \(.*\): (\w+, )*{code}\b", readme), code
            assert not any(r["dataset"] == code for r in define)
            continue
        frame = pd.read_csv(blinded / "sdtm" / f"{code.lower()}.csv", dtype=str, keep_default_na=False)
        rows = {r["variable"]: r for r in define if r["dataset"] == code}
        assert list(rows) == list(frame.columns), code
        for name, row in rows.items():
            assert row["type"] in {"Char", "Num"} and row["label"] and row["origin"]
            if row["type"] == "Char":
                assert int(row["length"]) >= max([1, *(len(v.encode()) for v in frame[name])])
    with (blinded / "sdtm" / "testcodes.csv").open(encoding="utf-8") as f:
        codes = {r["testcd"]: r["terminology"] for r in csv.DictReader(f)}
    assert set(codes) == LB_CODES | VS_CODES
    assert "C74834" in codes["INTLK6"] and "sponsor-defined" in codes["CD4LY"]


def test_a_blinded_extract_names_no_arm(blinded: Path) -> None:
    """No arm code, name or intervention in any file; DM's arm variables BLINDED (or empty with ARMNRS); EX's
    treatment masked."""
    assert arms_named_in(blinded, arm_terms(with_interventions=True)) == {}
    dm = domain(blinded, "DM")
    assert set(dm.ARMCD) | set(dm.ARM) | set(dm.ACTARMCD) | set(dm.ACTARM) <= {BLINDED_ARM, ""}
    assert BLINDED_ARM in set(dm.ARMCD)
    assert set(domain(blinded, "EX").EXTRT) == {BLINDED_TREATMENT}
    assert "Arms included: no" in (blinded / "README.txt").read_text(encoding="utf-8")


def test_an_extract_with_arms_names_them_in_dm_only(with_arms: Path, trial: Trial) -> None:
    """The unblinded statistician's extract: each participant's allocated arm in DM (planned, and actual once
    treated), the planned arms in TA and the arms' own elements in TE and SE (their codes are the arm codes); no
    other file names an arm; EX names the arm's intervention."""
    named = arms_named_in(with_arms, arm_terms(with_interventions=False))
    design = {f"sdtm/{d}.{x}" for d in ("ta", "te", "se") for x in ("xpt", "csv")}
    assert set(named) == {"sdtm/dm.xpt", "sdtm/dm.csv", "sdtm/define.xml", "sdtm/define.html", *design}
    allocated = {f"{PROTOCOL.trial_id}-{p.participant_id}": p.arm for p in unblinded_source(trial).participants()}
    dm = domain(with_arms, "DM")
    assert dict(zip(dm.USUBJID, dm.ARMCD, strict=True)) == allocated
    names = {a.code: a.name for a in PROTOCOL.arms}
    assert all(names[c] == n for c, n in zip(dm.ARMCD, dm.ARM, strict=True))
    treated = set(domain(with_arms, "EX").USUBJID)
    assert all((a == c) == (u in treated) for u, a, c in zip(dm.USUBJID, dm.ACTARMCD, dm.ARMCD, strict=True))
    assert set(domain(with_arms, "EX").EXTRT) <= {a.intervention.name for a in PROTOCOL.arms}
