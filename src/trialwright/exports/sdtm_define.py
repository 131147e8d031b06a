"""Define-XML 2.1 for the SDTM-style export: ``define.xml`` (valid against CDISC's Define-XML 2.1 schema) and
``define.html``, the same metadata rendered for reviewers by trialwright's own template.

The metadata is built once, as frozen objects (``DefineDoc``), from three things only: the domains as declared
(``sdtm_domains.DOMAINS``: names, labels, types, origins), the lengths the XPT files were written with, and the
protocol (test codes, choice fields, derived fields' formulas, arms). Both files render that one object.

- Datasets: ``ItemGroupDef`` OID ``IG.<DOMAIN>`` with ``def:Structure``, ``def:Class`` and a ``def:leaf`` to
  ``<domain>.xpt``; keys STUDYID, USUBJID and --SEQ (the export numbers --SEQ within USUBJID).
- Variables: ``ItemDef`` OID ``IT.<DOMAIN>.<VAR>``; text as ``text`` with the XPT length, --DTC as
  ``partialDatetime`` (a date, or a date and time to the minute), --SEQ and VISITNUM as ``integer``, other
  numbers as ``float`` (Length 8, the XPT numeric width). ``def:Origin`` is the declared origin's first word
  (Collected, Derived, Assigned, Protocol); a derived variable has a ``MethodDef`` ``MT.<DOMAIN>.<VAR>``.
- Value level: LB and VS --ORRES by --TESTCD, one item per test code the protocol declares (``IT.LB.LBORRES.CRP``,
  ``WC.LB.LBTESTCD.CRP``); a test from a derived field points at the field's formula (``MT.<form>.<field>``, as in
  the ODM export).
- Code lists: the CDISC terms the export writes, each code list, its name, NCI code and every term's NCI code
  (``Alias nci:ExtCodeID``) from the shipped SDTM CT (``trialwright.protocol.cdisc_ct``; ``def:StandardOID``
  the CT standard), a value that is not a term written as a sponsor extension (``def:ExtendedValue``) of an
  extensible list and refused for one that is not; sponsor lists where CDISC has none (causality, CTCAE grade);
  the protocol's test codes, the choices of a findings field, and, only in
  an extract made with arms, the protocol's arm codes and names. A blinded extract's define names no arm: ARMCD,
  ARM, ACTARMCD and ACTARM (BLINDED) carry a comment saying they are withheld, not missing.

The standards: ``SDTMIG_VERSION`` is the SDTMIG the export follows (``sdtm_domains``), and a comment says which of
its rules the specs check and that this is not a validated submission; the CT standard is the shipped package
(``SDTM_CT_VERSION``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

import trialwright
from trialwright.exports.base import ExportSource
from trialwright.exports.odm.outline import mdv_oid
from trialwright.exports.odm.xmlstream import XmlStream
from trialwright.exports.sdtm_design import TS_PARAMETER_CODES, ts_blinding, ts_parameter
from trialwright.exports.sdtm_domains import (
    AGEU,
    ASSENT_MILESTONE,
    DOMAINS,
    DS_CAUSE,
    OUTCOMES,
    SDTMIG_VERSION,
    SEVERITY,
    Var,
    findings_tests,
    supp_domain,
)
from trialwright.protocol import FieldType, Protocol
from trialwright.protocol.cdisc_ct import SDTM_CT_VERSION, sdtm_ct

__all__ = [
    "DEF_NS",
    "SDTMIG_VERSION",
    "CodeList",
    "Dataset",
    "DefineDoc",
    "Method",
    "Variable",
    "define_doc",
    "write_define",
]

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
DEF_NS = "http://www.cdisc.org/ns/def/v2.1"
XLINK_NS = "http://www.w3.org/1999/xlink"
_STD_IG, _STD_CT = "STD.SDTMIG", "STD.CT"

#: Class and structure of each domain (SDTMIG's wording).
_DATASETS = {
    "DM": ("SPECIAL PURPOSE", "One record per subject"),
    "DS": ("EVENTS", "One record per disposition status or protocol milestone per subject"),
    "EX": ("INTERVENTIONS", "One record per constant dosing interval per subject"),
    "AE": ("EVENTS", "One record per adverse event per subject"),
    "LB": ("FINDINGS", "One record per lab test per visit per subject"),
    "VS": ("FINDINGS", "One record per vital sign measurement per visit per subject"),
    "SV": ("SPECIAL PURPOSE", "One record per actual or planned visit per subject"),
    "TV": ("TRIAL DESIGN", "One record per planned Visit per Arm"),
    "TI": ("TRIAL DESIGN", "One record per I/E criterion"),
    "TE": ("TRIAL DESIGN", "One record per planned Element"),
    "TA": ("TRIAL DESIGN", "One record per planned Element per Arm"),
    "SE": ("SPECIAL PURPOSE", "One record per actual Element per subject"),
    "TS": ("TRIAL DESIGN", "One record per trial summary parameter value"),
}

_SUPP = ("RELATIONSHIP", "One record per supplemental qualifier per related parent domain record")
#: The keys of the trial design domains that have no subject (SDTMIG 3.4 section 7) and of SUPP-- (8.4).
_KEYS = {"TE": ["STUDYID", "ETCD"], "TA": ["STUDYID", "ARMCD", "TAETORD"], "TS": ["STUDYID", "TSPARMCD", "TSSEQ"]}
_SUPP_KEYS = ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"]

#: How the export derives what it derives, by variable (``--`` stands for the domain's prefix).
_DERIVATIONS = {
    "USUBJID": "STUDYID, a hyphen and the participant id.",
    "--SEQ": "1, 2, 3, ... within each USUBJID, the records sorted by USUBJID (a stable sort, in the order "
    "they were gathered).",
    "RFXSTDTC": "The earliest start of treatment recorded on the protocol's treatment form (the given field's "
    "date-time or date; the treatment visit's date when the given field is yes/no).",
    "RFXENDTC": "The end of the last exposure the data record: the latest EXENDTC, or the latest start when "
    "the protocol declares a single administration; empty when an exposure's end is not recorded (never the first "
    "dose assumed; README.txt names the subject).",
    "DTHFL": "Y when a death is recorded (a fatal adverse event, the death record or a vital-status field; "
    "DTHDTC the earliest date they give), else empty.",
    "AGEU": "The protocol's age unit (demographics.age.unit) as the CDISC AGEU term.",
    "ARM": "The name of the protocol arm of ARMCD.",
    "ACTARMCD": "The arm received once the participant is treated: the arm of the preparation codes the treatment "
    "form records (analysis_plan.treatment.code_field), ARMCD when no code is recorded or declared (a protocol "
    "that records no treatment takes everyone randomized as treated); empty for an unplanned treatment.",
    "ACTARM": "The name of the protocol arm of ACTARMCD.",
    "ARMNRS": "NOT ASSIGNED when not randomized; ASSIGNED, NOT TREATED when randomized and the treatment form "
    "does not say the treatment was given (as the analysis decides); UNPLANNED TREATMENT when a preparation code "
    "given is in no allocation list, or the codes given are of more than one arm; empty otherwise (also in a "
    "blinded extract: the arm is assigned, only withheld).",
    "ACTARMUD": "For an unplanned treatment (ARMNRS UNPLANNED TREATMENT): the preparation codes in no allocation "
    "list, or the arms of the codes given; empty otherwise.",
    "LBNRIND": "LOW below LBSTNRLO, HIGH above LBSTNRHI, NORMAL between (the field's normal_range in the protocol); "
    "a result censored at a limit only when the limit decides it; empty without a declared range.",
    "DSDECOD": "From the event: consent, the child's assent where given (INFORMED ASSENT OBTAINED, at the time it "
    "was sought), randomization, death, completion (the death record's status other than death and every "
    "scheduled visit after it held), or a withdrawal's recorded cause (withdrawal of consent to data use: "
    "WITHDRAWAL OF CONSENT; otherwise WITHDRAWAL BY SUBJECT).",
    "DSCAT": "PROTOCOL MILESTONE for consent, assent and randomization, DISPOSITION EVENT otherwise.",
    "DSSCAT": "STUDY TREATMENT for a withdrawal from the intervention only, STUDY PARTICIPATION otherwise.",
    "EXTRT": "The allocated arm's intervention name in an extract with arms; BLINDED STUDY TREATMENT otherwise.",
    "AEDECOD": "The MedDRA preferred term of the lowest level term the coder chose; empty while not coded.",
    "AESEV": "From the CTCAE grade: 1 MILD, 2 MODERATE, 3 to 5 SEVERE.",
    "AEACN": "The recorded action as the CDISC ACN term.",
    "AEREL": "The protocol's causality mapping: RELATED or NOT RELATED.",
    "AEOUT": "The recorded outcome as the CDISC OUT term.",
    "AESDTH": "Y/N from the seriousness criteria of a serious event; empty when not serious.",
    "AESLIFE": "Y/N from the seriousness criteria of a serious event; empty when not serious.",
    "AESHOSP": "Y/N from the seriousness criteria of a serious event; empty when not serious.",
    "AESDISAB": "Y/N from the seriousness criteria of a serious event; empty when not serious.",
    "AESCONG": "Y/N from the seriousness criteria of a serious event; empty when not serious.",
    "AESMIE": "Y/N from the seriousness criteria of a serious event; empty when not serious.",
    "--STRESC": "The stored value in the protocol's canonical unit, with the field's declared decimals (4.0 for "
    "decimals 1; no digits added without them); <limit or >limit when below or above the limit of "
    "quantification.",
    "--STRESN": "--STRESC as a number; empty when censored or not done.",
    "--STRESU": "The protocol's canonical unit as the test declares it (codes.sdtm.units).",
    "--STAT": "NOT DONE when the value was recorded as not done or not applicable.",
}
_ARM_VARIABLES = ("ARMCD", "ARM", "ACTARMCD", "ACTARM")


@dataclass(frozen=True, slots=True)
class Variable:
    """One ItemDef (and the ItemRef that places it), of a dataset or of a value list."""

    oid: str
    name: str
    label: str
    data_type: str
    length: int | None
    digits: int | None
    mandatory: bool
    key: int | None
    origin: str  # Collected, Derived, Assigned or Protocol
    origin_source: str | None
    origin_text: str
    method: str | None = None
    codelist: str | None = None
    comment: str | None = None
    value_list: str | None = None
    where: tuple[str, str, str] | None = None  # (WhereClauseDef OID, the --TESTCD ItemDef OID, the test code)


@dataclass(frozen=True, slots=True)
class Dataset:
    """One ItemGroupDef: a domain, its XPT file and its variables in order."""

    name: str
    label: str
    cls: str
    structure: str
    href: str
    variables: tuple[Variable, ...]

    @property
    def oid(self) -> str:
        return f"IG.{self.name}"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(v.name for v in sorted((v for v in self.variables if v.key), key=lambda v: v.key or 0))


@dataclass(frozen=True, slots=True)
class CodeList:
    """Permissible values: (value, decode or None, a sponsor extension of a CDISC list, description)."""

    oid: str
    name: str
    items: tuple[tuple[str, str | None, bool, str | None], ...]
    standard: bool  # a CDISC CT code list (def:StandardOID)
    nci_code: str | None = None
    comment: str | None = None
    term_codes: tuple[str | None, ...] = ()  # each item's NCI code (None: a sponsor extension or list)


@dataclass(frozen=True, slots=True)
class Method:
    oid: str
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class DefineDoc:
    """Everything define.xml and define.html say, built once from the export and the protocol."""

    study: str
    study_name: str
    protocol_name: str
    mdv: str
    mdv_name: str
    taken_at: dt.datetime
    with_arms: bool
    datasets: tuple[Dataset, ...]
    value_lists: tuple[tuple[str, Variable, tuple[Variable, ...]], ...]  # (OID, the variable, its items)
    codelists: tuple[CodeList, ...]
    methods: tuple[Method, ...]
    comments: tuple[tuple[str, str], ...]
    standards: tuple[tuple[str, str, str, str | None, str, str | None], ...]  # OID, name, type, set, version, comment


# -- building the metadata ---------------------------------------------------------------------------------


def _generic(name: str, domain: str) -> str:
    return "--" + name[2:] if name.startswith(domain) and name != domain else name


def _data_type(v: Var, p: Protocol) -> str:
    if v.type == "Char":
        return "partialDatetime" if v.name.endswith("DTC") else "text"
    if v.name.endswith("SEQ") or v.name in {"VISITNUM", "VISITDY", "TAETORD"}:
        return "integer"
    if v.name == "AGE":
        d = p.demographics
        sources = [s.partition(".") for s in (d.age.sources if d and d.age else [])]
        kinds = {p.field(form, fid).type for form, _, fid in sources if form != "screening"}
        return "integer" if kinds == {FieldType.INTEGER} else "float"
    return "float"


def _digits(p: Protocol, domain: str, generic: str) -> int | None:
    """SignificantDigits of a findings result or limit: the most decimals any of the domain's test fields keeps
    (an integer field none); unknown (None) if one decimal field declares none, or for any other variable."""
    if generic not in {"--STRESN", "--LLOQ", "--ULOQ"}:
        return None
    fields = [p.field(*ref.split(".", 1)) for ref, t in findings_tests(p).items() if t.domain == domain]
    if generic != "--STRESN":
        fields = [f for f in fields if f.quantification_limits]
    kept = [0 if f.type is FieldType.INTEGER else f.decimals for f in fields]
    return None if not kept or None in kept else max(k for k in kept if k is not None)


def _origin(text: str) -> tuple[str, str | None, str]:
    """The declared origin's kind (its first word), the source of a collected value, and the rest as text."""
    kind, rest = re.match(r"(\w+)\W*(.*?)\)?$", text).groups()  # type: ignore[union-attr]
    if kind not in {"Collected", "Derived", "Assigned", "Protocol"}:
        raise ValueError(f"origin {text!r}: not Collected, Derived, Assigned or Protocol")
    return kind, "Investigator" if kind == "Collected" else None, rest


def ct_list(short: str, values: Iterable[str], oid: str | None = None, *,
            notes: Mapping[str, str] | None = None) -> CodeList:
    """The code list ``short`` of the shipped SDTM CT holding ``values`` (in that order), each with its NCI code; a
    value that is not a term is a sponsor extension (``def:ExtendedValue``), which only an extensible code list
    takes: a value outside one that is not is refused, naming it (``protocol check`` refuses what a protocol
    declares first)."""
    cl = sdtm_ct()[short]
    items, codes = [], []
    for v in values:
        term = cl.terms.get(v)
        if term is None and not cl.extensible:
            raise ValueError(f"{v!r} is not a term of CDISC CT {cl.short} ({cl.code}, SDTM CT {SDTM_CT_VERSION}), "
                             "which is not extensible")  # fmt: skip
        note = (notes or {}).get(v) or (None if term else "sponsor extension (not a term of the code list)")
        items.append((v, None, term is None, note))
        codes.append(term.code if term else None)
    return CodeList(oid or f"CL.{cl.short}", cl.name, tuple(items), True, cl.code, term_codes=tuple(codes))


def _ct_codelists(p: Protocol) -> dict[str, CodeList]:
    """The code lists of the terms the export writes, keyed by the variable (``--`` for a findings prefix): each
    term and name from the shipped SDTM CT (``trialwright.protocol.cdisc_ct``), none typed here."""
    sex = sorted({*(p.demographics.sex.codes.values() if p.demographics and p.demographics.sex else ()), "U"})
    # The child's assent's milestone where the protocol declares it (eligibility.assent; sdtm_subjects).
    milestones = ("INFORMED CONSENT OBTAINED", *((ASSENT_MILESTONE,) if p.eligibility.assent else ()), "RANDOMIZED")
    ncomplt = sorted({"COMPLETED", "DEATH", "WITHDRAWAL BY SUBJECT", "WITHDRAWAL OF CONSENT", *DS_CAUSE.values()})
    protmlst = sdtm_ct()["PROTMLST"]
    milestone_notes = {m: f"a {protmlst.short} ({protmlst.code}) term, {protmlst.term(m).code}: DSCAT PROTOCOL "
                          "MILESTONE" for m in milestones}  # fmt: skip

    def sponsor(oid: str, name: str, values: list[str]) -> CodeList:
        return CodeList(oid, name, tuple((v, None, False, None) for v in values), False)

    ny = ct_list("NY", ["N", "Y"])
    lists = {
        "AGEU": ct_list("AGEU", sorted(set(AGEU.values()))),
        "SEX": ct_list("SEX", sex),
        "ARMNRS": ct_list("ARMNULRS", ["ASSIGNED, NOT TREATED", "NOT ASSIGNED", "UNPLANNED TREATMENT"]),
        "DSDECOD": ct_list("NCOMPLT", [*ncomplt, *milestones], notes=milestone_notes),
        "DSCAT": ct_list("DSCAT", ["DISPOSITION EVENT", "PROTOCOL MILESTONE"]),
        "DSSCAT": ct_list("DSSCAT", ["STUDY PARTICIPATION", "STUDY TREATMENT"]),
        "AESEV": ct_list("AESEV", sorted(set(SEVERITY.values()))),
        "AEACN": ct_list("ACN", sorted({a.sdtm.value for a in p.safety.action_choices})),
        "AEOUT": ct_list("OUT", sorted(set(OUTCOMES.values()))),
        "AEREL": sponsor("CL.AEREL", "Causality (sponsor-defined)", ["NOT RELATED", "RELATED"]),
        "AETOXGR": sponsor("CL.AETOXGR", "CTCAE grade (sponsor-defined)", [str(g) for g in range(1, 6)]),
        "--STAT": ct_list("ND", ["NOT DONE"]),
        "EXROUTE": ct_list("ROUTE", sorted({a.intervention.route.upper() for a in p.arms})),
        "LBNRIND": ct_list("NRIND", ["HIGH", "LOW", "NORMAL"]),
        "IECAT": ct_list("IECAT", ["EXCLUSION", "INCLUSION"]),
        "CMENRTPT": ct_list("STENRF", ["ONGOING"]),
        "MHENRTPT": ct_list("STENRF", ["ONGOING"]),
    }
    epochs_declared = sorted({v.epoch for v in p.visits if v.epoch})
    if epochs_declared:
        lists["EPOCH"] = ct_list("EPOCH", epochs_declared)
    for log in p.logs:  # CM's coded variables: the terms the protocol declares (checked at protocol check)
        for variable, declared in (log.sdtm.terminology.items() if log.sdtm else ()):
            lists[variable] = ct_list(declared.codelist, sorted({*declared.terms, *declared.extensions}),
                                      f"CL.{variable}")  # fmt: skip
    lists["TSPARMCD"] = ct_list("TSPARMCD", sorted(TS_PARAMETER_CODES))
    lists["TSPARM"] = ct_list("TSPARM", sorted(ts_parameter(c) for c in TS_PARAMETER_CODES))
    for name in (
        "SVPRESP",
        "SVOCCUR",
        "DTHFL",
        "AESER",
        "AESDTH",
        "AESLIFE",
        "AESHOSP",
        "AESDISAB",
        "AESCONG",
        "AESMIE",
    ):
        lists[name] = ny
    return lists


def _test_codelists(p: Protocol) -> dict[str, CodeList]:
    """--TESTCD (decoded by --TEST) and --TEST of LB and VS: the protocol's tests, each with its NCI code from the
    shipped SDTM CT; a code that is not a CT term is a sponsor extension (``protocol check`` says which)."""
    out: dict[str, CodeList] = {}
    ct = sdtm_ct()
    for domain in ("LB", "VS"):
        codes, names = ct[f"{domain}TESTCD"], ct[f"{domain}TEST"]
        tests = {t.testcd: t for t in findings_tests(p).values() if t.domain == domain}
        found = {cd: codes.terms.get(cd) for cd in tests}
        out[f"{domain}TESTCD"] = CodeList(
            f"CL.{domain}TESTCD", codes.name, standard=True, nci_code=codes.code,
            items=tuple((cd, t.test, found[cd] is None, None if found[cd] else "sponsor extension")
                        for cd, t in tests.items()),
            term_codes=tuple(term.code if term else None for term in found.values()),
        )  # fmt: skip
        out[f"{domain}TEST"] = CodeList(
            f"CL.{domain}TEST", names.name, standard=True, nci_code=names.code,
            items=tuple((t.test, None, found[cd] is None, None) for cd, t in tests.items()),
            term_codes=tuple(term.code if term else None for term in found.values()),
        )  # fmt: skip
    return out


def define_doc(source: ExportSource, lengths: Mapping[str, Mapping[str, int]]) -> DefineDoc:
    """The define metadata of an SDTM export whose XPT files were written with ``lengths`` (bytes, by domain
    and variable)."""
    p = source.protocol
    lists = {**_ct_codelists(p), **_test_codelists(p)}
    comments: dict[str, str] = {
        "COM.SDTMIG": f"Datasets following SDTMIG {SDTMIG_VERSION} as the export's README states (the rules its "
        "specs check: required variables, --DY, EPOCH, baseline flags, reference indicators, local times with "
        "offsets); not a validated submission.",
        "COM.CT": f"CDISC SDTM Controlled Terminology {SDTM_CT_VERSION} as trialwright ships it (an extract of "
        "NCI EVS's SDTM Terminology.txt); a term outside a code list is marked as a sponsor extension.",
    }
    if source.with_arms:
        lists["ARMCD"] = lists["ACTARMCD"] = CodeList(
            "CL.ARMCD", "Arm Code (protocol arms)", tuple((a.code, a.name, False, None) for a in p.arms), False
        )
        lists["ARM"] = lists["ACTARM"] = CodeList(
            "CL.ARM", "Arm Name (protocol arms)", tuple((a.name, None, False, None) for a in p.arms), False
        )
    else:
        comments["COM.BLINDED"] = ("BLINDED in this blinded extract for every randomized participant: the arm is "
                                   "assigned and withheld (masked, not missing); ARMNRS keeps the SDTMIG's reasons "
                                   "(NOT ASSIGNED; ASSIGNED, NOT TREATED).")  # fmt: skip
    methods: dict[str, Method] = {}
    datasets: list[Dataset] = []
    supps = {c: supp_domain(DOMAINS[c.removeprefix("SUPP")]) for c in lengths if c.startswith("SUPP")}
    written = {code: domain for code, domain in {**DOMAINS, **supps}.items() if code in lengths}  # none empty
    for code, domain in written.items():
        cls, structure = _DATASETS.get(code) or _SUPP
        keys = (
            _SUPP_KEYS
            if code in supps
            else _KEYS.get(code) or ["STUDYID", "USUBJID", *([domain.seq] if domain.seq else [])]
        )
        variables = []
        for v in domain.variables:
            generic = _generic(v.name, code)
            kind, who, text = _origin(v.origin)
            method = None
            if kind == "Derived":
                description = _DERIVATIONS.get(v.name) or _DERIVATIONS.get(generic) or text
                if not description:
                    raise ValueError(f"{code}.{v.name}: derived, but no derivation is described")
                method = f"MT.{code}.{v.name}"
                methods[method] = Method(method, f"Algorithm to derive {code}.{v.name}", description)
            codelist = lists.get(v.name) or lists.get(generic)
            codelist = codelist if codelist and codelist.items else None  # a protocol without LB tests: none
            data_type = _data_type(v, p)
            length = lengths[code][v.name] if data_type in {"text", "integer", "float"} else None
            variables.append(Variable(
                oid=f"IT.{code}.{v.name}", name=v.name, label=v.label, data_type=data_type, length=length,
                digits=_digits(p, code, generic) if data_type == "float" else None,
                mandatory=v.name in keys or generic in {"--TESTCD", "--TEST"},
                key=keys.index(v.name) + 1 if v.name in keys else None, origin=kind, origin_source=who,
                origin_text=text, method=method, codelist=codelist.oid if codelist else None,
                comment="COM.BLINDED" if v.name in _ARM_VARIABLES and not source.with_arms else None,
                value_list=f"VL.{code}.{v.name}" if generic == "--ORRES" or (
                    (code, v.name) == ("TS", "TSVAL") and ts_blinding(p) is not None) else None,
            ))  # fmt: skip
        datasets.append(Dataset(code, domain.label, cls, structure, f"{code.lower()}.xpt", tuple(variables)))
    value_lists, choice_lists = _value_lists(p, datasets, methods)
    used = {v.codelist for d in datasets for v in d.variables} | {c.oid for c in choice_lists}
    codelists = {c.oid: c for c in [*lists.values(), *choice_lists] if c.oid in used}
    standards = (
        (_STD_IG, "SDTMIG", "IG", None, SDTMIG_VERSION, "COM.SDTMIG"),
        (_STD_CT, "CDISC/NCI", "CT", "SDTM", SDTM_CT_VERSION, "COM.CT"),
    )
    return DefineDoc(
        study=source.trial_id, study_name=p.short_name, protocol_name=p.trial.titles.scientific,
        mdv=mdv_oid(source.protocol_version), mdv_name=f"{p.trial_id} SDTM-style tabulation, protocol "
        f"{source.protocol_version}", taken_at=source.taken_at, with_arms=source.with_arms,
        datasets=tuple(datasets), value_lists=value_lists, codelists=tuple(codelists.values()),
        methods=tuple(methods.values()), comments=tuple(comments.items()), standards=standards,
    )  # fmt: skip


def _ts_values(p: Protocol, v: Variable) -> tuple[list[Variable], list[CodeList]]:
    """TS TSVAL where TSPARMCD is TBLIND: C66735's code list with the value written, a sponsor extension marked
    as every other (``def:ExtendedValue``: triple blind, walk 6 F6); nothing when TBLIND is not written."""
    value = ts_blinding(p)
    if value is None:
        return [], []
    listed = ct_list("TBLIND", [value], "CL.TS.TBLIND")
    item = dataclasses.replace(v, oid=f"{v.oid}.TBLIND", label="Trial Blinding Schema", mandatory=False, key=None,
                               value_list=None, codelist=listed.oid, where=("WC.TS.TSPARMCD.TBLIND",
                                                                             "IT.TS.TSPARMCD", "TBLIND"))  # fmt: skip
    return [item], [listed]


def _value_lists(p: Protocol, datasets: list[Dataset], methods: dict[str, Method]
                 ) -> tuple[tuple[tuple[str, Variable, tuple[Variable, ...]], ...], list[CodeList]]:  # fmt: skip
    """LB and VS --ORRES by --TESTCD: one item per declared test code, from its protocol field(s); TS TSVAL by
    TSPARMCD for the parameter a code list holds (``_ts_values``)."""
    by_code: dict[tuple[str, str], list[str]] = {}
    for ref, t in findings_tests(p).items():
        by_code.setdefault((t.domain, t.testcd), []).append(ref)
    out, choice_lists = [], []
    for d in datasets:
        for v in d.variables:
            if v.value_list is None:
                continue
            if d.name == "TS":
                ts_items, ts_lists = _ts_values(p, v)
                out += [(v.value_list, v, tuple(ts_items))] if ts_items else []
                choice_lists += ts_lists
                continue
            items = []
            for (domain, testcd), refs in by_code.items():
                if domain != d.name:
                    continue
                fields = [(ref, p.field(*ref.split(".", 1))) for ref in refs]
                derived = [(ref, f) for ref, f in fields if f.derived is not None]
                if derived and len(derived) != len(fields):
                    raise ValueError(f"{domain} {testcd}: from collected and derived fields at once ({refs})")
                method = None
                if derived:
                    method = f"MT.{d.name}.{testcd}" if len(derived) > 1 else f"MT.{derived[0][0]}"
                    described = "; ".join(f"{ref}: {f.derived.describe()}" for ref, f in derived)  # type: ignore[union-attr]
                    methods[method] = Method(method, f"Algorithm to derive {testcd}", f"{described}, computed by "
                                             "trialwright as the protocol declares")  # fmt: skip
                codelist = None
                choices = [f for _, f in fields if f.choices]
                if choices:
                    codelist = f"CL.{refs[0]}"
                    choice_lists.append(
                        CodeList(
                            codelist, refs[0], tuple((c.code, c.label, False, None) for c in choices[0].choices), False
                        )
                    )
                units = sorted({f.unit for _, f in fields if f.unit})
                where = (f"WC.{domain}.{domain}TESTCD.{testcd}", f"IT.{domain}.{domain}TESTCD", testcd)
                text = f"from {', '.join(refs)}" + (f" (protocol unit {', '.join(units)})" if units else "")
                items.append(Variable(
                    oid=f"{v.oid}.{testcd}", name=v.name, label=f"{findings_tests(p)[refs[0]].test} as entered",
                    data_type="text", length=v.length, digits=None, mandatory=False, key=None,
                    origin="Derived" if derived else "Collected", origin_source=None if derived else "Investigator",
                    origin_text=text, method=method, codelist=codelist, where=where,
                ))  # fmt: skip
            if items:
                out.append((v.value_list, v, tuple(items)))
    return tuple(out), choice_lists


# -- define.xml --------------------------------------------------------------------------------------------


def _yn(flag: bool) -> str:
    return "Yes" if flag else "No"


def _num(value: int | None) -> str | None:
    return None if value is None else str(value)


def _item_def(xml: XmlStream, v: Variable) -> None:
    attrs = {"OID": v.oid, "Name": v.name, "DataType": v.data_type, "Length": _num(v.length),
             "SignificantDigits": _num(v.digits), "SASFieldName": v.name, "def:CommentOID": v.comment}  # fmt: skip
    with xml.element("ItemDef", attrs):
        xml.translated("Description", v.label)
        if v.codelist:
            xml.leaf("CodeListRef", {"CodeListOID": v.codelist})
        origin = {"Type": v.origin, "Source": v.origin_source}
        if v.origin_text:
            with xml.element("def:Origin", origin):
                xml.translated("Description", v.origin_text)
        else:
            xml.leaf("def:Origin", origin)
        if v.value_list:
            xml.leaf("def:ValueListRef", {"ValueListOID": v.value_list})


def _item_ref(xml: XmlStream, v: Variable, order: int) -> None:
    attrs = {"ItemOID": v.oid, "OrderNumber": str(order), "Mandatory": _yn(v.mandatory), "KeySequence": _num(v.key),
             "MethodOID": v.method}  # fmt: skip
    if v.where is None:
        xml.leaf("ItemRef", attrs)
        return
    with xml.element("ItemRef", attrs):
        xml.leaf("def:WhereClauseRef", {"WhereClauseOID": v.where[0]})


def render_xml(doc: DefineDoc, path: Path) -> None:
    """Write ``doc`` as Define-XML 2.1."""
    root = {
        "xmlns": ODM_NS, "xmlns:def": DEF_NS, "xmlns:xlink": XLINK_NS, "FileType": "Snapshot",
        "FileOID": f"{doc.study}.define.{doc.taken_at.astimezone(dt.UTC):%Y%m%dT%H%M%S}Z",
        "CreationDateTime": doc.taken_at.isoformat(), "ODMVersion": "1.3.2", "Originator": "trialwright",
        "SourceSystem": "trialwright", "SourceSystemVersion": trialwright.__version__, "def:Context": "Other",
    }  # fmt: skip
    with path.open("w", encoding="utf-8", newline="\n") as f:
        xml = XmlStream(f)
        xml.declaration()
        with xml.element("ODM", root), xml.element("Study", {"OID": doc.study}):
            with xml.element("GlobalVariables"):
                xml.leaf("StudyName", text=doc.study_name)
                xml.leaf("StudyDescription", text=doc.protocol_name)
                xml.leaf("ProtocolName", text=doc.study)
            mdv = {"OID": doc.mdv, "Name": doc.mdv_name, "def:DefineVersion": "2.1.0"}
            with xml.element("MetaDataVersion", mdv):
                _metadata(xml, doc)
        xml.flush()


def _metadata(xml: XmlStream, doc: DefineDoc) -> None:
    with xml.element("def:Standards"):
        for oid, name, kind, publishing, version, comment in doc.standards:
            xml.leaf("def:Standard", {"OID": oid, "Name": name, "Type": kind, "PublishingSet": publishing,
                                      "Version": version, "Status": "Final", "def:CommentOID": comment})  # fmt: skip
    for oid, _, items in doc.value_lists:
        with xml.element("def:ValueListDef", {"OID": oid}):
            for n, item in enumerate(items, start=1):
                _item_ref(xml, item, n)
    for _, _, items in doc.value_lists:
        for item in items:
            assert item.where is not None
            with xml.element("def:WhereClauseDef", {"OID": item.where[0]}):
                check = {"Comparator": "EQ", "SoftHard": "Soft", "def:ItemOID": item.where[1]}
                with xml.element("RangeCheck", check):
                    xml.leaf("CheckValue", text=item.where[2])
    for d in doc.datasets:
        attrs = {"OID": d.oid, "Name": d.name, "Repeating": _yn(d.name != "DM"), "IsReferenceData": "No",
                 "SASDatasetName": d.name, "Domain": d.name, "Purpose": "Tabulation", "def:Structure": d.structure,
                 "def:ArchiveLocationID": f"LF.{d.name}", "def:StandardOID": _STD_IG}  # fmt: skip
        with xml.element("ItemGroupDef", attrs):
            xml.translated("Description", d.label)
            for n, v in enumerate(d.variables, start=1):
                _item_ref(xml, v, n)
            xml.leaf("def:Class", {"Name": d.cls})
            with xml.element("def:leaf", {"ID": f"LF.{d.name}", "xlink:href": d.href}):
                xml.leaf("def:title", text=d.href)
    for d in doc.datasets:
        for v in d.variables:
            _item_def(xml, v)
    for _, _, items in doc.value_lists:
        for item in items:
            _item_def(xml, item)
    for c in doc.codelists:
        listed: dict[str, str | None] = {"OID": c.oid, "Name": c.name, "DataType": "text",
                                         "def:StandardOID": _STD_CT if c.standard else None,
                                         "def:CommentOID": c.comment}  # fmt: skip
        with xml.element("CodeList", listed):
            decoded = any(decode for _, decode, _, _ in c.items)
            codes = c.term_codes or (None,) * len(c.items)
            for n, ((value, decode, extended, note), term) in enumerate(zip(c.items, codes, strict=True), start=1):
                tag = "CodeListItem" if decoded else "EnumeratedItem"
                entry = {"CodedValue": value, "OrderNumber": str(n), "def:ExtendedValue": "Yes" if extended else None}
                with xml.element(tag, entry):  # Decode, the term's NCI code, then the extension's Description
                    if decoded:
                        xml.translated("Decode", decode or value)
                    if term:
                        xml.leaf("Alias", {"Context": "nci:ExtCodeID", "Name": term})
                    if note:
                        xml.translated("Description", note)
            if c.nci_code:
                xml.leaf("Alias", {"Context": "nci:ExtCodeID", "Name": c.nci_code})
    for m in doc.methods:
        with xml.element("MethodDef", {"OID": m.oid, "Name": m.name, "Type": "Computation"}):
            xml.translated("Description", m.description)
    for oid, text in doc.comments:
        with xml.element("def:CommentDef", {"OID": oid}):
            xml.translated("Description", text)


# -- define.html -------------------------------------------------------------------------------------------

_ENV = Environment(loader=PackageLoader("trialwright.exports", "templates"), autoescape=select_autoescape(["html"]))


def render_html(doc: DefineDoc, path: Path) -> None:
    """Write ``doc`` as HTML for reviewers (trialwright's template, not CDISC's stylesheet)."""
    comments = dict(doc.comments)
    html = _ENV.get_template("define.html").render(doc=doc, comments=comments,
                                                   methods={m.oid: m for m in doc.methods})  # fmt: skip
    path.write_text(html, encoding="utf-8")


def write_define(source: ExportSource, lengths: Mapping[str, Mapping[str, int]], out: Path) -> list[Path]:
    """``define.xml`` and ``define.html`` in ``out`` (the folder of the XPT files)."""
    doc = define_doc(source, lengths)
    xml_path, html_path = out / "define.xml", out / "define.html"
    render_xml(doc, xml_path)
    render_html(doc, html_path)
    return [xml_path, html_path]
