"""TS TBLIND for a triple-blind trial (``masking.blinding: triple``; both databases): CDISC C66735 (Trial Blinding
Schema Response) has no term for it and is extensible, so the export writes ``TRIPLE BLIND`` as a sponsor extension
and define.xml marks it as it marks every other (the value-level metadata of TSVAL where TSPARMCD is TBLIND names
the code list C66735, whose item is ``def:ExtendedValue="Yes"``, as ROUTE's INHALED in EXROUTE's list); README.txt no
longer lists TBLIND as left out. A double-blind trial's TBLIND is CT's term, with its NCI code in the list. Walk 6
F6: TBLIND was left out ("blinding triple has no CDISC C66735 term").

| masking.blinding | TS TBLIND      | define.xml's TBLIND list item                 | README.txt "Left out" |
|------------------|----------------|-----------------------------------------------|-----------------------|
| triple           | TRIPLE BLIND   | TRIPLE BLIND, ExtendedValue Yes, no NCI code  | not TBLIND            |
| double           | DOUBLE BLIND   | DOUBLE BLIND, its NCI code C15228             | not TBLIND            |
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pyreadstat
import pytest
import xmlschema
from ruamel.yaml import YAML

from tests.conftest import ROOT
from tests.trialfixtures import FIRST_PROTOCOL, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.sdtm import SdtmExporter
from trialwright.protocol.cdisc_ct import SDTM_CT_VERSION
from trialwright.protocol.ct_checks import ct_extensions
from trialwright.protocol.loader import load_protocol_text
from trialwright.services.exports import export_source

DEFINE_SCHEMA = xmlschema.XMLSchema(
    str(ROOT / "tests" / "data" / "define-2.1" / "cdisc-define-2.1" / "define2-1-0.xsd")
)
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}


def _text(blinding: str) -> str:
    raw = YAML(typ="safe").load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    raw["masking"]["blinding"] = blinding
    if blinding == "triple":  # the data analysts masked too, as triple requires
        raw["masking"]["masked"] = [*raw["masking"]["masked"], "data_analyst"]
    buffer = io.StringIO()
    YAML().dump(raw, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("blinding", "value", "extended", "code"),
                         [("triple", "TRIPLE BLIND", "Yes", None), ("double", "DOUBLE BLIND", None, "C15228")],
                         ids=["triple blind", "double blind"])  # fmt: skip
def test_ts_tblind_writes_triple_blind_as_a_sponsor_extension_marked_in_define(
    database_url: str, tmp_path: Path, blinding: str, value: str, extended: str | None, code: str | None
) -> None:
    loaded = load_protocol_text(_text(blinding))
    noted = [n for n in ct_extensions(loaded.protocol) if "TBLIND" in n]
    assert noted == ([f"SDTM: not a term of CDISC CT TBLIND (C66735, SDTM CT {SDTM_CT_VERSION}), "
                      "written as a sponsor extension: TRIPLE BLIND (masking.blinding triple)"] if extended else [])
    trial = make_trial(database_url, loaded)
    try:
        SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER), with_arms=False), tmp_path)
    finally:
        trial.engine.dispose()
    ts, _ = pyreadstat.read_xport(tmp_path / "sdtm" / "ts.xpt")
    assert [r.TSVAL for r in ts.itertuples() if r.TSPARMCD == "TBLIND"] == [value]
    left = next(line for line in (tmp_path / "README.txt").read_text(encoding="utf-8").splitlines()
                if "Left out (not declared" in line)  # fmt: skip
    assert "TBLIND" not in left
    define = tmp_path / "sdtm" / "define.xml"
    DEFINE_SCHEMA.validate(define)
    root = ET.parse(define).getroot()  # noqa: S314 - our own file
    (where,) = [w for w in root.iterfind(".//def:WhereClauseDef", NS)
                if (c := w.find("odm:RangeCheck/odm:CheckValue", NS)) is not None and c.text == "TBLIND"]  # fmt: skip
    (item,) = [i for i in root.iterfind(".//def:ValueListDef/odm:ItemRef", NS)
               if i.find("def:WhereClauseRef", NS).get("WhereClauseOID") == where.get("OID")]  # type: ignore[union-attr]
    definition = root.find(f".//odm:ItemDef[@OID='{item.get('ItemOID')}']", NS)
    assert definition is not None and definition.get("Name") == "TSVAL"
    listed = root.find(f".//odm:CodeList[@OID='{definition.find('odm:CodeListRef', NS).get('CodeListOID')}']", NS)  # type: ignore[union-attr]
    assert listed is not None and listed.find("odm:Alias", NS).get("Name") == "C66735"  # type: ignore[union-attr]
    (entry,) = listed.findall("odm:EnumeratedItem", NS) + listed.findall("odm:CodeListItem", NS)
    assert entry.get("CodedValue") == value
    assert entry.get("{http://www.cdisc.org/ns/def/v2.1}ExtendedValue") == extended
    alias = entry.find("odm:Alias", NS)
    assert (alias.get("Name") if alias is not None else None) == code
