"""A child's assent in every export, and back through the ODM import (both databases).

The first protocol given ``eligibility.assent: {from_age: 18, unit: years, age_field: age, form_versions: [A1]}``, so
that its screened patients (aged 45) are of assent age when a representative consents. Through the services:

| screening | consent records, by id                           | assent                             | enrolled |
|-----------|-------------------------------------------------|------------------------------------|----------|
| RAZ-S0001 | 1: a representative consents                    | given, Dr A, form A1, at T1        | RAZ-001  |
|           | 5: the representative re-consents (enrolled)    | dissent, Dr B, form A1, at T5      |          |
| RAZ-S0002 | 2: a representative consents                    | dissent, Dr C, form A1, at T2      | never    |
| RAZ-S0003 | 3: a representative consents                    | not sought: "unable to understand" | RAZ-002  |
| RAZ-S0004 | 4: the participant's own consent                | none (not sought from an adult)    | RAZ-003  |

What each export carries, read back by a reader of its own (csv, pyarrow, pyreadstat, xmlschema, fhir.resources):

| export              | the assent                                                                                   |
|---------------------|----------------------------------------------------------------------------------------------|
| CSV, Parquet,       | consents table (one row per participant, the consent they were enrolled on): ``assent``      |
| Stata, SPSS, SAS    | (given, dissent, not_sought, labelled Given, Dissent, Not sought), ``assent_obtained_at``    |
|                     | (UTC), ``assent_form_version``, ``assent_not_sought_reason``; blank for RAZ-003              |
| ODM                 | ``Assent``, ``AssentObtainedBy``, ``AssentObtainedAt``, ``AssentFormVersion``,               |
|                     | ``AssentNotSoughtReason`` on ``tw:Enrolment`` and each ``tw:Consent``; valid by the schema   |
| FHIR                | a Consent of the child's own after the representative's (Patient as performer,               |
|                     | sourceReference the representative's Consent): given permit, dissent rejected/deny;          |
|                     | not sought: none                                                                             |
| SDTM DS             | INFORMED ASSENT OBTAINED (PROTOCOL MILESTONE, C161418) at T1 for RAZ-001 only; define.xml's  |
|                     | DSDECOD code list has the term                                                               |

The ODM import reads the assent back (the ``consents`` table comes back row for row) and checks it by the rule the
consent service applies; refused, naming the record and the rule, nothing written:

| the file edited                                      | refused at                                                  |
|------------------------------------------------------|-------------------------------------------------------------|
| RAZ-002's not-sought assent taken off (none at all)  | RAZ-002/tw:Enrolment/@Assent: ... eligibility.assent.from_age |
| RAZ-001's assent made a dissent (yet enrolled)       | RAZ-001/tw:Enrolment/@Assent: ... own dissent ...            |
| RAZ-001's assent on form A9                          | @AssentFormVersion: ... eligibility.assent.form_versions    |
| RAZ-S0002's dissent without who sought it            | tw:Screening[1]/tw:Consent[1]/@AssentObtainedBy             |
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pyreadstat
import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import Engine, select

from tests.conftest import fresh_database
from tests.spec.exports.test_fhir import _references
from tests.spec.exports.test_odm_queries import _valid
from tests.spec.forms.conftest import earlier_today
from tests.spec.protocol.conftest import mutated_text
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.fhir import FhirExporter, FhirSample
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter
from trialwright.exports.sas import SasExporter
from trialwright.exports.sdtm import SdtmExporter
from trialwright.exports.spss import SpssExporter
from trialwright.exports.stata import StataExporter
from trialwright.exports.tabular import CsvExporter, ParquetExporter
from trialwright.protocol.loader import LoadedProtocol, load_protocol_text
from trialwright.services import audit
from trialwright.services.exports import export_source
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.screening import ScreeningError, enrol, record_consent, screen
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import consents, screenings

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"
TEHRAN = ZoneInfo("Asia/Tehran")
KEY = b"a key the data manager keeps, 32b"
FORMATS = {"csv": CsvExporter, "parquet": ParquetExporter, "stata": StataExporter, "spss": SpssExporter,
           "sas": SasExporter}  # fmt: skip


def _with_assent() -> LoadedProtocol:
    def amend(doc: Any) -> None:
        doc["eligibility"]["assent"] = {"from_age": 18, "unit": "years", "age_field": "age", "form_versions": ["A1"],
                                      "consent_age": 21}  # fmt: skip

    return load_protocol_text(mutated_text(amend))


def _at(minutes: int) -> dt.datetime:
    """A whole second (every format holds it exactly) ``minutes`` before now, on the sites' today."""
    return earlier_today(minutes).replace(microsecond=0)


LAR = {"given_by": "representative", "representative_name": "Maryam Ahmadi", "representative_relationship": "mother"}


def _assents(trial: Trial) -> dict[str, dt.datetime]:
    """The module's table through the services; the assent times by name."""
    e, investigator = trial.engine, who(trial, Role.INVESTIGATOR)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    times = {"T1": _at(50), "T2": _at(45), "T5": _at(20)}

    def screened() -> int:
        return screen(e, coordinator, site="RAZ", screened_on=TODAY, values={**TYPED, "age": 45}).id

    def consent(sid: int, minutes: int, **given: Any) -> None:
        record_consent(e, investigator, sid, form_version="1.0", obtained_by="Dr K", obtained_at=_at(minutes + 1),
                       **given)  # fmt: skip

    one = screened()
    consent(one, 50, **LAR, assent="given", assent_obtained_by="Dr A", assent_obtained_at=times["T1"],
            assent_form_version="A1")  # fmt: skip
    enrol(e, coordinator, one)
    two = screened()
    consent(two, 45, **LAR, assent="dissent", assent_obtained_by="Dr C", assent_obtained_at=times["T2"],
            assent_form_version="A1")  # fmt: skip
    with pytest.raises(ScreeningError, match="own dissent"):
        enrol(e, coordinator, two)
    three = screened()
    consent(three, 40, **LAR, assent="not_sought", assent_not_sought_reason="unable to understand")
    enrol(e, coordinator, three)
    four = screened()
    consent(four, 35, given_by="participant")
    enrol(e, coordinator, four)
    consent(one, 20, **LAR, kind="reconsent", assent="dissent", assent_obtained_by="Dr B",
            assent_obtained_at=times["T5"], assent_form_version="A1")  # fmt: skip
    return times


class Exported:
    def __init__(self, trial: Trial, folder: Path, times: dict[str, dt.datetime]) -> None:
        self.trial, self.folder, self.times = trial, folder, times


@pytest.fixture(scope="module")
def exported(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """One trial per database, exported to every format once."""
    trial = make_trial(module_database_url, _with_assent())
    try:
        times = _assents(trial)
        folder = tmp_path_factory.mktemp("exports")
        source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
        for name, exporter in FORMATS.items():
            (folder / name).mkdir()
            exporter().write(source, folder / name)
        for name, writer in (("odm", OdmExporter()), ("sdtm", SdtmExporter()),
                             ("fhir", FhirExporter(key=KEY, sample=FhirSample(first=0, rate=1)))):  # fmt: skip
            (folder / name).mkdir()
            writer.write(source, folder / name)
        yield Exported(trial, folder, times)
    finally:
        trial.engine.dispose()


def _expected(times: dict[str, dt.datetime]) -> dict[str, tuple[Any, ...]]:
    """participant -> (assent, obtained at (UTC), form version, reason not sought) in the consents table."""
    return {
        "RAZ-001": ("given", times["T1"], "A1", None),
        "RAZ-002": ("not_sought", None, None, "unable to understand"),
        "RAZ-003": (None, None, None, None),
    }


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_consents_table_carries_the_assent_in_csv_and_parquet(exported: Exported) -> None:
    want = _expected(exported.times)
    rows = {r["participant_id"]: r for r in _csv(exported.folder / "csv" / "consents.csv")}
    assert sorted(rows) == sorted(want)  # RAZ-S0002's dissent was never enrolled: no participant, no row
    for pid, (assent, at, form, reason) in want.items():
        row = rows[pid]
        got = (row["assent"], row["assent_obtained_at"], row["assent_form_version"], row["assent_not_sought_reason"])
        assert got == (assent or "", at.astimezone(dt.UTC).isoformat() if at else "", form or "", reason or ""), pid
    table = pq.read_table(exported.folder / "parquet" / "consents.parquet").to_pylist()
    got_parquet = {r["participant_id"]: (r["assent"], r["assent_obtained_at"], r["assent_form_version"],
                                         r["assent_not_sought_reason"]) for r in table}  # fmt: skip
    assert got_parquet == want
    schema = pq.read_schema(exported.folder / "parquet" / "consents.parquet")
    assert str(schema.field("assent_obtained_at").type) == "timestamp[us, tz=UTC]"
    assert (schema.field("assent").metadata or {})[b"label"] == b"Child's assent"


def _variables(folder: Path, file: str) -> dict[str, str]:
    return {r["column"]: r["variable"] for r in _csv(folder / "names.csv") if r["file"] == file}


def _naive_utc(at: dt.datetime | None) -> dt.datetime | None:
    return None if at is None else at.astimezone(dt.UTC).replace(tzinfo=None)


@pytest.mark.parametrize(("fmt", "file", "read"), [
    ("stata", "consents.dta", pyreadstat.read_dta),
    ("spss", "consents.sav", pyreadstat.read_sav),
    ("sas", "consents.xpt", pyreadstat.read_xport),
])  # fmt: skip
def test_stata_spss_and_sas_carry_the_assent_with_its_codes(
    exported: Exported, fmt: str, file: str, read: Callable[..., Any]
) -> None:
    folder = exported.folder / fmt
    names = _variables(folder, file)
    frame, meta = read(folder / file)
    numbered = {(r["variable"], float(r["number"])): (r["code"], r["label"])
                for r in _csv(folder / "value_codes.csv") if r["file"] == file} if fmt == "stata" else {}  # fmt: skip

    def code(value: Any) -> str | None:
        if value is None or value != value or value == "":
            return None
        return numbered[(names["assent"], float(value))][0] if fmt == "stata" else str(value)

    def text(value: Any) -> str | None:
        return None if value is None or value != value or value == "" else str(value)

    def moment(value: Any) -> dt.datetime | None:
        return None if value is None or value != value else value.to_pydatetime().replace(microsecond=0)

    got = {
        row[names["participant_id"]]: (code(row[names["assent"]]), moment(row[names["assent_obtained_at"]]),
                                       text(row[names["assent_form_version"]]),
                                       text(row[names["assent_not_sought_reason"]]))
        for _, row in frame.iterrows()
    }  # fmt: skip
    want = {pid: (a, _naive_utc(at), f, r) for pid, (a, at, f, r) in _expected(exported.times).items()}
    assert got == want
    labels = {"given": "Given", "dissent": "Dissent", "not_sought": "Not sought"}
    if fmt == "stata":
        assert {c: label for (v, _), (c, label) in numbered.items() if v == names["assent"]} == labels
        assert set(meta.variable_value_labels[names["assent"]].values()) == set(labels.values())
    elif fmt == "spss":
        assert meta.variable_value_labels[names["assent"]] == labels
    else:  # SAS transport holds no value labels: formats.sas gives them
        formats = (folder / "formats.sas").read_text(encoding="utf-8")
        assert all(f"'{c}' = '{label}'" in formats for c, label in labels.items()), formats


def _consent_attributes(root: ET.Element) -> dict[str, dict[str, str]]:
    """Each consent record's attributes by its id: ``tw:Enrolment``'s consent (``ConsentId``) and every
    ``tw:Consent``."""
    out: dict[str, dict[str, str]] = {}
    for enrolment in root.iter(f"{TW}Enrolment"):
        out[enrolment.get("ConsentId", "")] = dict(enrolment.attrib)
    for c in root.iter(f"{TW}Consent"):
        out[c.get("Id", "")] = dict(c.attrib)
    return out


ASSENT_NAMES = ("Assent", "AssentObtainedBy", "AssentObtainedAt", "AssentFormVersion", "AssentNotSoughtReason")


def test_odm_carries_each_consents_assent_valid_against_the_schema(exported: Exported, tmp_path: Path) -> None:
    (path,) = [p for p in (exported.folder / "odm").iterdir() if p.name.endswith(".xml") and "define" not in p.name]
    assert _valid(path, tmp_path) == []
    t = exported.times
    got = {n: tuple(a.get(k) for k in ASSENT_NAMES)
           for n, a in _consent_attributes(ET.parse(path).getroot()).items()}  # noqa: S314 - our own file  # fmt: skip
    utc = {k: v.astimezone(dt.UTC).isoformat() for k, v in t.items()}
    assert got == {
        "1": ("given", "Dr A", utc["T1"], "A1", None),
        "2": ("dissent", "Dr C", utc["T2"], "A1", None),
        "3": ("not_sought", None, None, None, "unable to understand"),
        "4": (None, None, None, None, None),
        "5": ("dissent", "Dr B", utc["T5"], "A1", None),
    }


def test_fhir_has_the_childs_assent_as_a_consent_of_its_own_linked_to_the_representatives(
    exported: Exported,
) -> None:
    folder = exported.folder / "fhir" / "participants"
    t = exported.times
    seen: dict[str, list[tuple[Any, ...]]] = {}
    for pid in ("RAZ-001", "RAZ-002", "RAZ-003"):
        text = (folder / f"{pid}.json").read_text(encoding="utf-8")
        Bundle.model_validate_json(text)  # valid by fhir.resources
        bundle = json.loads(text)
        resources = [e["resource"] for e in bundle["entry"]]
        inside = {f"{r['resourceType']}/{r['id']}" for r in resources}
        assert not {x for r in resources for x in _references(r)} - inside, pid
        [patient] = [r for r in resources if r["resourceType"] == "Patient"]
        rows = []
        for c in (r for r in resources if r["resourceType"] == "Consent"):
            kind = c["performer"][0]["reference"].split("/")[0]
            linked = c.get("sourceReference", {}).get("reference")
            rows.append((c["category"][0]["text"].split(" ")[0], c["status"], c["provision"]["type"], kind,
                         linked is not None, dt.datetime.fromisoformat(c["dateTime"]), c["policyRule"]["text"]))
            if linked is not None:  # the assent: the child's own, after the representative's Consent it goes with
                assert c["performer"] == [{"reference": f"Patient/{patient['id']}"}]
                assert linked in inside and linked.startswith("Consent/")
                assert dt.datetime.fromisoformat(c["provision"]["period"]["start"]) == dt.datetime.fromisoformat(
                    c["dateTime"])
        seen[pid] = rows
    rule = "The protocol of trial IRCT20190101042197N2"
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in seen["RAZ-001"]] == [
        ("Informed", "inactive", "permit", "RelatedPerson", False),  # replaced by the re-consent
        ("Assent", "inactive", "permit", "Patient", True),  # given, with the consent it goes with
        ("Informed", "active", "permit", "RelatedPerson", False),
        ("Assent", "rejected", "deny", "Patient", True),  # the re-consent's dissent
    ]
    assert [r[5] for r in seen["RAZ-001"] if r[0] == "Assent"] == [t["T1"], t["T5"]]
    assert {r[6] for r in seen["RAZ-001"] if r[0] == "Assent"} == {f"{rule}, assent form version A1"}
    assert [(r[0], r[1], r[3]) for r in seen["RAZ-002"]] == [("Informed", "active", "RelatedPerson")]  # not sought
    assert [(r[0], r[1], r[3]) for r in seen["RAZ-003"]] == [("Informed", "active", "Patient")]


def test_sdtm_ds_has_the_given_assent_as_a_protocol_milestone_and_define_lists_the_term(exported: Exported) -> None:
    ds, _ = pyreadstat.read_xport(exported.folder / "sdtm" / "sdtm" / "ds.xpt")
    dm, _ = pyreadstat.read_xport(exported.folder / "sdtm" / "sdtm" / "dm.xpt")
    # the dissent is never enrolled: no DM row
    assert sorted(u[-len("RAZ-001"):] for u in dm.USUBJID) == ["RAZ-001", "RAZ-002", "RAZ-003"]
    assent = ds[ds.DSDECOD == "INFORMED ASSENT OBTAINED"]
    assert len(assent) == 1  # RAZ-001's given assent; not the dissent, not the one not sought
    (row,) = assent.to_dict("records")
    assert row["USUBJID"].endswith("RAZ-001")
    assert (row["DSTERM"], row["DSCAT"]) == ("INFORMED ASSENT OBTAINED", "PROTOCOL MILESTONE")
    assert row["DSSTDTC"] == exported.times["T1"].astimezone(TEHRAN).isoformat(timespec="minutes")
    root = ET.parse(exported.folder / "sdtm" / "sdtm" / "define.xml").getroot()  # noqa: S314 - our own file
    odm = "{http://www.cdisc.org/ns/odm/v1.3}"
    (decod,) = [d for d in root.iter(f"{odm}ItemDef") if d.get("Name") == "DSDECOD"]
    ref = decod.find(f"{odm}CodeListRef")
    assert ref is not None
    (codelist,) = [c for c in root.iter(f"{odm}CodeList") if c.get("OID") == ref.get("CodeListOID")]
    items = [i for i in codelist if i.get("CodedValue") == "INFORMED ASSENT OBTAINED"]
    assert len(items) == 1
    # as INFORMED CONSENT OBTAINED: a milestone term in DSDECOD's list, named with its CDISC PROTMLST code
    assert "a PROTMLST (C114118) term, C161418" in "".join(items[0].itertext())


# --- the ODM import ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(module_database_url: str, tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Trial]:  # fmt: skip
    """A fresh trial of the same protocol on a second database of the same kind."""
    kind = "sqlite" if module_database_url.startswith("sqlite") else "postgresql"
    reason = request.getfixturevalue("postgres_available") if kind == "postgresql" else None
    with fresh_database(kind, tmp_path_factory.mktemp("target"), reason) as url:
        fresh = make_trial(url, _with_assent())
        try:
            yield fresh
        finally:
            fresh.engine.dispose()


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    c, s = consents.c, screenings.c
    query = (
        select(s.site, s.number, *(col for col in c if col.name != "screening_id"))
        .join(screenings, s.id == c.screening_id)
        .order_by(c.id)
    )
    with session_scope(engine) as session:
        return [tuple(r) for r in session.execute(query)]


def _odm(exported: Exported) -> Path:
    (path,) = [p for p in (exported.folder / "odm").iterdir() if p.name.endswith(".xml")]
    return path


def _subject(pid: str, pattern: str, replacement: str) -> Callable[[str], str]:
    """An edit of ``pid``'s ``tw:Enrolment`` start tag."""

    def edit(text: str) -> str:
        start = re.search(rf'<tw:Enrolment ScreeningNumber="{pid}"[^>]*>', text)
        assert start is not None, pid
        changed, n = re.subn(pattern, replacement, start.group(0))
        assert n == 1, (pid, pattern)
        return text.replace(start.group(0), changed, 1)

    return edit


REFUSED = [
    ("an assent needed and none recorded",
     _subject("RAZ-S0003", r' Assent="not_sought" AssentNotSoughtReason="[^"]*"', ""),
     ["SubjectData[@SubjectKey=RAZ-002]/tw:Enrolment/@Assent: the participant is 18 years or older "
      "(eligibility.assent.from_age)", "(the rule recording it applies)"]),
    ("a dissent followed by an enrolment", _subject("RAZ-S0001", r' Assent="given"', ' Assent="dissent"'),
     ["SubjectData[@SubjectKey=RAZ-001]/tw:Enrolment/@Assent: RAZ-S0001's own dissent is recorded with the "
      "representative's consent; a dissent is respected and the participant is not enrolled (eligibility.assent)"]),
    ("an assent form the protocol lacks", _subject("RAZ-S0001", r' AssentFormVersion="A1"', ' AssentFormVersion="A9"'),
     ["SubjectData[@SubjectKey=RAZ-001]/tw:Enrolment/@AssentFormVersion: must be one of A1 "
      "(eligibility.assent.form_versions)"]),
    ("a dissent without who sought it",
     lambda text: re.sub(r'(<tw:Screening [^>]*>(?:(?!</tw:Screening>).)*?<tw:Consent [^>]*?) AssentObtainedBy="[^"]*"',
                         r"\1", text, count=1, flags=re.S),
     ["ClinicalData/tw:Screening[1]/tw:Consent[1]/@AssentObtainedBy: name the person who sought the participant's "
      "assent"]),
]  # fmt: skip


def test_an_import_whose_assent_breaks_the_rule_is_refused_by_name_and_nothing_is_written(
    exported: Exported, target: Trial, tmp_path: Path
) -> None:
    text = _odm(exported).read_text(encoding="utf-8")
    manager = who(target, Role.DATA_MANAGER)
    before = (_rows(target.engine), audit.count(target.engine))
    for case, change, named in REFUSED:
        changed = change(text)
        assert changed != text, case
        bad = tmp_path / f"{case.replace(' ', '-')}.odm.xml"
        bad.write_text(changed, encoding="utf-8")
        with pytest.raises(OdmImportError) as refused:
            import_odm(target.engine, manager, bad)
        for words in named:
            assert words in str(refused.value), (case, str(refused.value))
        assert (_rows(target.engine), audit.count(target.engine)) == before, case


def test_export_import_gives_back_every_consent_row_with_its_assent(exported: Exported, target: Trial) -> None:
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), _odm(exported))
    assert report.byte_identical, report.reexport_difference
    assert _rows(target.engine) == _rows(exported.trial.engine)
    assert [r[-5:] for r in _rows(target.engine)] == [
        ("given", "Dr A", exported.times["T1"], "A1", None),
        ("dissent", "Dr C", exported.times["T2"], "A1", None),
        ("not_sought", None, None, None, "unable to understand"),
        (None, None, None, None, None),
        ("dissent", "Dr B", exported.times["T5"], "A1", None),
    ]
