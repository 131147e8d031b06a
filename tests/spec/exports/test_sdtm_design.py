"""The SDTM trial design and subject element domains follow SDTMIG 3.4 section 7 and the protocol's declarations:
each expected row is built here from the protocol file read as plain YAML and the trial's stored records, never
with the exporter's helpers, and compared with the XPT files read back with pyreadstat.

| rule (SDTMIG 3.4)                                       | checked                                                  |
|---------------------------------------------------------|----------------------------------------------------------|
| TE: one record per element, TESTRL, TEENRL or TEDUR     | the protocol's elements[] in order                       |
| TA: each arm's elements in order (TAETORD), EPOCH       | arms x epochs, the arm's own element else the common one |
| SE: the subject's elements, start and end dates         | consent, first dose, first follow-up visit, RFPENDTC     |
| SV: SVPRESP/SVOCCUR, VISITDY, TAETORD at the visit      | planned day from RFSTDTC's event, epoch order            |
| SV assumption 11: EPOCH, TAETORD at the visit's start   | the SE element spanning SVSTDTC (shared day: planned)    |
| 4.5.3.2 text over 200 bytes, FDA FB1501                 | pieces join exactly, none begins or ends with a space    |
| 2.6 labels in title case                                | every label by CORE-000594's pattern; TSVALn as TSVAL    |
| TS: parameters from the protocol's declared facts       | each value from its fact; undeclared ones left out       |
| masking                                                 | a blinded extract names no arm in TA, TE, SE or TS       |

The first trial and the shipped EXAMPLE-CAP-3ARM (as shipped, with no elements; and with epochs and elements added
here) are exported; on SQLite and PostgreSQL. Each check names the CDISC CORE rules whose published text it
implements (``@core``, see ``core_rules.py``) or says that none does (``@no_core``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import xml.etree.ElementTree as ET
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
import xmlschema
from ruamel.yaml import YAML
from sqlalchemy import select

from tests.conftest import ROOT
from tests.spec.exports.core_rules import core, no_core
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.exports.readstat import ASCII_SPELLINGS
from trialwright.exports.sdtm import SdtmExporter
from trialwright.exports.sdtm_design import design_elements, ta_rows, te_rows
from trialwright.protocol.loader import ProtocolError, load_protocol_text
from trialwright.services.exports import export_source
from trialwright.services.forms import save_form
from trialwright.services.screening.withdrawal import withdraw
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import create_user
from trialwright.store.audit_keys import default_key_file, load_key
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import make_engine

_YAML = YAML(typ="safe")
RAW = _YAML.load(Path(FIRST_PROTOCOL).read_text(encoding="utf-8"))
CAP = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
CAP_RAW = _YAML.load(CAP.read_text(encoding="utf-8"))
ODM = "http://www.cdisc.org/ns/odm/v1.3"
DEFINE_SCHEMA = xmlschema.XMLSchema(
    str(ROOT / "tests" / "data" / "define-2.1" / "cdisc-define-2.1" / "define2-1-0.xsd")
)
ZONE = {s["code"]: zoneinfo.ZoneInfo(s["timezone"]) for s in RAW["sites"]}


#: A withdrawal's reason in words (DSTERM) longer than the 200 bytes an XPT v5 variable holds.
LONG_REASON = " ".join(
    ["The participant's family asked that follow-up stop after the transfer to another hospital"] * 5
)


@dataclasses.dataclass(frozen=True)
class Exported:
    trial: Trial
    blinded: Path
    with_arms: Path


@pytest.fixture(scope="module")
def first(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    trial = make_trial(module_database_url)
    simulate(trial.engine, FIRST_PROTOCOL, 10, seed=5)
    last: dict[str, dt.date] = {}
    for r in export_source(trial.engine, who(trial, Role.DATA_MANAGER)).forms():
        if r.site == "RAZ" and r.visit_date is not None:
            last[r.participant_id] = max(r.visit_date, last.get(r.participant_id, r.visit_date))
    withdraw(trial.engine, who(trial, Role.INVESTIGATOR), sorted(last)[0], scope="follow_up", cause="other",
             reason=LONG_REASON, withdrawn_on=last[sorted(last)[0]])  # fmt: skip
    blinded, with_arms = tmp_path_factory.mktemp("design-blinded"), tmp_path_factory.mktemp("design-arms")
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), blinded)
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True),
                         with_arms)  # fmt: skip
    yield Exported(trial, blinded, with_arms)
    trial.engine.dispose()


def xpt(folder: Path, code: str) -> pd.DataFrame:
    frame, meta = pyreadstat.read_xport(folder / "sdtm" / f"{code.lower()}.xpt")
    assert meta.table_name == code
    return frame


def rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in frame[columns].itertuples(index=False)]


def epochs_of(raw: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(v["epoch"] for v in raw["visits"]))


def arm_elements(raw: dict[str, Any], arm: str) -> list[dict[str, Any]]:
    """The arm's elements by epoch, worked out from the YAML: its own in an epoch, else the one for every arm."""
    out = []
    for epoch in epochs_of(raw):
        here = [e for e in raw["elements"] if e["epoch"] == epoch]
        out += [e for e in here if e.get("arm") == arm] or [e for e in here if "arm" not in e]
    return out


def minute(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    local = moment.astimezone(zone)
    offset = local.utcoffset() or dt.timedelta()
    sign, total = ("+" if offset >= dt.timedelta() else "-"), abs(int(offset.total_seconds())) // 60
    return f"{local:%Y-%m-%dT%H:%M}{sign}{total // 60:02d}:{total % 60:02d}"


# -- TE and TA ---------------------------------------------------------------------------------------------------


@core("CORE-000027")
def test_te_lists_the_protocol_s_elements_with_their_start_and_end_rules(first: Exported) -> None:
    te = xpt(first.with_arms, "TE")
    expected = [(e["code"], e["name"], e["start_rule"], e.get("end_rule", ""), e.get("duration", ""))
                for e in RAW["elements"]]  # fmt: skip
    assert rows(te, ["ETCD", "ELEMENT", "TESTRL", "TEENRL", "TEDUR"]) == expected
    assert set(te.DOMAIN) == {"TE"} and ((te.TEENRL != "") | (te.TEDUR != "")).all()


@core("CORE-000144", "CORE-000210", "CORE-000047", "CORE-000208", "CORE-000209")
def test_ta_takes_each_arm_through_its_elements_in_epoch_order(first: Exported) -> None:
    ta = xpt(first.with_arms, "TA")
    expected = []
    for arm in RAW["arms"]:
        for order, e in enumerate(arm_elements(RAW, arm["code"]), start=1):
            branch = f"Randomized to {arm['name']}" if order == 1 else ""  # screening ends in the randomization
            expected.append((arm["code"], arm["name"], float(order), e["code"], e["name"], branch, e["epoch"]))
    assert rows(ta, ["ARMCD", "ARM", "TAETORD", "ETCD", "ELEMENT", "TABRANCH", "EPOCH"]) == expected
    assert not ta.duplicated(["ARMCD", "TAETORD"]).any()
    dm = xpt(first.with_arms, "DM")
    assert set(dm.ARMCD) - {""} <= set(ta.ARMCD) and set(dm.ACTARMCD) - {""} <= set(ta.ARMCD)
    assert set(dm.ARM) - {""} <= set(ta.ARM) and set(dm.ACTARM) - {""} <= set(ta.ARM)


@no_core("masking: no CORE rule")
def test_a_blinded_extract_names_no_arm_in_ta_te_se_or_ts(first: Exported) -> None:
    """TA has one path with ARMCD/ARM BLINDED (as DM has), the arms' treatment elements are one BLINDED element
    with the rules both share, and SE gives every subject the same codes: nothing tells a subject's arm."""
    own = [e for e in RAW["elements"] if "arm" in e]
    words = {w for a in RAW["arms"] for w in (a["code"], a["name"], a["intervention"]["name"])}
    words |= {w for e in own for w in (e["code"], e["name"])}
    for code in ("TA", "TE", "SE", "TS"):
        frame = xpt(first.blinded, code)
        cells = {str(c) for c in frame.to_numpy().ravel()}
        assert not cells & words, code
    ta, te = xpt(first.blinded, "TA"), xpt(first.blinded, "TE")
    assert set(ta.ARMCD) == set(ta.ARM) == {"BLINDED"} == set(xpt(first.blinded, "DM").ARMCD) - {""}
    assert list(ta.EPOCH) == epochs_of(RAW)
    shared = {(e["start_rule"], e["end_rule"]) for e in own}
    assert len(shared) == 1
    assert rows(te[te.ETCD == "BLINDED"], ["ELEMENT", "TESTRL", "TEENRL"]) == [("BLINDED", *shared.pop())]
    # the same subject elements, dates and order as with arms, only the arm elements' names withheld
    blinded, arms = xpt(first.blinded, "SE"), xpt(first.with_arms, "SE")
    masked = arms.ETCD.isin([e["code"] for e in own])
    arms.loc[masked, ["ETCD", "ELEMENT"]] = "BLINDED"
    columns = ["USUBJID", "SESEQ", "ETCD", "ELEMENT", "TAETORD", "EPOCH", "SESTDTC", "SEENDTC", "SESTDY", "SEENDY"]
    assert rows(blinded, columns) == rows(arms, columns) and len(blinded) > 0


# -- SE --------------------------------------------------------------------------------------------------------


@core("CORE-000552", "CORE-000553")
def test_se_starts_each_element_at_the_record_its_protocol_entry_names(first: Exported) -> None:
    """Screening at the consent, the arm's infusion at the first recorded start of the infusion, follow-up at the
    first date recorded at a follow-up visit; each ends where the next begins, the last at RFPENDTC."""
    source = export_source(first.trial.engine, who(first.trial, Role.UNBLINDED_STATISTICIAN), with_arms=True)
    people = {p.participant_id: p for p in source.participants()}
    treatment = RAW["analysis_plan"]["treatment"]
    doses: dict[str, dt.datetime] = {}
    for r in source.forms(treatment["form"]):
        given = r.values.get(treatment["given_field"], {}).get("value")
        if r.visit_id == treatment["visit"] and given:
            moment = dt.datetime.fromisoformat(given)
            doses[r.participant_id] = min(moment, doses.get(r.participant_id, moment))
    follow_up = {v["id"] for v in RAW["visits"] if v["epoch"] == "FOLLOW-UP"}
    visits: dict[str, dt.date] = {}
    for form in RAW["forms"]:
        for r in source.forms(form["id"]):
            if r.visit_id in follow_up and r.visit_date is not None:
                visits[r.participant_id] = min(r.visit_date, visits.get(r.participant_id, r.visit_date))
    dm = xpt(first.with_arms, "DM").set_index("SUBJID")
    expected = []
    for pid, person in sorted(people.items(), key=lambda kv: f"{source.trial_id}-{kv[0]}"):
        zone = ZONE[person.site]
        starts = {"consent": minute(person.consented_at, zone) if person.consented_at else None,
                  "first_dose": minute(doses[pid], zone) if pid in doses else None,
                  "epoch_visit": visits[pid].isoformat() if pid in visits else None}  # fmt: skip
        path = arm_elements(RAW, person.arm) if person.arm else [e for e in RAW["elements"] if "arm" not in e][:1]
        begun = [(order, e, starts[e["starts_at"]]) for order, e in enumerate(path, start=1)]
        begun = [b for b in begun if b[2]]
        for i, (order, e, start) in enumerate(begun):
            end = begun[i + 1][2] if i + 1 < len(begun) else dm.loc[pid, "RFPENDTC"]
            expected.append((f"{source.trial_id}-{pid}", float(i + 1), e["code"], float(order), e["epoch"], start,
                             end))  # fmt: skip
    se = xpt(first.with_arms, "SE")
    assert rows(se, ["USUBJID", "SESEQ", "ETCD", "TAETORD", "EPOCH", "SESTDTC", "SEENDTC"]) == expected
    assert len(expected) >= 3 * len(doses) > 0
    reference = dm.set_index("USUBJID").RFSTDTC.str[:10].map(dt.date.fromisoformat)
    for column, day in (("SESTDTC", "SESTDY"), ("SEENDTC", "SEENDY")):
        for subject, dtc, found in zip(se.USUBJID, se[column], se[day], strict=True):
            diff = (dt.date.fromisoformat(dtc[:10]) - reference[subject]).days
            assert found == (diff + 1 if diff >= 0 else diff)


# -- SV --------------------------------------------------------------------------------------------------------


@core("CORE-000037", "CORE-000038")
def test_sv_gives_the_planned_study_day_the_element_order_and_whether_the_planned_visit_occurred(
    first: Exported,
) -> None:
    """VISITDY counts from the infusion (RFSTDTC is the first dose, recorded at the infusion visit): day 0 is
    study day 1, no day 0; an event visit other than the infusion has none. TAETORD is the order of the visit's
    epoch among the elements. A visit recorded as missed is SVOCCUR N with the reason recorded (SVREASOC)."""
    treated_at = RAW["analysis_plan"]["treatment"]["visit"]
    names = {v["id"]: v["name"] for v in RAW["visits"]}
    order = {epoch: float(i) for i, epoch in enumerate(epochs_of(RAW), start=1)}
    planned = {}
    for v in RAW["visits"]:
        scheduled = v.get("kind", "scheduled") == "scheduled" or v["id"] == treated_at
        day = v["day"] + 1 if v["day"] >= 0 else v["day"]
        planned[v["name"]] = float(day) if v["reference"] == treated_at and scheduled else None
    assert planned["Discharge or death"] is None and planned["Day 7"] == 8.0
    gone_query = select(visit_records).where(visit_records.c.missed_reason.is_not(None))
    with first.trial.engine.connect() as conn:
        missed = {(f"{RAW['trial']['ids'][0]['id']}-{r.participant_id}", names[r.visit_id], r.missed_reason)
                  for r in conn.execute(gone_query)}  # fmt: skip
    assert missed  # the simulation misses some follow-up visits
    for folder in (first.blinded, first.with_arms):
        sv, tv = xpt(folder, "SV"), xpt(folder, "TV")
        assert len(sv) > 0 and set(sv.SVPRESP) == {"Y"}
        gone = sv[sv.SVOCCUR == "N"]
        assert set(zip(gone.USUBJID, gone.VISIT, gone.SVREASOC, strict=True)) == missed
        assert (gone.SVSTDTC == "").all() and (sv[sv.SVOCCUR == "Y"].SVSTDTC != "").all()
        assert set(sv.SVOCCUR) == {"Y", "N"}
        for visit, day, taetord, epoch in zip(sv.VISIT, sv.VISITDY, sv.TAETORD, sv.EPOCH, strict=True):
            assert pd.isna(day) if planned[visit] is None else day == planned[visit], visit
            assert taetord == order[epoch]
        for visit, day in zip(tv.VISIT, tv.VISITDY, strict=True):
            assert pd.isna(day) if planned[visit] is None else day == planned[visit]


@core("CORE-000097", "CORE-000784")
def test_sv_takes_epoch_and_taetord_from_the_se_element_the_visit_starts_in(database_url: str, tmp_path: Path) -> None:
    """SDTMIG 3.4 SV assumption 11 (CG0217, CG0218): EPOCH and TAETORD are those at the start of the visit, so
    those of the subject's SE element holding SVSTDTC. SVSTDTC is a date: the element whose dates span it, and on a
    day two elements share (screening ends at the infusion's time on the baseline visit's day; the follow-up
    element begins at the Day 1 visit) the one of the visit's planned epoch. A participant randomized but not given
    the infusion has no treatment element: their infusion visit is in screening, whatever the protocol planned."""
    trial = make_trial(database_url)
    try:
        simulate(trial.engine, FIRST_PROTOCOL, 10, seed=5)
        given = sorted(r.participant_id for r in export_source(trial.engine, who(trial, Role.DATA_MANAGER)).forms(
            "administration") if r.values.get("started_at"))  # fmt: skip
        save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), given[0], "infusion", "administration",
                  {"started_at": None, "stopped_at": None}, reason="The infusion was not started")  # fmt: skip
        SdtmExporter().write(export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True),
                             tmp_path)  # fmt: skip
    finally:
        trial.engine.dispose()
    planned = {v["name"]: v["epoch"] for v in RAW["visits"]}
    sv, se, dm = xpt(tmp_path, "SV"), xpt(tmp_path, "SE"), xpt(tmp_path, "DM")
    dated = sv[sv.SVSTDTC != ""]
    moved = 0
    for visit in dated.itertuples():
        elements = se[se.USUBJID == visit.USUBJID]
        spanning = [(e.EPOCH, e.TAETORD) for e in elements.itertuples()
                    if e.SESTDTC[:10] <= visit.SVSTDTC <= e.SEENDTC[:10]]  # fmt: skip
        if len(spanning) > 1:
            spanning = [(epoch, order) for epoch, order in spanning if epoch == planned[visit.VISIT]]
        assert spanning == [(visit.EPOCH, visit.TAETORD)], (visit.USUBJID, visit.VISIT)
        moved += planned[visit.VISIT] != visit.EPOCH
    untreated = set(dm[dm.ARMNRS == "ASSIGNED, NOT TREATED"].USUBJID)
    infusion = dated[(dated.VISIT == "Infusion (day 0)") & dated.USUBJID.isin(untreated)]
    assert len(infusion) > 0 and set(infusion.EPOCH) == {"SCREENING"} and set(infusion.TAETORD) == {1.0}
    assert moved == len(infusion)  # everyone else's visits are in their planned epoch's element
    shared = [v for v in dated.itertuples()
              if sum(e.SESTDTC[:10] <= v.SVSTDTC <= e.SEENDTC[:10] for e in se[se.USUBJID == v.USUBJID].itertuples())
              > 1]  # fmt: skip
    assert shared  # the baseline, infusion and Day 1 visits fall on a day two elements share


# -- TS --------------------------------------------------------------------------------------------------------


def ts_values(frame: pd.DataFrame) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in frame.sort_values(["TSPARMCD", "TSSEQ"]).itertuples(index=False):
        out.setdefault(r.TSPARMCD, []).append(r.TSVAL + r.TSVAL1 + r.TSVAL2)
        assert all(len(str(getattr(r, c)).encode()) <= 200 for c in ("TSVAL", "TSVAL1", "TSVAL2"))
    return out


@core("CORE-000294", "CORE-000505")
def test_ts_holds_the_trial_s_declared_facts_and_leaves_out_what_it_does_not_declare(first: Exported) -> None:
    source = export_source(first.trial.engine, who(first.trial, Role.DATA_MANAGER))
    people = list(source.participants())
    consents = [p.consented_at.astimezone(ZONE[p.site]).date() for p in people if p.consented_at]
    trial = RAW["trial"]
    expected = {
        "TITLE": [trial["titles"]["scientific"]],
        "REGID": [next(i["id"] for i in trial["ids"] if i.get("primary"))],
        "SPONSOR": [s["organisation"] for s in trial["sponsors"]],
        "STYPE": ["INTERVENTIONAL"],
        "TPHASE": ["PHASE I TRIAL"],  # phase "1" (CDISC C66737)
        "TINDTP": ["TREATMENT"],  # purpose treatment (C66736)
        "INDIC": [c["description"] for c in trial["conditions"]],
        "OBJPRIM": [trial["summary"]["aim"]],
        "OUTMSPRI": [o["description"] for o in RAW["outcomes"] if o["kind"] == "primary"],
        "RANDOM": ["Y"],
        "INTMODEL": ["PARALLEL"],
        "TBLIND": ["DOUBLE BLIND"],  # masking.blinding double (C66735)
        "TCNTRL": ["PLACEBO"],  # a placebo_comparator arm
        "NARMS": [str(len(RAW["arms"]))],
        "ADDON": ["Y"],  # every arm declares its background therapy
        "PLANSUB": [str(RAW["sample_size"]["target"])],
        "AGEMIN": [trial["design"]["minimum_age"]],  # P18Y, as the registry record states
        "AGEMAX": [trial["design"]["maximum_age"]],  # P65Y
        "SEXPOP": [trial["design"]["sex"]],  # BOTH (C66732)
        "FCNTRY": sorted({s["country"] for s in RAW["sites"]}),
        "ACTSUB": [str(len(people))],
        "SSTDTC": [min(consents).isoformat()],
        "SDTIGVER": ["3.4"],
    }
    # XPT v5 holds ASCII: each declared spelling applied (the first trial's primary outcome names TNF-α)
    spelt = {k: ["".join(ASCII_SPELLINGS.get(c, c) for c in v) for v in vs] for k, vs in expected.items()}
    assert any(spelt[k] != expected[k] for k in expected)
    assert ts_values(xpt(first.blinded, "TS")) == spelt
    treatments = [a["intervention"]["name"] for a in RAW["arms"] if a["role"] == "experimental"]
    assert ts_values(xpt(first.with_arms, "TS")) == {**spelt, "TRT": treatments}
    assert len(trial["summary"]["aim"].encode()) > 200  # so TSVAL1 carries the rest of the objective
    readme = (first.blinded / "README.txt").read_text(encoding="utf-8")
    assert (trial["design"]["minimum_age"], trial["design"]["maximum_age"], trial["design"]["sex"]) == (
        "P18Y", "P65Y", "BOTH")  # fmt: skip
    for left_out in ("LENGTH: Trial Length (the protocol does not declare trial.design.participation_length)",
                     "TRT: withheld in a blinded extract"):  # fmt: skip
        assert left_out in readme
    assert "AGEMIN" not in readme and "SEXPOP" not in readme


#: CORE-000594's pattern (rule.yml, as published): a label's words begin with a capital, but for a few small ones.
TITLE_CASE = re.compile(r"^\s*[A-Z]\S*\s*((a|an|the|as|and|per|to|but|or|for|in|is|of|on|with|and\/or|is|within|"
                        r"from|([A-Z]\S*))\s*)*$")


def written(folder: Path) -> dict[str, tuple[pd.DataFrame, Any]]:
    return {f.stem.upper(): pyreadstat.read_xport(f) for f in sorted((folder / "sdtm").glob("*.xpt"))}


@core("CORE-000867")
def test_no_text_value_begins_with_a_space_and_split_text_joins_back_exactly(first: Exported) -> None:
    """FDA FB1501: no character value begins with a space, in any dataset. A value longer than 200 bytes (TS's
    OBJPRIM in TSVAL, TSVAL1; a withdrawal's reason in DSTERM and SUPPDS's QVAL) is cut inside a word, so no piece
    begins or ends with a space (SAS transport drops trailing blanks) and the pieces joined are the text."""
    for folder in (first.blinded, first.with_arms):
        for code, (frame, _) in written(folder).items():
            for column in frame.select_dtypes(include="object").columns:
                assert not frame[column].str.match(r"^\s").any(), (code, column)
        ts = xpt(folder, "TS")
        (objective,) = ts[ts.TSPARMCD == "OBJPRIM"].itertuples()
        pieces = [objective.TSVAL, objective.TSVAL1, objective.TSVAL2]
        assert "".join(pieces) == RAW["trial"]["summary"]["aim"] and objective.TSVAL1 != ""
        assert all(p == p.strip() and len(p.encode()) <= 200 for p in pieces)
        ds, supp = xpt(folder, "DS"), xpt(folder, "SUPPDS")
        (record,) = ds[[len(t) > 100 and LONG_REASON.startswith(t) for t in ds.DSTERM]].itertuples()
        mine = (supp.USUBJID == record.USUBJID) & (str(int(record.DSSEQ)) == supp.IDVARVAL)
        qval = list(supp[mine].QVAL)
        assert record.DSTERM + "".join(qval) == LONG_REASON
        assert all(p == p.strip() and len(p.encode()) <= 200 for p in [record.DSTERM, *qval])


@core("CORE-000594")
def test_every_variable_label_is_in_title_case_and_tsval_s_continuations_keep_its_label(first: Exported) -> None:
    """SDTMIG 3.4 2.6 (CG0359): labels in title case, as CORE-000594's pattern reads it (a digit does not begin a
    word in capitals, so "Parameter Value 1" fails). The IG gives TSVAL1-TSVALn no labels of their own; its one rule
    for a value's continuation (4.5.3.2: QLABEL the original variable's label for every piece) gives them
    TSVAL's, "Parameter Value"; and SUPP--'s QLABEL is the variable's label, unnumbered."""
    for folder in (first.blinded, first.with_arms):
        for code, (_, meta) in written(folder).items():
            for name, label in meta.column_names_to_labels.items():
                assert TITLE_CASE.match(label), (code, name, label)
        _, meta = pyreadstat.read_xport(folder / "sdtm" / "ts.xpt")
        labels = meta.column_names_to_labels
        assert labels["TSVAL1"] == labels["TSVAL2"] == labels["TSVAL"] == "Parameter Value"
        supp = xpt(folder, "SUPPDS")
        assert set(supp.QLABEL) == {"Reported Term for the Disposition Event"}


# -- another protocol ------------------------------------------------------------------------------------------


def _cap_trial(url: str, folder: Path, raw: dict[str, Any]) -> Trial:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CAP.name
    buffer = io.StringIO()
    YAML().dump(raw, buffer)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    (folder / f"{CAP.stem}.simulation.yaml").write_text(
        (CAP.with_name(f"{CAP.stem}.simulation.yaml")).read_text(encoding="utf-8"), encoding="utf-8"
    )
    key_file = default_key_file(url)
    engine = make_engine(url, audit_key=load_key(key_file, create=True) if key_file is not None else None)
    init_trial(engine, load_protocol_text(path.read_text(encoding="utf-8")))
    for role in (Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN):
        create_user(engine, username=username(role), password=PASSWORD, role=role, sites=[], full_name=role.label,
                    actor="test")  # fmt: skip
    simulate(engine, path, None, 7, enrolled=8)
    return Trial(url=url, engine=engine)


def _cap_with_elements() -> dict[str, Any]:
    raw = _YAML.load(CAP.read_text(encoding="utf-8"))
    for v in raw["visits"]:
        v["epoch"] = "FOLLOW-UP" if v["id"] == "discharge" else "TREATMENT"
    rules = {"epoch": "TREATMENT", "starts_at": "randomization", "start_rule": "Randomization",
             "end_rule": "End of hospital stay"}  # fmt: skip
    raw["elements"] = [{"code": f"T{a['code']}"[:8], "name": f"Treatment {i}", "arm": a["code"], **rules}
                       for i, a in enumerate(raw["arms"], start=1)]  # fmt: skip
    raw["elements"].append({"code": "FU", "name": "Follow-up", "epoch": "FOLLOW-UP", "starts_at": "epoch_visit",
                            "start_rule": "End of hospital stay", "duration": "P28D"})  # fmt: skip
    raw["trial"]["design"].update(participation_length="P30D", sex="F", minimum_age="P16Y")  # no maximum age
    return raw


@no_core("another protocol's trial summary and design, each value from its protocol; no CORE rule")
@pytest.mark.parametrize("with_elements", [False, True], ids=["as shipped", "with elements"])
def test_another_trial_exports_its_own_design_and_summary(
    database_url: str, tmp_path: Path, with_elements: bool
) -> None:
    raw = _cap_with_elements() if with_elements else _YAML.load(CAP.read_text(encoding="utf-8"))
    trial = _cap_trial(database_url, tmp_path / "protocol", raw)
    try:
        arms_out = tmp_path / "arms"
        source = export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True)
        people = {p.participant_id: p for p in source.participants()}
        SdtmExporter().write(source, arms_out)
    finally:
        trial.engine.dispose()
    ts = ts_values(xpt(arms_out, "TS"))
    assert ts["NARMS"] == [str(len(raw["arms"]))] and ts["PLANSUB"] == [str(raw["sample_size"]["target"])]
    assert ts["TPHASE"] == ["PHASE II TRIAL"] and ts["TBLIND"] == ["DOUBLE BLIND"]  # phase '2', double
    assert ts["ACTSUB"] == [str(len(people))] and ts["TITLE"] == [raw["trial"]["titles"]["scientific"]]
    design = {code: ts.get(code) for code in ("AGEMIN", "AGEMAX", "SEXPOP", "LENGTH")}
    readme = (arms_out / "README.txt").read_text(encoding="utf-8")
    if with_elements:
        assert design == {"AGEMIN": ["P16Y"], "AGEMAX": None, "SEXPOP": ["F"], "LENGTH": ["P30D"]}
        assert "AGEMAX: Planned Maximum Age of Subjects (the protocol does not declare" in readme
    else:
        assert design == dict.fromkeys(design)
        assert all(f"{code}: " in readme for code in design)
    if not with_elements:  # SDTM submits no empty dataset: none written, and README.txt says so
        assert not {"te.xpt", "ta.xpt", "se.xpt"} & {f.name for f in (arms_out / "sdtm").iterdir()}
        assert "TE, TA and SE: not written; the protocol declares no elements" in readme
        assert re.search(r"Not written, no records \(.*\): (\w+, )*TE, TA, SE\b", readme)
        return
    te, ta, se = xpt(arms_out, "TE"), xpt(arms_out, "TA"), xpt(arms_out, "SE")
    assert rows(te, ["ETCD", "TEDUR"]) == [(e["code"], e.get("duration", "")) for e in raw["elements"]]
    expected_ta = [(a["code"], float(order), e["code"], e["epoch"]) for a in raw["arms"]
                   for order, e in enumerate(arm_elements(raw, a["code"]), start=1)]  # fmt: skip
    assert rows(ta, ["ARMCD", "TAETORD", "ETCD", "EPOCH"]) == expected_ta and len(expected_ta) == 2 * len(raw["arms"])
    treatment = {(f"{source.trial_id}-{pid}", f"T{p.arm}"[:8]) for pid, p in people.items() if p.arm}
    assert {(u, c) for u, c, o in zip(se.USUBJID, se.ETCD, se.TAETORD, strict=True) if o == 1.0} == treatment


@no_core("masking and what README.txt says; no CORE rule")
def test_an_open_label_trial_exported_without_arms_says_which_element_no_subject_can_have(
    database_url: str, tmp_path: Path
) -> None:
    """Open label, the arms' treatment elements starting at different records: an extract without arms cannot
    start the BLINDED stand-in for anyone (its start would tell the arms apart); no SE record, and the README
    says so instead of leaving it unsaid."""
    raw = _cap_with_elements()
    raw["masking"] = {"blinding": "open", "description": "Open label.", "identical_appearance": False,
                      "open_label_comparator": "A pragmatic comparison: the comparator is given openly."}
    raw["trial"]["design"]["blinding"] = "open"  # the registry record says so too (protocol check: they must agree)
    raw["elements"][0]["starts_at"] = "enrolment"  # the first arm's treatment starts at enrolment, the others later
    trial = _cap_trial(database_url, tmp_path / "protocol", raw)
    try:
        out = tmp_path / "blinded"
        SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), out)
    finally:
        trial.engine.dispose()
    stand_in = [r for r in rows(xpt(out, "TE"), ["ETCD"]) if r[0].startswith("BLINDED")]
    assert stand_in == [("BLINDED",)]
    assert "BLINDED" not in set(xpt(out, "SE").ETCD)
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert "SE BLINDED: no subject has this element: the arms' elements of epoch TREATMENT start at" in readme


@no_core("which EPOCH an event has by its date; no CORE rule says it")
def test_an_event_on_the_day_an_epoch_begins_has_no_epoch_and_the_readme_counts_it(
    database_url: str, tmp_path: Path
) -> None:
    """EPOCH of a DS or AE record (SDTMIG 3.4): the epoch whose first visit (by the dates the subject's forms
    record) is the latest on or before the record's date. An epoch's start is a date, so a record on the day an
    epoch begins, the first one included (EXAMPLE-CAP-3ARM with epochs: consent on the day of the first visit,
    an hour or so before randomization), may belong to the period before: EPOCH is empty and README.txt counts
    it, as it counts records before the first visit."""
    raw = _cap_with_elements()
    trial = _cap_trial(database_url, tmp_path / "protocol", raw)
    try:
        out = tmp_path / "blinded"
        SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), out)
        with trial.engine.connect() as c:
            dated = c.execute(
                select(visit_records.c.participant_id, visit_records.c.visit_id, visit_records.c.visit_date)
                .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
                .where(visit_records.c.visit_date.is_not(None))
            ).all()
    finally:
        trial.engine.dispose()
    epoch_of = {v["id"]: v["epoch"] for v in raw["visits"]}
    starts: dict[str, dict[str, dt.date]] = {}
    for pid, visit_id, day in dated:
        if visit_id in epoch_of:
            per = starts.setdefault(pid, {})
            per[epoch_of[visit_id]] = min(day, per.get(epoch_of[visit_id], day))
    empty = on_a_first_day = 0
    for code, when in (("DS", "DSSTDTC"), ("AE", "AESTDTC")):
        for r in xpt(out, code).itertuples():
            day = dt.date.fromisoformat(getattr(r, when)[:10])
            own = starts.get(r.USUBJID.removeprefix(f"{r.STUDYID}-"), {})
            begun = sorted((d, e) for e, d in own.items() if d <= day)
            expected = "" if not begun or begun[-1][0] == day else begun[-1][1]
            on_a_first_day += len(begun) == 1 and begun[0][0] == day
            empty += expected == ""
            assert (r.EPOCH, code, r.USUBJID) == (expected, code, r.USUBJID)
    assert on_a_first_day > 0, "some record falls on the day the first epoch begins"
    assert f"EPOCH: empty on {empty} AE/DS record(s)" in (out / "README.txt").read_text(encoding="utf-8")


@no_core("the design domains of a protocol without elements; no CORE rule")
def test_visits_with_epochs_and_no_elements_give_no_ta_te_or_se_element_blinded_or_not() -> None:
    """A protocol may declare its visits' epochs (EPOCH) and no elements: it then has no TE, TA or SE rows, in a
    blinded export as in one with arms (a walk found the blinded TA failing with a KeyError on the first epoch)."""
    raw = _YAML.load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    del raw["elements"]
    assert epochs_of(raw), "the visits still declare their epochs"
    buffer = io.StringIO()
    YAML().dump(raw, buffer)
    p = load_protocol_text(buffer.getvalue()).protocol
    for with_arms in (False, True):
        assert list(ta_rows(p, with_arms)) == []
        assert list(te_rows(p, with_arms)) == []
        assert design_elements(p, with_arms) == []


# -- the protocol's elements are checked ----------------------------------------------------------------------


def _refused(raw: dict[str, Any]) -> str:
    buffer = io.StringIO()
    YAML().dump(raw, buffer)
    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(buffer.getvalue())
    return str(refused.value)


@no_core("a protocol check; no CORE rule")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e[1].update(epoch="MAINTENANCE"), "unknown epoch 'MAINTENANCE'"),
        (lambda e: e.pop(2), "epoch TREATMENT: no element for arm(s) PBO"),
        (lambda e: e[2].update(end_rule="Day 3 visit"), "share start_rule, end_rule, duration and starts_at"),
        (lambda e: e[3].pop("end_rule"), "an element declares its end_rule, its duration or both"),
        (lambda e: e[0].update(arm="XYZ"), "unknown arm 'XYZ'"),
        (lambda e: e.append({**e[3], "code": "FU2"}), "epoch FOLLOW-UP: more than one element"),
        (lambda e: e[3].update(duration="P"), "names at least one amount"),
    ],
    ids=["epoch", "arm missing", "blinded rules differ", "no end", "arm unknown", "two elements", "duration"],
)
def test_the_protocol_s_elements_are_refused_unless_they_cover_each_arm_and_epoch(change: Any, message: str) -> None:
    raw = _YAML.load(Path(FIRST_PROTOCOL).read_text(encoding="utf-8"))
    change(raw["elements"])
    assert message in _refused(raw)


@no_core("a protocol check; no CORE rule")
def test_elements_need_the_visits_epochs_and_a_first_dose_start_needs_the_treatment_record() -> None:
    raw = _YAML.load(Path(FIRST_PROTOCOL).read_text(encoding="utf-8"))
    for v in raw["visits"]:
        v.pop("epoch")
    assert "elements need the visits' epochs" in _refused(raw)
    raw = _cap_with_elements()
    raw["elements"][0]["starts_at"] = "first_dose"
    for e in raw["elements"][1:-1]:
        e["starts_at"] = "first_dose"
    assert "first_dose needs the treatment record" in _refused(raw)


# -- SUPP-- ----------------------------------------------------------------------------------------------------


@core("CORE-000134", "CORE-000221", "CORE-000457", "CORE-000502")
def test_text_past_200_bytes_continues_in_supp_records_and_define_describes_them(first: Exported) -> None:
    """SDTMIG 3.4 4.5.3.2: DSTERM keeps the reason's first 200 bytes (cut before a space) and SUPPDS holds the
    rest as DSTERM1, DSTERM2, ... on the same DSSEQ, so the XPT files lose nothing; define.xml describes SUPPDS
    and stays valid against the Define-XML 2.1 schema; a blinded SUPP names no arm."""
    assert len(LONG_REASON.encode()) > 400
    for folder in (first.blinded, first.with_arms):
        ds, supp = xpt(folder, "DS"), xpt(folder, "SUPPDS")
        assert (ds.DSTERM.str.encode("utf-8").str.len() <= 200).all()
        assert set(supp.RDOMAIN) == {"DS"} and set(supp.IDVAR) == {"DSSEQ"} and set(supp.QEVAL) == {""}
        assert all(re.fullmatch("[A-Z_][A-Z0-9_]{0,7}", q) for q in supp.QNAM)
        (record,) = ds[[len(t) > 100 and LONG_REASON.startswith(t) for t in ds.DSTERM]].itertuples()
        pieces = supp[(supp.USUBJID == record.USUBJID) & (str(int(record.DSSEQ)) == supp.IDVARVAL)]
        assert list(pieces.QNAM) == [f"DSTERM{n}" for n in range(1, len(pieces) + 1)] and len(pieces) >= 2
        assert record.DSTERM + "".join(pieces.QVAL) == LONG_REASON
        assert all(len(q.encode()) <= 200 for q in pieces.QVAL)
        assert set(supp.QORIG) == {"Collected"}  # DSTERM's origin
        root = ET.parse(folder / "sdtm" / "define.xml").getroot()  # noqa: S314 - our own file
        groups = {g.get("Name"): g for g in root.iter(f"{{{ODM}}}ItemGroupDef")}
        assert {"SUPPDS", "TE", "TA", "SE", "TS"} <= set(groups)
        refs = [r.get("ItemOID") for r in groups["SUPPDS"].iter(f"{{{ODM}}}ItemRef")]
        assert refs == [f"IT.SUPPDS.{c}" for c in supp.columns]
        DEFINE_SCHEMA.validate(str(folder / "sdtm" / "define.xml"))
    words = {w for a in RAW["arms"] for w in (a["code"], a["name"], a["intervention"]["name"])}
    assert not {str(c) for c in xpt(first.blinded, "SUPPDS").to_numpy().ravel()} & words
