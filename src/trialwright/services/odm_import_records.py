"""Importing the consent's details, who recorded each withdrawal, and the DSMB's decisions of an ODM file exactly.

The export writes them (``trialwright.exports.odm.clinical``): on ``tw:Enrolment`` the consent the participant was
enrolled on (``ConsentFormVersion``, ``ConsentKind``, ``ConsentObtainedBy``, ``RepresentativeName``,
``RepresentativeRelationship``, ``ConsentWitness``, ``ConsentRecordedAt``, ``ConsentRecordedBy``, and the child's
assent recorded with it: ``Assent``, ``AssentObtainedBy``, ``AssentObtainedAt``, ``AssentFormVersion``,
``AssentNotSoughtReason``, checked by the rule the consent service applies), on each
``tw:Withdrawal`` who recorded it and when (``RecordedAt``, ``RecordedBy``), and in ``ClinicalData``, after the
participants, one ``tw:DsmbDecision`` per DSMB decision on the safety pause (``Decision``, ``RelatedSaes``,
``DecidedAt``, ``DecidedBy``), in the order made. ``read_consent`` and ``read_withdrawal`` check them while
``odm_import`` reads a participant, ``read_dsmb_decisions`` when the file's ``ClinicalData`` ends;
``write_dsmb_decisions`` writes the decisions in the import's transaction, each with one ``import.odm`` audit entry
(``dsmb_decision``: what was restored).

Exactly or not at all: a time must be written as the export writes it (UTC, ``datetime.isoformat()``: the text is
compared with the time read back), a count in plain ASCII digits without leading zeros, a consent form version one of
the protocol's, a decision one of resume, pause, stop and none after a stop; an attribute the export never writes (a
DSMB decision's reason, say) is refused naming it. A file written before the export carried these has none of them:
its consents keep the import's note in ``obtained_by`` (``NOT_IN_FILE``), its withdrawals the importer and the time of
the import; some but not all of them (in the whole file: every participant's consent details and every withdrawal's
``RecordedAt``/``RecordedBy``) is refused (``same_generation``). The DSMB's decisions come in the order made, so their
``DecidedAt`` never goes back (the pause state is read in that order); they go into a fresh trial only, one holding no
DSMB decision yet (``import_odm`` refuses another).

Blinding: a DSMB decision's reason is the DSMB's free text, which may speak of the arms (the audit trail masks it),
so the export never writes it and the import stores ``DSMB_REASON_NOT_IN_FILE`` in its place; the decision, the count
of related SAEs, who and when name no arm.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from trialwright.domain.consent import form_version_problem
from trialwright.protocol import Protocol
from trialwright.services import audit
from trialwright.services.odm_import_common import OdmImportError, parse_moment
from trialwright.services.safety.common import DECISION_CODES
from trialwright.store.safety_tables import dsmb_decisions

if TYPE_CHECKING:
    from trialwright.services.odm_import_reader import Reader
    from trialwright.services.odm_import_writer import Writer

__all__ = [
    "ASSENT_ATTRIBUTES",
    "CONSENT_ATTRIBUTES",
    "DSMB_REASON_NOT_IN_FILE",
    "NOT_IN_FILE",
    "exact_moment",
    "read_consent",
    "read_dsmb_decisions",
    "read_withdrawal",
    "same_generation",
    "write_dsmb_decisions",
]

#: ``obtained_by`` of a consent imported from a file written before the export carried it.
NOT_IN_FILE = "not in the ODM export (imported)"
#: ``reason`` of an imported DSMB decision: the reason is never in an ODM file (it may speak of the arms).
DSMB_REASON_NOT_IN_FILE = "not in the ODM export (imported): the DSMB's reason may speak of the arms"

#: ``tw:Enrolment``'s consent attributes: the ``consents`` column each restores, and whether the export always
#: writes it.
CONSENT_ATTRIBUTES = {
    "ConsentFormVersion": ("form_version", True),
    "ConsentKind": ("kind", True),
    "ConsentObtainedBy": ("obtained_by", True),
    "RepresentativeName": ("representative_name", False),
    "RepresentativeRelationship": ("representative_relationship", False),
    "ConsentWitness": ("witness", False),
    "ConsentRecordedAt": ("recorded_at", True),
    "ConsentRecordedBy": ("recorded_by", True),
}
#: The child's assent recorded with a consent (``eligibility.assent``): the attributes of ``tw:Enrolment`` and
#: ``tw:Consent`` that hold it, and the ``consents`` column each restores (none of them where no assent was sought;
#: checked by ``odm_import_consents.checked_assent``).
ASSENT_ATTRIBUTES = {
    "Assent": "assent",
    "AssentObtainedBy": "assent_obtained_by",
    "AssentObtainedAt": "assent_obtained_at",
    "AssentFormVersion": "assent_form_version",
    "AssentNotSoughtReason": "assent_not_sought_reason",
}
CONSENT_ATTRIBUTES.update({name: (column, False) for name, column in ASSENT_ATTRIBUTES.items()})
_KINDS = ("initial", "reconsent")  # the kinds of consent a participant is enrolled on (decision "consent")
_COUNT = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_DECISION_ATTRIBUTES = ("Decision", "RelatedSaes", "DecidedAt", "DecidedBy")


def exact_moment(text: str | None, where: str) -> dt.datetime:
    """A time written as the export writes it (UTC, ``isoformat()``), or refused naming ``where``."""
    if text is None or not text.strip():
        raise OdmImportError(f"{where}: required")
    moment = parse_moment(text, where)
    assert moment is not None
    if moment.isoformat() != text:
        raise OdmImportError(
            f"{where}: {text!r} is not written as the export writes a time (UTC, {moment.isoformat()!r}): it could "
            "not be given back exactly, so it is refused"
        )
    return moment


def read_consent(protocol: Protocol, tw: dict[str, str], where: str, site: str) -> dict[str, Any] | None:
    """The consent's other details as ``consents`` stores them, from ``tw:Enrolment``'s attributes (at ``where``);
    None for a file written before the export carried them (none of them there). The form version is checked at
    the consent's own date at ``site`` as ``record_consent`` checks it (``form_version_problem``: in effect, and
    not yet superseded)."""
    present = [name for name in CONSENT_ATTRIBUTES if name in tw]
    if not present:
        return None
    for name, (_, always) in CONSENT_ATTRIBUTES.items():
        if always and not tw.get(name, "").strip():
            raise OdmImportError(f"{where}/@{name}: required with {present[0]} (the consent record is restored whole)")
    versions = [v.version for v in protocol.consent_versions]
    if tw["ConsentFormVersion"] not in versions:
        raise OdmImportError(f"{where}/@ConsentFormVersion: {tw['ConsentFormVersion']!r} is not a consent form "
                             f"version of the protocol ({', '.join(versions)})")  # fmt: skip
    consented_at = parse_moment(tw.get("ConsentedAt"), f"{where}/@ConsentedAt")
    problem = consented_at and form_version_problem(
        protocol, site=site, form_version=tw["ConsentFormVersion"], obtained_at=consented_at
    )
    if problem:
        raise OdmImportError(f"{where}/@ConsentFormVersion: {problem.partition(': ')[2]} (the rule recording it "
                             "applies)")  # fmt: skip
    if tw["ConsentKind"] not in _KINDS:
        raise OdmImportError(f"{where}/@ConsentKind: {tw['ConsentKind']!r} is not one of {', '.join(_KINDS)}")
    representative = tw.get("ConsentGivenBy") == "representative"
    for name in ("RepresentativeName", "RepresentativeRelationship"):
        if representative and not tw.get(name, "").strip():
            raise OdmImportError(f"{where}/@{name}: required when a representative consented")
    consent: dict[str, Any] = {column: tw.get(name) for name, (column, _) in CONSENT_ATTRIBUTES.items()}
    consent["recorded_at"] = exact_moment(tw["ConsentRecordedAt"], f"{where}/@ConsentRecordedAt")
    return consent


def read_withdrawal(x: ET.Element, where: str) -> tuple[dt.datetime, str] | None:
    """Who recorded a withdrawal and when (``RecordedAt``, ``RecordedBy``); None for a file written before the export
    carried them (neither there)."""
    at, by = x.get("RecordedAt"), x.get("RecordedBy")
    if at is None and by is None:
        return None
    if by is None or not by.strip():
        raise OdmImportError(f"{where}/@RecordedBy: required with RecordedAt")
    return exact_moment(at, f"{where}/@RecordedAt"), by


def same_generation(
    reader: Reader, consent: dict[str, Any] | None, withdrawn: list[tuple[dt.datetime, str] | None], where: str
) -> None:
    """The consent's details (at ``where``, ``tw:Enrolment``) and who recorded each withdrawal are all in the file or
    none of them (a file written before the export carried them): some but not all could not be restored exactly (the
    consents or withdrawals without them would say "not in the file"), so the file is refused naming the first
    differing one. ``reader.details`` keeps the first one read, so the check spans the whole file."""
    found = [(f"{where}/@ConsentFormVersion", consent is not None)]
    found += [(f"{where}/tw:Withdrawal[{n}]/@RecordedAt", w is not None) for n, w in enumerate(withdrawn, start=1)]
    for at, there in found:
        if reader.details is None:
            reader.details = (at, there)
        elif there != reader.details[1]:
            first, held = reader.details
            raise OdmImportError(
                f"{at}: {'present' if there else 'required'}, but {first} is {'present' if held else 'absent'}: the "
                "consent's details and who recorded each withdrawal are all in a file or none of them (a file "
                "written before the export carried them); some but not all is refused"
            )


def read_dsmb_decisions(reader: Reader, clinical: ET.Element) -> list[dict[str, Any]]:
    """The DSMB's decisions in ``ClinicalData`` (``tw:DsmbDecision``), checked, as ``dsmb_decisions`` stores them."""
    out: list[dict[str, Any]] = []
    for n, elem in enumerate(clinical.findall(reader.ext_tag("DsmbDecision")), start=1):
        where = f"ClinicalData/tw:DsmbDecision[{n}]"
        strays = sorted(set(elem.attrib) - set(_DECISION_ATTRIBUTES))
        if strays:
            raise OdmImportError(f"{where}/@{strays[0]}: the export never writes it (a DSMB decision's reason may "
                                 "speak of the arms); it cannot be restored, so it is refused, "
                                 "never dropped")  # fmt: skip
        if len(elem):
            raise OdmImportError(f"{where}/{elem[0].tag}: the export writes no element here (refused, never dropped)")
        decision = elem.get("Decision")
        if decision not in DECISION_CODES:
            raise OdmImportError(f"{where}/@Decision: {decision!r} is not one of {', '.join(DECISION_CODES)}")
        if out and out[-1]["decision"] == "stop":
            raise OdmImportError(f"{where}: follows a decision to stop, which is final")
        count = elem.get("RelatedSaes")
        if count is None or not _COUNT.fullmatch(count):
            raise OdmImportError(f"{where}/@RelatedSaes: {count!r} is not a count as the export writes one (ASCII "
                                 "digits, no leading zero)")  # fmt: skip
        by = elem.get("DecidedBy")
        if by is None or not by.strip():
            raise OdmImportError(f"{where}/@DecidedBy: required")
        at = exact_moment(elem.get("DecidedAt"), f"{where}/@DecidedAt")
        if out and at < out[-1]["decided_at"]:
            raise OdmImportError(f"{where}/@DecidedAt: {elem.get('DecidedAt')} is before tw:DsmbDecision[{n - 1}]'s "
                                 f"({out[-1]['decided_at'].isoformat()}); the decisions are in the order made, "
                                 "so their times never go back")  # fmt: skip
        out.append({"decision": decision, "related_saes": int(count), "decided_at": at, "decided_by": by})
    return out


def write_dsmb_decisions(writer: Writer, decisions: list[dict[str, Any]]) -> None:
    """The DSMB's decisions, in the order made, each with its ``import.odm`` entry (trial-level: no participant)."""
    for d in decisions:
        writer.session.execute(dsmb_decisions.insert().values(**d, reason=DSMB_REASON_NOT_IN_FILE))
        audit.record(
            writer.session, actor=writer.actor.username, role=writer.actor.role.value, action="import.odm",
            new_value={"dsmb_decision": {**d, "decided_at": d["decided_at"].isoformat()}},
            detail=dict(writer.detail),
        )  # fmt: skip
        writer.counts["dsmb_decisions"] += 1
