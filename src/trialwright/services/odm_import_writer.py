"""Writing an imported participant into the trial: what ``odm_import.import_odm``'s second reading hands over.

``Writer.add`` writes, in the caller's one transaction, a participant exactly as the file has it: its screening (the
decision evaluated again), the consent it was enrolled on and its other consent records, the participant with the
SAME id, site and enrolment, its withdrawals, visits, form records (the exact stored JSON, state, version, review,
signature and lock), log entries with their codings, adverse events and data queries, each with one ``import.odm``
audit entry keeping its AuditRecords as recorded (the participant's also its randomization as the file states it,
never an arm; the first participant's also the file's users). Its counts make the import's report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.eligibility import evaluate
from trialwright.domain.treatment import code_held, kit_field
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.bulk_writes import deferred_insert
from trialwright.services.odm_import_common import ImportedLogEntry, ImportedVisit, Subject
from trialwright.services.screening import _decision_detail, _dump, _typed_values
from trialwright.services.users import UserView
from trialwright.store.administered import held_codes, hold_many
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import inserted_id
from trialwright.store.log_tables import log_codings, log_entries
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals

__all__ = ["Writer"]


class Writer:
    """Writes checked participants into the trial, in the caller's transaction."""

    def __init__(
        self, session: Session, protocol: Protocol, actor: UserView, file: str, sha256: str, users: Mapping[str, str]
    ) -> None:
        self.session, self.protocol, self.actor = session, protocol, actor
        self.users: Mapping[str, str] | None = users  # the AdminData's users, kept with the first participant
        self.detail = {"file": file, "sha256": sha256}
        self.now = clock.now()
        self.counts: Counter[str] = Counter()
        self.states: Counter[str] = Counter()
        self.meaning = protocol.signature_meaning
        self.kit = kit_field(protocol)
        self.holds: list[dict[str, Any]] = []  # the batch's administered codes, written by ``write_holds``

    def add(self, s: Subject) -> None:
        p, tw, session = self.protocol, s.enrolment, self.session
        screened_on = dt.date.fromisoformat(tw["ScreenedOn"])
        decision = evaluate(p, _typed_values(p, s.screening_values))
        screening_id = inserted_id(
            session,
            screenings.insert().values(
                site=s.site, number=s.screening_number, screened_on=screened_on,
                screening_values=_dump(s.screening_values), decision=decision.decision.value,
                decision_detail=_dump(_decision_detail(decision)), protocol_version=p.version.number,
                created_at=self.now, created_by=self.actor.username, updated_at=self.now,
            ),
        )  # fmt: skip
        consented_at = dt.datetime.fromisoformat(tw["ConsentedAt"])
        consented_on = local_date(consented_at, p.site(s.site).timezone, "ConsentedAt")
        in_use = [v for v in p.consent_versions if v.effective_from <= consented_on]
        version = max(in_use or p.consent_versions[:1], key=lambda v: v.effective_from)
        from trialwright.services.odm_import_records import NOT_IN_FILE

        consent = s.consent or {  # a file written before the export carried the consent's details
            "form_version": version.version, "kind": "initial", "obtained_by": NOT_IN_FILE, "recorded_at": self.now,
            "recorded_by": self.actor.username,
        }  # fmt: skip
        ids = {} if s.consent_id is None else {"id": s.consent_id}  # the source's id (odm_import_consents)
        from trialwright.services.odm_import_consents import take_in_force

        in_force = take_in_force([(s.consent_id, consent), *((r["id"], r) for r in s.later_consents)],
                                 f"SubjectData[@SubjectKey={s.participant_id}]/tw:Enrolment")  # fmt: skip
        session.execute(
            consents.insert().values(
                screening_id=screening_id, given_by=tw["ConsentGivenBy"], obtained_at=consented_at,
                decision="consent", **consent, **ids,
            )
        )  # fmt: skip
        self.counts["consents"] += 1
        if s.later_consents:
            from trialwright.services.odm_import_consents import write_later

            write_later(self, screening_id, s.later_consents)
        enrolled_by, _ = s.enrolled or (self.actor.username, None)
        session.execute(
            participants.insert().values(
                participant_id=s.participant_id, site=s.site, number=s.number, screening_id=screening_id,
                enrolled_at=dt.datetime.fromisoformat(tw["EnrolledAt"]), enrolled_by=enrolled_by,
            )
        )  # fmt: skip
        withdrawn = s.withdrawn or [None] * len(s.withdrawals)
        for (scope, on, reason, cause), recorded in zip(s.withdrawals, withdrawn, strict=True):
            at, by = recorded or (self.now, self.actor.username)  # the importer: a file from before the export had it
            session.execute(
                withdrawals.insert().values(
                    participant_id=s.participant_id, scope=scope, reason=reason, cause=cause, withdrawn_on=on,
                    recorded_at=at, recorded_by=by,
                )
            )  # fmt: skip
        # The participant's own entry: its AuditRecord as recorded and its randomization as the file states it (a
        # number, time and stratum; no arm, no list entry). The first also keeps the file's users (AdminData).
        kept: dict[str, Any] = {"recorded": s.recorded, **({"earlier": s.earlier} if s.earlier else {})}
        if s.randomization:
            kept["randomization"] = s.randomization
            self.counts["randomized"] += 1
        if s.consent is not None:  # the consent's details and who recorded the withdrawals, as restored
            kept["consent"] = {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in s.consent.items()}
            kept["withdrawals"] = [{"recorded_at": at.isoformat(), "recorded_by": by} for at, by in
                                   (r for r in s.withdrawn if r is not None)]  # fmt: skip
        if s.later_consents:  # the participant's other consent records, as restored
            from trialwright.services.odm_import_consents import kept as consents_kept

            kept["consents"] = consents_kept(s.later_consents)
        if in_force:  # what was in force at each consent record, by id (``export_consents`` writes it back)
            kept["in_force"] = in_force
        if s.screening_earlier:  # the entries about its screening before enrolment, keyed by it (audit_index)
            kept["screening_earlier"] = {"screening": s.enrolment["ScreeningNumber"], "records": s.screening_earlier}
        if self.users is not None:
            kept["users"] = dict(self.users)
            self.users = None
        audit.record(
            session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
            participant=s.participant_id, action="import.odm", new_value=kept, detail=dict(self.detail),
        )  # fmt: skip
        self.counts["participants"] += 1
        self.counts["records"] += s.recorded is not None
        self.counts["earlier"] += len(s.earlier) + len(s.screening_earlier)
        for v in s.visits:
            self._visit(s, v)
        for e in s.entries:
            self._log_entry(s, e)
        if s.adverse_events:
            from trialwright.services.odm_import_ae import write_adverse_event

            for event in s.adverse_events:
                write_adverse_event(self, s, event)
        if s.queries:
            from trialwright.services.odm_import_queries import restore_queries

            restore_queries(self, s, s.queries)

    def _log_entry(self, s: Subject, e: ImportedLogEntry) -> None:
        """A log entry as the file has it (its row, its coding) and its import entry: state, version, values,
        removal reason, review and coding, and its and its values' AuditRecords as recorded (``recorded``,
        ``items``), which the ODM export and ``audit verify`` read back."""
        tw = e.tw
        at = {k: dt.datetime.fromisoformat(tw[k]) if tw.get(k) else None
              for k in ("CreatedAt", "UpdatedAt", "VerifiedAt", "SignedAt")}  # fmt: skip
        values = json.dumps(e.values, ensure_ascii=False, sort_keys=True)  # as trialwright.services.logs stores them
        entry_id = inserted_id(
            self.session,
            log_entries.insert().values(
                participant_id=s.participant_id, log_id=e.log_id, sequence=e.sequence, entry_values=values,
                state=tw["State"], version=int(tw["Version"]), protocol_version=tw["ProtocolVersion"],
                created_at=at["CreatedAt"], created_by=tw["CreatedBy"], updated_at=at["UpdatedAt"],
                updated_by=tw["UpdatedBy"], removed_reason=tw.get("RemovedReason"),
                verified_at=at["VerifiedAt"], verified_by=tw.get("VerifiedBy"),
                signed_at=at["SignedAt"], signed_by=tw.get("SignedBy"),
                signature_meaning=self.meaning if tw.get("SignedBy") else None,
            ),
        )  # fmt: skip
        coding = e.coding
        if coding is not None:
            self.session.execute(
                log_codings.insert().values(
                    entry_id=entry_id, **{k: coding[k] for k in ("dictionary", "version", "verbatim", "code", "name",
                                                                 "coded_by")},
                    path=json.dumps(coding["path"]), coded_at=dt.datetime.fromisoformat(coding["coded_at"]),
                )
            )  # fmt: skip
            self.counts["codings"] += 1
        audit.record(
            self.session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
            participant=s.participant_id, form=e.log_id, action="import.odm",
            new_value={"state": tw["State"], "version": int(tw["Version"]), "values": e.values,
                       "removed_reason": tw.get("RemovedReason"),
                       "review": {"verified_by": tw.get("VerifiedBy"), "signed_by": tw.get("SignedBy")},
                       "coding": coding, "recorded": e.recorded, "items": e.items,
                       **({"history": e.history} if e.history else {}),
                       **({"earlier": e.earlier} if e.earlier else {})},
            detail={**self.detail, "sequence": e.sequence},
        )  # fmt: skip
        self.counts["log_entries"] += 1
        self.counts["records"] += (e.recorded is not None) + len(e.items)
        self.counts["earlier"] += sum(len(records) for records in e.history.values()) + len(e.earlier)

    def _administered(self, participant_id: str, form_id: str, record_id: int, values: Mapping[str, Any]) -> None:
        """The preparation code an imported administration record holds, kept to be recorded for the kit check
        (``store/administered.py``) with the batch's others (``write_holds``)."""
        kit = self.kit
        code = code_held(values.get(kit[1])) if kit is not None and form_id == kit[0] else None
        if code is not None:
            self.holds.append({"form_record_id": record_id, "preparation_code": code, "participant_id": participant_id,
                               "form_id": form_id})  # fmt: skip

    def write_holds(self) -> None:
        """Record the codes the batch's administration records hold, as the file has them: one read of who holds
        them already, one executemany. The first record of a code (in the file's order) claims it; a code another
        record holds already (earlier in the file, or data from before the check) is kept too, unclaimed, and the
        kit check refuses to add to it. A claim another transaction took meanwhile leaves the row unclaimed."""
        holds, self.holds = self.holds, []
        if not holds:
            return
        claimed = held_codes(self.session, {h["preparation_code"] for h in holds})
        for h in holds:
            code = h["preparation_code"]
            h["claim"] = None if code in claimed else code
            claimed.add(code)
        taken = hold_many(self.session, holds)
        if taken:
            hold_many(self.session, [{**h, "claim": None} for h in taken])

    def _visit(self, s: Subject, v: ImportedVisit) -> None:
        by, at = v.created or (self.actor.username, self.now)
        visit_id = deferred_insert(  # the visits and forms of a batch written together (``bulk_writes``)
            self.session, visit_records,
            dict(participant_id=s.participant_id, visit_id=v.visit_id, visit_date=v.date, missed_reason=v.missed,
                 unscheduled=v.visit_id.startswith("unscheduled-"), label=v.label, created_at=at, created_by=by),
        ).id  # fmt: skip
        audit.record(
            self.session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
            participant=s.participant_id, action="import.odm", reason=v.missed,
            new_value={"visit_date": v.date.isoformat() if v.date else None, "label": v.label, "recorded": v.recorded,
                       **({"earlier": v.earlier} if v.earlier else {})},
            detail={**self.detail, "visit": v.visit_id},
        )  # fmt: skip
        self.counts["visits"] += 1
        self.counts["records"] += v.recorded is not None
        self.counts["earlier"] += len(v.earlier)
        for form in v.forms:
            tw = form.tw
            moments = {k: dt.datetime.fromisoformat(tw[k]) if tw.get(k) else None
                       for k in ("UpdatedAt", "VerifiedAt", "SignedAt", "LockedAt")}  # fmt: skip
            values = json.dumps(form.values, sort_keys=True, ensure_ascii=False)  # as trialwright.services.forms stores
            lock = {}
            if tw["State"] == "locked" and tw.get("LockedBy"):
                lock = {"lock": {"by": tw["LockedBy"], "at": tw.get("LockedAt"), "before": tw.get("StateBeforeLock")}}
            record = deferred_insert(
                self.session, form_records,
                dict(participant_id=s.participant_id, visit_record_id=visit_id, form_id=form.form_id,
                     state=tw["State"], state_before_lock=tw.get("StateBeforeLock"), form_values=values,
                     version=int(tw["Version"]), protocol_version=self.protocol.version.number,
                     updated_at=moments["UpdatedAt"], updated_by=tw["UpdatedBy"],
                     verified_at=moments["VerifiedAt"], verified_by=tw.get("VerifiedBy"),
                     signed_at=moments["SignedAt"], signed_by=tw.get("SignedBy"),
                     signature_meaning=self.meaning if tw.get("SignedBy") else None,
                     locked_at=moments["LockedAt"], locked_by=tw.get("LockedBy")),
            )  # fmt: skip
            self._administered(s.participant_id, form.form_id, int(record.id), form.values)
            audit.record(
                self.session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
                participant=s.participant_id, form=form.form_id, action="import.odm",
                new_value={"state": tw["State"], "version": int(tw["Version"]), "values": form.values, **lock,
                           "recorded": form.recorded, "items": form.items,
                           **({"history": form.history} if form.history else {}),
                           **({"earlier": form.earlier} if form.earlier else {})},
                detail={**self.detail, "visit": v.visit_id},
            )  # fmt: skip
            self.counts["forms"] += 1
            self.counts["records"] += (form.recorded is not None) + len(form.items)
            self.counts["earlier"] += sum(len(records) for records in form.history.values()) + len(form.earlier)
            self.counts["values"] += len(form.values)
            self.states[tw["State"]] += 1
