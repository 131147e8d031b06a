"""SDTM tabulation after SDTMIG 3.4: DM, DS, EX, AE, CM and MH (from the protocol's log forms), SV, SE, LB, VS and
the trial design domains (TV, TI, TE, TA, TS; ``trialwright.exports.sdtm_design``) as SAS transport v5 files and CSV,
with metadata and SUPP-- for text past 200 bytes.

Each domain is declared once (``trialwright.exports.sdtm_domains``: its variables with label, type, controlled
terms and origin); the findings domains LB and VS hold exactly the fields whose protocol ``codes`` declare an
``sdtm`` test (``trialwright.protocol.codes``: domain, --TESTCD, --TEST, the terminology it was checked in, the
unit words); nothing is guessed from a field's name or unit, and a numeric field without a test is named in
README.txt. Form records are streamed one form at a time; what DM and DS need about a participant (dates, age,
sex, death, exposure) is gathered on the way, so memory grows with participants, not records. Rows are
gathered into Arrow record batches and spooled to Parquet; each domain is then read back as Arrow columns,
sorted by USUBJID, given what needs other records (--DY from each subject's RFSTDTC, in Arrow; --LOBXFL, which
reads LB's and VS's subject, test, result and time columns as Python lists), numbered (--SEQ) and written on its
own, a batch at a time as XPT (the project's transport writer, ``trialwright.exports.xport``) and as CSV; the sort
holds the domain's Arrow columns, so the peak is the largest domain's columns. Every form is read for the visit
dates (SV, EPOCH of events); only the domains' forms give rows.

Masking: a blinded extract writes BLINDED in ARMCD, ARM, ACTARMCD and ACTARM of every randomized (and treated)
participant: the arm is assigned, only withheld, so it is not null and ARMNRS keeps the SDTMIG's reasons (NOT
ASSIGNED; ASSIGNED, NOT TREATED), the same as in the extract with arms; EX names the treatment "BLINDED STUDY
TREATMENT". With arms (the unblinded statistician only), DM holds the allocated arm and EX the arm's
intervention, TA the planned arms and TE/SE the arms' elements; no other domain names an arm (TV's ARMCD is
empty: every arm has every visit). A blinded extract's TA, TE and SE write BLINDED as DM does.

Test codes say where they were checked in the protocol (``checked``), written to testcodes.csv. The domains'
metadata is also written as Define-XML 2.1, define.xml with define.html (``trialwright.exports.sdtm_define``).

This module runs the export (``SdtmExporter``); each capability is its own module: ``sdtm_build`` (the export in
progress and what it gathers per participant), ``sdtm_sink`` (a domain's rows to XPT and CSV), ``sdtm_forms`` (LB,
VS, EX and DM's facts from the form records), ``sdtm_events`` (AE, CM, MH, deaths), ``sdtm_subjects`` (DM, DS, SE,
SV), ``sdtm_trial`` (TV, TI, TE, TA, TS) and ``sdtm_readme`` (define.csv, testcodes.csv, README.txt).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from trialwright.domain.deaths import death_fields, plain_values
from trialwright.exports.base import Exporter, ExportSource, Progress
from trialwright.exports.columnar import BATCH_ROWS
from trialwright.exports.sdtm_build import Build, SdtmExportError, SubjectFacts
from trialwright.exports.sdtm_define import write_define
from trialwright.exports.sdtm_domains import (
    BLINDED_ARM,
    BLINDED_TREATMENT,
    DOMAINS,
    SDTMIG_VERSION,
    Domain,
    Var,
    dm_sources,
    findings_tests,
    supp_domain,
)
from trialwright.exports.sdtm_events import add_adverse_event, add_logs, read_death
from trialwright.exports.sdtm_forms import add_exposure, add_findings, gather_facts
from trialwright.exports.sdtm_readme import not_written, write_define_csv, write_readme, write_testcodes
from trialwright.exports.sdtm_sink import DomainSink
from trialwright.exports.sdtm_subjects import (
    add_demographics,
    add_disposition,
    add_subject_elements,
    add_subject_visits,
)
from trialwright.exports.sdtm_trial import add_trial_design
from trialwright.exports.statistical import write_csv
from trialwright.protocol import Protocol
from trialwright.protocol.cdisc_ct import SDTM_CT_VERSION
from trialwright.protocol.demographics import RETIRED_SEX

__all__ = [
    "BLINDED_ARM",
    "BLINDED_TREATMENT",
    "DOMAINS",
    "SDTMIG_VERSION",
    "Domain",
    "SdtmExportError",
    "SdtmExporter",
    "Var",
    "findings_tests",
]


def _check_countries(source: ExportSource) -> None:
    if missing := [s.code for s in source.protocol.sites if s.country is None]:
        raise SdtmExportError(
            f"sites {', '.join(missing)}: no country (sites[].country, ISO 3166-1 alpha-3, e.g. IRN); SDTM "
            "DM.COUNTRY is required (SDTMIG 3.4 DM) and is never guessed"
        )
    d = source.protocol.demographics
    if d is not None and d.sex is not None and (retired := sorted(set(d.sex.codes.values()) & RETIRED_SEX)):
        raise SdtmExportError(
            f"demographics.sex.codes: {', '.join(retired)} is not a term of CDISC CT SEX in SDTM CT {SDTM_CT_VERSION} "
            "(a protocol version stored before trialwright shipped the CT package); SEX is not extensible, so DM.SEX "
            "cannot be written: amend the protocol (a new version) to a SEX term"
        )


class SdtmExporter(Exporter):
    """SDTM-style domains as SAS transport v5 (FDA) and CSV, with define.xml (Define-XML 2.1), define.html,
    define.csv and testcodes.csv."""

    name = "sdtm"
    description = ("SDTMIG 3.4 DM, DS, EX, AE, CM, MH, SV, SE, TV, TI, TE, TA, TS, LB and VS (XPT v5 and CSV) with "
                   "define.xml (Define-XML 2.1), define.html, define.csv and testcodes.csv.")

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        #: Rows per Arrow record batch: what a domain holds as rows while it streams, and per CSV write.
        self.batch_rows = batch_rows

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        _check_countries(source)  # before anything is written
        out = folder / "sdtm"
        out.mkdir(parents=True, exist_ok=True)
        build = self._build(source, out, progress)
        written: list[Path] = []
        for code, sink in list(build.sinks.items()):
            if sink.rows:
                written += sink.close(build.notes, build.reference)
            else:  # SDTM submits no empty dataset: not written, not in define.xml, listed in README.txt
                sink.table(build.notes, build.reference)
                del build.sinks[code]
                build.empty.append(code)
        for code, sink in list(build.sinks.items()):  # SUPP--, only for a domain whose text ran past 200 bytes
            if sink.supp:
                supp = build.sinks[f"SUPP{code}"] = DomainSink(out, supp_domain(DOMAINS[code]), self.batch_rows)
                for row in sink.supp:
                    supp.add(row)
                written += supp.close(build.notes, build.reference)
        shutil.rmtree(out / ".spool", ignore_errors=True)
        if refused := [row for sink in build.sinks.values() for row in sink.not_ascii]:
            written.append(write_csv(out / "not_ascii.csv", ["file", "variable", "row", "text"], refused))
            build.notes.append(f"not_ascii.csv: {len(refused)} text value(s) left empty in the XPT and CSV files: "
                               "characters SAS transport v5 (ASCII) cannot hold and no declared spelling covers "
                               "(the codebook's xpt_ascii.csv); Dataset-JSON keeps them as stored.")  # fmt: skip
        written += [write_define_csv(out, build), write_testcodes(out, source.protocol)]
        written += write_define(source, {code: sink.lengths for code, sink in build.sinks.items()}, out)
        written.append(write_readme(folder, build, self.description))
        return written

    def domain_tables(
        self, source: ExportSource, out: Path, progress: Progress | None = None, notes: list[str] | None = None
    ) -> Iterator[tuple[Domain, pa.Table]]:
        """Each domain's rows as Arrow columns (``DomainSink.table``: what the XPT and CSV files hold before text
        is cut to 200 bytes), one domain at a time, for another format of the same domains (Dataset-JSON). The rows
        are spooled under ``out`` (an existing folder) and the spool removed when the last domain is read. What
        the SDTM README would note (uncoded AEs, EPOCH or baseline flags left empty, terms naming death) is added
        to ``notes`` once every domain was read, so the other format says it too."""
        build = self._build(source, out, progress)
        try:
            for code, sink in build.sinks.items():
                data = sink.table(build.notes, build.reference)
                if data.num_rows:
                    yield DOMAINS[code], data
                else:  # SDTM submits no empty dataset
                    build.empty.append(code)
            if notes is not None:
                notes += [*build.notes, *([not_written(build.empty)] if build.empty else [])]
        finally:
            shutil.rmtree(out / ".spool", ignore_errors=True)

    def testcodes(self, out: Path, p: Protocol) -> Path:
        """testcodes.csv in ``out``: the LB and VS test codes with their source fields, units and terminology."""
        return write_testcodes(out, p)

    def _build(self, source: ExportSource, out: Path, progress: Progress | None) -> Build:
        """Every domain's rows, streamed from the source into its sink (spooled under ``out``)."""
        _check_countries(source)
        people = {p.participant_id: p for p in source.participants()}
        build = Build(source, {c: DomainSink(out, d, self.batch_rows) for c, d in DOMAINS.items()}, people,
                       {pid: SubjectFacts() for pid in people})  # fmt: skip
        read = set(self._forms(source.protocol))
        dying = death_fields(source.protocol)
        for form in source.protocol.forms:  # every form dates its visit (SV); the domains' forms give their rows
            for r in source.forms(form.id):
                subject = build.subjects.setdefault(r.participant_id, SubjectFacts())
                subject.saw(r.visit_id, r.visit_date)
                if said := {k: v for k, v in plain_values(form.id, r.values).items() if k in dying}:
                    subject.death_values.setdefault(r.visit_id, {}).update(said)
                if form.id in read:
                    for handler in (add_findings, gather_facts, add_exposure):
                        handler(build, form, r, subject)
                build.done += 1
                if progress is not None:
                    progress(build.done)
        uncoded, versions = [], set()
        for event in source.events():
            add_adverse_event(build, event.participant_id, event.site, event.assessment, event.related,
                              event.ae_number, event.coding)  # fmt: skip
            uncoded += [] if event.coding else [event.ae_number]
            versions |= {event.coding["version"]} if event.coding else set()
        build.notes += [f"AE coded with MedDRA {', '.join(sorted(versions))}"] if versions else []
        build.notes += [f"AE not coded to MedDRA (AEDECOD empty): {', '.join(uncoded)}"] if uncoded else []
        add_logs(build)
        for pid, visit_id, reason in source.missed_visits():
            build.missed.setdefault(pid, {})[visit_id] = reason
        for pid, person in people.items():
            read_death(build, pid, build.subjects[pid])
            add_disposition(build, person, build.subjects[pid])
            add_demographics(build, person, build.subjects[pid])
            add_subject_elements(build, person, build.subjects[pid])
            add_subject_visits(build, person, build.subjects[pid])
        add_trial_design(build)
        if build.sv_undecided:
            build.notes.append(f"SV: EPOCH and TAETORD empty on {build.sv_undecided} dated visit(s) in no SE element, "
                               "or on a day two elements share when neither is the visit's planned epoch's.")
        if build.undecided:
            build.notes.append(f"EPOCH: empty on {build.undecided} AE/DS record(s) dated before the subject's first "
                               "visit or on the day an epoch begins (a date without a time cannot tell which epoch).")
        return build

    # -- which forms feed which domain ---------------------------------------------------------------

    @staticmethod
    def _forms(p: Protocol) -> list[str]:
        """The forms a domain reads (test tables, DM sources, the treatment and death records), in protocol order."""
        tests = findings_tests(p)
        wanted = {key.partition(".")[0] for key in (*tests, *(s for v in dm_sources(p).values() for s in v))}
        if p.analysis_plan is not None and p.analysis_plan.treatment is not None:
            wanted.add(p.analysis_plan.treatment.form)
        if p.safety.death_record is not None:
            wanted.add(p.safety.death_record.form)
        return [f.id for f in p.forms if f.id in wanted]
