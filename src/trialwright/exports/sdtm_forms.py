"""The SDTM rows a form record gives as the forms stream by: LB and VS findings (``add_findings``: the fields whose
protocol ``codes`` declare an ``sdtm`` test), the facts DM needs about the participant (``gather_facts``: age and sex
from their declared sources, alive at the death record: a completion once the visits after it are held, decided in
``sdtm_subjects``) and EX (``add_exposure``: the treatment form whose given field says the treatment was given; its
end and dose only from the fields the protocol declares).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from trialwright.domain.forms import StoredValue
from trialwright.domain.treatment import treatment_given
from trialwright.exports.base import FormRecord
from trialwright.exports.sdtm_build import Build, SubjectFacts, dtc
from trialwright.exports.sdtm_domains import (
    BLINDED_TREATMENT,
    dm_sources,
)
from trialwright.exports.sdtm_findings import (
    AT_COLUMN,
    finding_record,
    moment_field,
)
from trialwright.exports.tabular import analysis_value
from trialwright.protocol.forms import FieldType, FormDef

__all__ = ["add_exposure", "add_findings", "gather_facts"]


def add_findings(build: Build, form: FormDef, r: FormRecord, subject: SubjectFacts) -> None:
    moment = moment_field(form)
    stamp = analysis_value(moment, r.values[moment.id]) if moment and isinstance(r.values.get(moment.id),
                                                                                 Mapping) else None  # fmt: skip
    visitnum, visit = build.visits.get(r.visit_id, (None, r.visit_id))
    zone = build.zone(r.site)
    taken = dtc(stamp, zone) or dtc(r.visit_date, zone)
    at = stamp.astimezone(dt.UTC).isoformat() if isinstance(stamp, dt.datetime) else dtc(r.visit_date, zone)
    for prefix in ("LB", "VS"):
        for f in form.fields:
            test, stored = f.codes.sdtm if f.codes else None, r.values.get(f.id)
            if test is None or test.domain != prefix or not isinstance(stored, Mapping):
                continue
            row = {**build.ids(r.participant_id), **finding_record(prefix, test, f, stored)}
            row.update({"VISITNUM": visitnum, "VISIT": visit, "EPOCH": build.epochs.get(r.visit_id),
                        f"{prefix}DTC": taken, AT_COLUMN: at})  # fmt: skip
            build.sinks[prefix].add(row)


def gather_facts(build: Build, form: FormDef, r: FormRecord, subject: SubjectFacts) -> None:
    for target, sources in dm_sources(build.protocol).items():
        for i, source in enumerate(sources):
            form_id, _, field_id = source.partition(".")
            stored = r.values.get(field_id)
            if form_id != form.id or not isinstance(stored, Mapping):
                continue
            value = analysis_value(form.field(field_id), stored)
            if isinstance(value, float | int | str) and not isinstance(value, bool):
                subject.found.setdefault((target, i), value)
    record = build.protocol.safety.death_record
    if record is None or form.id != record.form or r.visit_id != record.visit:
        return
    status = r.values.get(record.status_field, {}).get("value")
    ended = r.values.get(record.date_field)
    day = analysis_value(form.field(record.date_field), ended) if isinstance(ended, Mapping) else None
    day = day if isinstance(day, dt.date) else r.visit_date
    if status is not None and status != record.status_value:  # a death is read by ``sdtm_events.read_death``
        subject.completed = day  # alive that day; completed only if the visits after it are held (``add_disposition``)


def add_exposure(build: Build, form: FormDef, r: FormRecord, subject: SubjectFacts) -> None:
    p = build.protocol
    treatment = p.analysis_plan.treatment if p.analysis_plan else None
    if treatment is None or (form.id, r.visit_id) != (treatment.form, treatment.visit):
        return
    given = r.values.get(treatment.given_field)
    if not isinstance(given, Mapping) or not treatment_given(StoredValue.from_json(given)):
        return  # not given (no, missing, not done): no exposure, as in the analysis
    subject.exposed = True
    code = r.values.get(treatment.code_field) if treatment.code_field else None
    if isinstance(code, Mapping) and code.get("status", "value") == "value" and code.get("value") is not None:
        subject.given_codes.append(str(code["value"]))
    given_field = form.field(treatment.given_field)
    # The start: the given field's own date-time or date; a yes/no field holds no moment, and the protocol
    # declares no other, so the start is the treatment visit's date. The end and the dose only from the fields
    # the protocol declares for them (``end_field``, ``dose_field``), never inferred from the form's others.
    start = analysis_value(given_field, given) if given_field.type is not FieldType.BOOLEAN else r.visit_date
    end_field = form.field(treatment.end_field) if treatment.end_field else None
    end = analysis_value(end_field, r.values[end_field.id]) if end_field and isinstance(
        r.values.get(end_field.id), Mapping) else None  # fmt: skip
    dose_field = form.field(treatment.dose_field) if treatment.dose_field else None
    dose = analysis_value(dose_field, r.values[dose_field.id]) if dose_field and isinstance(
        r.values.get(dose_field.id), Mapping) else None  # fmt: skip
    person = build.people.get(r.participant_id)
    arm = p.arm_by_code(person.arm) if build.source.with_arms and person and person.arm else None
    routes = {a.intervention.route.upper() for a in p.arms}
    route = arm.intervention.route.upper() if arm else (routes.pop() if len(routes) == 1 else None)
    visitnum, visit = build.visits.get(r.visit_id, (None, r.visit_id))
    build.sinks["EX"].add({
        **build.ids(r.participant_id),
        "EXTRT": arm.intervention.name if arm else BLINDED_TREATMENT,
        "EXDOSE": dose if isinstance(dose, float) else None,
        "EXDOSU": dose_field.unit if dose_field else None,
        "EXROUTE": route,
        "VISITNUM": visitnum,
        "VISIT": visit,
        "EPOCH": build.epochs.get(r.visit_id),
        "EXSTDTC": dtc(start, build.zone(r.site)),
        "EXENDTC": dtc(end, build.zone(r.site)),
    })  # fmt: skip
    if isinstance(start, dt.datetime):
        subject.first_dose = min(start, subject.first_dose) if subject.first_dose else start
    elif isinstance(start, dt.date):
        subject.first_dose_day = min(start, subject.first_dose_day) if subject.first_dose_day else start
    # The end of this exposure as the data record it: its EXENDTC, or (a single administration declared by
    # the protocol) its start; else not known, and RFXENDTC stays empty (never the first dose by default).
    known = end if isinstance(end, dt.datetime) else start if treatment.single_administration else None
    subject.dose_ends.append(known if isinstance(known, dt.date) else None)

