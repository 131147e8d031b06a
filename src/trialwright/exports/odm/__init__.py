"""CDISC ODM 1.3.2: the protocol's metadata and every participant's visits, forms and values in one XML file.

``OdmExporter`` writes ``<trial id>.odm.xml`` and, beside it, the XSD of its vendor extension (``schema``:
``trialwright-odm-ns.xsd`` and ``trialwright-odm1-3-2.xsd``, CDISC's ODM 1.3.2 redefined to admit the extension;
put CDISC's ODM 1.3.2 schema files beside them to validate). The XML is a Snapshot file: ``Study``
(``GlobalVariables`` from the registry record, ``BasicDefinitions`` with the units, one ``MetaDataVersion`` per
protocol version, OID ``MDV.<version>``), ``AdminData`` (the users named by the audit records, one ``Location`` per
site, the investigator's ``SignatureDef``) and ``ClinicalData``: a ``SubjectData`` per participant (``SubjectKey``
the participant id, ``SiteRef`` the site), a ``StudyEventData`` per visit held or missed, a ``FormData`` with one
``ItemGroupData`` per form record and an ``ItemData`` per stored value. Each carries an ``AuditRecord`` (user,
site, time, reason for change, ``SourceID`` ``audit:<seq>:<hash>`` (the hash ``masked`` in an export made without the
arms: ``services.export_audit``), the trialwright audit entry it comes from, and
``tw:Action``, the audit action that entry recorded, in ODM's ``AuditRecordElementExtension``)
for the latest audit entry about it (in a trial imported from ODM, the AuditRecord its import kept as recorded:
``audit_index``), and a value's ``ItemData`` (a form's, a log entry's, an adverse event's) every earlier one too,
with the value and the action each set and recorded (``tw:History``: ``history``), as does each query and each
participant, visit, form, log entry and adverse event, with the action each recorded (``element_history``; never the
entries about the arm); a signed form carries
its ``Signature``. The export source
has no stream of visits, so a visit without forms (a missed one) is found by its audit entry: ``visit.held`` or
``visit.missed``, or ``import.odm`` in a trial that was itself imported from ODM.

OIDs: ``SE.<visit>`` (and ``SE.UNSCHEDULED``, repeating, for unscheduled visits), ``F.<form>``,
``IG.<form>``, ``IT.<form>.<field>``, ``CL.<form>.<field>``, ``MT.<form>.<field>`` (the derivation of a
derived field), ``MU.<unit>``, ``USR.<username>``; a ``Location`` OID is the site code.

Values: ``Value`` holds the canonical value in ODM's format for the ``DataType`` (numbers in the canonical
unit, ``true``/``false``, dates and times with seconds, a multiple choice as its codes joined by commas, as
OpenClinica writes them). What plain ODM cannot hold goes into trialwright's vendor extension, namespace
``https://trialwright.dev/odm`` (prefix ``tw``), as extension *elements*, the last children of the element
they qualify, where ODM 1.3.2's ``...ElementExtension`` groups admit them (``extension_schema`` writes the
XSD that redefines those groups, the way Define-XML extends ODM):

* ``tw:StoredValue`` in ``ItemData``: ``Status`` (not_done, not_applicable, below_lloq, above_uloq,
  derived), ``Reason``, ``Unit`` (the unit as entered), and as JSON ``Entered`` (the value as typed),
  ``Limit`` (the LLOQ or ULOQ in the canonical unit), ``Components`` (a derived score's parts) and, only
  when ``Value`` cannot carry the stored value exactly, ``Value``. A value that is not there (not done,
  censored, not computable) is ``IsNull="Yes"``, so plain ODM readers see a null, never a zero or a limit.
* ``tw:History`` in a value's ``ItemData``, after ``tw:StoredValue``: a ``tw:Earlier`` per audit entry about the value
  before the latest, oldest first, with its ``AuditRecord``, its ``Action`` and the value it set (``history``).
* ``tw:History`` in ``SubjectData``, ``StudyEventData``, ``FormData`` and a log entry's or an adverse event's
  ``ItemGroupData``: the element's own earlier audit records, each with its ``Action`` (``element_history``); and
  ``tw:RemovedItemData`` in an ``ItemGroupData``: a value its latest change removed, with its records.
* ``tw:Form`` in ``FormData``: state, version, last change, verification, signature and lock.
* ``tw:LogEntry`` in a log entry's ``ItemGroupData`` (``SE.LOGS``): state, version, who added it, when and under
  which protocol version, last change, removal reason, verification and signature, and its coding (``tw:Coding``:
  dictionary, version, verbatim, code, name, coder, time, the path as ``tw:Level``).
* ``tw:Query`` in ``SubjectData`` and ``ItemGroupData``: the data queries on the participant, the form record or
  the log entry (``ItemOID`` its field), with their state, texts, who and when, and the AuditRecord of the latest
  audit entry about each, the earlier ones in ``tw:History`` with their ``Action`` (``queries``).
* ``tw:AdverseEvent`` in an adverse event's ``ItemGroupData`` (``SE.AE``): who reported it first and when, every report
  (``tw:Report`` with its assessment as JSON in ``tw:Assessment``), the reports due (``tw:Due``), the submissions
  (``tw:Submission``) and the MedDRA coding (``tw:Coding``).
* ``tw:Visit`` in ``StudyEventData``: the visit date, or why it was missed, and an unscheduled visit's label.
* ``tw:Enrolment`` in ``SubjectData``: screening number and date, enrolment time, who consented and when,
  randomization number, time and stratum (never the arm; in a trial imported from ODM, as the import kept them
  from the file), the rest of the consent record (form version, kind, who obtained it, representative, witness, who
  recorded it and when, its id as ``ConsentId``, the child's assent recorded with it: ``Assent`` ...), withdrawals
  (with who recorded each and when), the screening values as JSON, the participant's other consent records
  (``tw:Consent``: ``consents``), and the audit entries about its screening made before it was enrolled, which name
  no participant (``tw:History``: ``consents``).
* ``tw:Consent``: every consent record other than the one a participant was enrolled on (refusals, re-consents,
  decisions after regaining capacity), every column with its id; ``tw:Screening`` in ``ClinicalData``, after the
  participants: every screening never enrolled, with its number, date and values, its ``tw:Consent`` records if any,
  and its audit entries (``screening.*``, ``consent.*``) as its AuditRecord and ``tw:History`` (``consents``).
* ``tw:DsmbDecision`` in ``ClinicalData``, after the participants: the DSMB's decisions on the safety pause
  (decision, related SAEs, who and when), trial-level; never the reason, the DSMB's free text that may speak of the
  arms.
* ``tw:SoftLock`` in ``SubjectData`` (after its ``tw:History``), and ``tw:TrialLock`` and a site's ``tw:SoftLock`` in
  ``ClinicalData`` (after the DSMB's decisions): every lock and unlock of the trial, a site or a participant, who,
  when, why and the override's open blockers, each with its audit entry's ``AuditRecord`` (``locks``).

Elements rather than attributes because ODM tools skip extension elements they do not know, while a
foreign attribute on ``ItemData`` makes a strict ODM model (odmlib's, for one) refuse the whole file.
Every value is checked to come back exactly from what is written (``from_odm(to_odm(...))``) before it is
written, so an import rebuilds the stored JSON byte for byte.

Masking: ODM carries no arm (``carries_arms = False``): nothing here reads ``ParticipantRecord.arm``.
Memory stays flat: the XML is written as it goes (``xmlstream``), the audit trail is read from plain rows of the
columns it needs, its entries naming a participant beside the participant stream (``audit_merge``: a merge join; only
the entries naming no participant go into a temporary SQLite file, ``audit_index``), and only one participant's form
records and indexed entries are held at a time (``clinical``). Adverse events are: ``SE.AE``, an ``IG.AE`` per event
keyed by its AE number (``ae_outline``, ``ae_clinical``).

The modules: ``outline`` (names, OIDs, the metadata outline), ``values`` (stored values to ODM and back, and the
round-trip check), ``xmlstream`` (the writer), ``audit_index`` (which entries are indexed, and where),
``audit_merge`` (the entries read beside the participant stream), ``metadata`` (``Study`` and ``AdminData``),
``indexed`` (what the index hands the writer), ``clinical`` (``ClinicalData``), ``history`` (a value's
``tw:History``), ``element_history`` (an element's ``tw:History``, ``tw:RemovedItemData``), ``queries`` (``tw:Query``),
``ae_outline`` and ``ae_clinical`` (adverse events), ``consents`` (every consent record) and ``schema`` (the
extension's XSD).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import ClassVar

import trialwright
from trialwright.exports.base import Exporter, ExportSource, Progress
from trialwright.exports.odm.audit_index import AuditIndex
from trialwright.exports.odm.audit_merge import AuditStream
from trialwright.exports.odm.clinical import ClinicalWriter
from trialwright.exports.odm.locks import HeldLocks
from trialwright.exports.odm.metadata import write_admin, write_study
from trialwright.exports.odm.outline import ODM_NS, TW_NS, UNSCHEDULED, Outline, mdv_oid, outline, unit_oids
from trialwright.exports.odm.schema import EXTENDED_SCHEMA, SCHEMA_FILES, extension_schema
from trialwright.exports.odm.values import ValueCodec, from_odm, to_odm
from trialwright.exports.odm.xmlstream import XmlStream

__all__ = [
    "BATCH",
    "EXTENDED_SCHEMA",
    "ODM_NS",
    "SCHEMA_FILES",
    "TW_NS",
    "UNSCHEDULED",
    "OdmExporter",
    "Outline",
    "extension_schema",
    "from_odm",
    "mdv_oid",
    "outline",
    "to_odm",
]

#: What is held at a time: XML pieces before they go to the file, audit keys before they go to the index, stored
#: values remembered as checked (``ValueCodec``), masked and parsed audit texts remembered.
BATCH = 1024
#: The stored values ``ValueCodec`` remembers, in batches: most distinct values (measurements, with the value as
#: entered and its unit) recur across participants but not within 1,024 values, and each one forgotten is checked
#: again; 8 batches (8,192 values, a few MB) keep most of them, still a bound whatever the trial's size.
CODEC_BATCHES = 8


class OdmExporter(Exporter):
    """CDISC ODM 1.3.2, Snapshot: metadata from the protocol, clinical data with audit records; no arms."""

    name: ClassVar[str] = "odm"
    description: ClassVar[str] = (
        "CDISC ODM 1.3.2 XML: the protocol's metadata and every participant's visits, forms and values, "
        "with audit records (never the arm)"
    )
    carries_arms: ClassVar[bool] = False

    def __init__(self, batch: int = BATCH, *, whole_index: bool = False) -> None:
        if batch < 1:
            raise ValueError(f"batch: {batch}; a batch holds at least one piece")
        self.batch = batch
        # The trail indexed whole into the temporary file, as before the merge join (``audit_merge``): the same
        # file, slower; kept as the reference the specs compare the merge join with.
        self.whole_index = whole_index

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        path = folder / f"{source.trial_id}.odm.xml"
        with tempfile.TemporaryDirectory(prefix="trialwright-odm-") as tmp:
            scratch = Path(tmp) / "audit.sqlite"
            index: AuditIndex | AuditStream = (
                AuditIndex.of(source, scratch, self.batch)
                if self.whole_index
                else AuditStream(source, scratch, self.batch)
            )
            try:
                with path.open("w", encoding="utf-8", newline="\n") as out:
                    xml = XmlStream(out, self.batch)
                    xml.declaration()
                    with xml.element("ODM", _root(source)):
                        write_study(xml, source, unit_oids(source.protocol))
                        locks = HeldLocks(source.locks())
                        locks.add_users(index.users)
                        write_admin(xml, source, index.users)
                        codec = ValueCodec(CODEC_BATCHES * self.batch)
                        ClinicalWriter(source, index, xml, progress, codec, locks).write()
                    xml.flush()
            finally:
                index.close()
        extension_schema(folder)
        return [path, *(folder / name for name in SCHEMA_FILES)]


def _root(source: ExportSource) -> dict[str, str | None]:
    return {
        "xmlns": ODM_NS,
        "xmlns:tw": TW_NS,
        "FileType": "Snapshot",
        "FileOID": f"{source.trial_id}.{source.taken_at.astimezone(dt.UTC):%Y%m%dT%H%M%S}Z",
        "CreationDateTime": source.taken_at.isoformat(),
        "AsOfDateTime": source.taken_at.isoformat(),
        "ODMVersion": "1.3.2",
        "Originator": "trialwright",
        "SourceSystem": "trialwright",
        "SourceSystemVersion": trialwright.__version__,
    }
