"""Define-XML 2.1 with the SDTM-style export: ``sdtm/define.xml`` is valid against CDISC's Define-XML 2.1
schema and describes exactly the XPT files written beside it; ``sdtm/define.html`` shows the same to a reviewer.

| what the define says                          | checked against (independently)                          |
|-----------------------------------------------|----------------------------------------------------------|
| schema validity                               | CDISC's Define-XML 2.1 XSDs in tests/data/define-2.1    |
| each dataset: name, label, def:leaf to file   | the XPT files, read back with pyreadstat                 |
| each variable: order, name, label, type, length | pyreadstat's names, labels, types and storage widths   |
| value level: LB/VS --ORRES by --TESTCD        | the test codes present in the LB and VS files            |
| code lists                                    | every value in the files of a variable with a code list  |
| methods                                       | every Derived variable; the protocol's derived fields    |
| arms                                          | none in a blinded extract; the protocol's arms with arms |

The trial is simulated (12 patients screened) on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pyreadstat
import pytest
import xmlschema

from tests.spec.exports.test_tabular import arm_terms, arms_named_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.sdtm import DOMAINS, SdtmExporter
from trialwright.exports.sdtm_define import define_doc, render_xml
from trialwright.protocol import load_protocol
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
#: CDISC's Define-XML 2.1 schema with the ODM 1.3.2 foundation it redefines, in its own folder layout (see the
#: README there): the foundation differs from tests/data/odm-1.3.2's, so it is shipped as the package has it.
CDISC_DEFINE = Path(__file__).resolve().parents[2] / "data" / "define-2.1"
CDISC_SHA256 = {
    "cdisc-define-2.1/define2-1-0.xsd": "62618c24aa046ecc3f4cb332e95de1281b1d7cbff12702ff2012ed65f3171f18",
    "cdisc-define-2.1/define-extension.xsd": "feba8db4f0a2cdab25dcc162abdc5daa715f437bffb664cfc15c3116176d28eb",
    "cdisc-define-2.1/define-ns.xsd": "fd26bc307925600cb075e9400dd1fd3bb98578686274e6db600e19e4ac54e344",
    "cdisc-define-2.1/define-enumerations.xsd": "a77294f35daf206870d9a60982c1de3ff2bacea4d3b77c917d2e22be5b02dd72",
    "cdisc-define-2.1/define2-1-0-schematron.xsd": "bbb4aae3799a135750a22ee0858189323b9f2f94fbbd13058a797e8a280849d9",
    "cdisc-odm-1.3.2/ODM1-3-2-foundation.xsd": "005df55770a816a69c9e9262019b2c909c6a952e57138ca661f7afda5a72b271",
    "core/xml.xsd": "258ac9c0f078fc9692735140f2d21541e8bf16941bed42833c1a5f965b52c6dc",
    "core/xlink.xsd": "e4b134b25c547bc74808bbcc0818febd2f4a58b759556443999365ec4d53d594",
    "core/xmldsig-core-schema.xsd": "111a972ccb9916cb95df9af4b6c1775307292463639de69d6fe63516bb2d850e",
}
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1",
      "xlink": "http://www.w3.org/1999/xlink"}  # fmt: skip
DEF = "{http://www.cdisc.org/ns/def/v2.1}"
XLINK = "{http://www.w3.org/1999/xlink}"
#: pyreadstat's type of a column -> the Define-XML data types that may describe it.
TYPES = {"string": {"text", "partialDatetime"}, "double": {"integer", "float"}}


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Trial:
    trial = make_trial(module_database_url)
    summary = simulate(trial.engine, FIRST_PROTOCOL, 12, seed=11)
    assert summary.enrolled >= 3
    return trial


@pytest.fixture(scope="module")
def blinded(trial: Trial, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("define-blinded")
    written = SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), folder)
    assert {folder / "sdtm" / "define.xml", folder / "sdtm" / "define.html"} <= set(written)
    return folder


@pytest.fixture(scope="module")
def with_arms(trial: Trial, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("define-arms")
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True),
                         folder)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(CDISC_DEFINE / "cdisc-define-2.1" / "define2-1-0.xsd"))


def mdv(folder: Path) -> ET.Element:
    root = ET.parse(folder / "sdtm" / "define.xml").getroot()  # noqa: S314 - our own file
    found = root.find("odm:Study/odm:MetaDataVersion", NS)
    assert found is not None
    return found


def text(element: ET.Element) -> str:
    found = element.find("odm:Description/odm:TranslatedText", NS)
    return found.text or "" if found is not None else ""


def by_oid(meta: ET.Element, tag: str) -> dict[str, ET.Element]:
    return {e.get("OID", ""): e for e in meta.findall(tag, NS)}


def xpt_files(folder: Path) -> Iterator[tuple[Path, object]]:
    for path in sorted((folder / "sdtm").glob("*.xpt")):
        frame, meta = pyreadstat.read_xport(path)
        yield path, (frame, meta)


# -- the schema ----------------------------------------------------------------------------------------------


def test_the_shipped_schema_is_cdiscs_byte_for_byte() -> None:
    for name, digest in CDISC_SHA256.items():
        assert hashlib.sha256((CDISC_DEFINE / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.covers("REG-11")
def test_define_xml_is_valid_against_cdiscs_define_2_1_schema(
    blinded: Path, with_arms: Path, schema: xmlschema.XMLSchema
) -> None:
    """Both extracts' define.xml are Define-XML 2.1 (def:DefineVersion 2.1.0) valid against CDISC's schema."""
    for folder in (blinded, with_arms):
        errors = [f"{e.path}: {e.reason}" for e in schema.iter_errors(str(folder / "sdtm" / "define.xml"))]
        assert errors == []
        assert mdv(folder).get(f"{DEF}DefineVersion") == "2.1.0"


def test_a_define_missing_a_required_attribute_fails_the_schema(
    blinded: Path, schema: xmlschema.XMLSchema, tmp_path: Path
) -> None:
    """The validator does reject: a dataset without def:Structure, or a file without def:Context, is invalid."""
    source = (blinded / "sdtm" / "define.xml").read_text(encoding="utf-8")
    for required in (r' def:Structure="[^"]*"', r' def:Context="[^"]*"'):
        broken = tmp_path / "define.xml"
        broken.write_text(re.sub(required, "", source, count=1), encoding="utf-8")
        reasons = [str(e.reason) for e in schema.iter_errors(str(broken))]
        assert any("missing required attribute" in r for r in reasons), (required, reasons)


@pytest.mark.parametrize("protocol", sorted(p.name for p in FIRST_PROTOCOL.parent.glob("*.yaml")
                                             if not p.name.endswith(".simulation.yaml")))  # fmt: skip
def test_every_shipped_protocols_define_is_valid_blinded_and_with_arms(
    protocol: str, schema: xmlschema.XMLSchema, tmp_path: Path
) -> None:
    """Whatever the protocol declares (no LB tests at all, three arms, derived tests), its define is valid:
    the metadata alone, with every text variable 5 bytes long."""
    p = load_protocol(FIRST_PROTOCOL.parent / protocol).protocol
    lengths = {code: {v.name: 8 if v.type == "Num" else 5 for v in d.variables} for code, d in DOMAINS.items()}
    for with_arms in (False, True):
        when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        source = types.SimpleNamespace(protocol=p, trial_id=p.trial_id, protocol_version=p.version.number,
                                       taken_at=when, with_arms=with_arms)  # fmt: skip
        path = tmp_path / f"define-{with_arms}.xml"
        render_xml(define_doc(source, lengths), path)  # type: ignore[arg-type]
        assert [f"{e.path}: {e.reason}" for e in schema.iter_errors(str(path))] == [], (protocol, with_arms)


# -- what it describes ----------------------------------------------------------------------------------------


def test_every_dataset_and_variable_in_the_xpt_files_is_in_define_and_nothing_else(blinded: Path) -> None:
    """Read back with pyreadstat: each XPT is an ItemGroupDef (IG.<DOMAIN>, its label, a def:leaf to the file)
    whose ItemRefs, in order, are the file's variables (IT.<DOMAIN>.<VAR>) with their labels, types and lengths;
    and each ItemGroupDef is an XPT file."""
    meta_xml = mdv(blinded)
    groups, items = by_oid(meta_xml, "odm:ItemGroupDef"), by_oid(meta_xml, "odm:ItemDef")
    files = dict(xpt_files(blinded))
    assert {g.get("Name") for g in groups.values()} == {meta.table_name for _, meta in files.values()}  # type: ignore[attr-defined]
    for path, (_, meta) in files.items():
        name = meta.table_name  # type: ignore[attr-defined]
        group = groups[f"IG.{name}"]
        assert (group.get("Name"), group.get("SASDatasetName"), text(group)) == (name, name, meta.file_label)  # type: ignore[attr-defined]
        leaf = group.find("def:leaf", NS)
        assert leaf is not None and leaf.get(f"{XLINK}href") == path.name
        assert group.get(f"{DEF}ArchiveLocationID") == leaf.get("ID")
        refs = sorted(group.findall("odm:ItemRef", NS), key=lambda r: int(r.get("OrderNumber", "0")))
        assert [r.get("ItemOID") for r in refs] == [f"IT.{name}.{v}" for v in meta.column_names]  # type: ignore[attr-defined]
        for variable, label in zip(meta.column_names, meta.column_labels, strict=True):  # type: ignore[attr-defined]
            item = items[f"IT.{name}.{variable}"]
            assert (item.get("Name"), text(item)) == (variable, label), variable
            assert item.get("DataType") in TYPES[meta.readstat_variable_types[variable]], variable  # type: ignore[attr-defined]
            width = meta.variable_storage_width[variable]  # type: ignore[attr-defined]
            if item.get("DataType") in {"text", "integer", "float"}:
                assert int(item.get("Length", "0")) == width, variable
            else:
                assert item.get("Length") is None


def test_significant_digits_hold_every_number_written(blinded: Path) -> None:
    """A float's SignificantDigits is never fewer decimals than a value in the file has (VSSTRESN declares them:
    every VS field of the protocol keeps a known number of decimals)."""
    items = by_oid(mdv(blinded), "odm:ItemDef")
    declared = 0
    for _, (frame, meta) in xpt_files(blinded):
        for variable in meta.column_names:  # type: ignore[attr-defined]
            digits = items[f"IT.{meta.table_name}.{variable}"].get("SignificantDigits")  # type: ignore[attr-defined]
            if digits is None:
                continue
            declared += 1
            values = frame[variable].dropna()
            assert (values.round(int(digits)) == values).all(), (meta.table_name, variable, digits)  # type: ignore[attr-defined]
    assert declared >= 1 and items["IT.VS.VSSTRESN"].get("SignificantDigits") is not None


def test_value_level_metadata_describes_each_lb_and_vs_test_code(blinded: Path) -> None:
    """--ORRES of LB and VS points at a value list with one item per test code, each with a where clause
    --TESTCD EQ the code; every code in the files is there, and so is every code the protocol declares."""
    meta_xml = mdv(blinded)
    items, lists = by_oid(meta_xml, "odm:ItemDef"), by_oid(meta_xml, "def:ValueListDef")
    wheres = by_oid(meta_xml, "def:WhereClauseDef")
    files = {meta.table_name: frame for _, (frame, meta) in xpt_files(blinded)}  # type: ignore[attr-defined]
    for domain in ("LB", "VS"):
        ref = items[f"IT.{domain}.{domain}ORRES"].find("def:ValueListRef", NS)
        assert ref is not None
        codes = {}
        for item_ref in lists[ref.get("ValueListOID", "")].findall("odm:ItemRef", NS):
            where = item_ref.find("def:WhereClauseRef", NS)
            assert where is not None and item_ref.get("ItemOID") in items
            check = wheres[where.get("WhereClauseOID", "")].find("odm:RangeCheck", NS)
            assert check is not None and check.get("Comparator") == "EQ"
            assert check.get(f"{DEF}ItemOID") == f"IT.{domain}.{domain}TESTCD"
            value = check.find("odm:CheckValue", NS)
            assert value is not None and value.text
            codes[value.text] = items[item_ref.get("ItemOID", "")]
        declared = {f.codes.sdtm.testcd for form in PROTOCOL.forms for f in form.fields
                    if f.codes and f.codes.sdtm and f.codes.sdtm.domain == domain}  # fmt: skip
        assert set(files[domain][f"{domain}TESTCD"]) <= set(codes) == declared
        assert all(item.get("Name") == f"{domain}ORRES" for item in codes.values())


def test_every_derived_variable_and_derived_test_has_a_method(blinded: Path) -> None:
    """An ItemRef of a Derived ItemDef names a MethodDef with a description; a test read from a derived
    protocol field names a method stating the field's formula as the protocol declares it."""
    meta_xml = mdv(blinded)
    items, methods = by_oid(meta_xml, "odm:ItemDef"), by_oid(meta_xml, "odm:MethodDef")
    refs = [*meta_xml.findall("odm:ItemGroupDef/odm:ItemRef", NS), *meta_xml.findall("def:ValueListDef/odm:ItemRef",
                                                                                      NS)]  # fmt: skip
    derived = 0
    for ref in refs:
        origin = items[ref.get("ItemOID", "")].find("def:Origin", NS)
        assert origin is not None and origin.get("Type") in {"Collected", "Derived", "Assigned", "Protocol"}
        if origin.get("Type") == "Derived":
            derived += 1
            assert text(methods[ref.get("MethodOID", "")]), ref.get("ItemOID")
    assert derived >= 20
    formulas = [(f.codes.sdtm, f.derived.describe()) for form in PROTOCOL.forms for f in form.fields
                if f.derived is not None and f.codes and f.codes.sdtm]  # fmt: skip
    assert formulas
    for test, formula in formulas:
        ref = next(r for r in refs if r.get("ItemOID") == f"IT.{test.domain}.{test.domain}ORRES.{test.testcd}")
        assert formula in text(methods[ref.get("MethodOID", "")])


def test_code_lists_hold_every_value_written_and_cdisc_ones_name_the_ct_standard(blinded: Path) -> None:
    """Each CodeListRef resolves; every value in a file of a variable with a code list is in that list; a CDISC
    code list names the CT standard (def:StandardOID)."""
    meta_xml = mdv(blinded)
    items, codelists = by_oid(meta_xml, "odm:ItemDef"), by_oid(meta_xml, "odm:CodeList")
    standards = {s.get("OID"): s for s in meta_xml.findall("def:Standards/def:Standard", NS)}
    assert {(s.get("Name"), s.get("Type")) for s in standards.values()} == {("SDTMIG", "IG"), ("CDISC/NCI", "CT")}
    checked = 0
    for _, (frame, meta) in xpt_files(blinded):
        for variable in meta.column_names:  # type: ignore[attr-defined]
            ref = items[f"IT.{meta.table_name}.{variable}"].find("odm:CodeListRef", NS)  # type: ignore[attr-defined]
            if ref is None:
                continue
            codelist = codelists[ref.get("CodeListOID", "")]
            allowed = {i.get("CodedValue") for i in codelist}
            written = {v for v in frame[variable] if v != ""}
            assert written <= allowed, (meta.table_name, variable, written - allowed)  # type: ignore[attr-defined]
            checked += bool(written)
    assert checked >= 8
    for name in ("CL.NY", "CL.SEX", "CL.LBTESTCD", "CL.VSTESTCD"):
        assert standards[codelists[name].get(f"{DEF}StandardOID")].get("Type") == "CT"
    assert codelists["CL.AEREL"].get(f"{DEF}StandardOID") is None  # sponsor-defined


def test_a_blinded_define_names_no_arm_and_one_with_arms_lists_the_protocols(blinded: Path, with_arms: Path) -> None:
    """Blinded: no arm code, name or intervention in define.xml or define.html, no arm code list, and ARMCD
    says why it is empty. With arms: ARMCD's code list is the protocol's arms."""
    assert arms_named_in(blinded / "sdtm", arm_terms(with_interventions=True)) == {}
    items = by_oid(mdv(blinded), "odm:ItemDef")
    assert items["IT.DM.ARMCD"].find("odm:CodeListRef", NS) is None and items["IT.DM.ARMCD"].get(f"{DEF}CommentOID")
    meta_xml = mdv(with_arms)
    ref = by_oid(meta_xml, "odm:ItemDef")["IT.DM.ARMCD"].find("odm:CodeListRef", NS)
    assert ref is not None
    codes = {i.get("CodedValue") for i in by_oid(meta_xml, "odm:CodeList")[ref.get("CodeListOID", "")]}
    assert codes == {a.code for a in PROTOCOL.arms}


# -- define.html -------------------------------------------------------------------------------------------


class _Tables(HTMLParser):
    """The cells of each table of an HTML page, by the table's id (or the id of the heading before it)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: set[str] = set()
        self._heading = self._table = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "h2":
            self._heading = a.get("id") or ""
        elif tag == "table":
            self._table = a.get("id") or self._heading
            self.tables[self._table] = []
        elif tag == "tr":
            self.tables[self._table].append([])
        elif tag == "td":
            self._cell = []
        elif tag == "a" and a.get("href"):
            self.links.add(a["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_define_html_lists_every_dataset_its_variables_value_level_codelists_and_methods(blinded: Path) -> None:
    """The reviewer's page: the dataset table names every XPT file (linked), each dataset's table every
    variable of the file, and the value-level, code list and method tables are there."""
    page = _Tables()
    page.feed((blinded / "sdtm" / "define.html").read_text(encoding="utf-8"))
    datasets = {row[0]: row for row in page.tables["datasets"] if row}
    for path, (_, meta) in xpt_files(blinded):
        name = meta.table_name  # type: ignore[attr-defined]
        assert datasets[name][1] == meta.file_label and datasets[name][-1] == path.name  # type: ignore[attr-defined]
        assert path.name in page.links
        assert [row[0] for row in page.tables[f"IG.{name}"] if row] == list(meta.column_names)  # type: ignore[attr-defined]
    assert {"LBTESTCD = CRP", "VSTESTCD = SYSBP"} <= {row[0] for row in page.tables["VL.LB.LBORRES"] +
                                                      page.tables["VL.VS.VSORRES"] if row}  # fmt: skip
    assert [row[0] for row in page.tables["CL.NY"] if row] == ["N", "Y"]
    assert any(row and row[0] == "MT.labs.cd4_cd8_ratio" for row in page.tables["methods"])


@pytest.mark.parametrize("declares_assent", [False, True])
def test_dsdecod_lists_the_assent_milestone_only_when_the_protocol_declares_assent(
    declares_assent: bool, schema: xmlschema.XMLSchema, tmp_path: Path
) -> None:
    """define.xml's DSDECOD code list has INFORMED ASSENT OBTAINED (CDISC PROTMLST C161418) when the protocol declares
    ``eligibility.assent`` (a DS record may carry it), and not otherwise (no DS record can: a term listed that no
    record may hold would say the trial sought assent). INFORMED CONSENT OBTAINED is listed either way."""
    from tests.spec.exports.test_assent_exports import _with_assent

    p = _with_assent().protocol if declares_assent else PROTOCOL
    assert (p.eligibility.assent is not None) is declares_assent
    lengths = {code: {v.name: 8 if v.type == "Num" else 5 for v in d.variables} for code, d in DOMAINS.items()}
    source = types.SimpleNamespace(protocol=p, trial_id=p.trial_id, protocol_version=p.version.number,
                                   taken_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), with_arms=False)  # fmt: skip
    path = tmp_path / "define.xml"
    render_xml(define_doc(source, lengths), path)  # type: ignore[arg-type]
    assert [f"{e.path}: {e.reason}" for e in schema.iter_errors(str(path))] == []
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    (decod,) = [d for d in root.iter(f"{{{NS['odm']}}}ItemDef") if d.get("Name") == "DSDECOD"]
    ref = decod.find(f"{{{NS['odm']}}}CodeListRef")
    assert ref is not None
    (codelist,) = [c for c in root.iter(f"{{{NS['odm']}}}CodeList") if c.get("OID") == ref.get("CodeListOID")]
    coded = {i.get("CodedValue") for i in codelist}
    assert "INFORMED CONSENT OBTAINED" in coded
    assert ("INFORMED ASSENT OBTAINED" in coded) is declares_assent
