"""The SDTM-style domains as declared once: each variable's name, label, type, controlled terms and origin, and
the CDISC terms the export maps the trial's codes to (``trialwright.exports.sdtm`` writes them).

The terms of the domains' own variables were checked against the CDISC SDTM controlled terminology as
extracted in the public knowledge base github.com/hakupao/sdtm-pedia (knowledge_base/terminology/core: ae.md,
dm.md, disposition.md, vs.md); the ``terms`` of each variable say which terms were found there and which are
sponsor-defined or not verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from trialwright.protocol import Protocol
from trialwright.protocol.codes import SdtmTest

__all__ = [
    "AGEU",
    "ASSENT_MILESTONE",
    "BLINDED_ARM",
    "BLINDED_TREATMENT",
    "CRITERIA",
    "DOMAINS",
    "DS_CAUSE",
    "MEDDRA_VARIABLES",
    "OUTCOMES",
    "SDTMIG_VERSION",
    "SEVERITY",
    "TSVAL_PIECES",
    "Domain",
    "Var",
    "dm_sources",
    "findings_tests",
    "supp_domain",
]


@dataclass(frozen=True, slots=True)
class Var:
    """One SDTM variable: name, label (at most 40 characters), type, controlled terms and origin."""

    name: str
    label: str
    type: Literal["Char", "Num"] = "Char"
    terms: str = ""
    origin: str = "Derived"


#: The AE dictionary variables from the MedDRA coding (``trialwright.exports.meddra``), empty when not coded.
MEDDRA_VARIABLES = tuple(
    Var(name, label, "Num" if name.endswith("CD") else "Char", terms="MedDRA (the sponsor's licensed release)",
        origin="Assigned (coder, MedDRA primary path)")
    for name, label in (
        ("AELLT", "Lowest Level Term"), ("AELLTCD", "Lowest Level Term Code"),
        ("AEDECOD", "Dictionary-Derived Term"), ("AEPTCD", "Preferred Term Code"),
        ("AEHLT", "High Level Term"), ("AEHLTCD", "High Level Term Code"),
        ("AEHLGT", "High Level Group Term"), ("AEHLGTCD", "High Level Group Term Code"),
        ("AEBODSYS", "Body System or Organ Class"), ("AEBDSYCD", "Body System or Organ Class Code"),
        ("AESOC", "Primary System Organ Class"), ("AESOCCD", "Primary System Organ Class Code"),
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Domain:
    """One domain and its variables, in order; ``seq`` names its sequence variable, if any."""

    code: str
    label: str
    variables: tuple[Var, ...]
    seq: str | None = None


def supp_domain(parent: Domain) -> Domain:
    """SUPP--: the supplemental qualifiers of a subject domain (SDTMIG 3.4 8.4), here the continuation of a text
    value longer than the 200 bytes an XPT v5 variable holds (SDTMIG 3.4 4.5.3.2: QNAM the variable's name, up to
    7 characters, and 1, 2, ...)."""
    return Domain(f"SUPP{parent.code}", f"Supplemental Qualifiers for {parent.code}", (
        Var("STUDYID", "Study Identifier", origin="Protocol"),
        Var("RDOMAIN", "Related Domain Abbreviation", origin="Assigned"),
        Var("USUBJID", "Unique Subject Identifier", origin="Derived: STUDYID-participant id"),
        Var("IDVAR", "Identifying Variable", origin="Assigned: the parent domain's --SEQ (none for DM)"),
        Var("IDVARVAL", "Identifying Variable Value", origin="Derived: the parent record's --SEQ"),
        Var("QNAM", "Qualifier Variable Name", origin="Assigned: the variable's name (7 characters) and 1, 2, ..."),
        Var("QLABEL", "Qualifier Variable Label", origin="Assigned: the variable's label (SDTMIG 3.4 4.5.3.2)"),
        Var("QVAL", "Data Value", origin="Derived: the value's text past its first 200 bytes, cut inside a word"),
        Var("QORIG", "Origin", origin="Assigned: the parent variable's origin"),
        Var("QEVAL", "Evaluator", terms="empty: no subjective values", origin="Assigned"),
    ))  # fmt: skip


def findings_tests(p: Protocol) -> dict[str, SdtmTest]:
    """The LB and VS tests the protocol declares, by form.field: LB first, then VS, each in protocol order."""
    tests = {f"{form.id}.{f.id}": f.codes.sdtm for form in p.forms for f in form.fields if f.codes and f.codes.sdtm}
    return {ref: t for domain in ("LB", "VS") for ref, t in tests.items() if t.domain == domain}


#: The implementation guide the domains follow (variables, their order within what is written, and the rules the
#: specs check); written to README.txt and define.csv's neighbours.
SDTMIG_VERSION = "3.4"

_CT = "CDISC CT"

AGEU = {"years": "YEARS", "months": "MONTHS", "weeks": "WEEKS", "days": "DAYS"}  # CDISC AGEU C66781


def dm_sources(p: Protocol) -> dict[str, list[str]]:
    """Where DM's age and sex come from, as the protocol's demographics section declares (first that has it)."""
    d = p.demographics
    return {"AGE": d.age.sources if d and d.age else [], "SEX": d.sex.sources if d and d.sex else []}


_NY = f"{_CT} NY C66742"
_COMMON = (
    Var("STUDYID", "Study Identifier", origin="Protocol"),
    Var("DOMAIN", "Domain Abbreviation", origin="Assigned"),
    Var("USUBJID", "Unique Subject Identifier", origin="Derived: STUDYID-participant id"),
)
_VISIT = (Var("VISITNUM", "Visit Number", "Num", origin="Protocol: schedule order"),
          Var("VISIT", "Visit Name", origin="Protocol"))  # fmt: skip
_LOCAL = "Collected (local date/time at the site, ISO 8601 with its UTC offset)"
_EPOCH = Var("EPOCH", "Epoch", terms=f"{_CT} EPOCH C99079 as the protocol's visits declare",
             origin="Derived: the visit's epoch (protocol visits[].epoch); events: see README.txt")  # fmt: skip


_LOG = "Collected (the log field the protocol's logs[].sdtm.variables maps)"
_ATC = "WHO ATC (the sponsor's licensed index)"

_DESIGN = (Var("STUDYID", "Study Identifier", origin="Protocol"),
           Var("DOMAIN", "Domain Abbreviation", origin="Assigned"))  # fmt: skip
_ETCD = "protocol elements (elements[]); BLINDED for an epoch's arm elements in a blinded extract"
#: TSVAL and its continuations TSVAL1.. (each at most 200 bytes): a longer value is left out and noted.
TSVAL_PIECES = 3


def _dy(name: str, label: str) -> Var:
    return Var(name, label, "Num", origin="Derived: days from RFSTDTC's date, no day 0 (SDTMIG 3.4 4.4.4)")


def _findings(p: str, test_label: str, dtc: str, testcd: str) -> tuple[Var, ...]:
    extra = (
        (Var(f"{p}LLOQ", "Lower Limit of Quantitation", "Num", origin="Collected"),
         Var(f"{p}ULOQ", "Upper Limit of Quantitation", "Num", origin="Collected"))
        if p == "LB" else ()
    )  # fmt: skip
    return (
        *_COMMON,
        Var(f"{p}SEQ", "Sequence Number", "Num"),
        Var(f"{p}TESTCD", f"{test_label} Short Name", terms=testcd, origin="Assigned (testcodes.csv)"),
        Var(f"{p}TEST", f"{test_label} Name", terms=testcd.replace("TESTCD", "TEST"), origin="Assigned"),
        Var(f"{p}CAT", f"Category for {test_label}", origin="Protocol (codes.sdtm.category)"),
        *((Var("LBSPEC", "Specimen Type", origin="Protocol (codes.sdtm.specimen)"),) if p == "LB" else ()),
        Var(f"{p}ORRES", "Result or Finding in Original Units", origin="Collected"),
        Var(f"{p}ORRESU", "Original Units", origin="Collected"),
        Var(f"{p}STRESC", "Character Result/Finding in Std Format"),
        Var(f"{p}STRESN", "Numeric Result/Finding in Standard Units", "Num"),
        Var(f"{p}STRESU", "Standard Units"),
        *((Var("LBORNRLO", "Reference Range Lower Limit in Orig Unit", origin="Protocol (normal_range)"),
           Var("LBORNRHI", "Reference Range Upper Limit in Orig Unit", origin="Protocol (normal_range)"),
           Var("LBSTNRLO", "Reference Range Lower Limit-Std Units", "Num", origin="Protocol (normal_range)"),
           Var("LBSTNRHI", "Reference Range Upper Limit-Std Units", "Num", origin="Protocol (normal_range)"),
           Var("LBNRIND", "Reference Range Indicator", terms=f"{_CT} NRIND C78736 (LOW, NORMAL, HIGH)"))
          if p == "LB" else ()),
        Var(f"{p}STAT", "Completion Status", terms=f"{_CT} ND C66789 (NOT DONE)"),
        Var(f"{p}REASND", "Reason Not Done", origin="Collected"),
        *extra,
        Var(f"{p}LOBXFL", "Last Observation Before Exposure Flag", terms=_NY,
            origin="Derived: last non-missing result before RFXSTDTC per test"),
        *_VISIT,
        _EPOCH,
        Var(f"{p}DTC", dtc, origin=_LOCAL),
        _dy(f"{p}DY", f"Study Day of {'Specimen Collection' if p == 'LB' else 'Vital Signs'}"),
    )


DOMAINS: Mapping[str, Domain] = MappingProxyType(
    {
        "DM": Domain("DM", "Demographics", (
            *_COMMON,
            Var("SUBJID", "Subject Identifier for the Study", origin="Assigned"),
            Var("RFSTDTC", "Subject Reference Start Date/Time", origin="Derived: first exposure, else randomization"),
            Var("RFENDTC", "Subject Reference End Date/Time", origin="Derived: last date of participation"),
            Var("RFXSTDTC", "Date/Time of First Study Treatment"),
            Var("RFXENDTC", "Date/Time of Last Study Treatment"),
            Var("RFICDTC", "Date/Time of Informed Consent", origin="Collected"),
            Var("RFPENDTC", "Date/Time of End of Participation", origin="Derived: last date of participation"),
            Var("DTHDTC", "Date/Time of Death", origin="Collected"),
            Var("DTHFL", "Subject Death Flag", terms=_NY),
            Var("SITEID", "Study Site Identifier", origin="Assigned"),
            Var("COUNTRY", "Country", terms="ISO 3166-1 alpha-3", origin="Protocol (sites[].country)"),
            Var("AGE", "Age", "Num", origin="Derived (age at enrolment)"),
            Var("AGEU", "Age Units", terms=f"{_CT} AGEU C66781"),
            Var("SEX", "Sex", terms=f"{_CT} SEX C66731", origin="Collected"),
            Var("ARMCD", "Planned Arm Code", terms="protocol arm codes; BLINDED in a blinded extract",
                origin="Assigned"),
            Var("ARM", "Description of Planned Arm", terms="protocol arm names; BLINDED in a blinded extract"),
            Var("ACTARMCD", "Actual Arm Code",
                terms="arm of the preparation codes given if treated (allocated arm without a code; if "
                      "randomized, without a treatment record); BLINDED if blinded"),
            Var("ACTARM", "Description of Actual Arm", terms="arm received if treated; BLINDED if blinded"),
            Var("ARMNRS", "Reason Arm and/or Actual Arm is Null",
                terms=f"{_CT} ARMNRS C142179 (NOT ASSIGNED, ASSIGNED, NOT TREATED, UNPLANNED TREATMENT)"),
            Var("ACTARMUD", "Description of Unplanned Actual Arm",
                terms="the preparation codes given outside the planned arms (UNPLANNED TREATMENT)"),
        )),
        "DS": Domain("DS", "Disposition", (
            *_COMMON,
            Var("DSSEQ", "Sequence Number", "Num"),
            Var("DSTERM", "Reported Term for the Disposition Event", origin="Collected"),
            Var("DSDECOD", "Standardized Disposition Term",
                terms=f"{_CT} NCOMPLT C66727 (COMPLETED, DEATH, WITHDRAWAL BY SUBJECT, WITHDRAWAL OF CONSENT); "
                      f"PROTOCOL MILESTONE terms INFORMED CONSENT OBTAINED, RANDOMIZED (and INFORMED ASSENT "
                      f"OBTAINED where the protocol declares eligibility.assent): {_CT} PROTMLST C114118"),
            Var("DSCAT", "Category for Disposition Event", terms=f"{_CT} DSCAT C74558"),
            Var("DSSCAT", "Subcategory for Disposition Event", terms=f"{_CT} C170443"),
            _EPOCH,
            Var("DSSTDTC", "Start Date/Time of Disposition Event", origin=_LOCAL),
            _dy("DSSTDY", "Study Day of Start of Disposition Event"),
        ), seq="DSSEQ"),
        "EX": Domain("EX", "Exposure", (
            *_COMMON,
            Var("EXSEQ", "Sequence Number", "Num"),
            Var("EXTRT", "Name of Treatment", terms="BLINDED STUDY TREATMENT unless exported with arms"),
            Var("EXDOSE", "Dose", "Num", origin="Collected (volume administered)"),
            Var("EXDOSU", "Dose Units", origin="Protocol"),
            Var("EXROUTE", "Route of Administration", terms=f"{_CT} ROUTE C66729 (the arm's route)", origin="Protocol"),
            *_VISIT,
            _EPOCH,
            Var("EXSTDTC", "Start Date/Time of Treatment", origin=_LOCAL),
            Var("EXENDTC", "End Date/Time of Treatment", origin=_LOCAL),
            _dy("EXSTDY", "Study Day of Start of Treatment"),
            _dy("EXENDY", "Study Day of End of Treatment"),
        ), seq="EXSEQ"),
        "AE": Domain("AE", "Adverse Events", (
            *_COMMON,
            Var("AESEQ", "Sequence Number", "Num"),
            Var("AESPID", "Sponsor-Defined Identifier", origin="Assigned (AE number)"),
            Var("AETERM", "Reported Term for the Adverse Event", origin="Collected"),
            *MEDDRA_VARIABLES,
            Var("AESEV", "Severity/Intensity", terms=f"{_CT} AESEV C66769 (grade 1-3; 4 and 5 as SEVERE)"),
            Var("AETOXGR", "Standard Toxicity Grade", terms="CTCAE grade 1-5", origin="Collected"),
            Var("AESER", "Serious Event", terms=_NY, origin="Collected"),
            Var("AEACN", "Action Taken with Study Treatment", terms=f"{_CT} ACN C66767"),
            Var("AEREL", "Causality", terms="sponsor-defined: RELATED, NOT RELATED (protocol causality mapping)"),
            Var("AEOUT", "Outcome of Adverse Event", terms=f"{_CT} OUT C66768"),
            Var("AESDTH", "Results in Death", terms=_NY),
            Var("AESLIFE", "Is Life Threatening", terms=_NY),
            Var("AESHOSP", "Requires or Prolongs Hospitalization", terms=_NY),
            Var("AESDISAB", "Persist or Signif Disability/Incapacity", terms=_NY),
            Var("AESCONG", "Congenital Anomaly or Birth Defect", terms=_NY),
            Var("AESMIE", "Other Medically Important Serious Event", terms=_NY),
            _EPOCH,
            Var("AESTDTC", "Start Date/Time of Adverse Event", origin="Collected"),
            Var("AEENDTC", "End Date/Time of Adverse Event", origin="Collected"),
            _dy("AESTDY", "Study Day of Start of Adverse Event"),
            _dy("AEENDY", "Study Day of End of Adverse Event"),
        ), seq="AESEQ"),
        "CM": Domain("CM", "Concomitant/Prior Medications", (
            *_COMMON,
            Var("CMSEQ", "Sequence Number", "Num"),
            Var("CMSPID", "Sponsor-Defined Identifier", origin="Assigned (the entry's sequence in its log)"),
            Var("CMTRT", "Reported Name of Drug, Med, or Therapy", origin=_LOG),
            Var("CMDECOD", "Standardized Medication Name", terms=_ATC,
                origin="Assigned (coder, WHO ATC level 5 name); empty when not coded"),
            Var("CMCLAS", "Medication Class", terms=_ATC,
                origin="Assigned (coder: the ATC level the protocol's logs[].sdtm.atc_class_level names)"),
            Var("CMCLASCD", "Medication Class Code", terms=_ATC,
                origin="Assigned (coder: the ATC code at the protocol's atc_class_level)"),
            Var("CMINDC", "Indication", origin=_LOG),
            Var("CMDOSE", "Dose per Administration", "Num", origin=_LOG),
            Var("CMDOSU", "Dose Units", terms=f"{_CT} UNIT C71620 (the protocol's declared terms)",
                origin="Collected (a unit field), else Protocol (the dose field's unit)"),
            Var("CMDOSFRQ", "Dosing Frequency per Interval",
                terms=f"{_CT} FREQ C71113 (the protocol's declared terms)", origin=_LOG),
            Var("CMDOSTOT", "Total Daily Dose", "Num", origin=_LOG),
            Var("CMROUTE", "Route of Administration", terms=f"{_CT} ROUTE C66729 (the protocol's declared terms)",
                origin=_LOG),
            _EPOCH,
            Var("CMSTDTC", "Start Date/Time of Medication", origin=_LOG),
            Var("CMENDTC", "End Date/Time of Medication", origin=_LOG),
            _dy("CMSTDY", "Study Day of Start of Medication"),
            _dy("CMENDY", "Study Day of End of Medication"),
            Var("CMENRTPT", "End Relative to Reference Time Point", terms=f"{_CT} STENRF C66728 (ONGOING)",
                origin="Derived: ONGOING when the log's ongoing field is yes"),
            Var("CMENTPT", "End Reference Time Point", origin="Protocol (logs[].sdtm.ongoing_until)"),
        ), seq="CMSEQ"),
        "MH": Domain("MH", "Medical History", (
            *_COMMON,
            Var("MHSEQ", "Sequence Number", "Num"),
            Var("MHSPID", "Sponsor-Defined Identifier", origin="Assigned (the entry's sequence in its log)"),
            Var("MHTERM", "Reported Term for the Medical History", origin=_LOG),
            Var("MHDECOD", "Dictionary-Derived Term", terms="MedDRA (the sponsor's licensed release)",
                origin="Assigned (coder, MedDRA PT); empty when not coded"),
            Var("MHCAT", "Category for Medical History", origin=_LOG),
            Var("MHBODSYS", "Body System or Organ Class", terms="MedDRA (the sponsor's licensed release)",
                origin="Assigned (coder, MedDRA primary SOC); empty when not coded"),
            Var("MHSTDTC", "Start Date/Time of Medical History Event", origin=_LOG),
            Var("MHENDTC", "End Date/Time of Medical History Event", origin=_LOG),
            Var("MHENRTPT", "End Relative to Reference Time Point", terms=f"{_CT} STENRF C66728 (ONGOING)",
                origin="Derived: ONGOING when the log's ongoing field is yes"),
            Var("MHENTPT", "End Reference Time Point", origin="Protocol (logs[].sdtm.ongoing_until)"),
        ), seq="MHSEQ"),
        "SV": Domain("SV", "Subject Visits", (
            *_COMMON,
            Var("VISITNUM", "Visit Number", "Num", origin="Protocol: schedule order"),
            Var("VISIT", "Visit Name", origin="Protocol"),
            Var("SVPRESP", "Pre-specified", terms=_NY, origin="Assigned: Y, every record is a protocol visit"),
            Var("SVOCCUR", "Occurrence", terms=_NY,
                origin="Derived: Y, the visit's forms record a date; N, the visit is recorded as missed"),
            Var("SVREASOC", "Reason for Occur Value", origin="Collected (the reason a missed visit was recorded with)"),
            Var("VISITDY", "Planned Study Day of Visit", "Num", origin="Derived: the visit's planned day from RFSTDTC"),
            Var("TAETORD", "Planned Order of Element within Arm", "Num",
                origin="Derived: the order of the visit's epoch in the protocol's elements"),
            _EPOCH,
            Var("SVSTDTC", "Start Date/Time of Observation", origin="Derived: first date the visit's forms record"),
            Var("SVENDTC", "End Date/Time of Observation", origin="Derived: last date the visit's forms record"),
            _dy("SVSTDY", "Study Day of Start of Observation"),
            _dy("SVENDY", "Study Day of End of Observation"),
        )),
        "TV": Domain("TV", "Trial Visits", (
            Var("STUDYID", "Study Identifier", origin="Protocol"),
            Var("DOMAIN", "Domain Abbreviation", origin="Assigned"),
            Var("VISITNUM", "Visit Number", "Num", origin="Protocol: schedule order"),
            Var("VISIT", "Visit Name", origin="Protocol"),
            Var("VISITDY", "Planned Study Day of Visit", "Num", origin="Derived: the visit's planned day from RFSTDTC"),
            Var("ARMCD", "Planned Arm Code", terms="empty: the visit is planned for every arm", origin="Protocol"),
            Var("TVSTRL", "Visit Start Rule", origin="Protocol (the visit's reference, day and window)"),
        )),
        "TE": Domain("TE", "Trial Elements", (
            *_DESIGN,
            Var("ETCD", "Element Code", terms=_ETCD, origin="Protocol (elements[].code)"),
            Var("ELEMENT", "Description of Element", terms=_ETCD, origin="Protocol (elements[].name)"),
            Var("TESTRL", "Rule for Start of Element", origin="Protocol (elements[].start_rule)"),
            Var("TEENRL", "Rule for End of Element", origin="Protocol (elements[].end_rule)"),
            Var("TEDUR", "Planned Duration of Element", terms="ISO 8601 duration",
                origin="Protocol (elements[].duration)"),
        )),
        "TA": Domain("TA", "Trial Arms", (
            *_DESIGN,
            Var("ARMCD", "Planned Arm Code", terms="protocol arm codes; BLINDED in a blinded extract",
                origin="Protocol"),
            Var("ARM", "Description of Planned Arm", terms="protocol arm names; BLINDED in a blinded extract",
                origin="Protocol"),
            Var("TAETORD", "Planned Order of Element within Arm", "Num", origin="Derived: epoch order"),
            Var("ETCD", "Element Code", terms=_ETCD, origin="Protocol (elements[].code)"),
            Var("ELEMENT", "Description of Element", terms=_ETCD, origin="Protocol (elements[].name)"),
            Var("TABRANCH", "Branch", origin="Derived: the randomization to the arm, on the element it ends"),
            Var("TATRANS", "Transition Rule", terms="empty: the protocol declares no transitions", origin="Protocol"),
            Var("EPOCH", "Epoch", terms=f"{_CT} EPOCH C99079 as the protocol's visits declare",
                origin="Protocol (elements[].epoch)"),
        )),
        "SE": Domain("SE", "Subject Elements", (
            *_COMMON,
            Var("SESEQ", "Sequence Number", "Num"),
            Var("ETCD", "Element Code", terms=_ETCD, origin="Protocol (elements[].code)"),
            Var("ELEMENT", "Description of Element", terms=_ETCD, origin="Protocol (elements[].name)"),
            Var("TAETORD", "Planned Order of Element within Arm", "Num", origin="Derived: epoch order"),
            Var("EPOCH", "Epoch", terms=f"{_CT} EPOCH C99079 as the protocol's visits declare",
                origin="Protocol (elements[].epoch)"),
            Var("SESTDTC", "Start Date/Time of Element",
                origin="Derived: the record the element's starts_at names (local date/time with its UTC offset)"),
            Var("SEENDTC", "End Date/Time of Element",
                origin="Derived: the next element's start; the last ends at RFPENDTC"),
            _dy("SESTDY", "Study Day of Start of Element"),
            _dy("SEENDY", "Study Day of End of Element"),
        ), seq="SESEQ"),
        "TS": Domain("TS", "Trial Summary", (
            *_DESIGN,
            Var("TSSEQ", "Sequence Number", "Num", origin="Derived: 1, 2, ... within each TSPARMCD"),
            Var("TSGRPID", "Group ID", terms="empty: no grouped parameters", origin="Assigned"),
            Var("TSPARMCD", "Trial Summary Parameter Short Name", terms=f"{_CT} TSPARMCD C66738", origin="Assigned"),
            Var("TSPARM", "Trial Summary Parameter", terms=f"{_CT} TSPARM C67152", origin="Assigned"),
            Var("TSVAL", "Parameter Value", terms="see README.txt: each parameter's protocol fact",
                origin="Protocol (the fact each TSPARMCD names; ACTSUB and SSTDTC from the records)"),
            *(Var(f"TSVAL{i}", "Parameter Value", origin="Protocol (the value's continuation past 200 bytes)")
              for i in range(1, TSVAL_PIECES)),
            Var("TSVALNF", "Parameter Null Flavor", terms="empty: a parameter without a value is left out",
                origin="Assigned"),
            Var("TSVALCD", "Parameter Value Code", origin="Protocol (registry id, ICD-10 code)"),
            Var("TSVCDREF", "Name of the Reference Terminology", origin="Protocol (registry name, ICD-10)"),
            Var("TSVCDVER", "Version of the Reference Terminology", terms="empty: not declared", origin="Assigned"),
        )),
        "TI": Domain("TI", "Trial Inclusion/Exclusion Criteria", (
            Var("STUDYID", "Study Identifier", origin="Protocol"),
            Var("DOMAIN", "Domain Abbreviation", origin="Assigned"),
            Var("IETESTCD", "Incl/Excl Criterion Short Name", origin="Protocol (eligibility criterion id)"),
            Var("IETEST", "Inclusion/Exclusion Criterion", origin="Protocol (criterion text)"),
            Var("IECAT", "Inclusion/Exclusion Category", terms=f"{_CT} IECAT C66797 (INCLUSION, EXCLUSION)",
                origin="Protocol"),
            Var("TIVERS", "Protocol Criteria Versions", origin="Protocol (version)"),
        )),
        "LB": Domain("LB", "Laboratory Test Results",
                     _findings("LB", "Lab Test or Examination", "Date/Time of Specimen Collection",
                               f"{_CT} LBTESTCD C65047 or as the protocol declares: see testcodes.csv"),
                     seq="LBSEQ"),
        "VS": Domain("VS", "Vital Signs",
                     _findings("VS", "Vital Signs Test", "Date/Time of Measurements", f"{_CT} VSTESTCD C66741"),
                     seq="VSSEQ"),
    }
)  # fmt: skip

OUTCOMES = {
    "recovered": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED",
    "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
    "unknown": "UNKNOWN",
}
#: DSDECOD of a child's assent given beside a representative's consent (protocol eligibility.assent): the CDISC
#: Protocol Milestone term C161418 (codelist PROTMLST C114118), DSCAT PROTOCOL MILESTONE. A dissent or an assent not
#: sought is no milestone: a dissent is never enrolled (no DM row), and not sought stays in the consent record.
ASSENT_MILESTONE = "INFORMED ASSENT OBTAINED"
#: DSDECOD (CDISC codelist NCOMPLT) for a withdrawal's cause; a withdrawal of consent, or one recorded without a
#: cause, is the subject's withdrawal (of consent to data use: WITHDRAWAL OF CONSENT).
DS_CAUSE = {
    "lost_to_follow_up": "LOST TO FOLLOW-UP",
    "investigator_decision": "PHYSICIAN DECISION",
    "adverse_event": "ADVERSE EVENT",
    "other": "OTHER",
}
SEVERITY = {1: "MILD", 2: "MODERATE", 3: "SEVERE", 4: "SEVERE", 5: "SEVERE"}
CRITERIA = {
    "AESDTH": "death",
    "AESLIFE": "life_threatening",
    "AESHOSP": "hospitalisation",
    "AESDISAB": "disability",
    "AESCONG": "congenital_anomaly",
    "AESMIE": "medically_important",
}
BLINDED_TREATMENT = "BLINDED STUDY TREATMENT"
#: ARMCD, ARM, ACTARMCD and ACTARM of a randomized participant in a blinded extract: the arm is assigned (so not
#: null, and ARMNRS stays for the SDTMIG's reasons) but withheld; the same word for everyone, so it names no arm.
BLINDED_ARM = "BLINDED"
