"""What was in force when each consent record was recorded: the protocol version and the age the assent and
age-of-consent rules read (``eligibility.assent.age_field``, the age at screening as the screening held it then).

A screening's age may be corrected after a consent (with the consent recorded again, ``update_screening``'s
``consent``), so the screening's values as they stand now are not those an earlier record was checked against. The
``consents`` table keeps no copy of them; the audit trail does: every change of a screening's values is a
``screening.changed`` entry with the old and new values, and every consent record its own ``consent.<decision>``
entry, in the order recorded (``seq``). ``in_force`` walks each screening's entries back from its values as they stand
now: a consent entry takes the age held at that point, a change of the age gives back its old value. Each consent
entry is matched to the screening's consent records from the latest back, and must say what the record says (kind,
who gave it, form version, when obtained); where they disagree the screening's records get none, never a guess.
A record ``import odm`` restored has no entry of its own: the import kept what its file said was in force, by the
record's id, in its ``import.odm`` entry (``in_force``), and that is given back. A record neither tells (one restored
from a file written before the export carried them) is exported without them, and importing that file under a
protocol that declares ``eligibility.assent`` is refused naming the attribute where the age decides the record.

The protocol version in force is the version loaded last before the record was recorded (``protocol_versions``),
and the assent rule in force that version's (``assent_rule_digest`` of its stored text): the import compares rules,
not version numbers, so an amendment that left the rule as it was re-imports. A record restored by ``import odm``
gives back the digest its file carried (none from an import entry made before the export wrote it: the record is
then exported without it).
Masking: only the age field of the values is read out of an entry; neither names an arm.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialwright.domain.assent import assent_rule_digest
from trialwright.protocol import Protocol
from trialwright.store.tables import audit_entries, protocol_versions

__all__ = ["CONSENT_ACTIONS", "InForce", "in_force"]

#: The audit actions of a consent record (one per record, ``record_consent``).
CONSENT_ACTIONS = ("consent.consent", "consent.refuse", "consent.continue", "consent.withdraw")
#: (protocol version, the age field's value or None where it was not recorded, the digest of the assent rule or None
#: where not known) in force at a record.
InForce = tuple[str, Any, str | None]


def _matches(entry: dict[str, Any], record: Any) -> bool:
    try:  # the time as it was sent (any offset), the record's in UTC: the same instant
        same_time = dt.datetime.fromisoformat(str(entry.get("obtained_at"))) == record.obtained_at
    except ValueError:
        return False
    said = (entry.get("kind"), entry.get("given_by"), entry.get("form_version"))
    return same_time and said == (record.kind, record.given_by, record.form_version)


def _version_at(loaded: Sequence[tuple[dt.datetime, str, str]], at: dt.datetime) -> tuple[str, str] | None:
    """The protocol version loaded last at ``at`` and its text's SHA-256 (None before the first)."""
    found = [(version, sha256) for when, version, sha256 in loaded if when <= at]
    return found[-1] if found else None


def _rule_of(session: Session, sha256: str, digests: dict[str, str]) -> str:
    """The digest of the assent rule of the stored protocol version ``sha256`` (parsed once, ``protocol_by_sha``)."""
    if sha256 not in digests:
        from trialwright.services.trial import protocol_by_sha

        digests[sha256] = assent_rule_digest(protocol_by_sha(session, sha256).protocol)
    return digests[sha256]


def in_force(session: Session, protocol: Protocol, records: Iterable[Any]) -> dict[int, InForce]:
    """The protocol version, age and assent rule (its digest) in force at each consent record of ``records`` (rows
    with ``id``, ``site``, ``number``, ``screening_values`` as stored now, ``kind``, ``given_by``, ``form_version``,
    ``obtained_at``, ``recorded_at``), by id; a record whose screening's audit trail does not tell is left out."""
    rule = protocol.eligibility.assent
    by_screening: dict[str, list[Any]] = {}
    for r in records:
        by_screening.setdefault(f"{r.site}-S{r.number:04d}", []).append(r)
    if not by_screening:
        return {}
    versions = protocol_versions.c
    read = select(versions.loaded_at, versions.version, versions.sha256).order_by(versions.loaded_at, versions.id)
    loaded = [(row.loaded_at, row.version, row.sha256) for row in session.execute(read)]
    digests: dict[str, str] = {}
    entries: dict[str, list[Any]] = {}
    sites = sorted({r.site for rs in by_screening.values() for r in rs})
    imported: dict[int, InForce] = {}  # what ``import odm`` read from its file, kept in its entries by consent id
    kept = select(audit_entries.c.new_value).where(audit_entries.c.site.in_(sites),
                                                   audit_entries.c.action == "import.odm",
                                                   audit_entries.c.new_value.contains('"in_force"'))  # fmt: skip
    for (new_value,) in session.execute(kept.order_by(audit_entries.c.seq)):
        held = json.loads(new_value or "{}").get("in_force") if new_value else None
        for consent_id, kept_in_force in (held or {}).items():  # [version, age] before the digest was kept
            version, age, *digest = kept_in_force
            imported[int(consent_id)] = (version, age, digest[0] if digest else None)
    query = (
        select(audit_entries.c.action, audit_entries.c.old_value, audit_entries.c.new_value, audit_entries.c.detail)
        .where(
            audit_entries.c.site.in_(sites),
            audit_entries.c.action.in_(["screening.created", "screening.changed", *CONSENT_ACTIONS]),
        )
        .order_by(audit_entries.c.seq)
    )
    for entry in session.execute(query):
        label = json.loads(entry.detail or "{}").get("screening")
        if label in by_screening:
            entries.setdefault(label, []).append(entry)
    out: dict[int, InForce] = {}
    for label, rows in by_screening.items():
        found = _walk(rule.age_field if rule is not None else None, rows, entries.get(label, []))
        for r in rows:
            version = _version_at(loaded, r.recorded_at)
            if r.id in found and version is not None:
                out[r.id] = (version[0], found[r.id], _rule_of(session, version[1], digests))
            elif r.id in imported:
                out[r.id] = imported[r.id]
    return out


def _walk(age_field: str | None, rows: list[Any], entries: list[Any]) -> dict[int, Any]:
    """The age in force at each of a screening's consent records (``rows``), walking its audit ``entries`` back from
    its values as stored now, matching its consent entries to its records from the latest back; {} when an entry and
    its record disagree, and none for the records left when the entries run out (records ``import odm`` restored).
    """
    values = json.loads(rows[0].screening_values)
    age = values.get(age_field) if age_field is not None else None
    left = sorted(rows, key=lambda r: r.id)
    out: dict[int, Any] = {}
    for entry in reversed(entries):
        if entry.action in CONSENT_ACTIONS:
            if not left or not _matches(json.loads(entry.new_value or "{}"), left[-1]):
                return {}
            out[left.pop().id] = age
        elif entry.action == "screening.changed":
            old = json.loads(entry.old_value or "{}").get("values", {})
            if age_field is not None and age_field in old:
                age = old[age_field]
        else:  # screening.created: nothing before it
            break
    return out  # records left unmatched (restored by ``import odm``, whose entries are its own) get none here
