"""CDISC ODM 1.3.2: the export is ODM that odmlib loads and validates, it holds every participant, visit, form
and value of the trial and never an arm, and importing it into a fresh trial of the same protocol gives
back the same trial exactly; a file that breaks a rule is refused by name and changes nothing.

The trial is a simulated one (20 patients screened) with a few values the simulation does not draw added
by hand: an unscheduled visit, not done, below and above the limits of quantification, a unit as entered,
free text that XML must escape, and a locked form. Every spec runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import odmlib.loader as odm_loader
import odmlib.odm_loader as odm_xml_loader
import pytest
from odmlib import schema_manager
from odmlib.odm_1_3_2.rules.metadata_schema import MetadataSchema
from odmlib.odm_parser import ODMSchemaValidator
from odmlib.oid_generator import create_oid_checker
from sqlalchemy import Engine, select

from tests.conftest import fresh_database
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.domain.safety import REPORT_FIELDS
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter, extension_schema, from_odm, to_odm
from trialwright.exports.odm.schema import EXTENDED_SCHEMA, NAMESPACE_SCHEMA
from trialwright.protocol import FieldType, FormField, load_protocol
from trialwright.services import audit
from trialwright.services.exports import export_source, run_export
from trialwright.services.forms import lock_form, record_visit, save_form
from trialwright.services.odm_import import OdmImportError, OdmImportReport, import_odm
from trialwright.services.replay import replay
from trialwright.services.simulation import simulate
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.safety_tables import adverse_events, dsmb_decisions
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
TRIAL_ID = PROTOCOL.trial_id
ODM_SCHEMAS = Path(schema_manager.get_schema_dir("odm", "1.3.2"))
#: CDISC's ODM 1.3.2 schema, copied byte for byte from CDISC's repository (see the README there).
CDISC_ODM = Path(__file__).resolve().parents[2] / "data" / "odm-1.3.2"
CDISC_SHA256 = {
    "ODM1-3-2-foundation.xsd": "3f94ee334d63757430054d160990e3ad4588400a35c5b06f8dba6302b317764c",
    "ODM1-3-2.xsd": "ebc22b9eceb41db5e2af500182e3a5dfa20c8ec4aea711ddf22c978a62643fc5",
    "xml.xsd": "258ac9c0f078fc9692735140f2d21541e8bf16941bed42833c1a5f965b52c6dc",
    "xmldsig-core-schema.xsd": "111a972ccb9916cb95df9af4b6c1775307292463639de69d6fe63516bb2d850e",
    "xlink.xsd": "e4b134b25c547bc74808bbcc0818febd2f4a58b759556443999365ec4d53d594",
}


# --- the trial, its export, and a fresh trial to import it into ----------------------------------


def _add_what_the_simulation_does_not_draw(trial: Trial) -> None:
    """An unscheduled visit with censored, not done and converted lab values and awkward text; a locked form."""
    investigator = who(trial, Role.INVESTIGATOR)
    with session_scope(trial.engine) as session:
        gone = set(session.execute(select(withdrawals.c.participant_id)).scalars())
        person = next(
            p for p in session.execute(select(participants).order_by(participants.c.participant_id))
            if p.participant_id not in gone and p.site in investigator.sites
        )  # fmt: skip
        signed = session.execute(
            select(visit_records.c.participant_id, visit_records.c.visit_id, form_records.c.form_id)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .where(form_records.c.state == "signed")
            .order_by(form_records.c.id)
        ).first()
    day = (person.enrolled_at + dt.timedelta(days=2)).date()
    visit = record_visit(trial.engine, investigator, person.participant_id, None, day, label="Fever on day 2")
    save_form(trial.engine, investigator, person.participant_id, visit, "labs", {
        "sampled_at": dt.datetime.combine(day, dt.time(10, 15), tzinfo=ZoneInfo("Asia/Tehran")).isoformat(),
        "tnf_alpha": {"below_lloq": 1.5},
        "il6": {"above_uloq": 5000, "unit": "ng/L"},
        "crp": {"value": "12.50", "unit": "mg/dL"},
        "ddimer": {"not_done": "sample clotted"},
        "lymphocytes": 1200,
        "tnf_alpha_kit": 'Kit "A" & <lot 7>\r\nsecond line\ttabbed',
    })  # fmt: skip
    # A value changed twice with reasons: its two earlier audit records go into the file's tw:History.
    for count, why in ((1100, "transcription error"), (1150, "lab corrected its report")):
        save_form(trial.engine, investigator, person.participant_id, visit, "labs", {"lymphocytes": count}, reason=why)
    assert signed is not None, "the simulation signs some forms"
    lock_form(trial.engine, who(trial, Role.DATA_MANAGER), *signed)


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


@pytest.fixture(scope="module")
def source(module_database_url: str) -> Trial:
    trial = make_trial(module_database_url)
    summary = simulate(trial.engine, FIRST_PROTOCOL, 20, seed=13)
    assert summary.enrolled >= 8 and summary.visits_missed >= 1 and summary.forms_signed >= 1
    _add_what_the_simulation_does_not_draw(trial)
    return trial


@dataclasses.dataclass(frozen=True)
class Exported:
    path: Path
    progress: tuple[int, ...]
    taken_at: dt.datetime


@pytest.fixture(scope="module")
def exported(source: Trial, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    folder = tmp_path_factory.mktemp("odm")
    progress: list[int] = []
    made = export_source(source.engine, who(source, Role.DATA_MANAGER))
    written = OdmExporter().write(made, folder, progress.append)
    assert written == [folder / f"{TRIAL_ID}.odm.xml", folder / NAMESPACE_SCHEMA, folder / EXTENDED_SCHEMA]
    return Exported(written[0], tuple(progress), made.taken_at)


@pytest.fixture(scope="module")
def target(
    module_database_url: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trial]:
    """A fresh trial of the same protocol, on a second database of the same kind."""
    kind = _kind(module_database_url)
    reason = request.getfixturevalue("postgres_available") if kind == "postgresql" else None
    with fresh_database(kind, tmp_path_factory.mktemp("target"), reason) as url:
        yield make_trial(url)


@pytest.fixture(scope="module")
def imported(target: Trial, exported: Exported) -> tuple[Trial, OdmImportReport]:
    return target, import_odm(target.engine, who(target, Role.DATA_MANAGER), exported.path)


def _trial_as_stored(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the import restores, as the tables hold it (database ids left out)."""
    p, s, v, f = participants.c, screenings.c, visit_records.c, form_records.c
    with session_scope(engine) as session:
        rows = {
            "participants": select(p.participant_id, p.site, p.number, p.enrolled_at, p.enrolled_by),
            "screenings": select(s.site, s.number, s.screened_on, s.screening_values, s.decision, s.decision_detail)
            .join(participants, p.screening_id == s.id),
            "consents": select(p.participant_id, *(c for c in consents.c if c.name not in {"id", "screening_id"}))
            .join(consents, consents.c.screening_id == p.screening_id).where(consents.c.decision == "consent"),
            "withdrawals": select(*(c for c in withdrawals.c if c.name != "id")),  # who recorded it and when too
            "dsmb_decisions": select(*(c for c in dsmb_decisions.c if c.name not in {"id", "reason"})),  # no reason
            "visits": select(v.participant_id, v.visit_id, v.visit_date, v.missed_reason, v.unscheduled, v.label,
                             v.created_by),
            "forms": select(v.participant_id, v.visit_id, v.visit_date, f.form_id, f.form_values, f.state, f.version,
                            f.updated_at, f.updated_by, f.verified_at, f.verified_by, f.signed_at, f.signed_by,
                            f.signature_meaning, f.state_before_lock, f.locked_by)
            .join(form_records, f.visit_record_id == v.id),
        }  # fmt: skip
        return {name: sorted(tuple(r) for r in session.execute(query)) for name, query in rows.items()}


def _everything(engine: Engine) -> tuple[Any, ...]:
    """The stored trial and its audit trail's length and head: what a refused import must leave alone."""
    head = audit.entries(engine, limit=1)
    return _trial_as_stored(engine), audit.count(engine), head[0].hash if head else None


def _load(path: Path) -> Any:
    loader = odm_loader.ODMLoader(odm_xml_loader.XMLODMLoader(model_package="odm_1_3_2"))
    loader.open_odm_document(str(path))
    return loader.root()


# --- the export is ODM 1.3.2 ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def extended_schema(tmp_path_factory: pytest.TempPathFactory) -> ODMSchemaValidator:
    """CDISC's ODM 1.3.2 XSD (as odmlib ships it) with trialwright's extension redefined in, compiled once."""
    return ODMSchemaValidator(xsd_file=str(extension_schema(tmp_path_factory.mktemp("xsd"), ODM_SCHEMAS)))


@pytest.mark.covers("REG-11")
def test_the_export_is_valid_against_cdiscs_odm_1_3_2_schema_with_the_extension_written_beside_it(
    exported: Exported, tmp_path: Path
) -> None:
    """The export folder holds the extension's XSD; with CDISC's own ODM 1.3.2 schema files put beside it (the
    copy in tests/data, checked byte for byte), xmlschema finds no error in the export. Against CDISC's schema
    alone every error is about a trialwright extension element, and without those elements there is none."""
    import xmlschema

    for name, digest in CDISC_SHA256.items():
        assert hashlib.sha256((CDISC_ODM / name).read_bytes()).hexdigest() == digest, name
    folder = exported.path.parent
    shipped = {name: (folder / name).read_bytes() for name in (NAMESPACE_SCHEMA, EXTENDED_SCHEMA)}
    assert b'schemaLocation="ODM1-3-2-foundation.xsd"' in shipped[EXTENDED_SCHEMA]  # relative: no path of this machine
    check = tmp_path / "check"
    check.mkdir()
    for name in CDISC_SHA256:
        shutil.copyfile(CDISC_ODM / name, check / name)
    for name, text in shipped.items():
        (check / name).write_bytes(text)
    extended = xmlschema.XMLSchema(str(check / EXTENDED_SCHEMA))
    assert b"<tw:Query " in exported.path.read_bytes()  # the simulation's queries (soft limits, data checks)
    assert "<tw:AdverseEvent " in exported.path.read_text(encoding="utf-8")  # the simulated trial's events are in it
    assert [str(e) for e in extended.iter_errors(str(exported.path))] == []

    plain = xmlschema.XMLSchema(str(CDISC_ODM / "ODM1-3-2.xsd"))
    errors = list(plain.iter_errors(str(exported.path)))
    assert errors, "plain ODM 1.3.2 has no place for the extension elements"
    assert {re.sub(r" at position \d+", "", e.reason or "") for e in errors} <= {
        f"Unexpected child with tag 'tw:{name}'."
        for name in (
            "StoredValue", "Form", "Visit", "Enrolment", "AdverseEvent", "Query", "DsmbDecision", "History", "Action",
            "Screening",
        )
    }
    tree = ET.parse(exported.path)  # noqa: S314 - our own file
    for parent in tree.iter():
        for child in [c for c in parent if c.tag.startswith(f"{{{TW_NS}}}")]:
            parent.remove(child)
    stripped = tmp_path / "plain.xml"
    tree.write(stripped, encoding="utf-8", xml_declaration=True)
    assert list(plain.iter_errors(str(stripped))) == []


def test_the_export_is_odm_1_3_2_that_odmlib_loads_and_validates(
    exported: Exported, extended_schema: ODMSchemaValidator, tmp_path: Path
) -> None:
    """odmlib's strict ODM 1.3.2 model loads the file (type-checking every element and attribute); its
    element order and OID reference checks find nothing; the file is valid against CDISC's ODM 1.3.2 XSD
    with trialwright's extension redefined in, and without the tw elements against the plain ODM 1.3.2 XSD."""
    odm = _load(exported.path)
    assert (odm.FileType, odm.ODMVersion, odm.CreationDateTime) == ("Snapshot", "1.3.2", exported.taken_at.isoformat())
    assert odm.Study[0].OID == TRIAL_ID and odm.Study[0].MetaDataVersion[0].OID == "MDV.2.0"
    assert odm.Study[0].GlobalVariables.ProtocolName._content == TRIAL_ID
    assert odm.validate(collect_errors=True, oid_checker=create_oid_checker("odm_1_3_2")) == []

    assert list(extended_schema.xsd.iter_errors(str(exported.path))) == []

    tree = ET.parse(exported.path)  # noqa: S314 - our own file
    for parent in tree.iter():
        for child in [c for c in parent if c.tag.startswith(f"{{{TW_NS}}}")]:
            parent.remove(child)
    plain = tmp_path / "plain.xml"
    tree.write(plain, encoding="utf-8", xml_declaration=True)
    assert list(ODMSchemaValidator(standard="odm", version="1.3.2").xsd.iter_errors(str(plain))) == []


def test_the_metadata_passes_odmlib_conformance_but_for_its_single_rangecheck_rule(exported: Exported) -> None:
    """odmlib's Cerberus conformance schema for ODM 1.3.2 covers the metadata. Its one complaint (odmlib
    0.2.1) is its own defect: it types ItemDef's RangeCheck as one dict, while the ODM 1.3.2 XSD (checked
    above) and odmlib's own model allow several (a lower and an upper limit, hard and soft)."""
    loader = odm_loader.ODMLoader(odm_xml_loader.XMLODMLoader(model_package="odm_1_3_2"))
    loader.open_odm_document(str(exported.path))
    errors = loader.MetaDataVersion().validate(collect_errors=True, conformance_checker=MetadataSchema())
    assert [str(e) for e in errors if "RangeCheck: must be of dict type" not in str(e)] == []


# field                         DataType   unit       range checks (comparator, value, hard/soft)         code list
METADATA = [
    ("IT.vitals.spo2",          "integer", "%",       [("GE", "50", "Hard"), ("LE", "100", "Hard"),
                                                       ("GE", "70", "Soft"), ("LE", "100", "Soft")],      None),
    ("IT.vitals.fio2",          "float",   "fraction", [("GE", "0.21", "Hard"), ("LE", "1", "Hard")],     None),
    ("IT.vitals.on_oxygen",     "boolean", None,      [],                                                None),
    ("IT.vitals.assessed_at",   "datetime", None,     [],                                                None),
    ("IT.vitals.consciousness", "text",    None,      [],
                                           ["alert", "new_confusion", "voice", "pain", "unresponsive"]),
    ("IT.demographics.birth_date", "date", None,      [],                                                None),
    ("IT.labs.il6",             "float",   "pg/mL",   [("GE", "0", "Hard"), ("LE", "200000", "Hard"),
                                                       ("GE", "0", "Soft"), ("LE", "5000", "Soft")],      None),
    ("IT.labs.tnf_alpha_kit",   "text",    None,      [],                                                None),
]  # fmt: skip


def test_the_metadata_is_the_protocol(exported: Exported) -> None:
    """One StudyEventDef per visit (and a repeating one for unscheduled visits), a FormDef and an ItemGroupDef
    per form, an ItemDef per field with its DataType, unit, limits and code list, and a MethodDef per
    derived field; the table above spells out a few ItemDefs."""
    study = _load(exported.path).Study[0]
    mdv = study.MetaDataVersion[0]
    units = {u.OID: u.Name for u in study.BasicDefinitions.MeasurementUnit}
    assert [e.OID for e in mdv.StudyEventDef] == [f"SE.{v.id}" for v in PROTOCOL.visits] + ["SE.UNSCHEDULED",
                                                                                            "SE.LOGS", "SE.AE"]
    assert [r.StudyEventOID for r in mdv.Protocol.StudyEventRef] == [e.OID for e in mdv.StudyEventDef]
    for event, visit in zip(mdv.StudyEventDef, PROTOCOL.visits, strict=False):
        assert [r.FormOID for r in event.FormRef] == [f"F.{form}" for form in visit.forms]
    # The logs (entries per participant): one common event, a form and a repeating item group per log.
    logs = [f"LOG.{log.id}" for log in PROTOCOL.logs]
    assert [r.FormOID for r in mdv.StudyEventDef[-2].FormRef] == [f"F.{oid}" for oid in logs]
    # The adverse events (per participant): one common event, one form, an item group repeating per event, an item
    # per field of a report.
    assert [r.FormOID for r in mdv.StudyEventDef[-1].FormRef] == ["F.AE"]
    assert [f.OID for f in mdv.FormDef] == [f"F.{form.id}" for form in PROTOCOL.forms] + [f"F.{oid}" for oid in logs
                                                                                         ] + ["F.AE"]
    assert [(g.OID, g.Repeating) for g in mdv.ItemGroupDef] == [(f"IG.{form.id}", "No") for form in PROTOCOL.forms] + [
        (f"IG.{oid}", "Yes") for oid in logs] + [("IG.AE", "Yes")]
    assert [i.OID for i in mdv.ItemDef] == [f"IT.{form.id}.{f.id}" for form in PROTOCOL.forms for f in form.fields] + [
        f"IT.LOG.{log.id}.{f.id}" for log in PROTOCOL.logs for f in log.fields] + [
        f"IT.AE.{name}" for name in REPORT_FIELDS]
    derived = [f"IT.{form.id}.{f.id}" for form in PROTOCOL.forms for f in form.fields if f.derived]
    assert [m.OID for m in mdv.MethodDef] == [oid.replace("IT.", "MT.", 1) for oid in derived]
    items = {i.OID: i for i in mdv.ItemDef}
    codelists = {c.OID: [i.CodedValue for i in c.CodeListItem] for c in mdv.CodeList}
    for oid, data_type, unit, ranges, codes in METADATA:
        item = items[oid]
        assert item.DataType == data_type, oid
        assert [units[u.MeasurementUnitOID] for u in item.MeasurementUnitRef] == ([unit] if unit else []), oid
        assert [(r.Comparator, r.CheckValue[0]._content, r.SoftHard) for r in item.RangeCheck] == ranges, oid
        assert (codelists[item.CodeListRef.CodeListOID] if item.CodeListRef else None) == codes, oid


# --- every participant, visit, form and value, and no arm -----------------------------------------


def test_every_participant_visit_form_and_value_is_in_the_export(source: Trial, exported: Exported) -> None:
    """SubjectData per participant at its site, StudyEventData per visit held or missed (with its date or
    reason), FormData per form record, ItemData per stored value; progress is reported per form record."""
    stored = _trial_as_stored(source.engine)
    clinical = _load(exported.path).ClinicalData[0]
    subjects, visits, forms, events = [], [], [], []
    for subject in clinical.SubjectData:
        subjects.append((subject.SubjectKey, subject.SiteRef.LocationOID))
        for event in subject.StudyEventData:
            if event.StudyEventOID == "SE.AE":  # the participant's adverse events, not a visit
                events += [g.ItemGroupRepeatKey for form in event.FormData for g in form.ItemGroupData]
                continue
            key = event.StudyEventRepeatKey
            visit = f"unscheduled-{key}" if key else event.StudyEventOID.removeprefix("SE.")
            visits.append((subject.SubjectKey, visit))
            for form in event.FormData:
                items = sorted(i.ItemOID.split(".")[-1] for g in form.ItemGroupData for i in g.ItemData)
                forms.append((subject.SubjectKey, visit, form.FormOID.removeprefix("F."), items))
    assert sorted(subjects) == [(p[0], p[1]) for p in stored["participants"]]
    assert sorted(visits) == [(v[0], v[1]) for v in stored["visits"]]
    assert any(v[3] for v in stored["visits"]) and any(v[4] for v in stored["visits"])  # missed; unscheduled
    assert sorted(forms) == sorted((f[0], f[1], f[3], sorted(json.loads(f[4]))) for f in stored["forms"])
    assert exported.progress == tuple(range(1, len(stored["forms"]) + 1))
    with session_scope(source.engine) as session:
        numbers = sorted(session.execute(select(adverse_events.c.ae_number)).scalars())
    assert numbers and sorted(events) == numbers


def test_values_plain_odm_cannot_hold_are_in_the_trialwright_extension(exported: Exported) -> None:
    """A censored or not-done value is IsNull="Yes" with its status, limit or reason in tw:StoredValue;
    a value entered in another unit keeps its canonical value in Value and what was typed in tw."""
    visit = r'<StudyEventData StudyEventOID="SE\.UNSCHEDULED" StudyEventRepeatKey="1">.*?</StudyEventData>'
    unscheduled = re.search(visit, exported.path.read_text(encoding="utf-8"), re.DOTALL)
    assert unscheduled is not None
    text = unscheduled[0]
    item = r'<ItemData ItemOID="IT\.labs\.{}" (?P<attrs>[^>]*)>(?P<body>(?:(?!</ItemData>).)*)</ItemData>'
    found = {
        name: re.search(item.format(name), text, re.DOTALL)
        for name in ("tnf_alpha", "il6", "crp", "ddimer", "tnf_alpha_kit")
    }
    assert all(found.values())
    expected = {
        "tnf_alpha": ('IsNull="Yes"', '<tw:StoredValue Status="below_lloq" Unit="pg/mL" Entered="1.5" Limit="1.5"/>'),
        "il6": ('IsNull="Yes"', '<tw:StoredValue Status="above_uloq" Unit="ng/L" Entered="5000" Limit="5000.0"/>'),
        "crp": ('Value="125.0"', '<tw:StoredValue Unit="mg/dL" Entered="&quot;12.50&quot;"/>'),
        "ddimer": ('IsNull="Yes"', '<tw:StoredValue Status="not_done" Reason="sample clotted"/>'),
        "tnf_alpha_kit": ('Value="Kit &quot;A&quot; &amp; &lt;lot 7&gt;&#13;&#10;second line&#9;tabbed"', None),
    }
    for name, (attrs, extension) in expected.items():
        match = found[name]
        assert match is not None and match["attrs"] == attrs, name
        assert (extension in match["body"]) if extension else ("tw:StoredValue" not in match["body"]), name


def test_the_export_names_no_arm(source: Trial, tmp_path: Path) -> None:
    """ODM carries no arm, even from a source that holds arms (the unblinded statistician's, with_arms):
    no arm code, arm name or intervention name of the protocol appears anywhere in the file."""
    assert OdmExporter.carries_arms is False
    made = export_source(source.engine, who(source, Role.UNBLINDED_STATISTICIAN), with_arms=True)
    assert {p.arm for p in made.participants()} >= {"EXO", "PBO"}
    text = OdmExporter().write(made, tmp_path)[0].read_text(encoding="utf-8")
    for arm in PROTOCOL.arms:
        assert not re.search(rf"\b{arm.code}\b", text), arm.code
        for name in (arm.name, arm.intervention.name if arm.intervention else None):
            assert name is None or name not in text, name
    names = [n for e in ET.fromstring(text).iter() for n in (e.tag, *e.attrib)]  # noqa: S314 - our own file
    assert [n for n in names if "arm" in n.split("}")[-1].lower()] == []


def test_run_export_writes_the_folder_and_audits_it(
    source: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through run_export, as the page and the command line make exports: the folder holds the XML and the
    extension's two XSDs, and the audit trail an export.written entry with their SHA-256."""
    from trialwright.exports.registry import FORMATS

    monkeypatch.setitem(FORMATS, "odm", FORMATS.get("odm", OdmExporter))
    out = tmp_path / "odm-export"
    result = run_export(source.engine, who(source, Role.DATA_MANAGER), "odm", out)
    names = [f"{TRIAL_ID}.odm.xml", NAMESPACE_SCHEMA, EXTENDED_SCHEMA]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    digests = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in names}
    assert result.sha256 == digests
    entry = audit.entries(source.engine, action_prefix="export.written", limit=1)[0]
    assert json.loads(entry.new_value or "{}") == {
        "format": "odm", "folder": "odm-export", "files": digests, "with_arms": False
    }  # fmt: skip


# --- the value codec ------------------------------------------------------------------------------


def _field(kind: FieldType, **more: Any) -> FormField:
    choices = [{"code": c, "label": c} for c in ("a", "b", "c d")] if "CHOICE" in kind.name else []
    return FormField.model_validate({"id": "x", "label": "X", "type": kind, "choices": choices, **more})


# field type, the value as trialwright stores it (JSON)
#     -> the ODM Value (None: IsNull="Yes"), the tw:StoredValue attributes
VALUES = [
    (FieldType.INTEGER, {"value": 12, "status": "value", "entered": 12, "unit": "/min"},
     "12", {"Unit": "/min", "Entered": "12"}),
    (FieldType.DECIMAL, {"value": 125.0, "status": "value", "entered": "12,5", "unit": "mg/dL"},
     "125.0", {"Unit": "mg/dL", "Entered": '"12,5"'}),
    (FieldType.DECIMAL, {"value": 1e-05, "status": "value"},
     "0.00001", {}),
    (FieldType.DECIMAL, {"value": 1e16, "status": "value"},
     "10000000000000000.0", {}),
    (FieldType.DECIMAL, {"value": 300, "status": "derived", "components": {"a": 1}},
     "300", {"Status": "derived", "Components": '{"a": 1}'}),
    (FieldType.DECIMAL, {"status": "derived", "reason": "not computable: no FiO2"},
     None, {"Status": "derived", "Reason": "not computable: no FiO2"}),
    (FieldType.DECIMAL, {"status": "below_lloq", "entered": 1.5, "unit": "pg/mL", "limit": 1.5},
     None, {"Status": "below_lloq", "Unit": "pg/mL", "Entered": "1.5", "Limit": "1.5"}),
    (FieldType.DECIMAL, {"status": "not_done", "reason": "sample clotted"},
     None, {"Status": "not_done", "Reason": "sample clotted"}),
    (FieldType.TEXT, {"status": "not_applicable", "reason": "no oxygen given"},
     None, {"Status": "not_applicable", "Reason": "no oxygen given"}),
    (FieldType.DATETIME, {"value": "2021-05-03T04:30+00:00", "status": "value", "entered": "2021-05-03T09:00"},
     "2021-05-03T04:30:00+00:00", {"Entered": '"2021-05-03T09:00"'}),
    (FieldType.DATETIME, {"value": "2021-05-03T04:30:15+00:00", "status": "value"},
     "2021-05-03T04:30:15+00:00", {"Value": '"2021-05-03T04:30:15+00:00"'}),
    (FieldType.TIME, {"value": "07:45", "status": "value"},
     "07:45:00", {}),
    (FieldType.DATE, {"value": "2021-05-03", "status": "value"},
     "2021-05-03", {}),
    (FieldType.BOOLEAN, {"value": False, "status": "value"},
     "false", {}),
    (FieldType.CHOICE, {"value": "c d", "status": "value"},
     "c d", {}),
    (FieldType.MULTI_CHOICE, {"value": ["a", "c d"], "status": "value"},
     "a,c d", {}),
    (FieldType.MULTI_CHOICE, {"value": [], "status": "value"},
     "", {}),
    (FieldType.TEXT, {"value": "line\r\nbreak", "status": "value"},
     "line\r\nbreak", {}),
    (FieldType.TEXT, {"value": "bell\x07", "status": "value"},  # XML 1.0 cannot carry \x07: JSON can
     '"bell\\u0007"', {"Value": '"bell\\u0007"'}),
    (FieldType.INTEGER, {"value": 7.0, "status": "value"},  # a float where an integer belongs is kept as it is
     "7.0", {"Value": "7.0"}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "stored", "value", "extension"), VALUES)
def test_each_stored_value_becomes_odm_and_comes_back_exactly(
    kind: FieldType, stored: dict[str, Any], value: str | None, extension: dict[str, str]
) -> None:
    """The ODM Value (None: IsNull="Yes") and tw:StoredValue attributes of a stored value, and back."""
    f = _field(kind)
    assert to_odm(f, stored) == (value, extension)
    assert from_odm(f, value, extension) == stored


# --- the round trip -------------------------------------------------------------------------------


def _edit(pattern: str, replacement: str, count: int = 1) -> Callable[[str], str]:
    def edit(text: str) -> str:
        changed, n = re.subn(pattern, replacement, text, count=count)
        assert n, f"the export has no {pattern!r} to edit"
        return changed

    return edit


# what is wrong with the file, how the exported file is changed, what the refusal names
REFUSED = [
    ("another study", _edit(TRIAL_ID, "IRCT20200101000000N1", count=0),
     ["Study/@OID", "another study"]),
    ("another protocol version", _edit(r"MDV\.2\.0", "MDV.1.0", count=0),
     ["MetaDataVersion/@OID", "protocol version 2.0"]),
    ("an ItemOID with no ItemDef", _edit(r'(<ItemData ItemOID=")IT\.labs\.il6"', r'\1IT.labs.il7"'),
     ["ItemData/@ItemOID", "IT.labs.il7", "not defined in the metadata"]),
    ("a FormOID not at its visit",
     _edit(r'(?s)(StudyEventOID="SE\.day1">(?:(?!</StudyEventData>).)*?<FormData FormOID=")F\.vitals"', r'\1F.labs"'),
     ["FormData/@FormOID", "F.labs", "not a FormRef of StudyEventDef SE.day1"]),
    ("a code not in its code list", _edit(r'(ItemOID="IT\.vitals\.consciousness" Value=")\w+"', r'\1sleepy"'),
     ["CodeListItem", "'sleepy'", "IT.vitals.consciousness"]),
    ("a CodeListItem not in the protocol", _edit(r'(<CodeListItem CodedValue=")alert"', r'\1asleep"'),
     ["CodeListItem/@CodedValue", "'asleep'", "not a choice of the protocol"]),
    ("a value outside its hard limits", _edit(r'(ItemOID="IT\.vitals\.pulse" Value=")\d+"', r'\g<1>9999"'),
     ["values: 1 stored values break the protocol's rules; nothing was imported", "form vitals: pulse: 9999 /min is "
      "outside the accepted range 20-250 /min"]),
    ("a sample before the consent", _edit(r'(ItemOID="IT\.blood_gas\.sampled_at" Value=")\d{4}', r'\g<1>2000'),
     ["form blood_gas: sampled_at: 2000-", "is before enrolment on", "is before the consent"]),
    ("malformed XML", lambda text: text[: len(text) // 2],
     ["XML:", "not well-formed XML"]),
    ("a DOCTYPE with an entity", _edit(r"\?>\n", '?>\n<!DOCTYPE ODM [<!ENTITY x "y">]>\n'),
     ["DOCTYPE"]),
    ("an AuditRecord without its source entry", _edit(r"<SourceID>[^<]*</SourceID>", "<SourceID>by hand</SourceID>"),
     ["AuditRecord/SourceID: 'by hand' is not audit:<seq>:<hash>", "cannot make one up"]),
    ("a randomization without its stratum", _edit(r' Stratum="[^"]*"', ""),
     ["tw:Enrolment: RandomizationNumber, RandomizedAt and Stratum come together or not at all"]),
    ("a randomization number that is not a number", _edit(r'RandomizationNumber="\d+"', 'RandomizationNumber="A7"'),
     ["tw:Enrolment/@RandomizationNumber: 'A7' is not a number"]),
    # a walk signed a form by hand in tw:Form alone: the import made up its Signature, which the re-export then wrote
    ("a form signed without its Signature", _edit(r'(?s)<Signature ID="SIG\.[^"]*">.*?</Signature>\s*', ""),
     ["/Signature: required: tw:Form says", "a signature is restored only with its ODM Signature"]),
    ("a signed state without its signer", _edit(r' SignedBy="[^"]*" SignedAt="[^"]*"', ""),
     ["SignedBy"]),
    ("a Signature by another user than tw:Form's SignedBy",
     _edit(r'(<Signature ID="SIG\.[^"]*">\s*<UserRef UserOID=")[^"]*"', r'\1USR.sim-study-coordinator"'),
     ["/Signature: the signer and time differ from tw:Form's SignedBy and SignedAt"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "named"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_file_that_breaks_a_rule_is_refused_by_name_and_changes_nothing(
    target: Trial, exported: Exported, tmp_path: Path, case: str, change: Callable[[str], str], named: list[str]
) -> None:
    """Each broken file is refused with a message naming the element or attribute and the rule, and the
    trial it was to go into (its tables and its audit trail) is exactly as before."""
    bad = tmp_path / f"{TRIAL_ID}.odm.xml"
    bad.write_text(change(exported.path.read_text(encoding="utf-8")), encoding="utf-8")
    before = _everything(target.engine)
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), bad)
    for words in named:
        assert words in str(refused.value), case
    assert _everything(target.engine) == before


def test_only_the_data_manager_imports(target: Trial, exported: Exported) -> None:
    for role in (Role.INVESTIGATOR, Role.UNBLINDED_STATISTICIAN, Role.ADMINISTRATOR):
        with pytest.raises(OdmImportError, match=r"^role: only the data manager"):
            import_odm(target.engine, who(target, role), exported.path)


@pytest.mark.covers("REG-11")
def test_the_round_trip_is_exact(source: Trial, imported: tuple[Trial, OdmImportReport]) -> None:
    """Export, import into a fresh trial: every participant (same id, site, number, enrolment), screening,
    consent, withdrawal, visit (date or missed reason) and form record (state, version, the stored JSON
    byte for byte, who changed, verified, signed and locked it, when) is identical in both databases."""
    target, report = imported
    before, after = _trial_as_stored(source.engine), _trial_as_stored(target.engine)
    for table in before:
        assert after[table] == before[table], table
    assert (report.participants, report.visits, report.forms) == tuple(
        len(before[t]) for t in ("participants", "visits", "forms")
    )
    assert report.values == sum(len(json.loads(f[4])) for f in before["forms"])
    assert report.states == {s: sum(1 for f in before["forms"] if f[5] == s) for s in report.states}
    assert {"draft", "complete", "verified", "signed", "locked"} <= set(report.states)


def test_both_trials_replay_clean_against_their_audit_trails(
    source: Trial, imported: tuple[Trial, OdmImportReport]
) -> None:
    """The source (visits, forms, an unscheduled visit and a locked form through the services) and the imported
    trial (each visit and form from one import.odm entry) hold what their trails say."""
    for engine in (source.engine, imported[0].engine):
        report = replay(engine)
        assert report.ok and report.rows > 100, report.message


@pytest.mark.covers("REG-1")
def test_the_import_is_audited(imported: tuple[Trial, OdmImportReport], exported: Exported) -> None:
    """One import.odm entry per participant (its AuditRecord as recorded, its randomization as the file states
    it), per visit record (its date or why it was missed), per form record (its state and values, its and its
    values' AuditRecords as recorded) and per query (the query as restored, its AuditRecord as recorded), each with
    the file's name and SHA-256, and one summary entry; the new trail verifies. The entries are the importer's: the
    file's users are named inside them, never as the entry's actor."""
    target, report = imported
    digest = hashlib.sha256(exported.path.read_bytes()).hexdigest()
    assert report.sha256 == digest
    entries = audit.entries(target.engine, action_prefix="import.odm", limit=100_000)
    assert {e.action for e in entries} == {"import.odm"}
    assert {e.actor for e in entries} == {"data-manager"}
    per_query = [e for e in entries if "query" in json.loads(e.detail or "{}")]
    assert len(per_query) == report.queries > 0
    entries = [e for e in entries if e not in per_query]
    per_screening = [e for e in entries if "screening" in json.loads(e.detail or "{}")]  # never enrolled
    assert len(per_screening) == report.screenings
    entries = [e for e in entries if e not in per_screening]
    per_event = [e for e in entries if (e.form or "").startswith("adverse_event:")]
    per_form = [e for e in entries if e.form is not None and e not in per_event]
    per_visit = [e for e in entries if e.form is None and "visit" in json.loads(e.detail or "{}")]
    per_participant = [e for e in entries if e.participant is not None and e not in per_event
                       and "visit" not in json.loads(e.detail or "{}")]  # fmt: skip
    (summary,) = [e for e in entries if e.participant is None]
    assert (len(per_form), len(per_visit), len(per_participant)) == (report.forms, report.visits, report.participants)
    assert len(per_event) == report.adverse_events > 0
    for e in entries:
        detail = json.loads(e.detail or "{}")
        assert (detail["file"], detail["sha256"]) == (exported.path.name, digest)
    form_values = json.loads(per_form[0].new_value or "{}")
    assert {"state", "version", "values", "recorded", "items"} <= set(form_values)
    assert set(form_values["recorded"]) == {"by", "role", "site", "at", "reason", "seq", "hash", "action"}
    assert form_values["recorded"]["action"].startswith("form.")  # the action its AuditRecord names (tw:Action)
    randomized = [json.loads(e.new_value or "{}").get("randomization") for e in per_participant]
    assert sum(r is not None for r in randomized) == report.randomized > 0
    detail = json.loads(summary.detail or "{}")
    assert [detail[k] for k in ("participants", "visits", "forms", "values")] == [
        report.participants, report.visits, report.forms, report.values
    ]  # fmt: skip
    assert audit.verify(target.engine).ok


def _data(path: Path) -> list[Any]:
    """The clinical data of an ODM file without its audit records and signatures: who, where, which visit,
    form and value, and every tw extension."""
    ns = {"odm": ODM_NS, "tw": TW_NS}
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    out: list[Any] = []
    for subject in root.iterfind("odm:ClinicalData/odm:SubjectData", ns):
        enrolment = subject.find("tw:Enrolment", ns)
        assert enrolment is not None
        out.append((subject.attrib, subject.find("odm:SiteRef", ns).attrib,  # type: ignore[union-attr]
                    enrolment.attrib, [(e.tag, e.attrib, e.text) for e in enrolment]))  # fmt: skip
        for event in subject.iterfind("odm:StudyEventData", ns):
            out.append((event.attrib, event.find("tw:Visit", ns).attrib))  # type: ignore[union-attr]
            for form in event.iterfind("odm:FormData", ns):
                out.append((form.attrib, form.find("tw:Form", ns).attrib))  # type: ignore[union-attr]
                for item in form.iterfind("odm:ItemGroupData/odm:ItemData", ns):
                    extension = item.find("tw:StoredValue", ns)
                    out.append((item.attrib, extension.attrib if extension is not None else None))
    return out


@pytest.mark.covers("REG-11")
def test_export_import_export_is_byte_identical(
    imported: tuple[Trial, OdmImportReport], exported: Exported, tmp_path: Path
) -> None:
    """Export, import into a fresh trial, export again as of the same moment: the second file is the first, byte
    for byte: the same participants, visits, forms and values, randomization numbers, times and strata, users
    (AdminData) and every AuditRecord (user, role, site, time, reason, source entry) as recorded in the source
    trial, not the importer, the earlier records of changed values (tw:History) with the values they set included.
    The import checked this itself and said so."""
    target, report = imported
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=exported.taken_at)
    again = OdmExporter().write(made, tmp_path)[0]
    first = exported.path.read_bytes()
    assert again.read_bytes() == first
    assert report.byte_identical and report.reexport_difference is None
    text = first.decode("utf-8")
    assert "RandomizationNumber=" in text and "USR.investigator" in text and "USR.data-manager" in text
    assert report.randomized == text.count("RandomizationNumber=")
    assert report.earlier_records == text.count("<tw:Earlier") >= 2  # "transcription error", "lab corrected ..."
    assert "<ReasonForChange>transcription error</ReasonForChange>" in text
    assert report.audit_records + report.earlier_records == text.count("<AuditRecord")
    assert report.users == text.count("<User ")


def test_the_import_summary_is_plain_text_that_says_what_it_restored_and_what_not(
    imported: tuple[Trial, OdmImportReport],
) -> None:
    _, report = imported
    text = report.summary()
    assert "OdmImportReport(" not in text and "{" not in text
    assert f"participants:   {report.participants} ({report.randomized} randomized" in text
    assert f"audit records:  {report.audit_records} kept as recorded, naming {report.users} users" in text
    assert "byte-identical re-export: yes" in text
    assert "not restored:" in text and "arms and allocation list entries" in text


def test_an_import_whose_re_export_differs_says_so_and_where(exported: Exported, tmp_path: Path) -> None:
    """A file trialwright did not write this way (here a comment added by hand) imports, but the import does not
    claim an exact round trip: it says the re-export is not byte-identical and where the two first differ."""
    edited = tmp_path / f"{TRIAL_ID}.odm.xml"
    text = exported.path.read_text(encoding="utf-8")
    edited.write_text(text.replace("?>\n", "?>\n<!-- checked by hand -->\n", 1), encoding="utf-8")
    fresh = make_trial(f"sqlite:///{tmp_path / 'fresh.db'}")
    report = import_odm(fresh.engine, who(fresh, Role.DATA_MANAGER), edited)
    assert not report.byte_identical
    assert (report.reexport_difference or "").startswith(
        "line 2: the file has '<!-- checked by hand -->', the re-export '<ODM xmlns=\"http://www.cdisc.org/ns/odm/v1.3\""
    )
    assert "byte-identical re-export: NO (line 2: " in report.summary()


def test_a_line_of_blanks_where_the_files_differ_is_said_so_not_shown_empty(exported: Exported, tmp_path: Path) -> None:
    """Where the first difference is a line of blanks (a walk's hand edit left 12), the summary says so: stripped,
    it read as ``the file has ''``, which pointed nowhere."""
    edited = tmp_path / f"{TRIAL_ID}.odm.xml"
    text = exported.path.read_text(encoding="utf-8")
    edited.write_text(text.replace("?>\n", "?>\n            \n", 1), encoding="utf-8")
    fresh = make_trial(f"sqlite:///{tmp_path / 'fresh.db'}")
    report = import_odm(fresh.engine, who(fresh, Role.DATA_MANAGER), edited)
    said = report.reexport_difference or ""
    assert said.startswith("line 2: the file has a line of 12 blanks, the re-export '<ODM")


def test_an_imported_participant_is_not_randomized_again(imported: tuple[Trial, OdmImportReport]) -> None:
    """The arm of a participant randomized in the source trial is in that trial's sealed list; the imported trial
    refuses to give the participant a second allocation (and has no list of its own to take one from)."""
    from trialwright.services.randomization import RandomizationError, randomize

    target, _ = imported
    with session_scope(target.engine) as session:
        gone = set(session.execute(select(withdrawals.c.participant_id)).scalars())
        raz = select(participants.c.participant_id).where(participants.c.site == "RAZ")
        pid = next(p for p in session.execute(raz.order_by(participants.c.participant_id)).scalars() if p not in gone)
    with pytest.raises(RandomizationError, match=rf"^participant: {pid} was randomized in the trial this one was"):
        randomize(target.engine, who(target, Role.INVESTIGATOR), pid)


def test_a_second_import_into_the_same_trial_is_refused(
    imported: tuple[Trial, OdmImportReport], exported: Exported
) -> None:
    target, report = imported
    before = _everything(target.engine)
    with pytest.raises(OdmImportError, match=rf"^trial: this trial already holds {report.participants} participants"):
        import_odm(target.engine, who(target, Role.DATA_MANAGER), exported.path)
    assert _everything(target.engine) == before


def test_the_namespaces_are_odm_1_3_and_trialwrights(exported: Exported) -> None:
    head = exported.path.read_text(encoding="utf-8")[:400]
    assert f'xmlns="{ODM_NS}"' in head and f'xmlns:tw="{TW_NS}"' in head


def test_an_imported_trial_refuses_an_analysis_that_would_leave_out_its_randomized(
    source: Trial, imported: tuple[Trial, OdmImportReport]
) -> None:
    """ODM carries no arm, so an imported trial holds no allocation for the participants randomized in the source
    trial: an analysis there would count 0 randomized (found by a new user's walk). It is refused, naming how many
    were randomized in the source trial, where the analysis runs."""
    from trialwright.services.analysis import AnalysisError, analysis_data

    target, report = imported
    assert report.randomized >= 1
    with pytest.raises(AnalysisError, match=rf"randomized: {report.randomized} participants of this trial were "
                                            "randomized in the trial its ODM file came from"):  # fmt: skip
        analysis_data(target.engine, who(target, Role.BLINDED_STATISTICIAN))
    assert len(analysis_data(source.engine, who(source, Role.BLINDED_STATISTICIAN)).subjects) == report.randomized



def test_an_imported_trial_refuses_a_publication_which_belongs_to_the_source_trial(
    imported: tuple[Trial, OdmImportReport],
) -> None:
    """An imported trial holds no allocation entries (ODM carries no arm, so arms are not restored): as it refuses an
    analysis, it refuses to record a publication of the results, "no participant is randomized yet" (a primary
    publication cannot precede the first randomization, and none is recorded here), and writes nothing. The
    participants were randomized in the source trial: the publication, and the access window it opens, belong
    there."""
    from trialwright.services.sharing import SharingError, access_window_opens, record_publication
    from trialwright.store.randomization_tables import allocation_entries
    from trialwright.store.sharing_tables import publications

    target, report = imported
    assert report.randomized >= 1  # randomized in the source trial, their number, time and stratum kept
    with session_scope(target.engine) as session:
        claimed = select(allocation_entries.c.id).where(allocation_entries.c.participant_id.is_not(None))
        assert session.execute(claimed).first() is None  # no participant holds an allocation entry here
    before = _everything(target.engine)
    rule = "a trial's primary publication cannot precede its first randomization"
    with pytest.raises(SharingError, match=re.escape(f"published_on: no participant is randomized yet; {rule}")):
        record_publication(target.engine, who(target, Role.DATA_MANAGER), "A. Author. A title. A journal. 2022;1:1.",
                           dt.date(2022, 1, 10))  # fmt: skip
    assert _everything(target.engine) == before
    with session_scope(target.engine) as session:
        assert session.execute(select(publications.c.id)).first() is None
    assert access_window_opens(target.engine) is None
