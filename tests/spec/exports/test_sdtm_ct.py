"""CDISC SDTM Controlled Terminology ships as data with its version, and every CDISC term trialwright writes or a
protocol declares is checked against it (issue 25 item 1: "controlled terminology from a declared CDISC CT
version, shipped as data with its version, not hand-typed lists").

The shipped file is read here with ``csv`` directly, not through ``trialwright.protocol.cdisc_ct``, so the checks
do not rest on the reader they check.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from trialwright.exports.sdtm_design import _BLIND, _CONTROL, _INTENT, _MODEL, _PHASE, TS_PARAMETER_CODES, ts_parameter
from trialwright.exports.sdtm_domains import AGEU, DS_CAUSE, OUTCOMES, SEVERITY
from trialwright.protocol import ProtocolError, load_protocol, load_protocol_text
from trialwright.protocol.cdisc_ct import SDTM_CT_VERSION, sdtm_ct
from trialwright.protocol.ct_checks import ct_extensions
from trialwright.protocol.outcomes import AdverseEventAction

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "src" / "trialwright" / "protocol" / "data" / f"SDTM_CT_{SDTM_CT_VERSION}.tsv"


def _rows() -> list[dict[str, str]]:
    with SHIPPED.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


ROWS = _rows()
LISTS = {r["CDISC Submission Value"]: r for r in ROWS if not r["Codelist Code"]}


def terms(short: str) -> dict[str, str]:
    """Submission value -> NCI code of the code list ``short``, from the shipped file."""
    code = LISTS[short]["Code"]
    return {r["CDISC Submission Value"]: r["Code"] for r in ROWS if r["Codelist Code"] == code}


def test_the_shipped_package_is_nci_s_file_cut_to_whole_code_lists() -> None:
    """The extract keeps NCI's columns but the definition, each code list whole (its row and every term's), no term
    without its code list; the version is stated in the file's name and in the module."""
    import scripts.extract_sdtm_ct as extract

    with SHIPPED.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
    assert header == ["Code", "Codelist Code", "Codelist Extensible (Yes/No)", "Codelist Name",
                      "CDISC Submission Value", "CDISC Synonym(s)", "NCI Preferred Term"]  # fmt: skip
    assert sorted(LISTS) == sorted(extract.CODELISTS)
    heads = {r["Code"] for r in LISTS.values()}
    assert all(r["Codelist Code"] in heads for r in ROWS if r["Codelist Code"])
    assert len(terms("SEX")) == 4 and len(terms("UNIT")) == 929 and len(terms("LBTESTCD")) == 2438
    assert sdtm_ct().version == SDTM_CT_VERSION == "2025-03-28"
    assert (SHIPPED.parent / "NOTICE.md").read_text(encoding="utf-8").count(SDTM_CT_VERSION) >= 2


def test_the_reader_gives_the_file_s_code_lists_and_terms() -> None:
    ct = sdtm_ct()
    for short, head in LISTS.items():
        cl = ct[short]
        assert (cl.code, cl.name, cl.extensible) == (head["Code"], head["Codelist Name"],
                                                    head["Codelist Extensible (Yes/No)"] == "Yes")  # fmt: skip
        assert {t.value: t.code for t in cl.terms.values()} == terms(short)
    assert ct["C66731"] is ct["SEX"]


def _fixed_terms() -> Iterator[tuple[str, str]]:
    """(code list, term) for each CDISC term the export writes from its own tables."""
    yield from (("AGEU", v) for v in AGEU.values())
    yield from (("OUT", v) for v in OUTCOMES.values())
    yield from (("AESEV", v) for v in SEVERITY.values())
    yield from (("NCOMPLT", v) for v in DS_CAUSE.values() if v != "OTHER")
    yield from (("NCOMPLT", v) for v in ("COMPLETED", "DEATH", "WITHDRAWAL BY SUBJECT", "WITHDRAWAL OF CONSENT"))
    yield from (("PROTMLST", v) for v in ("INFORMED CONSENT OBTAINED", "RANDOMIZED"))
    yield from (("ACN", a.value) for a in AdverseEventAction)
    yield from (("TPHASE", v) for v in _PHASE.values())
    yield from (("TBLIND", v) for v in _BLIND.values())
    yield from (("TINDTP", v) for v in _INTENT.values())
    yield from (("INTMODEL", v) for v in _MODEL.values())
    yield from (("TCNTRL", v) for v in _CONTROL.values())
    yield from (("TSPARMCD", v) for v in TS_PARAMETER_CODES)
    yield from (("DSCAT", v) for v in ("DISPOSITION EVENT", "PROTOCOL MILESTONE"))
    yield from (("DSSCAT", v) for v in ("STUDY PARTICIPATION", "STUDY TREATMENT"))
    yield from (("ARMNULRS", v) for v in ("ASSIGNED, NOT TREATED", "NOT ASSIGNED", "UNPLANNED TREATMENT"))
    yield from (("NRIND", v) for v in ("LOW", "NORMAL", "HIGH"))
    yield from (("ND", "NOT DONE"), ("STENRF", "ONGOING"), ("IECAT", "INCLUSION"), ("IECAT", "EXCLUSION"))


@pytest.mark.parametrize(("codelist", "term"), sorted(set(_fixed_terms())))
def test_each_term_the_export_writes_from_its_own_tables_is_a_term_of_its_code_list(codelist: str, term: str) -> None:
    assert term in terms(codelist), f"{term!r} is not in {codelist} ({LISTS[codelist]['Code']}), SDTM CT 2025-03-28"


def test_a_withdrawal_for_another_cause_is_the_one_sponsor_term_of_ncomplt_and_ncomplt_takes_one() -> None:
    assert "OTHER" not in terms("NCOMPLT") and LISTS["NCOMPLT"]["Codelist Extensible (Yes/No)"] == "Yes"


def test_ts_parameter_names_are_ct_s_tsparm_terms_paired_by_nci_code() -> None:
    names = {code: name for name, code in terms("TSPARM").items()}
    for parmcd in TS_PARAMETER_CODES:
        assert ts_parameter(parmcd) == names[terms("TSPARMCD")[parmcd]]
    assert ts_parameter("INTMODEL") == "Intervention Model" and _MODEL["crossover"] == "CROSS-OVER"


def _set(path: list[Any], value: Any) -> Any:
    def mutate(doc: Any) -> None:
        node = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _lab(doc: Any, field: str) -> tuple[int, int, Any]:
    for i, form in enumerate(doc["forms"]):
        for j, f in enumerate(form["fields"]):
            if f["id"] == field and form["id"] == "labs":
                return i, j, f["codes"]["sdtm"]
    raise AssertionError(field)


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="broken.yaml")
    return [(p.path, p.message) for p in caught.value.problems]


def test_a_ct_test_code_with_another_test_name_is_refused_naming_ct_s_name() -> None:
    where: list[str] = []

    def rename(doc: Any) -> None:
        i, j, sdtm = _lab(doc, "crp")
        sdtm["test"] = "CRP Level"
        where.append(f"forms[{i}].fields[{j}].codes.sdtm.test")

    found = _problems(mutated_text(rename))
    assert (where[0], "LBTESTCD CRP (C64548) is named 'C Reactive Protein' in SDTM CT 2025-03-28, not "
                      "'CRP Level'") in found  # fmt: skip


def test_ct_s_test_name_under_another_code_is_refused_naming_ct_s_code() -> None:
    where: list[str] = []

    def recode(doc: Any) -> None:
        i, j, sdtm = _lab(doc, "crp")
        sdtm["testcd"] = "CRPX"
        where.append(f"forms[{i}].fields[{j}].codes.sdtm.testcd")

    found = _problems(mutated_text(recode))
    assert (where[0], "'C Reactive Protein' is SDTM CT 2025-03-28's LBTEST of CRP, not of CRPX") in found


def test_sex_codes_are_ct_s_sex_terms_intersex_accepted_and_a_retired_term_refused() -> None:
    intersex = mutated_text(_set(["demographics", "sex", "codes"], {"female": "F", "male": "INTERSEX"}))
    assert load_protocol_text(intersex).protocol.demographics.sex.codes["male"] == "INTERSEX"  # type: ignore[union-attr]
    retired = mutated_text(_set(["demographics", "sex", "codes"], {"female": "F", "male": "UNDIFFERENTIATED"}))
    ((path, message),) = [(p, m) for p, m in _problems(retired) if p.startswith("demographics")]
    assert path == "demographics.sex.codes"
    assert "'UNDIFFERENTIATED' is not a term of CDISC CT SEX (C66731, SDTM CT 2025-03-28: F, INTERSEX, M, U)" in message


def test_protocol_check_notes_what_is_written_as_a_sponsor_extension() -> None:
    """The three-arm example's inhaled route is not a ROUTE term (CT says RESPIRATORY (INHALATION)); the first trial's
    lymphocyte subsets are Cell Phenotyping codes kept in LB, so LBTESTCD extensions. Neither is refused: both code
    lists are extensible, and define.xml marks them."""
    cap = ct_extensions(load_protocol(ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml").protocol)
    assert any(n.startswith("SDTM: not a term of CDISC CT ROUTE (C66729, SDTM CT 2025-03-28)") and "INHALED (arm "
               in n for n in cap)  # fmt: skip
    first = ct_extensions(load_protocol(ROOT / "protocols" / "IRCT20190101042197N2.yaml").protocol)
    (lb,) = [n for n in first if "LBTESTCD" in n]
    assert "TLYH (labs.cd4_abs)" in lb and "CRP" not in lb.split(": ", 2)[-1].split(", ")


def test_a_protocol_stored_before_the_ct_package_shipped_still_loads_and_sdtm_refuses_what_ct_lacks() -> None:
    """A trial database holds its protocol text by SHA and reads it on every request: a text stored when
    ``UNDIFFERENTIATED`` was a SEX value and test names were not checked against CT must still load (as its engine
    read it), or the trial stops working; a new text with either is refused, and the SDTM export of the old one is
    refused naming the SEX value CT 2025-03-28 lacks (SEX is not extensible), never written under another term."""
    import types

    from trialwright.exports.sdtm import SdtmExportError, _check_countries

    def old(doc: Any) -> None:
        doc["demographics"]["sex"]["codes"] = {"female": "F", "male": "UNDIFFERENTIATED"}
        _lab(doc, "crp")[2]["test"] = "CRP Level"

    text = mutated_text(old)
    with pytest.raises(ProtocolError):
        load_protocol_text(text)
    stored = load_protocol_text(text, stored=True).protocol
    assert stored.demographics.sex.codes["male"] == "UNDIFFERENTIATED"  # type: ignore[union-attr]
    with pytest.raises(SdtmExportError, match=r"demographics.sex.codes: UNDIFFERENTIATED is not a term of CDISC CT "
                                              r"SEX in SDTM CT 2025-03-28"):  # fmt: skip
        _check_countries(types.SimpleNamespace(protocol=stored))  # type: ignore[arg-type]
