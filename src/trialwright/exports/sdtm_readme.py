"""The files that describe an SDTM export: define.csv (every variable with its label, type, length, controlled terms
and origin), testcodes.csv (the LB and VS test codes with their source fields, units and terminology) and README.txt
(the conventions the domains follow, and the notes the export gathered: ``not_written`` names the domains without
records).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from trialwright.domain.text import spreadsheet_row
from trialwright.exports.sdtm_build import Build
from trialwright.exports.sdtm_domains import (
    BLINDED_ARM,
    BLINDED_TREATMENT,
    SDTMIG_VERSION,
    findings_tests,
)
from trialwright.exports.sdtm_fields import NUMBER_WHY, left_out
from trialwright.exports.sdtm_trial import design_lines
from trialwright.protocol import Protocol
from trialwright.protocol.cdisc_ct import SDTM_CT_VERSION

__all__ = ["not_written", "write_define_csv", "write_readme", "write_testcodes"]


def write_define_csv(out: Path, build: Build) -> Path:
    path = out / "define.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "dataset_label", "variable", "label", "type", "length", "controlled_terms",
                         "origin"])  # fmt: skip
        for code, sink in build.sinks.items():
            domain, lengths = sink.domain, sink.lengths
            for v in domain.variables:
                writer.writerow(spreadsheet_row([code, domain.label, v.name, v.label, v.type,
                                                 lengths.get(v.name, 8), v.terms, v.origin]))  # fmt: skip
    return path


def write_testcodes(out: Path, p: Protocol) -> Path:
    path = out / "testcodes.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["domain", "testcd", "test", "source", "protocol_unit", "standard_unit", "terminology"])
        for source, t in findings_tests(p).items():
            form_id, _, field_id = source.partition(".")
            unit = p.field(form_id, field_id).unit or ""
            writer.writerow(spreadsheet_row([t.domain, t.testcd, t.test, source, unit, t.units.get(unit, unit),
                                             t.checked or ""]))  # fmt: skip
    return path


def write_readme(folder: Path, build: Build, description: str) -> Path:
    s = build.source
    arms = (
        "yes: DM holds the allocated arm (ARMCD, ARM, ACTARMCD, ACTARM) and EX the arm's intervention"
        if s.with_arms
        else f"no: blinded extract; DM writes ARMCD, ARM, ACTARMCD and ACTARM '{BLINDED_ARM}' for every "
        "randomized (and treated) participant: the arm is assigned but withheld, so ARMNRS stays for the "
        f"SDTMIG's reasons only; EX names the treatment '{BLINDED_TREATMENT}'"
    )
    nowhere = left_out(s.protocol)
    unmapped = [ref for ref, why in nowhere.items() if why == NUMBER_WHY]
    others = [f"      {ref}: {why}" for ref, why in nowhere.items() if why != NUMBER_WHY]
    lines = [
        f"trialwright sdtm export: {description}",
        "",
        f"Trial: {s.trial_id}",
        f"Implementation guide: SDTMIG {SDTMIG_VERSION}",
        f"Controlled terminology: CDISC SDTM CT {SDTM_CT_VERSION}, as shipped with trialwright (NCI EVS's file, "
        "its package date identified as its NOTICE.md says); terms outside a code list are sponsor extensions, "
        "marked in define.xml",
        f"Protocol version: {s.protocol_version}",
        f"Exported at: {s.taken_at.astimezone(dt.UTC).isoformat(timespec='seconds')} (UTC)",
        f"Arms included: {arms}",
        "",
        "Files (sdtm/):",
        *(
            f"  {c.lower()}.xpt, {c.lower()}.csv  {s.domain.label} ({s.rows} records); dataset name {c}"
            for c, s in build.sinks.items()
        ),
        "  define.xml  Define-XML 2.1: datasets, variables, value-level metadata (LB/VS --ORRES by --TESTCD), "
        "code lists, methods, comments; define.html the same for reviewers",
        "  define.csv  every variable: label, type, length, controlled terms, origin",
        "  testcodes.csv  LB and VS test codes: source field, units, terminology (CDISC term or sponsor-defined)",
        "",
        "Conventions:",
        "  - SDTM-style, not a validated submission: SAS transport v5, 8-character names, 40-character labels.",
        "  - USUBJID is STUDYID-participant id. --DTC values are ISO 8601: a date stays a date; a date and "
        "time is the site's local time as collected, with its UTC offset (2021-03-04T10:15+03:30).",
        "  - --DY: days from RFSTDTC's date (the first exposure, else randomization, else enrolment), "
        "day 1 = that day, no day 0; empty when either date is incomplete.",
        "  - EPOCH: the visit's epoch as the protocol declares it (visits[].epoch); an AE or DS record takes "
        "the epoch whose first visit is the latest on or before its date, and none on the day an epoch "
        "begins (the first epoch's too: a visit date has no time) or before the first "
        "visit." if s.protocol.visits[0].epoch else
        "  - EPOCH: empty; the protocol declares no epochs (visits[].epoch) and EPOCH is never guessed.",
        "  - --LOBXFL: Y on the last non-missing result of each test taken before RFXSTDTC (the first "
        "exposure); none for a subject never treated.",
        "  - LB reference ranges: LBSTNRLO/LBSTNRHI as the field's normal_range declares them, LBORNRLO/LBORNRHI "
        "in the unit the result was entered in, LBNRIND LOW/NORMAL/HIGH (a censored result only when its limit "
        "tells); empty for a field without a declared range (never assumed).",
        "  - SV: one record per protocol visit a subject's forms date (SVSTDTC the first, SVENDTC the last date "
        "its forms record; SVPRESP Y, SVOCCUR Y), and one per visit recorded as missed (SVOCCUR N, SVREASOC the "
        "reason recorded, no dates; EPOCH and TAETORD the visit's planned epoch). A visit neither dated nor "
        "recorded as missed has no record. VISITDY (SV and TV): the visit's planned study day when it is "
        "counted from the event RFSTDTC is taken from (the treatment record's visit, else randomization), day 1 "
        "= that day; empty for other visits. EPOCH and TAETORD of a dated visit (with elements declared): those "
        "of the SE element it starts in, the one whose dates span SVSTDTC (on a day two elements share, the "
        "one of the visit's planned epoch; neither: empty, counted under notes).",
        "  - TV: the protocol's visits (ARMCD empty: every arm has them; TVSTRL the visit's day and window from "
        "its reference event). TI: the eligibility criteria as the protocol words them (IETESTCD the criterion "
        "id; TIVERS the protocol version).",
        *design_lines(s.protocol, s.with_arms),
        "  - SUPP--: a subject record's text longer than 200 bytes keeps its first piece (cut inside a word, so no "
        "piece begins or ends with a space and the pieces joined are the text) and "
        "continues in supp<domain>.xpt/.csv (QNAM the variable's name and 1, 2, ...; IDVAR/IDVARVAL the record's "
        "--SEQ), written only when there is such text.",
        "  - ARMNRS: NOT ASSIGNED (enrolled, never randomized), ASSIGNED, NOT TREATED; screen failures are not "
        "in DM (they were never enrolled); UNPLANNED TREATMENT (ACTARMCD, ACTARM empty, ACTARMUD says what was "
        "given) when a preparation code the treatment form records is in no allocation list, or the codes "
        "given are of more than one arm.",
        "  - RFENDTC = RFPENDTC: the latest visit date seen in the exported forms, death, completion or "
        "withdrawal.",
        "  - AEDECOD is the MedDRA PT of the LLT the coder chose, AELLT..AESOCCD its primary path (the release "
        "in the notes); an event not coded has them empty and is listed in the notes. AEREL follows the "
        "protocol's causality mapping (RELATED / NOT RELATED).",
        "  - A result below or above the limit of quantification is written <limit / >limit in --ORRES and "
        "--STRESC, --STRESN empty, and the limit in LBLLOQ / LBULOQ. Not done: --STAT NOT DONE, --REASND.",
        "  - LB units are the protocol's (not mapped to the CDISC UNIT codelist); VS units are CDISC VSRESU.",
        "  - ACTARMCD/ACTARM: the arm actually received once treated (SDTMIG 3.4 DM): the arm of the "
        "preparation codes the treatment form records (analysis_plan.treatment.code_field; another arm's "
        "preparation gives that arm), the allocated arm when no code is declared or recorded; a protocol that "
        "records no treatment takes everyone randomized as treated with the allocated arm. A blinded extract "
        "reads no code's arm: BLINDED.",
        "  - EX: one record per treatment form whose given field says the treatment was given (the analysis's "
        "rule: yes, or a date or date-time recorded; no, missing or not done: no record, ACTARM empty, ARMNRS "
        "ASSIGNED, NOT TREATED). EXSTDTC (and RFXSTDTC) is the given field's date-time or date; a yes/no given "
        "field holds no moment and the protocol declares none, so EXSTDTC is the treatment visit's date and "
        "--LOBXFL is not set. EXENDTC is the protocol's declared end field (analysis_plan.treatment.end_field) "
        "and EXDOSE/EXDOSU its declared dose field and that field's unit (dose_field); either is empty when "
        "the protocol declares none, never inferred from the form's other fields. RFXENDTC is the end of "
        "the last exposure the data record: the latest EXENDTC, or the latest EXSTDTC when the protocol "
        "declares a single administration (analysis_plan.treatment.single_administration); when an "
        "exposure's end is not recorded it is empty (never the first dose assumed) and the notes name the "
        "subject.",
        "  - DS: COMPLETED when every scheduled visit the participant's schedule places after the death record "
        "(safety.death_record) is held, besides the record's status other than death and no withdrawal from "
        "follow-up: a visit held after the record's date, or one whose window (from the participant's reference "
        "event) closes after it; DSSTDTC the latest of the record's date and those visits' dates. Such a visit "
        "missed, not yet held, or counted from an event the records do not date: no COMPLETED (never the "
        "record's date assumed), and the notes name the subject and the visit. DEATH, and DM DTHDTC/DTHFL, from "
        "the earliest death the records give: a fatal adverse event (its death date, else its onset), the death "
        "record at its visit, a vital-status field at any visit (the rule the visits after a death follow); "
        "disagreeing dates are listed under notes.",
    ]
    if unmapped:
        lines.append(f"  - Not in LB/VS (no codes.sdtm test declared in the protocol), so in no SDTM domain: "
                     f"{', '.join(unmapped)}.")
    if others:
        lines += ["  - In no SDTM domain, every other visit-form field whose values are not written, and why:", *others]
    notes = [*build.notes, *s.notes, *([not_written(build.empty)] if build.empty else [])]
    if notes:
        lines += ["", "Notes:", *(f"  - {n}" for n in notes)]
    path = folder / "README.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def not_written(empty: Sequence[str]) -> str:
    """The README note naming the domains an export does not write because they have no records."""
    return (f"Not written, no records (SDTM submits no empty dataset; define.xml does not list them): "
            f"{', '.join(empty)}.")
