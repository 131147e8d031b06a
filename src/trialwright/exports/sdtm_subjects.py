"""The SDTM rows of each participant, written once every record is read: DM (reference dates, age, sex, the arm
planned and actually received, or BLINDED in a blinded extract), DS (consent, the child's assent where given,
randomization, withdrawals, death, completion), SE (the subject's elements, ``sdtm_design.subject_elements``) and SV
(visits dated or recorded as missed).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trialwright.domain.treatment import arm_received
from trialwright.domain.visits import references, window_of
from trialwright.exports.base import ParticipantRecord
from trialwright.exports.sdtm_build import Build, SubjectFacts, dtc, latest, local_day
from trialwright.exports.sdtm_design import (
    planned_day,
    subject_elements,
    visit_element,
)
from trialwright.exports.sdtm_domains import (
    AGEU,
    ASSENT_MILESTONE,
    BLINDED_ARM,
    DS_CAUSE,
    dm_sources,
)
from trialwright.exports.sdtm_findings import SubjectReference
from trialwright.protocol.elements import epochs
from trialwright.protocol.sources import source as field_source

__all__ = ["add_demographics", "add_disposition", "add_subject_elements", "add_subject_visits"]


def add_disposition(build: Build, person: ParticipantRecord, subject: SubjectFacts) -> None:
    zone = build.zone(person.site)

    def add(term: str, decod: str, cat: str, scat: str | None, when: Any) -> None:
        epoch = build.epoch_on(subject, local_day(when, zone))
        build.sinks["DS"].add({**build.ids(person.participant_id), "DSTERM": term, "DSDECOD": decod,
                               "DSCAT": cat, "DSSCAT": scat, "EPOCH": epoch,
                               "DSSTDTC": dtc(when, zone)})  # fmt: skip

    if person.consented_at is not None:
        add("INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", None,
            person.consented_at)  # fmt: skip
    assent = person.consent
    if assent is not None and assent.assent == "given":  # the child's assent beside the representative's consent
        if assent.assent_obtained_at is None:
            raise ValueError(f"participant: {person.participant_id}'s assent is given without the time it was sought")
        add(ASSENT_MILESTONE, ASSENT_MILESTONE, "PROTOCOL MILESTONE", None, assent.assent_obtained_at)
    if person.randomized_at is not None:
        add("RANDOMIZED", "RANDOMIZED", "PROTOCOL MILESTONE", None, person.randomized_at)
    left_study = False
    for scope, day, reason, cause in person.withdrawals:
        decod = DS_CAUSE.get(cause or "") or (
            "WITHDRAWAL OF CONSENT" if scope == "data_use" else "WITHDRAWAL BY SUBJECT"
        )
        scat = "STUDY TREATMENT" if scope == "intervention" else "STUDY PARTICIPATION"
        left_study = left_study or scope != "intervention"
        add(reason, decod, "DISPOSITION EVENT", scat, day)
    if subject.death is not None:
        add("DEATH", "DEATH", "DISPOSITION EVENT", "STUDY PARTICIPATION", subject.death)
    elif subject.completed is not None and not left_study:
        subject.completed = _follow_up_completed(build, person, subject, subject.completed)
        if subject.completed is not None:
            add("COMPLETED", "COMPLETED", "DISPOSITION EVENT", "STUDY PARTICIPATION", subject.completed)


def _references(build: Build, person: ParticipantRecord, subject: SubjectFacts) -> dict[str, dt.date]:
    """The dates the participant's schedule counts from, as the schedule takes them (``services.forms.visits``):
    screening, enrolment and randomization (the site's date), and an event declared by a day-0 event visit on the
    date its forms record."""
    zone = build.zone(person.site)
    base = {"screening": person.screened_on, "enrolment": local_day(person.enrolled_at, zone),
            "randomization": local_day(person.randomized_at, zone)}  # fmt: skip
    return references(build.protocol.visits, base, subject.visits)


def _follow_up_completed(build: Build, person: ParticipantRecord, subject: SubjectFacts,
                         alive_on: dt.date) -> dt.date | None:
    """DS COMPLETED's date for a participant the death record says is alive on ``alive_on`` (and who did not leave
    follow-up): the participant completed the protocol's follow-up only when every scheduled visit their schedule
    places after that date is held. A visit is placed after it when it was held after it, or when its window (from
    the participant's reference event, ``domain.visits.window_of``) closes after it. The date is then the latest of
    ``alive_on`` and those visits' dates. Such a visit missed, not yet held, or counted from a reference event the
    records do not date: no COMPLETED (None), and README.txt names the subject and the visit."""
    record = build.protocol.safety.death_record
    refs = _references(build, person, subject)
    missed = build.missed.get(person.participant_id, {})
    ended, open_visits = alive_on, []
    for visit in build.protocol.visits:
        if visit.kind != "scheduled" or (record is not None and visit.id == record.visit):
            continue
        if visit.id in subject.visits:
            ended = max(ended, subject.visit_ends[visit.id])
            continue
        reference = refs.get(visit.reference)
        if reference is None:
            open_visits.append(f"{visit.id} (its reference event {visit.reference} is not recorded, so its day is "
                               "not known)")  # fmt: skip
            continue
        closes = window_of(visit, reference)[2]
        if closes <= alive_on:
            continue  # its window closed by the death record's date: not follow-up after it
        if visit.id in missed:
            open_visits.append(f"{visit.id} missed ({missed[visit.id]})")
        else:
            open_visits.append(f"{visit.id} not held (window closes {closes.isoformat()})")
    if open_visits:
        where = f" at {record.visit}" if record is not None else ""
        build.notes.append(
            f"DS {build.ids(person.participant_id)['USUBJID']}: no COMPLETED: alive{where} on {alive_on.isoformat()} "
            f"but the follow-up after it is not complete: {'; '.join(open_visits)}"
        )
        return None
    return ended


def add_subject_elements(build: Build, person: ParticipantRecord, subject: SubjectFacts) -> None:
    """SE: the subject's elements from the dates their records hold (``sdtm_design.subject_elements``)."""
    p = build.protocol
    if not p.elements:
        return
    zone = build.zone(person.site)
    visits_of = {epoch: [v.id for v in p.visits if v.epoch == epoch] for epoch in epochs(p)}
    epoch_days = {epoch: min((subject.visits[v] for v in ids if v in subject.visits), default=None)
                  for epoch, ids in visits_of.items()}  # fmt: skip
    dose = subject.first_dose or subject.first_dose_day  # as DM's RFXSTDTC: a moment, or a date only
    starts = {"consent": dtc(person.consented_at, zone), "enrolment": dtc(person.enrolled_at, zone),
              "randomization": dtc(person.randomized_at, zone), "first_dose": dtc(dose, zone)}
    randomized = person.randomization_number is not None or person.randomized_at is not None
    arm = person.arm if build.source.with_arms and person.arm else None
    dated = {epoch: dtc(day, zone) for epoch, day in epoch_days.items()}
    subject.elements = subject_elements(p, arm, randomized, starts, dated, subject.ended)
    for e in subject.elements:
        build.sinks["SE"].add({**build.ids(person.participant_id), "ETCD": e.code, "ELEMENT": e.name,
                               "TAETORD": e.order, "EPOCH": e.epoch, "SESTDTC": e.start,
                               "SEENDTC": e.end})  # fmt: skip


def add_subject_visits(build: Build, person: ParticipantRecord, subject: SubjectFacts) -> None:
    """SV: one record per protocol visit the subject's forms date (SVOCCUR Y) or recorded as missed (SVOCCUR N,
    SVREASOC the reason; no dates), in schedule order. EPOCH and TAETORD of a dated visit are those of the SE
    element it starts in (``visit_element``); a missed visit has its planned epoch."""
    missed = build.missed.get(person.participant_id, {})
    for visit in build.protocol.visits:
        start = subject.visits.get(visit.id)
        if start is None and visit.id not in missed:
            continue
        visitnum, name = build.visits[visit.id]
        epoch = build.epochs.get(visit.id)
        order = float(epochs(build.protocol).index(epoch) + 1) if epoch and build.protocol.elements else None
        if start is not None and build.protocol.elements:
            element = visit_element(subject.elements, start, epoch)
            epoch, order = (element.epoch, element.order) if element else (None, None)
            build.sv_undecided += element is None
        row = {**build.ids(person.participant_id), "VISITNUM": visitnum, "VISIT": name, "SVPRESP": "Y",
               "VISITDY": planned_day(build.protocol, visit.id), "TAETORD": order, "EPOCH": epoch}  # fmt: skip
        if start is None:
            build.sinks["SV"].add({**row, "SVOCCUR": "N", "SVREASOC": missed[visit.id]})
            continue
        build.sinks["SV"].add({**row, "SVOCCUR": "Y", "SVSTDTC": start.isoformat(),
                               "SVENDTC": subject.visit_ends[visit.id].isoformat()})  # fmt: skip


def add_demographics(build: Build, person: ParticipantRecord, subject: SubjectFacts) -> None:
    p = build.protocol
    screening = person.screening_values
    for target, sources in dm_sources(p).items():
        for i, ref in enumerate(sources):
            found = field_source(p, ref)  # the screening record's here; a form's is read with the forms
            value = screening.get(found.name) if found.screening else None
            if isinstance(value, float | int | str) and not isinstance(value, bool):
                subject.found.setdefault((target, i), value)
    found_age, found_sex = subject.first("AGE"), subject.first("SEX")
    age = float(found_age) if isinstance(found_age, int | float) else None
    d = p.demographics
    sex = d.sex.codes.get(str(found_sex)) if d and d.sex and found_sex is not None else None
    arm = p.arm_by_code(person.arm) if build.source.with_arms and person.arm else None
    randomized = person.randomization_number is not None or person.randomized_at is not None
    # Without a treatment record in the protocol (a procedure, usual care) nothing says who was not treated:
    # as in the analysis, everyone randomized received the allocated arm.
    recorded = p.analysis_plan is not None and p.analysis_plan.treatment is not None
    treated = subject.exposed or (randomized and not recorded)
    reason = None if randomized else "NOT ASSIGNED"
    if randomized and not treated:
        reason = "ASSIGNED, NOT TREATED"
    withdrawn = max((w[1] for w in person.withdrawals), default=None)
    exposure = subject.first_dose or subject.first_dose_day
    start = exposure or person.randomized_at or person.enrolled_at
    zone = build.zone(person.site)
    ended = dtc(latest(subject.last_date, subject.death, subject.completed, withdrawn), zone)
    subject.ended = ended
    # Assigned but withheld (a blinded extract): the same word for every randomized participant, never null
    # (null arms are for ARMNRS's reasons only, SDTMIG 3.4 DM assumptions 4-5).
    planned = (arm.code, arm.name) if arm else (BLINDED_ARM, BLINDED_ARM) if randomized else (None, None)
    actual, unplanned = _received(build, subject, planned) if treated else ((None, None), None)
    reason = "UNPLANNED TREATMENT" if unplanned else reason
    build.sinks["DM"].add({
        **build.ids(person.participant_id),
        "SUBJID": person.participant_id,
        "RFSTDTC": dtc(start, zone),
        "RFENDTC": ended,
        "RFXSTDTC": dtc(exposure, zone),
        "RFXENDTC": dtc(_last_exposure_end(build, person.participant_id, subject, zone), zone),
        "RFICDTC": dtc(person.consented_at, zone),
        "RFPENDTC": ended,
        "DTHDTC": dtc(subject.death, zone),
        "DTHFL": "Y" if subject.death else None,
        "SITEID": person.site,
        "COUNTRY": p.site(person.site).country,
        "AGE": age,
        "AGEU": AGEU[d.age.unit] if age is not None and d and d.age else None,
        "SEX": sex or "U",
        "ARMCD": planned[0],
        "ARM": planned[1],
        "ACTARMCD": actual[0],
        "ACTARM": actual[1],
        "ARMNRS": reason,
        "ACTARMUD": unplanned,
    })  # fmt: skip
    build.reference[build.ids(person.participant_id)["USUBJID"]] = SubjectReference(
        local_day(start, zone), subject.first_dose, local_day(subject.first_dose, zone))


def _last_exposure_end(build: Build, pid: str, subject: SubjectFacts, zone: dt.tzinfo) -> dt.date | None:
    """RFXENDTC: the end of the last exposure as the data record it, the latest of the exposures' ends (each
    its EXENDTC, or its start when the protocol declares a single administration). When an exposure's end is
    not recorded, the last exposure's end is not known: empty, and README.txt names the subject."""
    if not subject.dose_ends:
        return None
    if any(end is None for end in subject.dose_ends):
        usubjid = build.ids(pid)["USUBJID"]
        build.notes.append(
            f"DM {usubjid}: RFXENDTC empty: the end of the exposure is not recorded (EXENDTC empty) and the "
            "protocol declares no single administration (analysis_plan.treatment.single_administration); "
            "never the first dose assumed"
        )
        return None
    ends = [end for end in subject.dose_ends if end is not None]
    # A moment and a date compare by the site's calendar day first; on one day the moment is the later.
    def order(end: dt.date) -> tuple[dt.date | None, float]:
        if not isinstance(end, dt.datetime):
            return local_day(end, zone), float("-inf")
        return local_day(end, zone), (end if end.tzinfo else end.replace(tzinfo=dt.UTC)).timestamp()

    return max(ends, key=order)


def _received(
    build: Build, subject: SubjectFacts, planned: tuple[str | None, str | None]
) -> tuple[tuple[str | None, str | None], str | None]:
    """The arm actually received by a treated subject (ACTARMCD, ACTARM) and, for a treatment outside the
    planned arms, its description (ACTARMUD; then ACTARMCD/ACTARM are null, SDTMIG 3.4 DM assumption 4).

    The preparation codes the treatment form records (``analysis_plan.treatment.code_field``) name the arm
    received, as in the analysis's as-treated set: every code of one arm, that arm (the allocated one or
    another); a code no allocation list holds, or codes of more than one arm, an unplanned treatment. Without
    a code (no code field declared, none recorded), the allocated arm. A blinded extract reads no arm of any
    code: BLINDED, as ARM."""
    if not build.source.with_arms or not subject.given_codes or planned[0] is None:
        return planned, None
    received = arm_received(subject.given_codes, build.prepared, planned[0])
    if received.arm is None:
        said = (f"preparation code {', '.join(received.unknown)}: in no allocation list" if received.unknown
                else f"preparations of arms {', '.join(received.arms)}")  # fmt: skip
        return (None, None), f"Unplanned treatment: {said}"
    arm = build.protocol.arm_by_code(received.arm)
    return (arm.code, arm.name), None
