"""Running the protocol's analysis: who may, in which mode, on which snapshot.

``analysis_data`` reads one consistent snapshot in a single transaction and turns it into an
``AnalysisData`` in analysis units (values below a limit of quantification by the plan's rule, dates as
study days). ``run_analysis`` executes the plan on it (``trialwright.analysis.engine``) and records the run in
the audit trail.

Masking: the blinded mode (the default, and the only mode before the database lock) labels participants
with a pooled group, or with unnamed groups when the protocol allows them for the blinded team
(``safety.blinded_tables``); the arm codes never leave this module. The unblinded mode is for the
unblinded statistician after the database is locked, and its run is audited as such.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, func, select, true

from trialwright import __version__
from trialwright.analysis import statistics as st
from trialwright.analysis.dataset import AnalysisData, Event, Grouping, Screened, Stay, Subject
from trialwright.analysis.engine import AnalysisReport, analyse
from trialwright.analysis.sentences import N_
from trialwright.analysis.statistics import PowerSimulation, SampleSizePlan
from trialwright.domain.calendars import local_date
from trialwright.domain.deaths import Death, earliest_death
from trialwright.domain.eligibility import values_at_screening
from trialwright.domain.forms import FormState
from trialwright.domain.masking import arms_refused, kept_forms, masked_roles, sees_arms
from trialwright.domain.recruitment import eligible_apart_from_consent
from trialwright.domain.roles import Role
from trialwright.domain.treatment import arm_received
from trialwright.protocol import Protocol
from trialwright.protocol.analysis_plan import BelowLimitRule
from trialwright.protocol.estimand_checks import composite_limits
from trialwright.protocol.estimands import Scale, VariableKind
from trialwright.protocol.outcomes import BlindedTables
from trialwright.protocol.sources import source
from trialwright.services import audit, clock
from trialwright.services.analysis_values import FormValuesReader
from trialwright.services.audit_keys import checked_allocations
from trialwright.services.errors import denied
from trialwright.services.lock import standing, state_of
from trialwright.services.odm_import import imported_randomizations
from trialwright.services.replica import ReplicaRefused, reader
from trialwright.services.safety import group_labels
from trialwright.services.safety.tables import coded_terms
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.data_tables import form_records, trial_locks, visit_records
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.randomization_tables import allocation_entries, unblindings
from trialwright.store.safety_tables import adverse_events, ae_reports
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals
from trialwright.store.tables import audit_entries

__all__ = [
    "ANALYSTS",
    "AnalysisError",
    "AnalysisRun",
    "DefinitivePlan",
    "analysis_data",
    "plan_definitive_trial",
    "run_analysis",
]

#: Who runs the analysis: the blinded statistician (blinded mode) and the unblinded statistician.
ANALYSTS = (Role.BLINDED_STATISTICIAN, Role.UNBLINDED_STATISTICIAN)


class AnalysisError(ValueError):
    """An analysis that may not be run; the message names the rule (and never an arm)."""


@dataclass(frozen=True)
class AnalysisRun:
    """A report and the data it was computed from."""

    report: AnalysisReport
    data: AnalysisData


def _mode(protocol: Protocol, actor: UserView, unblinded: bool, locked: bool) -> Grouping:
    if actor.role not in ANALYSTS:
        raise denied(AnalysisError)("role: only the blinded and the unblinded statistician run the analysis")
    if not masked_roles(protocol):
        return Grouping.BY_ARM  # open label (or single-blind): no system user is kept from the arms
    if unblinded:
        if not sees_arms(protocol, actor.role):
            refused = arms_refused(protocol, actor.role, ANALYSTS, "run the unblinded analysis")
            raise denied(AnalysisError)(f"unblinded: {refused}")
        if not locked:
            raise AnalysisError("unblinded: the unblinded analysis runs only after the database lock")
        return Grouping.BY_ARM
    if protocol.safety.blinded_tables is BlindedTables.UNNAMED_GROUPS:
        return Grouping.UNNAMED_GROUPS
    return Grouping.POOLED


def analysis_data(
    engine: Engine, actor: UserView, *, unblinded: bool = False, read_engine: Engine | None = None
) -> AnalysisData:
    """One consistent snapshot of the trial, grouped as the actor and mode allow; read through ``read_engine`` (a
    read replica, once it holds the primary's audit head: ``trialwright.services.replica``) when given."""
    protocol = current_protocol(engine).protocol
    plan = protocol.analysis_plan
    rule = plan.below_limit if plan else BelowLimitRule.LIMIT_OVER_SQRT2
    try:
        source = reader(engine, read_engine)
    except ReplicaRefused as exc:
        raise AnalysisError(str(exc)) from None
    with read_scope(source) as session:
        lock = session.execute(select(trial_locks).order_by(trial_locks.c.id.desc()).limit(1)).first()
        grouping = _mode(protocol, actor, unblinded, bool(lock and lock.locked))
        if moved := imported_randomizations(session):
            raise AnalysisError(
                f"randomized: {moved} participants of this trial were randomized in the trial its ODM file came from, "
                "whose sealed list holds their arms (ODM carries no arm); an analysis here would leave them out, so "
                "it runs in the source trial"
            )
        # A lock over open blockers or over forms kept from its locker (and their standing review, if any).
        banner = state_of(lock, protocol, standing(session, protocol, lock)).banner
        audit_seq = int(session.execute(select(func.coalesce(func.max(audit_entries.c.seq), 0))).scalar_one())
        taken_at = clock.now().astimezone(dt.UTC)
        # The data cut-off: the lock's moment for a locked trial (the same locked data analysed later counts nobody's
        # outcome as "not yet due" that was due by the lock, nor censors or counts recruitment months later), else now.
        cut_at = lock.at if lock is not None and lock.locked and lock.at < taken_at else taken_at
        # Every entry checked against its keyed digest first: an arm altered in the database is never analysed.
        entries = checked_allocations(session, claimed_only=False)
        allocations = [e for e in entries if e.participant_id is not None]
        codes = {e.preparation_code: e.arm for e in entries}
        ae_terms = tuple(coded_terms(session))  # the safety tables' own reading of the codings
        people = {r.participant_id: r for r in session.execute(select(participants)).all()}
        screened_on = dict(session.execute(select(screenings.c.id, screenings.c.screened_on)).all())
        at_screening = _screening_values(session, protocol)
        visits: dict[str, dict[str, Any]] = {}
        held_columns = ("id", "participant_id", "visit_id", "visit_date", "missed_reason")  # what the analysis reads
        for v in session.execute(select(*(visit_records.c[c] for c in held_columns))).all():
            visits.setdefault(v.participant_id, {})[v.visit_id] = v
        visit_of = {v.id: (v.participant_id, v.visit_id) for per in visits.values() for v in per.values()}
        # Each value read from its stored JSON as ``_value`` reads a ``StoredValue`` (``analysis_values``).
        # A form kept from the analyst's masked role is never read (``domain.masking.kept_forms``; ``protocol
        # check`` refuses an estimand on one while the blinded statistician is masked).
        kept = kept_forms(protocol, actor.role)
        not_kept = form_records.c.form_id.not_in(sorted(kept)) if kept else true()
        forms = FormValuesReader(protocol, rule, visit_of)
        forms.read(
            session.execute(
                select(form_records.c.visit_record_id, form_records.c.form_id, form_records.c.form_values).where(
                    not_kept
                )
            )
        )
        values, given = forms.values, forms.given
        # What the report says it read: the form records by state (every one is read above, whatever its state).
        by_state = select(form_records.c.state, func.count()).where(not_kept).group_by(form_records.c.state)
        states: dict[str, int] = {str(state): int(n) for state, n in session.execute(by_state).all()}
        withdrawn: dict[str, set[str]] = {}
        left_on: dict[str, dt.date] = {}  # withdrawal from follow-up
        left_because: dict[str, str] = {}  # and its cause, where recorded
        stopped_on: dict[str, dt.date] = {}  # withdrawal from the intervention
        for w in session.execute(
            select(withdrawals.c.participant_id, withdrawals.c.scope, withdrawals.c.cause, withdrawals.c.withdrawn_on)
        ).all():
            withdrawn.setdefault(w.participant_id, set()).add(w.scope)
            if w.scope == "follow_up":  # one per participant: a scope is withdrawn from once
                left_on[w.participant_id] = w.withdrawn_on
                if w.cause is not None:
                    left_because[w.participant_id] = w.cause
            elif w.scope == "intervention":
                stopped_on[w.participant_id] = w.withdrawn_on
        latest: dict[int, Any] = {}
        for r in session.execute(select(ae_reports).order_by(ae_reports.c.event_id, ae_reports.c.sequence)).all():
            latest[r.event_id] = r
        event_rows = session.execute(select(adverse_events.c.id, adverse_events.c.participant_id)).all()
        emergency = set(session.execute(select(unblindings.c.participant_id)).scalars())
        labels = group_labels(session, protocol) if grouping is Grouping.UNNAMED_GROUPS else {}
        screened = _screened(session, protocol, cut_at)
    names = {a.code: a.name for a in protocol.arms}
    if grouping is Grouping.BY_ARM:
        order = [a.code for a in protocol.arms if a.role.value != "experimental"] + [
            a.code for a in protocol.arms if a.role.value == "experimental"
        ]
        label_of = names
        groups = tuple(names[c] for c in order)
    elif grouping is Grouping.UNNAMED_GROUPS:
        label_of = labels
        groups = tuple(sorted(labels.values()))
    else:
        label_of = {a.code: "All participants" for a in protocol.arms}
        groups = ("All participants",)
    events: dict[str, list[Event]] = {}
    randomized_on: dict[str, dt.date] = {}
    day_zero: dict[str, dt.date] = {}  # what adverse events are counted from: the treatment, else randomization
    treatment = plan.treatment if plan else None
    for a in allocations:
        tz = ZoneInfo(protocol.site(people[a.participant_id].site).timezone)
        randomized_on[a.participant_id] = local_date(a.randomized_at, tz)
        held = visits.get(a.participant_id, {}).get(treatment.visit) if treatment else None
        day_zero[a.participant_id] = (
            held.visit_date if held is not None and held.visit_date else randomized_on[a.participant_id]
        )
    deaths: dict[str, int] = {}  # days from randomization to death, the earliest any record gives
    for e in event_rows:
        report = latest.get(e.id)
        if report is None or e.participant_id not in randomized_on:
            continue
        body = json.loads(report.assessment)
        onset = dt.date.fromisoformat(body["onset"])
        if body.get("outcome") == "fatal":
            died = dt.date.fromisoformat(body.get("death_date") or body["onset"])
            day = (died - randomized_on[e.participant_id]).days
            deaths[e.participant_id] = min(day, deaths.get(e.participant_id, day))
        events.setdefault(e.participant_id, []).append(
            Event(
                (onset - day_zero[e.participant_id]).days,
                int(body["grade"]),
                bool(report.serious),
                bool(report.related),
                body.get("expected_event"),
                body.get("outcome") == "fatal",
            )
        )
    subjects = []
    cutoffs = {s.code: local_date(cut_at, s.timezone) for s in reversed(protocol.sites)}
    for a in sorted(allocations, key=lambda a: a.participant_id):
        pid = a.participant_id
        person = people[pid]
        own = values.get(pid, {})
        treated, treated_code = _treatment(protocol, own, pid in given, a.arm, codes)
        cutoff = cutoffs.get(person.site) or local_date(cut_at, protocol.site(person.site).timezone)
        reasons = _not_per_protocol(
            protocol, own, visits.get(pid, {}), person, screened_on, randomized_on[pid], treated, treated_code, a.arm
        )
        subjects.append(
            Subject(
                participant_id=pid,
                site=person.site,
                stratum=a.stratum,
                group=label_of[a.arm],
                treated=treated,
                treated_group=label_of[treated_code] if treated and treated_code in label_of else None,
                per_protocol=not reasons,
                not_per_protocol=tuple(reasons),
                withdrawn=tuple(sorted(withdrawn.get(pid, ()))),
                emergency_unblinded=pid in emergency,
                values=own,
                events=tuple(events.get(pid, ())),
                stay=_stay(protocol, own, cutoff),
                death_day=_death_day(protocol, own, randomized_on[pid], deaths.get(pid)),
                treatment_day=(day_zero[pid] - randomized_on[pid]).days,
                followed_days=(cutoff - randomized_on[pid]).days,
                withdrawn_day=(left_on[pid] - randomized_on[pid]).days if pid in left_on else None,
                withdrawn_cause=left_because.get(pid),
                stopped_day=(stopped_on[pid] - randomized_on[pid]).days if pid in stopped_on else None,
                visit_days=_held_days(visits.get(pid, {}), randomized_on[pid]),
                missed_visits=frozenset(v for v, row in visits.get(pid, {}).items() if row.missed_reason),
                randomized_on=randomized_on[pid],
                screening=at_screening.get(pid, {}),
            )
        )
    notes = []
    if plan is None:
        notes.append(N_("The protocol has no analysis_plan: no Table 1, treatment taken as allocated."))
    return AnalysisData(
        trial_id=protocol.trial_id,
        protocol_version=protocol.version.number,
        grouping=grouping,
        groups=groups,
        subjects=tuple(subjects),
        screened=screened,
        taken_at=taken_at,
        audit_seq=audit_seq,
        below_limit_rule=rule.value,
        notes=tuple(notes),
        lock_banner=banner,
        cut_off_at=cut_at if cut_at != taken_at else None,
        ae_terms=ae_terms,
        form_states=_by_state(states),
    )


def _screening_values(session: Any, protocol: Protocol) -> dict[str, dict[str, Any]]:
    """Per participant, the screening record's values Table 1's ``screening.<field>`` rows read (``protocol.sources``:
    typed, derived ones computed as the screening page shows them); nothing read when the plan names none."""
    plan = protocol.analysis_plan
    names = {src.name for ref in (plan.baseline_table if plan else ()) if (src := source(protocol, ref)).screening}
    if not names:
        return {}
    rows = session.execute(
        select(participants.c.participant_id, screenings.c.screening_values).join(
            screenings, screenings.c.id == participants.c.screening_id
        )
    ).all()
    return values_at_screening(protocol, ((pid, json.loads(stored)) for pid, stored in rows), names)


def _by_state(counts: Mapping[str, int]) -> dict[str, int]:
    """Each form state in its lifecycle order with its count (zeros too), then any other state stored (never
    dropped)."""
    ordered = {state.value: int(counts.get(state.value, 0)) for state in FormState}
    ordered.update({state: int(n) for state, n in sorted(counts.items()) if state not in ordered})
    return ordered


def _treatment(
    protocol: Protocol, own: Mapping[str, Mapping[str, Any]], given: bool, arm: str, codes: Mapping[str, str]
) -> tuple[bool, str | None]:
    """Whether any treatment was given (``given``: ``treatment_given`` of the treatment form's given field), and
    the arm of what was given (as treated)."""
    plan = protocol.analysis_plan
    if plan is None or plan.treatment is None:
        return True, arm
    t = plan.treatment
    if not given:
        return False, None
    if t.code_field is None:
        return True, arm
    code = own.get(t.visit, {}).get(f"{t.form}.{t.code_field}")
    return True, arm_received([] if code is None else [str(code)], codes, arm).arm  # None: in no allocation list


def _not_per_protocol(
    protocol: Protocol,
    own: Mapping[str, Mapping[str, Any]],
    held: Mapping[str, Any],
    person: Any,
    screened_on: Mapping[int, dt.date],
    randomized: dt.date,
    treated: bool,
    treated_code: str | None,
    arm: str,
) -> list[str]:
    """Why a participant is not in the per-protocol set (empty: they are)."""
    reasons = []
    if not treated:
        reasons.append("not treated")
    elif treated_code is None:
        reasons.append("preparation code unknown")
    elif treated_code != arm:
        reasons.append("received another arm's preparation")
    plan = protocol.analysis_plan
    if plan is None:
        return reasons
    for ref in plan.per_protocol.exclude_when:
        if any(per.get(ref) == "True" for per in own.values()):
            reasons.append(f"{ref} yes")
    tz = ZoneInfo(protocol.site(person.site).timezone)
    refs = {
        "enrolment": local_date(person.enrolled_at, tz),
        "screening": screened_on.get(person.screening_id),
        "randomization": randomized,
    }
    for v in protocol.visits:
        if v.kind == "event" and v.day == 0 and v.reference not in refs and v.id in held:
            refs[v.reference] = held[v.id].visit_date
    for visit_id in plan.per_protocol.visits_in_window:
        visit = protocol.visit(visit_id)
        row = held.get(visit_id)
        if row is None or row.missed_reason or row.visit_date is None:
            reasons.append(f"{visit_id} not held")
            continue
        start = refs.get(visit.reference)
        if start is None:
            reasons.append(f"{visit_id}: its window's reference ({visit.reference}) is not recorded")
        elif not visit.earliest <= (row.visit_date - start).days <= visit.latest:
            reasons.append(f"{visit_id} out of window")
    return reasons


def _held_days(held: Mapping[str, Any], randomized: dt.date) -> dict[str, int]:
    """Each held visit's day from randomization (a missed visit has no date and is not in it)."""
    return {visit_id: (row.visit_date - randomized).days for visit_id, row in held.items() if row.visit_date}


def _death_day(
    protocol: Protocol, own: Mapping[str, Mapping[str, Any]], randomized: dt.date, reported: int | None
) -> int | None:
    """Days from randomization to death: the earliest of a fatal adverse event's date, the protocol's death record
    (e.g. a hospital course ending in death) and every vital-status field it declares, at any visit."""
    fatal = [] if reported is None else [Death(randomized + dt.timedelta(days=reported), "a fatal adverse event")]
    death = earliest_death(protocol, own, fatal)
    return None if death is None else (death.on - randomized).days


def _stay(protocol: Protocol, own: Mapping[str, Mapping[str, Any]], cutoff: dt.date) -> Stay | None:
    """How the stay ended (died, discharged alive, or censored), after how many days. A stay not yet ended is
    censored at the data cut-off, counted from the start date its derivation reads (e.g. the admission)."""
    record = protocol.safety.death_record
    duration = next((o for o in protocol.outcomes if o.estimand.variable.kind is VariableKind.DURATION), None)
    if record is None or duration is None:
        return None
    variable = duration.estimand.variable.fields[0]
    values = own.get(record.visit, {})
    days = values.get(variable)
    status = values.get(f"{record.form}.{record.status_field}")
    if status == record.status_value:
        kind = "died"
    elif status in record.alive_values:
        kind = "discharged"
    else:
        kind = "censored"
    if kind == "censored" and not isinstance(days, float):
        form_id, _, field_id = variable.partition(".")
        derived = protocol.form(form_id).field(field_id).derived
        start = values.get(f"{form_id}.{derived.sources[0]}") if derived and derived.sources else None
        if not isinstance(start, str):
            return None
        try:
            days = float((cutoff - dt.date.fromisoformat(start[:10])).days)
        except ValueError:
            return None
    if status is None and days is None:
        return None
    return Stay(float(days) if isinstance(days, float) else None, kind)


#: The CONSORT diagram's words for a screened patient's coded reason for not being enrolled (``NonEnrolmentReason``;
#: not eligible and declined have their own lines), each a catalog message.
NOT_ENROLLED = {
    "consent_not_obtainable": N_("Consent not obtainable"),
    "other_trial": N_("Other trial"),
    "other": N_("Other"),
}
_ENROLLED = N_("Enrolled, not randomized")
_NOT_COMPLETED = N_("Screening not completed")


def _screened(session: Any, protocol: Protocol, now: dt.datetime) -> Screened:
    rows = session.execute(
        select(
            screenings.c.id,
            screenings.c.site,
            screenings.c.screened_on,
            screenings.c.decision,
            screenings.c.decision_detail,
            screenings.c.non_enrolment_reason,
        )
    ).all()
    refused = set(session.execute(select(consents.c.screening_id).where(consents.c.decision == "refuse")).scalars())
    consent_field = protocol.eligibility.consent_field
    # Eligible: every criterion met but consent, which comes after (``eligible_apart_from_consent``, the rule the
    # recruitment report counts by): a consent refusal fails the consent criterion, yet the patient declined.
    apart = {r.id: eligible_apart_from_consent(r.decision, json.loads(r.decision_detail), consent_field) for r in rows}
    consented_ids: dict[int, str] = {}  # the first consent of each screening: who gave it
    for r in session.execute(
        select(consents.c.screening_id, consents.c.given_by)
        .where(consents.c.decision == "consent")
        .order_by(consents.c.id)
    ).all():
        consented_ids.setdefault(r.screening_id, r.given_by)
    enrolled = {r.screening_id for r in session.execute(select(participants.c.screening_id)).all()}
    randomized = set(
        session.execute(
            select(participants.c.screening_id).join(
                allocation_entries, allocation_entries.c.participant_id == participants.c.participant_id
            )
        ).scalars()
    )
    other: dict[str, int] = {}
    declined = not_eligible = 0
    for r in rows:
        if r.id in randomized:
            continue
        if (r.decision == "not_eligible" and not apart[r.id]) or r.non_enrolment_reason == "not_eligible":
            not_eligible += 1
        elif r.id in enrolled:
            other[_ENROLLED] = other.get(_ENROLLED, 0) + 1
        elif r.non_enrolment_reason == "declined" or r.id in refused:
            declined += 1
        elif r.non_enrolment_reason:
            code = str(r.non_enrolment_reason)
            label = NOT_ENROLLED.get(code) or code.replace("_", " ").capitalize()
            other[label] = other.get(label, 0) + 1
        else:
            other[_NOT_COMPLETED] = other.get(_NOT_COMPLETED, 0) + 1
    # A site recruits from its first screening to the last screening of the trial (or today, if later
    # screenings are still expected: the recruitment period has not ended).
    first: dict[str, dt.date] = {}
    for r in rows:
        first[r.site] = min(first.get(r.site, r.screened_on), r.screened_on)
    # The recruitment period: to its actual end if recorded; otherwise to the later of the last screening and
    # the expected end, but never past today (a trial still recruiting counts its months to today).
    dates = protocol.trial.dates
    today = max(local_date(now, s.timezone) for s in protocol.sites)  # screening dates are the sites' dates
    last = max((r.screened_on for r in rows), default=today)
    end = dates.actual_recruitment_end or min(today, max(last, dates.expected_recruitment_end))
    months = sum(max((end - d).days, 1) / (365.25 / 12) for d in first.values())
    # Eligible: every criterion met (consent aside, which comes after): judged so, or gone on to consent and
    # enrolment, or declined once found eligible.
    eligible_ids = {
        r.id for r in rows
        if (apart[r.id] and r.non_enrolment_reason != "not_eligible") or r.id in enrolled
        or r.non_enrolment_reason == "declined"
    }  # fmt: skip
    eligible = len(eligible_ids)
    consented_ids = {k: v for k, v in consented_ids.items() if k in eligible_ids}
    return Screened(
        assessed=len(rows),
        eligible=eligible,
        not_eligible=not_eligible,
        declined=declined,
        other_reasons=other,
        consented=len(consented_ids),
        by_representative=sum(1 for v in consented_ids.values() if v == "representative"),
        enrolled=len(enrolled),
        site_months=months,
    )


def run_analysis(
    engine: Engine, actor: UserView, *, unblinded: bool = False, read_engine: Engine | None = None
) -> AnalysisRun:
    """Execute the protocol's analysis plan on the current data (read through ``read_engine`` when given); the run
    is audited on the primary (mode and snapshot)."""
    protocol = current_protocol(engine).protocol
    unblinded = unblinded and bool(masked_roles(protocol))  # open label: by arm always, nothing is unblinded
    beyond = list(composite_limits(protocol))  # only a version stored before protocol check refused it
    if beyond:
        raise AnalysisError("; ".join(f"{path}: {rule}" for path, rule in beyond))
    data = analysis_data(engine, actor, unblinded=unblinded, read_engine=read_engine)
    report = analyse(protocol, data, software_version=__version__, unblinded=unblinded)
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="analysis.unblinded_run" if unblinded else "analysis.run",
            new_value={
                "grouping": data.grouping.value,
                "snapshot_sha256": data.snapshot_sha256,
                "audit_seq": data.audit_seq,
                "participants": len(data.subjects),
            },
        )
    return AnalysisRun(report, data)


@dataclass(frozen=True)
class DefinitivePlan:
    """Sizing the definitive trial from the pilot's data for one outcome variable."""

    outcome: str
    variable: str
    timepoint: str
    scale: str  # the analysis scale: natural or log
    effect: float  # as asked: a difference, or on the log scale a ratio
    n_pilot: int
    sd: float
    rho: float | None
    plan: SampleSizePlan
    power_at_n: PowerSimulation  # the simulated power of the ANCOVA design at n_per_arm_ancova
    power_at_upper: PowerSimulation  # ... and at Browne's n_per_arm_upper_sd_ancova
    note: str

    def summary(self) -> str:
        """A few lines of text."""
        p = self.plan
        rho = "not estimable" if self.rho is None else f"{self.rho:.2f}"
        return "\n".join(
            [
                f"{self.outcome} ({self.variable} at {self.timepoint}, {self.scale} scale): pilot SD {self.sd:.4g} "
                f"from {self.n_pilot} participants; baseline correlation {rho}",
                f"effect {self.effect:g}{' (ratio)' if self.scale == 'log' else ''}, difference {p.delta:.4g} on the "
                f"{self.scale} scale, two-sided alpha {p.alpha:g}, power {p.power:g}:",
                f"  per arm from the pilot SD: {p.n_per_arm} (with ANCOVA: {p.n_per_arm_ancova})",
                f"  per arm from the {100 * (1 - p.gamma):g}% upper confidence limit of the SD ({p.upper_sd:.4g},"
                f" Browne 1995): {p.n_per_arm_upper_sd} (with ANCOVA: {p.n_per_arm_upper_sd_ancova})",
                f"  simulated power of the ANCOVA design: {self.power_at_n.power:.3f} at {p.n_per_arm_ancova} per arm, "
                f"{self.power_at_upper.power:.3f} at {p.n_per_arm_upper_sd_ancova} per arm "
                f"({self.power_at_n.n_sim} simulations each)",
                self.note,
            ]
        )


def plan_definitive_trial(
    engine: Engine,
    actor: UserView,
    outcome_id: str,
    effect: float,
    *,
    power: float = 0.9,
    alpha: float = 0.05,
    gamma: float = 0.2,
    variable: str | None = None,
    n_sim: int = 2000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    unblinded: bool = False,
    read_engine: Engine | None = None,
) -> DefinitivePlan:
    """Per-arm sample size of the definitive trial for ``effect`` on one continuous outcome, from the pilot SD
    and from its upper confidence limit (Browne 1995), with and without the ANCOVA baseline correlation; and
    the simulated power of that design.

    Blinded (the default) the SD is taken over all participants without regard to arm, on n - 1 degrees of
    freedom. ``unblinded`` (the unblinded statistician, after the lock, as for the unblinded analysis) uses the
    pooled within-arm SD on n - k degrees of freedom (k arms), as Browne (1995) defines the pilot's SD.

    On a log-scale outcome ``effect`` is the ratio of geometric means to detect (e.g. 0.7)."""
    protocol = current_protocol(engine).protocol
    outcome = next((o for o in protocol.outcomes if o.id == outcome_id), None)
    if outcome is None:
        known = ", ".join(o.id for o in protocol.outcomes)
        raise AnalysisError(f"outcome: {outcome_id!r} is not an outcome of the protocol (known: {known})")
    declared = outcome.estimand.variable
    if declared.kind is not VariableKind.CONTINUOUS or declared.at is None:
        raise AnalysisError(f"outcome: {outcome_id} is not a continuous outcome; planning needs one")
    log_scale = declared.scale is Scale.LOG
    chosen = variable or declared.fields[0]
    if chosen not in declared.fields:
        raise AnalysisError(f"variable: {chosen!r} is not one of {', '.join(declared.fields)}")
    if log_scale:
        if effect <= 0 or effect == 1:
            raise AnalysisError("effect: on a log-scale outcome give the ratio to detect, above 0 and not 1")
        delta = abs(math.log(effect))
    else:
        if effect == 0:
            raise AnalysisError("effect: must not be 0")
        delta = abs(effect)
    data = analysis_data(engine, actor, unblinded=unblinded, read_engine=read_engine)
    timepoint = declared.at
    pairs = []
    groups: list[str] = []
    for s in data.subjects:
        f = s.value(timepoint, chosen)
        b = s.value(declared.baseline, chosen) if declared.baseline else None
        if not isinstance(f, float) or (log_scale and f <= 0):
            continue
        fv = math.log(f) if log_scale else f
        bv = None
        if isinstance(b, float) and (b > 0 or not log_scale):
            bv = math.log(b) if log_scale else b
        pairs.append((bv, fv))
        # Blinded, one group whatever the grouping (unnamed groups are for safety, never for efficacy).
        groups.append(s.group if data.grouping is Grouping.BY_ARM else "")
    arms = sorted(set(groups))
    if len(pairs) < len(arms) + 2:
        raise AnalysisError(
            f"data: {chosen} at {timepoint} has {len(pairs)} values; the pilot SD needs at least {len(arms) + 2}"
        )
    follow = np.array([f for _, f in pairs])
    by_group = np.array(groups)
    # Within each group (one pooled group when blinded): the SD pooled over groups, on n - k df.
    residuals = np.concatenate([follow[by_group == g] - follow[by_group == g].mean() for g in arms])
    df = len(pairs) - len(arms)
    sd = float(math.sqrt(float(residuals @ residuals) / df))
    both = np.array([(b, f) for b, f in pairs if b is not None])
    rho = float(np.corrcoef(both[:, 0], both[:, 1])[0, 1]) if len(both) >= 3 else None
    rho_used = 0.0 if rho is None or not math.isfinite(rho) else rho
    plan = st.plan_definitive(sd, df, delta, alpha=alpha, power=power, rho=rho_used, gamma=gamma)
    total = 2 * n_sim

    def part(offset: int) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, _n: progress(offset + done, total))

    at_n = st.simulate_power(
        sd, delta, plan.n_per_arm_ancova, alpha=alpha, rho=rho_used, n_sim=n_sim, seed=seed, progress=part(0)
    )
    at_upper = st.simulate_power(
        sd,
        delta,
        plan.n_per_arm_upper_sd_ancova,
        alpha=alpha,
        rho=rho_used,
        n_sim=n_sim,
        seed=seed + 1,
        progress=part(n_sim),
    )
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="analysis.plan",
            new_value={
                "outcome": outcome.id,
                "variable": chosen,
                "effect": effect,
                "power": power,
                "alpha": alpha,
                "n_per_arm_upper_sd_ancova": plan.n_per_arm_upper_sd_ancova,
                "pilot_n": len(pairs),
                "sd": "pooled within arms" if data.grouping is Grouping.BY_ARM else "over all participants",
            },
        )
    if data.grouping is Grouping.BY_ARM:
        note = f"The SD is pooled within the {len(arms)} arms, on n - {len(arms)} = {df} degrees of freedom."
    else:
        note = (
            "The SD is taken over all participants without regard to arm (blinded), on n - 1 degrees of freedom; "
            "it includes any treatment effect and so errs on the large side. After the lock the unblinded "
            "statistician can plan from the SD pooled within arms."
        )
    if log_scale:
        note += f" Log scale: the effect is the ratio {effect:g}, i.e. {delta:.4g} on the natural-log scale."
    return DefinitivePlan(
        outcome.id,
        chosen,
        timepoint,
        "log" if log_scale else "natural",
        effect,
        len(pairs),
        sd,
        rho,
        plan,
        at_n,
        at_upper,
        note,
    )
