"""Cross-checks a single model cannot make: references between sections and whole-protocol rules.

Each problem is returned with the protocol path it concerns (``visits[3].window``), so the loader can
name the line in the file.
"""

from __future__ import annotations

from collections.abc import Iterator

from trialwright.protocol import derivation_checks, estimand_checks, masking_checks, translation_checks
from trialwright.protocol.base import a_kind
from trialwright.protocol.codes import repeated_tests
from trialwright.protocol.ct_checks import ct_checks
from trialwright.protocol.demographics import demographics_checks, registered_ages
from trialwright.protocol.derivation_visits import visit_inputs
from trialwright.protocol.design import (
    SimpleRandomization,
    StratificationFactor,
    StratifiedPermutedBlocks,
)
from trialwright.protocol.elements import element_checks
from trialwright.protocol.forms import ReferenceEvent
from trialwright.protocol.logs import log_checks
from trialwright.protocol.model import Protocol
from trialwright.protocol.outcomes import BlindedTables
from trialwright.protocol.references import Found, dupes, field_ref, unknown
from trialwright.protocol.sources import SCREENING, source_ref

__all__ = ["cross_check"]


def cross_check(p: Protocol, *, stored: bool = False) -> list[Found]:
    """Every cross-reference and whole-protocol problem, in file order; ``stored``: a text read back from a trial
    database (``log_checks``)."""
    return [
        *_duplicates(p),
        *_eligibility(p),
        *(() if stored else _consent_age(p)),  # a stored trial keeps loading as its engine read it
        *_forms(p),
        *log_checks(p.logs, {f.id for f in p.forms}, stored=stored),
        *repeated_tests(p),
        *(() if stored else ct_checks(p)),  # a stored text reads as its engine read it
        *_data_checks(p),
        *_visits(p),
        *element_checks(p),
        *masking_checks.masking(p),
        *(() if stored else masking_checks.registered_level(p)),  # a stored trial runs with the masking it had
        *(() if stored else masking_checks.registered_design(p)),  # a stored trial keeps loading as it was
        *estimand_checks.outcomes(p),
        *(() if stored else estimand_checks.composite_limits(p)),  # a stored trial loads; its analysis refuses it
        *(() if stored else estimand_checks.follow_up(p)),  # a stored trial keeps the follow-up it was analysed with
        *_analysis_plan(p, stored=stored),
        *_deidentification(p, stored=stored),
        *(() if stored else _ipd_needs_deidentification(p)),  # a stored trial keeps loading as it was
        *demographics_checks(p),
        *(() if stored else registered_ages(p)),  # a stored trial keeps loading; its registry record is as it was
        *_randomization(p),
        *_sample_size(p),
        *_safety(p),
        *_blinded_groups(p),
        *_versions(p),
        *(() if stored else _consent_languages(p)),  # a stored trial keeps loading; its consents refused as before
        *translation_checks.translations(p),
    ]


def _vital_status(p: Protocol) -> Iterator[Found]:
    forms = {f.id: f for f in p.forms}
    for i, v in enumerate(p.safety.vital_status):
        path = f"safety.vital_status[{i}]"
        found = list(field_ref(forms, v.field, f"{path}.field", {"choice", "boolean"}))
        found += list(field_ref(forms, v.date_field, f"{path}.date_field", {"date"}))
        yield from found
        if found:
            continue
        if v.field.partition(".")[0] != v.date_field.partition(".")[0]:
            yield f"{path}.date_field", "the date of death is on the same form as the field that records the death"
        form_id, _, field_id = v.field.partition(".")
        f = forms[form_id].field(field_id)
        codes = ["True", "False"] if f.type.value == "boolean" else [c.code for c in f.choices]
        for j, value in enumerate(v.died_values):
            if value not in codes:
                yield f"{path}.died_values[{j}]", f"{value!r} is not a value of {v.field} ({', '.join(codes)})"


def _safety(p: Protocol) -> Iterator[Found]:
    yield from _vital_status(p)
    record = p.safety.death_record
    if record is None:
        return
    path = "safety.death_record"
    visits = {v.id: v for v in p.visits}
    forms = {f.id: f for f in p.forms}
    if record.visit not in visits:
        yield f"{path}.visit", unknown(record.visit, visits, "visit")
    elif record.form not in visits[record.visit].forms:
        yield f"{path}.form", f"visit {record.visit!r} does not collect form {record.form!r}"
    if record.form not in forms:
        yield f"{path}.form", unknown(record.form, forms, "form")
        return
    fields = {f.id: f for f in forms[record.form].fields}
    for key in ("status_field", "date_field", "cause_field"):
        name = getattr(record, key)
        if name is not None and name not in fields:
            yield f"{path}.{key}", f"form {record.form!r} has no field {name!r}"
    dated = fields.get(record.date_field)
    if dated is not None and dated.type.value != "date":
        # A date-time would be cut to its UTC day, not the site's: the day of death would move near midnight.
        where = f"{record.form}.{record.date_field}"
        yield f"{path}.date_field", f"{where} is {a_kind(dated.type.value)} field; the date of death is a date field"
    status = fields.get(record.status_field)
    if status is not None:
        codes = [c.code for c in status.choices]
        named = [("status_value", record.status_value), *(("alive_values", v) for v in record.alive_values)]
        for key, value in named:
            if value not in codes:
                where = f"{record.form}.{record.status_field}"
                yield f"{path}.{key}", f"{value!r} is not a choice of {where} ({', '.join(codes)})"


def _duplicates(p: Protocol) -> Iterator[Found]:
    yield from dupes("sites", (s.code for s in p.sites), "site code")
    yield from dupes("arms", (a.code for a in p.arms), "arm code")
    yield from dupes("arms", (a.name for a in p.arms), "arm name")
    yield from dupes("eligibility.screening_fields", (f.id for f in p.eligibility.screening_fields), "field")
    criteria = [c.id for c in (*p.eligibility.inclusion, *p.eligibility.exclusion)]
    yield from dupes("eligibility", criteria, "criterion")
    yield from dupes("visits", (v.id for v in p.visits), "visit")
    yield from dupes("forms", (f.id for f in p.forms), "form")
    for i, form in enumerate(p.forms):
        yield from dupes(f"forms[{i}].fields", (f.id for f in form.fields), "field")
    yield from dupes("outcomes", (o.id for o in p.outcomes), "outcome")
    yield from dupes("analysis_sets", (a.id for a in p.analysis_sets), "analysis set")
    yield from dupes("consent_versions", (c.version for c in p.consent_versions), "consent version")


def _assent(p: Protocol) -> Iterator[Found]:
    assent = p.eligibility.assent
    if assent is None:
        return
    path = "eligibility.assent.age_field"
    field = next((f for f in p.eligibility.screening_fields if f.id == assent.age_field), None)
    if field is None:
        yield path, f"{assent.age_field!r} is not a screening field; the assent rule needs the age at screening"
    elif field.type not in {"integer", "decimal"}:
        yield path, f"{assent.age_field} is {a_kind(field.type)} field; the age at screening is a number"
    elif field.unit not in {"years", "months"}:
        said = "has no unit" if field.unit is None else f"has the unit {field.unit!r}"
        yield path, (f"{assent.age_field} {said}; the assent rule reads an age in years or months "
                     "(the field's unit: years or months)")  # fmt: skip
    dupe = [v for v in assent.form_versions if assent.form_versions.count(v) > 1]
    if dupe:
        yield "eligibility.assent.form_versions", f"assent form version {dupe[0]!r} is listed twice"


def _consent_age(p: Protocol) -> Iterator[Found]:
    """With assent declared, the age from which a participant consents for themselves is declared and above the age
    assent is sought from: below it a participant's own consent is refused, so it is never guessed. A stored text
    keeps loading as its engine read it (the consent service then applies no age of consent)."""
    assent = p.eligibility.assent
    if assent is None:
        return
    if assent.consent_age is None:
        yield "eligibility.assent.consent_age", (
            "declare the age, in the assent's unit, from which a participant consents for themselves (e.g. 18): "
            "below it only a representative consents, with the participant's assent"
        )
    elif assent.consent_age <= assent.from_age:
        yield "eligibility.assent.consent_age", (
            f"{assent.consent_age:g} {assent.unit} is not above from_age ({assent.from_age:g}): assent is sought "
            "from a participant too young to consent for themselves"
        )


def _eligibility(p: Protocol) -> Iterator[Found]:
    yield from _assent(p)
    known = {f.id for f in p.eligibility.screening_fields}
    for i, field in enumerate(p.eligibility.screening_fields):
        if field.derived is not None:
            for role, source in field.derived.inputs.items():
                if source not in known:
                    yield (
                        f"eligibility.screening_fields[{i}].derived.inputs.{role}",
                        unknown(source, known, "screening field"),
                    )
        if field.applies_if is not None:
            for name in sorted(field.applies_if.fields() - known):
                yield f"eligibility.screening_fields[{i}].applies_if", unknown(name, known, "screening field")
    for kind in ("inclusion", "exclusion"):
        for i, criterion in enumerate(getattr(p.eligibility, kind)):
            for name in sorted(criterion.rule.fields() - known):
                yield f"eligibility.{kind}[{i}].rule", unknown(name, known, "screening field")


def _forms(p: Protocol) -> Iterator[Found]:
    yield from derivation_checks.check(p)
    yield from visit_inputs(p)
    yield from _not_before(p)
    if "participant" in {f.id for f in p.forms}:
        i = [f.id for f in p.forms].index("participant")
        yield f"forms[{i}].id", "'participant' names the participant's events in rules (participant.consented_at)"
    yield from _redcap_names(p)


def _redcap_names(p: Protocol) -> Iterator[Found]:
    """Each field's REDCap variable name (its redcap_name, or <form>_<field>) is one variable of the project:
    never the record id, a form's status column or another field's name (the REDCap-compatible API and
    to-redcap would merge two fields into one column)."""
    seen: dict[str, str] = {}
    for i, form in enumerate(p.forms):
        for j, f in enumerate(form.fields):
            name, at = f.redcap_name or f"{form.id}_{f.id}", f"{form.id}.{f.id}"
            path = f"forms[{i}].fields[{j}]" + (".redcap_name" if f.redcap_name else ".id")
            if name == "participant_id" or name.endswith("_complete"):
                yield path, f"REDCap name {name} is the record id or a form's status column in REDCap; set redcap_name"
            elif name in seen:
                yield path, f"REDCap name {name} is also {seen[name]}'s; set redcap_name to tell them apart"
            seen.setdefault(name, at)


#: The participant's events a not_before may name (trialwright.domain.coherence.EVENTS).
_EVENTS = ("consented_at", "enrolled_at", "randomized_at")
#: The field types Table 1 describes (numbers by mean, SD, median and quartiles; a yes/no or a choice by counts per
#: answer): a date, a time, a text or a multiple choice has no such row, so ``baseline_table`` refuses it (it was
#: shown as "yes: 0 (0%)").
TABLE_ONE_KINDS = {"integer", "decimal", "boolean", "choice"}


def _not_before(p: Protocol) -> Iterator[Found]:
    """Each not_before reference names a participant event, or a date or date-time field of the protocol."""
    forms = {f.id: f for f in p.forms}
    for i, form in enumerate(p.forms):
        for j, f in enumerate(form.fields):
            for k, ref in enumerate(f.not_before):
                path = f"forms[{i}].fields[{j}].not_before[{k}]"
                where, dot, name = ref.partition(".")
                if where == "participant" and dot:
                    if name not in _EVENTS:
                        yield path, unknown(name, _EVENTS, "participant event")
                    continue
                target = ref if dot else f"{form.id}.{ref}"
                if target == f"{form.id}.{f.id}":
                    yield path, "a field cannot be not_before itself"
                    continue
                yield from field_ref(forms, target, path, {"date", "datetime"})


def _data_checks(p: Protocol) -> Iterator[Found]:
    forms = {f.id: f for f in p.forms}
    numeric = {"integer", "decimal"}
    for i, check in enumerate(p.data_checks):
        refs = [("left", r) for r in check.left] + [("right", r) for r in check.right]
        if check.field:
            refs.append(("field", check.field))
        for key, ref in refs:
            form_id, dot, field_id = ref.partition(".")
            path = f"data_checks[{i}].{key}"
            if not dot or form_id not in forms:
                yield path, f"{ref!r}: write form.field with a form of the protocol ({', '.join(forms)})"
                continue
            fields = {f.id: f for f in forms[form_id].fields}
            if field_id not in fields:
                yield path, f"form {form_id!r} has no field {field_id!r}"
                continue
            kind = fields[field_id].type.value
            if key == "field" and kind not in {"date", "datetime"}:
                yield path, f"an in_window check needs a date or datetime field, not {kind}"
            if key != "field" and kind not in numeric | {"date", "datetime"}:
                yield path, f"a compare check needs numbers or dates, not {kind}"
    yield from dupes("data_checks", (c.id for c in p.data_checks), "check")


def _visits(p: Protocol) -> Iterator[Found]:
    forms = {f.id for f in p.forms}
    dated = {e.value for e in ReferenceEvent} | {
        v.reference for v in p.visits if v.kind == "event" and v.day == 0 and v.reference not in set(ReferenceEvent)
    }
    for i, visit in enumerate(p.visits):
        for j, form_id in enumerate(visit.forms):
            if form_id not in forms:
                yield f"visits[{i}].forms[{j}]", unknown(form_id, forms, "form")
        if visit.reference not in dated:
            yield (
                f"visits[{i}].reference",
                (
                    f"nothing dates {visit.reference!r}: a visit counts from screening, enrolment or randomization, or "
                    f"from an event an event visit records (kind: event, day: 0, reference: {visit.reference})"
                ),
            )
    declared = [v.id for v in p.visits if v.epoch is not None]
    if declared and len(declared) != len(p.visits):
        i, missing = next((i, v) for i, v in enumerate(p.visits) if v.epoch is None)
        yield (
            f"visits[{i}].epoch",
            (
                f"visit {missing.id!r} declares no epoch while {', '.join(map(repr, declared))} do: every visit "
                "declares its epoch, or none does (SDTM EPOCH is never guessed)"
            ),
        )
    scheduled = [(i, v) for i, v in enumerate(p.visits) if v.kind == "scheduled"]
    for n, (_, a) in enumerate(scheduled):
        for j, b in scheduled[n + 1 :]:
            if a.reference == b.reference and a.earliest <= b.latest and b.earliest <= a.latest:
                yield (
                    f"visits[{j}].window",
                    (
                        f"window of visit {b.id!r} (days {b.earliest} to {b.latest} from {b.reference}) "
                        f"overlaps visit {a.id!r} (days {a.earliest} to {a.latest})"
                    ),
                )


def _analysis_plan(p: Protocol, *, stored: bool = False) -> Iterator[Found]:
    plan = p.analysis_plan
    if plan is None:
        return
    visits = {v.id: v for v in p.visits}
    forms = {f.id: f for f in p.forms}
    if plan.baseline_visit not in visits:
        yield "analysis_plan.baseline_visit", f"no visit {plan.baseline_visit!r} (known: {', '.join(visits)})"
    for i, ref in enumerate(plan.baseline_table):
        # form.field (its value at the baseline visit), or screening.field (the screening record's), as demographics
        path = f"analysis_plan.baseline_table[{i}]"
        # a stored text keeps loading: Table 1 then says such a row is not described (analysis.engine)
        found = list(source_ref(p, ref, path, None if stored else TABLE_ONE_KINDS))
        yield from found
        form_id = ref.partition(".")[0]
        on_form = form_id != SCREENING
        if not found and on_form and plan.baseline_visit in visits and form_id not in visits[plan.baseline_visit].forms:
            yield path, f"visit {plan.baseline_visit!r} does not collect form {form_id!r}"
    t = plan.treatment
    if t is not None:
        if t.visit not in visits:
            yield "analysis_plan.treatment.visit", f"no visit {t.visit!r} (known: {', '.join(visits)})"
        elif t.form not in visits[t.visit].forms:
            yield "analysis_plan.treatment.form", f"visit {t.visit!r} does not collect form {t.form!r}"
        elif t.form in forms:
            yield from field_ref(
                forms,
                f"{t.form}.{t.given_field}",
                "analysis_plan.treatment.given_field",
                {"boolean", "date", "datetime"},
            )
            if t.code_field is not None:
                yield from field_ref(forms, f"{t.form}.{t.code_field}", "analysis_plan.treatment.code_field")
            if t.end_field is not None:
                yield from field_ref(
                    forms, f"{t.form}.{t.end_field}", "analysis_plan.treatment.end_field", {"datetime"}
                )
            if t.dose_field is not None:
                found = list(field_ref(
                    forms, f"{t.form}.{t.dose_field}", "analysis_plan.treatment.dose_field", {"integer", "decimal"}
                ))  # fmt: skip
                yield from found
                dose = forms[t.form].field(t.dose_field) if not found else None
                if dose is not None and not dose.unit:
                    yield "analysis_plan.treatment.dose_field", f"{t.form}.{t.dose_field} declares no unit (EXDOSU)"
    for i, ref in enumerate(plan.per_protocol.exclude_when):
        yield from field_ref(forms, ref, f"analysis_plan.per_protocol.exclude_when[{i}]", {"boolean"})
    for i, visit_id in enumerate(plan.per_protocol.visits_in_window):
        if visit_id not in visits:
            yield f"analysis_plan.per_protocol.visits_in_window[{i}]", f"no visit {visit_id!r}"


def _ipd_needs_deidentification(p: Protocol) -> Iterator[Found]:
    """A sharing plan that promises IPD with no de-identification rules is a promise no IPD can keep: the package is
    refused until the rules exist (``services.sharing``), so ``protocol check`` says so first."""
    if p.trial.sharing.ipd.shared and p.deidentification is None:
        yield "trial.sharing.ipd.shared", (
            "the sharing plan shares individual participant data and the protocol declares no deidentification "
            "section, so no IPD could ever be issued: add deidentification (identifiers, quasi_identifiers, k) or "
            "set shared: false"
        )


def _deidentification(p: Protocol, *, stored: bool = False) -> Iterator[Found]:
    d = p.deidentification
    if d is None:
        return
    forms = {f.id: f for f in p.forms}
    for key in ("identifiers", "keep_text"):
        for i, ref in enumerate(getattr(d, key)):
            yield from field_ref(forms, ref, f"deidentification.{key}[{i}]")
    if d.age_field is None and not stored:
        for key in ("age_band_width", "age_top"):
            if key in d.model_fields_set:  # stated, yet nothing would be banded: never silently unused
                yield f"deidentification.{key}", (
                    f"{key} bands the age named by deidentification.age_field, and none is named: name it (one of "
                    "demographics.age's fields) or remove this key"
                )
    if not d.quasi_identifiers and not stored:
        yield "deidentification.quasi_identifiers", (
            "none declared: the IPD is issued only when its k-anonymity check passes, and the check groups the "
            "participants by these values (form.field, screening.field, age, site); name the ones that could single a "
            "person out"
        )
    age_sources = p.demographics.age.sources if p.demographics and p.demographics.age else []
    for j, ref in enumerate(age_sources):
        # a form's age field goes into the package unless removed: shared exactly, it would undo the bands
        if not stored and ref.partition(".")[0] != SCREENING and ref != d.age_field and ref not in d.identifiers:
            yield "deidentification.age_field" if d.age_field else "deidentification", (
                f"{ref} holds the age too (demographics.age.from[{j}]) and would be shared as recorded, not banded: "
                "list it in identifiers (removed) or name it as age_field"
            )
    if d.age_field is not None:
        # written as demographics.age's sources are: form.field, or screening.field (the screening record's value)
        yield from source_ref(p, d.age_field, "deidentification.age_field", {"integer", "decimal"})
        age = p.demographics.age if p.demographics else None
        # a stored text reads as its engine read it (its trial keeps loading); its IPD is refused (exports.ipd.age_unit)
        if not stored and age is not None and age.unit != "years":
            for key in ("age_band_width", "age_top"):
                if key not in d.model_fields_set:  # 10 and 89 are years' defaults: never taken for months or days
                    yield f"deidentification.{key}", (
                        f"the age is in {age.unit} (demographics.age.unit): state {key} in {age.unit}; its default is "
                        "in years"
                    )
        if not stored and (age is None or d.age_field not in age.sources):
            yield "deidentification.age_field", (
                f"{d.age_field} is not one of demographics.age's fields (from), which declare the age's unit: name "
                "one of them (the bands, age_band_width and age_top, are in that unit)"
            )
    for i, ref in enumerate(d.quasi_identifiers):
        path = f"deidentification.quasi_identifiers[{i}]"
        if ref in {"site", "age"}:
            if ref == "age" and d.age_field is None:
                yield path, "age needs deidentification.age_field"
            continue
        # form.field, or screening.field (the screening record's value), as demographics and Table 1 name one
        found = list(source_ref(p, ref, path))
        yield from found
        # the package keeps a screening quasi-identifier (nothing else of the screening record): an age kept exactly
        # would undo the bands
        if not found and ref.partition(".")[0] == SCREENING and ref in age_sources and ref != d.age_field:
            yield path, (
                f"{ref} holds the age (demographics.age.from[{age_sources.index(ref)}]) and a quasi-identifier is "
                "shared as recorded, not banded: name it as age_field, or write age (the banded age_field)"
            )


#: The longest stratum key the store holds (allocation_entries.stratum is VARCHAR(128)).
STRATUM_KEY_LIMIT = 128


def _factor(p: Protocol, path: str, factor: StratificationFactor, minimization: bool) -> Iterator[Found]:
    """One stratification factor: a site factor, or a screening field every participant has, cut into levels."""
    if "weight" in factor.model_fields_set and not minimization:
        yield f"{path}.weight", "a weight only applies to minimization's factors; remove it"
    if factor.id == "site" and factor.field is None:
        for key in ("levels", "cut_points"):
            if getattr(factor, key):
                yield f"{path}.{key}", "the site factor's levels are the protocol's sites; remove it"
        return
    screening = {f.id: f for f in p.eligibility.screening_fields}
    if factor.field not in screening:
        yield f"{path}.field", unknown(str(factor.field), screening, "screening field")
        return
    source = screening[factor.field]
    if source.applies_if is not None:
        yield (
            f"{path}.field",
            f"field {source.id!r} is asked only when its applies_if holds, so some participants would have no level",
        )
    if source.type == "date":
        yield f"{path}.field", f"a date field ({source.id!r}) cannot form strata; use a numeric or choice field"
        return
    if source.type in {"integer", "decimal"}:
        if not factor.cut_points:
            yield path, f"numeric field {source.id!r} needs cut_points to form levels"
        if factor.levels:
            yield f"{path}.levels", f"numeric field {source.id!r} is cut into levels by cut_points; remove levels"
        return
    if factor.cut_points:
        yield path, f"cut_points only apply to numeric fields, not {source.type}"
    if not factor.levels:
        yield path, f"field {source.id!r} needs levels (the codes it may take)"
        return
    allowed = ["true", "false"] if source.type == "boolean" else list(source.codes)
    if any(level not in allowed for level in factor.levels):
        yield f"{path}.levels", f"must be among {allowed}"
    left_out = [code for code in allowed if code not in factor.levels]
    if left_out:
        yield (
            f"{path}.levels",
            f"leaves out {', '.join(map(repr, left_out))} of field {source.id!r}: a participant with it could not be "
            "randomized; list every value",
        )
    yield from dupes(f"{path}.levels", factor.levels, "level")


def _longest_level(p: Protocol, factor: StratificationFactor) -> str:
    site = factor.id == "site" and factor.field is None
    return max(p.site_codes if site else factor.levels or factor.bands(), key=len, default="")


def _randomization(p: Protocol) -> Iterator[Found]:
    r = p.randomization
    if isinstance(r, SimpleRandomization):
        if r.list_length < p.sample_size.target:
            yield (
                "randomization.list_length",
                f"{r.list_length} entries would not cover the sample size target {p.sample_size.target}",
            )
        return
    blocks = isinstance(r, StratifiedPermutedBlocks)
    factors = r.stratify_by if isinstance(r, StratifiedPermutedBlocks) else r.factors
    key = "stratify_by" if blocks else "factors"
    for i, factor in enumerate(factors):
        yield from _factor(p, f"randomization.{key}[{i}]", factor, not blocks)
    yield from dupes(f"randomization.{key}", (f.id for f in factors), "factor")
    for i, factor in enumerate(factors):
        names = p.site_codes if factor.id == "site" and factor.field is None else factor.levels
        for name in names:
            if "|" in name:
                yield f"randomization.{key}[{i}]", f"level {name!r} has a '|', which separates factors in a stratum"
    longest = "|".join(f"{f.id}={_longest_level(p, f)}" for f in factors)
    if len(longest) > STRATUM_KEY_LIMIT:
        yield (
            f"randomization.{key}",
            f"the longest stratum name ({longest}) has {len(longest)} characters, more than the "
            f"{STRATUM_KEY_LIMIT} stored; use shorter factor ids or level codes",
        )
    if isinstance(r, StratifiedPermutedBlocks):
        for i, size in enumerate(r.block_sizes):
            if size % p.ratio_sum:
                yield (
                    f"randomization.block_sizes[{i}]",
                    (f"block size {size} is not a multiple of the ratio sum {p.ratio_sum}"),
                )


def _blinded_groups(p: Protocol) -> Iterator[Found]:
    """Unnamed groups hide the arms' names, not their sizes: with unequal ratios the sizes name the arms."""
    if p.safety.blinded_tables is not BlindedTables.UNNAMED_GROUPS or len({a.ratio for a in p.arms}) == 1:
        return
    ratio = ":".join(str(a.ratio) for a in p.arms)
    yield (
        "safety.blinded_tables",
        f"unnamed groups would tell the blinded team which arm is which by the groups' sizes, because the allocation "
        f"ratio is {ratio}; use blinded_tables: pooled",
    )


def _sample_size(p: Protocol) -> Iterator[Found]:
    per_arm = p.sample_size.per_arm
    if not per_arm:
        return
    arms = {a.code: a for a in p.arms}
    for code in per_arm:
        if code not in arms:
            yield f"sample_size.per_arm.{code}", unknown(code, arms, "arm")
    if set(per_arm) != set(arms):
        return
    total = sum(per_arm.values())
    if total != p.sample_size.target:
        yield "sample_size.per_arm", f"per-arm targets add up to {total}, not the target {p.sample_size.target}"
    per_unit = {per_arm[c] / arms[c].ratio for c in arms}
    if len(per_unit) > 1:
        ratio = ":".join(str(arms[c].ratio) for c in arms)
        yield "sample_size.per_arm", f"per-arm targets do not follow the allocation ratio {ratio}"


def _versions(p: Protocol) -> Iterator[Found]:
    numbers = [a.number for a in p.amendments]
    if numbers != list(range(1, len(numbers) + 1)):
        yield "amendments", "amendments must be numbered 1, 2, 3, ... in order"
    if p.amendments and p.amendments[-1].version != p.version.number:
        yield (
            "version.number",
            (
                f"the last amendment produced version {p.amendments[-1].version!r}, "
                f"but the file says {p.version.number!r}"
            ),
        )
    dates = [c.effective_from for c in p.consent_versions]
    if dates != sorted(dates):
        yield "consent_versions", "consent versions must be listed oldest first"
    for earlier, later in zip(p.consent_versions, p.consent_versions[1:], strict=False):
        if earlier.effective_from == later.effective_from:  # which one is in use that day would be a guess
            yield (
                "consent_versions",
                f"consent versions {earlier.version} and {later.version} are both effective from "
                f"{later.effective_from.isoformat()}: one version is in use on a day",
            )
    if p.trial.dates.expected_recruitment_end < p.trial.dates.expected_recruitment_start:
        yield "trial.dates.expected_recruitment_end", "is before the expected recruitment start"


def _consent_languages(p: Protocol) -> Iterator[Found]:
    """A later consent form version exists in every language of the one before it: a consent does not record its
    language, so from its ``effective_from`` the later version supersedes the earlier one for every patient
    (``domain.consent.form_version_problem``), and a patient of a language it dropped would have no form in use."""
    for i, (earlier, later) in enumerate(zip(p.consent_versions, p.consent_versions[1:], strict=False), start=1):
        dropped = [lang for lang in earlier.languages if lang not in later.languages]
        if dropped:
            said = ", ".join(dropped)
            yield (
                f"consent_versions[{i}].languages",
                f"consent version {later.version} drops {said} of {earlier.version}: a later version supersedes "
                f"the earlier one in every language (a consent does not record its language), so from "
                f"{later.effective_from.isoformat()} no {said} form would be in use; list {said} in "
                f"{later.version}'s languages (the form translated)",
            )
