"""The simulation file's settings checked whole, against their rules and the protocol, where the file is loaded
(``simulation.check_plan``, ``simulation.simulate``) and before any database is created or written: a setting
that would crash the run (a ``grades`` that is not ``[lowest, highest]``, a distribution without its two numbers),
do silently nothing (a misspelt key at any level, a distribution for a derived field, a form to sign that the
protocol does not have, a distribution for a date field) or draw what a rule must refuse (a probability above 1,
grades off the CTCAE scale, a recruitment before the consent form in use, a trial reaching past the sites' today) is
refused naming the file, the setting's path and the rule (``tests/spec/simulation/test_simulation_file.py``).

Each refusal is a ``SimulationError`` (``ValueError``): ``simulation file: PATH: KEY.PATH: the rule``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from trialwright.domain.eligibility import Decision, ScreeningValueError, evaluate, validate_values
from trialwright.domain.safety import CTCAE_GRADES
from trialwright.protocol import Protocol
from trialwright.protocol.estimands import Strategy, VariableKind
from trialwright.protocol.forms import FieldType
from trialwright.services import clock

__all__ = ["ACTION_TAKEN_KEYS", "DISTRIBUTIONS", "admission_dates", "check_settings", "competing_dates"]

#: The distributions a value is drawn from, and the settings that shape a drawn number.
DISTRIBUTIONS = ("normal", "lognormal", "uniform", "choice", "bernoulli")
_SHAPES = ("round", "clip", "follow_up")
#: The settings each part of the file knows (the top level and ``adverse_events`` are checked by ``load_plan``).
_KNOWN = {
    "recruitment": ("start", "days", "sites"),
    "screening": ("eligible", "vary", "failures", "declined"),
    "consent": ("representative",),
    "lifecycle": ("complete", "verify", "sign", "sign_forms"),
    "visits": ("missed", "out_of_window"),
    "death": ("rate", "term", "cause"),
}
_EXPECTED_KEYS = ("rate", "term", "day", "grades")
#: The events ``adverse_events.action_taken`` gives shares for: serious ones (a fatal one among them) and the others.
ACTION_TAKEN_KEYS = ("non_serious", "serious")
#: What the simulator stores in a date or date-time field (a distribution is never drawn there) and what it can draw.
_DATED = {
    FieldType.DATE: (
        "the visit's date",
        "{years_before: FIELD} (a date that many years before the visit) or "
        "{from_screening: FIELD} (the screening's value)",
    ),
    FieldType.DATETIME: ("the visit's moment at the site", "{from_screening: FIELD} (the screening's value)"),
}
#: Days after the treatment day an adverse event other than the expected ones can start (``simulation._people``).
_OTHER_EVENT_DAYS = 7
#: The site's clock time on the day of an adverse event at which the simulated site becomes aware of it (``simulate``).
AWARE_AT = dt.time(15, 0)
#: The weekly signing session is at most this many days after the visit of the forms it signs (``_next_signing``).
_SIGNING_DAYS = 7
_FAILURE_KEYS = ("p", "set")


def admission_dates(protocol: Protocol) -> frozenset[str]:
    """The date fields of the death record's form the simulator writes as the admission date (the stay's end minus
    the length of stay, a day before enrolment): those the protocol lets precede enrolment (``may_precede_enrolment``,
    as an admission date does). Any other date of that form is drawn as ``fields`` says, else left blank."""
    record = protocol.safety.death_record
    if record is None:
        return frozenset()
    return frozenset(f.id for f in protocol.form(record.form).fields if f.type is FieldType.DATE
                     and f.id != record.date_field and f.may_precede_enrolment)  # fmt: skip


def competing_dates(protocol: Protocol) -> list[tuple[str, str, str, str]]:
    """``(outcome, form, field, at)`` of each time to event a form's date records at visit ``at`` with death
    competing: a simulated death saves that form at ``at`` on the day of death with the date blank, as
    docs/analysis.md says a competing death is recorded."""
    out = []
    for o in protocol.outcomes:
        v = o.estimand.variable
        if (v.kind is VariableKind.TIME_TO_EVENT and v.fields and v.at is not None
                and o.estimand.strategy("death") is Strategy.COMPETING):  # fmt: skip
            form, _, name = v.fields[0].partition(".")
            out.append((o.id, form, name, v.at))
    return out


class _Refuse:
    """Builds the file's refusals: ``simulation file: PATH: KEY: rule``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, key: str, rule: str) -> Exception:
        from trialwright.services.simulation import SimulationError  # the error the file's refusals have always been

        return SimulationError(f"simulation file: {self.path}: {key}: {rule}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _mapping(refuse: _Refuse, key: str, value: Any, known: tuple[str, ...] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise refuse(key, f"must be a mapping, not {value!r}")
    if known is not None and (unknown := sorted(str(k) for k in value if k not in known)):
        raise refuse(key, f"unknown key {', '.join(unknown)} (known: {', '.join(known)})")
    return value


def _probability(refuse: _Refuse, key: str, value: Any) -> None:
    if not _number(value) or not 0 <= value <= 1:
        raise refuse(key, f"{value!r} is not a probability (a number from 0 to 1)")


def _pair(refuse: _Refuse, key: str, value: Any, names: str, *, ordered: bool) -> tuple[float, float]:
    """``[a, b]``: exactly two numbers (with ``ordered``, a <= b)."""
    if not isinstance(value, list) or len(value) != 2 or not all(_number(v) for v in value):
        raise refuse(key, f"{value!r} must be two numbers, [{names}]")
    if ordered and value[0] > value[1]:
        raise refuse(key, f"{value!r}: [{names}] with the first no greater than the second")
    return float(value[0]), float(value[1])


def check_distribution(refuse: _Refuse, key: str, spec: Any, *, extra: tuple[str, ...] = ()) -> None:
    """One distribution with its shaping settings (``extra``: the keys drawing it otherwise, checked by the caller)."""
    spec = _mapping(refuse, key, spec, DISTRIBUTIONS + _SHAPES + extra)
    named = [d for d in DISTRIBUTIONS if d in spec]
    if len(named) != 1 and not (not named and set(extra) & set(spec)):
        raise refuse(key, f"names {' and '.join(named) or 'none'} of {', '.join(DISTRIBUTIONS)}: exactly one is drawn")
    kind = named[0] if named else None
    if kind == "normal":
        if _pair(refuse, f"{key}.normal", spec["normal"], "mean, sd", ordered=False)[1] < 0:
            raise refuse(f"{key}.normal", f"{spec['normal']!r}: the sd is negative")
    elif kind == "lognormal":
        if _pair(refuse, f"{key}.lognormal", spec["lognormal"], "mu, sigma", ordered=False)[1] < 0:
            raise refuse(f"{key}.lognormal", f"{spec['lognormal']!r}: sigma is negative")
    elif kind == "uniform":
        _pair(refuse, f"{key}.uniform", spec["uniform"], "low, high", ordered=True)
    elif kind == "choice":
        weights = _mapping(refuse, f"{key}.choice", spec["choice"])
        if not weights or not all(_number(w) and w >= 0 for w in weights.values()) or not sum(weights.values()) > 0:
            raise refuse(f"{key}.choice", f"{dict(weights)!r} must give each code a weight >= 0, not all 0")
    elif kind == "bernoulli":
        _probability(refuse, f"{key}.bernoulli", spec["bernoulli"])
    if "clip" in spec:
        _pair(refuse, f"{key}.clip", spec["clip"], "low, high", ordered=True)
    if "round" in spec and (not isinstance(spec["round"], int) or isinstance(spec["round"], bool)):
        raise refuse(f"{key}.round", f"{spec['round']!r} is not a whole number of decimals")
    if "follow_up" in spec and (not _number(spec["follow_up"]) or not -1 <= spec["follow_up"] <= 1):
        raise refuse(f"{key}.follow_up", f"{spec['follow_up']!r} is not a correlation (a number from -1 to 1)")


def _recruitment(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> None:
    recruitment = _mapping(refuse, "recruitment", plan["recruitment"], _KNOWN["recruitment"])
    start = recruitment.get("start")
    try:
        first = dt.date.fromisoformat(str(start))
    except ValueError:
        raise refuse("recruitment.start", f"{start!r} is not a date (YYYY-MM-DD); it is required") from None
    # Every simulated consent is taken on the protocol's newest consent form version, which the consent service
    # refuses before its effective_from: a patient screened on the first day would be refused mid-way.
    newest = protocol.consent_versions[-1]
    if first < newest.effective_from:
        raise refuse("recruitment.start", f"{first.isoformat()} is before {newest.effective_from.isoformat()}, the "
                     f"first day of the protocol's consent form version {newest.version} (consent_versions: "
                     "its newest, on which every simulated patient consents); a consent before it is refused: "
                     f"start on or after {newest.effective_from.isoformat()}")  # fmt: skip
    days = recruitment.get("days", 180)
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise refuse("recruitment.days", f"{days!r} is not a whole number of days >= 1")
    sites = _mapping(refuse, "recruitment.sites", recruitment.get("sites") or {})
    for code, rate in sites.items():
        if not _number(rate) or rate < 0:
            raise refuse(f"recruitment.sites.{code}", f"{rate!r} is not a relative rate (a number >= 0)")
    if sites and not sum(sites.values()) > 0:
        raise refuse("recruitment.sites", "every rate is 0: no patient could be screened")


def _screening(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> None:
    screening = _mapping(refuse, "screening", plan["screening"], _KNOWN["screening"])
    known = {f.id for f in protocol.eligibility.screening_fields}
    _mapping(refuse, "screening.eligible", screening.get("eligible") or {})
    for name in screening.get("eligible") or {}:
        if name not in known:
            raise refuse(f"screening.eligible.{name}", "not a screening field of the protocol")
    for name, spec in _mapping(refuse, "screening.vary", screening.get("vary") or {}).items():
        if name not in known:
            raise refuse(f"screening.vary.{name}", "not a screening field of the protocol")
        check_distribution(refuse, f"screening.vary.{name}", spec)
    failures = screening.get("failures") or []
    if not isinstance(failures, list):
        raise refuse("screening.failures", "must be a list of {p, set}")
    for i, failure in enumerate(failures):
        failure = _mapping(refuse, f"screening.failures[{i}]", failure, _FAILURE_KEYS)
        if set(failure) != set(_FAILURE_KEYS):
            raise refuse(f"screening.failures[{i}]", "needs both p (a probability) and set (the values it sets)")
        _probability(refuse, f"screening.failures[{i}].p", failure["p"])
        for name in _mapping(refuse, f"screening.failures[{i}].set", failure["set"]):
            if name not in known:
                raise refuse(f"screening.failures[{i}].set.{name}", "not a screening field of the protocol")
    if "declined" in screening:
        _probability(refuse, "screening.declined", screening["declined"])
    _consent_field(refuse, screening, protocol)
    _complete_screening(refuse, screening, plan, protocol)


def _consent_field(refuse: _Refuse, screening: Mapping[str, Any], protocol: Protocol) -> None:
    """The consent field is set from the consent record, which the screening refuses to be typed in: a value for it
    anywhere in the file would stop the run at the first screening, after the database was made."""
    consent = protocol.eligibility.consent_field
    if consent is None:
        return
    places = [f"screening.{part}.{consent}" for part in ("eligible", "vary") if consent in (screening.get(part) or {})]
    places += [f"screening.failures[{i}].set.{consent}" for i, failure in enumerate(screening.get("failures") or [])
               if consent in failure["set"]]  # fmt: skip
    if places:
        raise refuse(places[0], "is set from the consent record, not typed in (eligibility.consent_field): the "
                     "simulator records each eligible patient's consent, which sets it; leave it out")  # fmt: skip


def _complete_screening(
    refuse: _Refuse, screening: Mapping[str, Any], plan: Mapping[str, Any], protocol: Protocol
) -> None:
    """A typical eligible patient's screening (``eligible``, each ``vary`` field, booleans not named false, dates
    the screening's day, as ``simulation._people`` fills it) is valid and complete with the consent: a value the
    screening refuses, or a field no setting gives that a criterion needs, would stop the run at the first
    screening."""
    start = dt.date.fromisoformat(str(plan["recruitment"]["start"]))
    vary = set(screening.get("vary") or {})
    consent = protocol.eligibility.consent_field
    values: dict[str, Any] = dict(screening.get("eligible") or {})
    for f in protocol.eligibility.screening_fields:
        if f.id in values or f.id in vary or f.id == consent:
            continue
        if f.type == "boolean":
            values[f.id] = False
        elif f.type == "date":
            values[f.id] = start.isoformat()
    try:
        typed = validate_values(protocol, values | ({consent: True} if consent else {}))
    except ScreeningValueError as exc:
        raise refuse("screening.eligible", f"the screening refuses these values: {exc}") from None
    decision = evaluate(protocol, typed)
    if decision.decision is Decision.INCOMPLETE and (unset := sorted(set(decision.missing) - vary - {consent})):
        raise refuse("screening.eligible", f"leaves {', '.join(unset)} unset (no setting gives a value), so every "
                     "screening would be incomplete: give each a value in screening.eligible or "
                     "screening.vary")  # fmt: skip


def _course(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> None:
    """Consent, withdrawal, the forms' lifecycle, visits, the length of stay and death."""
    for part in ("consent", "lifecycle", "visits"):
        settings = _mapping(refuse, part, plan.get(part) or {}, _KNOWN[part])
        for key, value in settings.items():
            if key != "sign_forms":
                _probability(refuse, f"{part}.{key}", value)
    if "withdrawal" in plan:
        _probability(refuse, "withdrawal", plan["withdrawal"])
    sign_forms = (plan.get("lifecycle") or {}).get("sign_forms", [])
    if not isinstance(sign_forms, list):
        raise refuse("lifecycle.sign_forms", f"{sign_forms!r} must be a list of the protocol's form ids")
    forms = {f.id for f in protocol.forms}
    for form_id in sign_forms:
        if form_id not in forms:
            raise refuse(f"lifecycle.sign_forms.{form_id}", "not a form of the protocol: nothing would be signed")
    if "length_of_stay" in plan:
        check_distribution(refuse, "length_of_stay", plan["length_of_stay"])
    death = plan.get("death", 0)
    if isinstance(death, Mapping):
        _mapping(refuse, "death", death, _KNOWN["death"])
        _probability(refuse, "death.rate", death.get("rate", 0))
    else:
        _probability(refuse, "death", death)


def _adverse_events(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> None:
    events = _mapping(refuse, "adverse_events", plan.get("adverse_events") or {})
    for key in ("rate", "serious", "related", "late"):
        if key in events:
            _probability(refuse, f"adverse_events.{key}", events[key])
    terms = events.get("terms")
    if terms is not None and (not isinstance(terms, list) or not terms or not all(isinstance(t, str) for t in terms)):
        raise refuse("adverse_events.terms", f"{terms!r} must be a list of one or more terms")
    _actions_taken(refuse, events, protocol)
    version = protocol.safety.ctcae_version
    for code, spec in _mapping(refuse, "adverse_events.expected", events.get("expected") or {}).items():
        key = f"adverse_events.expected.{code}"
        spec = _mapping(refuse, key, spec, _EXPECTED_KEYS)
        _probability(refuse, f"{key}.rate", spec.get("rate", 0))
        day = spec.get("day", 0)
        if not isinstance(day, int) or isinstance(day, bool) or day < 0:
            raise refuse(f"{key}.day", f"{day!r} is not a whole number of days >= 0 after the treatment")
        grades = spec.get("grades", [1, 2])
        if (not isinstance(grades, list) or len(grades) != 2
                or not all(isinstance(g, int) and not isinstance(g, bool) for g in grades)):  # fmt: skip
            raise refuse(f"{key}.grades", f"{grades!r} must be [lowest, highest]: two whole CTCAE grades, inclusive")
        low, high = grades
        if low > high:
            raise refuse(f"{key}.grades", f"{grades!r}: [lowest, highest] with lowest <= highest")
        # The simulated expected event recovers; grade 5 is death (the `death` setting draws fatal events).
        scale = [g for g in CTCAE_GRADES if g < 5]
        if low < scale[0] or high > scale[-1]:
            raise refuse(f"{key}.grades", f"{grades!r} leaves the CTCAE v{version} grades {scale[0]}-{scale[-1]} "
                         "of an event that recovers (grade 5 is death: see death)")  # fmt: skip


def _actions_taken(refuse: _Refuse, events: Mapping[str, Any], protocol: Protocol) -> None:
    """``adverse_events.action_taken: {non_serious: {CODE: weight}, serious: {CODE: weight}}``: each a weight >= 0 (not
    all 0) of answers the protocol's report declares (``safety.actions_taken``); a code it does not declare would
    have every report refused."""
    shares = _mapping(refuse, "adverse_events.action_taken", events.get("action_taken") or {}, ACTION_TAKEN_KEYS)
    declared = [a.code for a in protocol.safety.action_choices]
    for kind, weights in shares.items():
        key = f"adverse_events.action_taken.{kind}"
        weights = _mapping(refuse, key, weights)
        if unknown := sorted(str(code) for code in weights if code not in declared):
            raise refuse(key, f"{', '.join(unknown)}: not an action taken the protocol declares "
                         f"(safety.actions_taken: {', '.join(declared)})")  # fmt: skip
        if not weights or not all(_number(w) and w >= 0 for w in weights.values()) or not sum(weights.values()) > 0:
            raise refuse(key, f"{dict(weights)!r} must give each code a weight >= 0, not all 0")


def _fields(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> None:
    """Each ``fields`` distribution (the key being a form.field of the protocol is checked by ``field_specs``)."""
    screening = {f.id for f in protocol.eligibility.screening_fields}
    for key, spec in _mapping(refuse, "fields", plan["fields"] or {}).items():
        form_id, _, field_id = str(key).partition(".")
        try:
            f = protocol.form(form_id).field(field_id)
        except (KeyError, ValueError, LookupError):
            continue  # field_specs refuses it in its words
        if f.derived is not None:
            raise refuse(f"fields.{key}", "a derived field is computed from its formula at every save, never drawn")
        tied = _mapping(refuse, f"fields.{key}", spec)
        record = protocol.safety.death_record
        if record is not None and form_id == record.form and (
                field_id == record.date_field or field_id in admission_dates(protocol)):  # fmt: skip
            raise refuse(f"fields.{key}", f"the simulator writes this date of the death record's form "
                         f"({record.form}: the end of the stay, {record.date_field}, and the admission date, a date "
                         "that may precede enrolment) from the length of stay; a setting here would be "
                         "overwritten")  # fmt: skip
        if record is not None and form_id == record.form and field_id == record.status_field:
            if "choice" not in tied:
                raise refuse(f"fields.{key}", "the status of a participant who lives is drawn only as a choice "
                             f"among the death record's alive_values ({', '.join(record.alive_values)}), e.g. "
                             "{choice: {CODE: weight}}; without one it is the first of them")  # fmt: skip
            # The status of a participant who lives is drawn among the alive codes; a death is drawn by `death`.
            if wrong := sorted(str(c) for c in tied["choice"] if str(c) not in record.alive_values):
                raise refuse(f"fields.{key}.choice", f"{', '.join(wrong)}: the status of a participant who lives is "
                             f"drawn among the death record's alive_values ({', '.join(record.alive_values)}); a "
                             "death is drawn by the death setting")  # fmt: skip
        if f.type in _DATED and not {"from_screening", "years_before"} & set(tied):
            stored, drawn = _DATED[f.type]
            raise refuse(
                f"fields.{key}",
                f"a {f.type.value} field is not drawn from a distribution: the simulator "
                f"would store {stored} whatever it says; it draws for a {f.type.value} field only {drawn}",
            )
        for tie in ("from_screening", "years_before"):
            if tie in tied:
                if set(tied) != {tie}:
                    raise refuse(f"fields.{key}", f"{tie} copies from the screening: nothing else can go with it")
                if tied[tie] not in screening:
                    raise refuse(f"fields.{key}.{tie}", f"{tied[tie]!r} is not a screening field of the protocol")
        if "years_before" in tied and f.type is not FieldType.DATE:
            raise refuse(f"fields.{key}.years_before", f"a date that many years before the visit, but the field is "
                         f"{f.type.value}")  # fmt: skip
        if not {"from_screening", "years_before"} & set(tied):
            check_distribution(refuse, f"fields.{key}", tied)
        if "choice" in tied and f.type is FieldType.CHOICE:  # a code the field does not offer: every save refused
            offered = [c.code for c in f.choices]
            if unknown := sorted(str(code) for code in tied["choice"] if str(code) not in offered):
                raise refuse(f"fields.{key}.choice", f"{', '.join(unknown)}: not a choice of the field "
                             f"({', '.join(offered)}); a save would refuse every such value")  # fmt: skip


def _death_record_dates(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> None:
    """A required date of the death record's form other than the stay's end and the admission date (e.g. a healing
    date on an end-of-follow-up form) is filled only as ``fields`` says: the simulator knows no day for it (the
    visit's date would be a date the protocol never declared, counted as the event on the day the stay ends)."""
    record = protocol.safety.death_record
    if record is None:
        return
    specs = plan.get("fields") or {}
    for f in protocol.form(record.form).fields:
        if (f.type is FieldType.DATE and f.required and f.derived is None and f.id != record.date_field
                and f.id not in admission_dates(protocol)
                and not {"from_screening", "years_before"} & set(specs.get(f"{record.form}.{f.id}") or {})
        ):  # fmt: skip
            raise refuse(f"fields.{record.form}.{f.id}", f"a required date of the death record's form "
                         f"({record.form}), which the simulator cannot fill: it writes only the end of the stay "
                         f"({record.date_field}) and an admission date (a date field that may precede enrolment); "
                         "declare it {years_before: FIELD} or {from_screening: FIELD}, or make the field optional "
                         "(required: false), when it is then left blank")  # fmt: skip


def _competing_deaths(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> None:
    """A time to event with death competing counts a death as competing only when its form was saved at ``at`` on
    the day of death with the date blank (docs/analysis.md). The simulator holds a dying participant's last visit,
    the death record's, on the day of death; a death with ``at`` any other visit would have nothing recorded to say
    whether the event came first, and every such arm's comparison would be refused."""
    death = plan.get("death", 0)
    if not float(death.get("rate", 0) if isinstance(death, Mapping) else death) > 0:
        return
    record = protocol.safety.death_record
    for outcome, form, name, at in competing_dates(protocol):
        if record is None or at != record.visit:
            where = f"the death record's visit ({record.visit})" if record else "no visit (the protocol has no " \
                "safety.death_record)"  # fmt: skip
            raise refuse("death", f"outcome {outcome}: a time to event ({form}.{name} at {at}) with death competing "
                         f"counts a death as competing only when {form} is saved at {at} on the day of death with "
                         f"the date blank; the simulator holds a dying participant's last visit on the day of death "
                         f"at {where}, so each simulated death would be listed as not known to come before the "
                         f"event: record {name} at {record.visit if record else 'the death record visit'}, or "
                         "death: 0")  # fmt: skip


def _longest_stay(refuse: _Refuse, plan: Mapping[str, Any]) -> int:
    """The most days ``length_of_stay`` can draw (``simulation._people``: ``int`` of the shaped draw)."""
    spec = plan.get("length_of_stay", {"uniform": [5, 20], "round": 0})
    highs = [float(spec[k][1]) for k in ("clip", "uniform") if k in spec]
    if "choice" in spec:
        try:
            highs.append(max(float(code) for code, weight in spec["choice"].items() if weight > 0))
        except ValueError:
            raise refuse("length_of_stay.choice", "each code must be a number of days") from None
    if "bernoulli" in spec:
        highs.append(1.0)
    if not highs:
        raise refuse("length_of_stay", f"{dict(spec)!r} has no longest stay (a normal or lognormal without clip), so "
                     "the last date the trial could reach is unknown: give clip: [low, high]")  # fmt: skip
    high = min(highs)
    return int(round(high, int(spec["round"])) if "round" in spec else high)


def _submission_days(protocol: Protocol, late: bool) -> tuple[int, int]:
    """The most days after an SAE's day its report to the sponsor, and a SUSAR's initial report, can be sent
    (``simulation._submitted_at``): within its deadline, or with a late share above 0 up to as long again after it.
    The site becomes aware at ``AWARE_AT`` on the event's day; an hour more covers a summer-time change."""
    rules = protocol.safety.deadlines
    aware = AWARE_AT.hour + AWARE_AT.minute / 60
    hours = rules.sae_to_sponsor_hours * (2 if late else 1)
    sponsor = math.floor((aware + hours + 1) / 24)
    # A SUSAR is due by the end of calendar day n (day 0 = awareness); sent late, up to as long again after that.
    given = 24 - aware + 24 * rules.susar_other_days
    susar = math.floor((aware + 2 * given + 1) / 24) if late else rules.susar_other_days
    return sponsor, susar


def _submissions(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> list[tuple[int, str]]:
    """The last days the simulated site sends a due report on: an SAE's to the sponsor, a SUSAR's initial report.
    A simulated event other than the expected ones can be serious (and, related, a SUSAR: its criterion is
    hospitalisation, never fatal or life-threatening, so no complete report is due); a death is an SAE on the day
    its stay ends (reported as not related, never a SUSAR); an expected event is never serious."""
    events = plan.get("adverse_events") or {}
    late = float(events.get("late", 0)) > 0
    sponsor, susar = _submission_days(protocol, late)
    how = " (a late share above 0: sent up to as long again after the deadline)" if late else ""
    out = []
    if float(events.get("rate", 0)) > 0 and float(events.get("serious", 0)) > 0:
        out.append((_OTHER_EVENT_DAYS + sponsor, f"an SAE up to day {_OTHER_EVENT_DAYS} reported to the sponsor up "
                    f"to {sponsor} days later{how}"))  # fmt: skip
        if float(events.get("related", 0)) > 0:
            out.append((_OTHER_EVENT_DAYS + susar, f"a SUSAR up to day {_OTHER_EVENT_DAYS} reported up to {susar} "
                        f"days later{how}"))  # fmt: skip
    death = plan.get("death", 0)
    if float(death.get("rate", 0) if isinstance(death, Mapping) else death) > 0:
        stay = _longest_stay(refuse, plan)
        out.append((stay + sponsor, f"a death after a stay of up to {stay} days reported to the sponsor up to "
                    f"{sponsor} days later{how}"))  # fmt: skip
    return out


def _reach(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> tuple[int, str]:
    """The most days after a randomization day the simulator can write on (each step in ``simulation.simulate``),
    and what sets it, in words."""
    visits = plan.get("visits") or {}
    late = float(visits.get("out_of_window", 0)) > 0
    # Each visit on its day (a follow-up visit drawn out of its window: the day after the window closes).
    candidates = [(max(v.day, 0) + (v.window.after + 1 if late and v.day > 0 else 0),
                   f"visit {v.id} (day {v.day}" + (f", out of its window up to {v.window.after + 1} days late)"
                                                   if late and v.day > 0 else ")"))
                  for v in protocol.visits]  # fmt: skip
    death = plan.get("death", 0)
    dies = float(death.get("rate", 0) if isinstance(death, Mapping) else death) > 0
    if protocol.safety.death_record is not None or dies or float(visits.get("missed", 0)) > 0:
        # The stay's end (the death record's visit, a death) and a missed visit are held when the stay ends.
        stay = _longest_stay(refuse, plan)
        candidates.append((stay, f"a stay of up to {stay} days (length_of_stay)"))
    days, why = max(candidates, key=lambda c: c[0], default=(0, "the randomization"))
    lifecycle = plan.get("lifecycle") or {}
    if lifecycle.get("sign_forms") and all(float(lifecycle.get(k, 0)) > 0 for k in ("complete", "verify", "sign")):
        days, why = days + _SIGNING_DAYS, f"{why}, then the weekly signing session up to {_SIGNING_DAYS} days later"
    events = plan.get("adverse_events") or {}
    others = [(_OTHER_EVENT_DAYS, f"an adverse event up to day {_OTHER_EVENT_DAYS}")] if float(
        events.get("rate", 0)) > 0 else []  # fmt: skip
    others += _submissions(refuse, plan, protocol)
    expected = [(int(e.get("day", 0)), f"the expected event {code} on day {e.get('day', 0)}")
                for code, e in (events.get("expected") or {}).items() if float(e.get("rate", 0)) > 0]  # fmt: skip
    return max([(days, why), *others, *expected], key=lambda c: c[0])


def _before_today(refuse: _Refuse, plan: Mapping[str, Any], protocol: Protocol) -> None:
    """The whole simulated trial before the sites' today: the last screening day (``start + days - 1``, whatever
    the number of patients: each is screened on a day drawn over the window) plus the most days after it the
    simulator writes on. A step dated today could still be later than now, so the last date must be before today
    at every recruiting site."""
    recruitment = plan["recruitment"]
    start = dt.date.fromisoformat(str(recruitment["start"]))
    days = int(recruitment.get("days", 180))
    reach, why = _reach(refuse, plan, protocol)
    last = start + dt.timedelta(days=days - 1 + reach)
    rates = recruitment.get("sites") or dict.fromkeys(protocol.site_codes, 1)
    now = clock.now()
    todays = sorted((now.astimezone(ZoneInfo(protocol.site(code).timezone)).date(), code)
                    for code, rate in rates.items() if code in protocol.site_codes and rate > 0)  # fmt: skip
    if not todays or last < todays[0][0]:
        return
    today, site = todays[0]
    latest = today - dt.timedelta(days=1 + reach)  # the last screening day that still ends before today
    fewer = (latest - start).days + 1
    change = f"start on or before {(latest - dt.timedelta(days=days - 1)).isoformat()}"
    if fewer >= 1:
        change += f", or days: {fewer} or fewer"
    raise refuse("recruitment.start, recruitment.days", f"{start.isoformat()} and {days} days could reach "
                 f"{last.isoformat()} (the last screening on {(start + dt.timedelta(days=days - 1)).isoformat()}, "
                 f"then {reach} days: {why}), but today is {today.isoformat()} at {site}: a simulated trial is "
                 f"written only before the sites' today, never into the future; {change}")  # fmt: skip


def check_settings(path: Path, plan: Mapping[str, Any], protocol: Protocol) -> None:
    """Every setting of the simulation file at ``path`` checked against its rule and the protocol."""
    refuse = _Refuse(path)
    _recruitment(refuse, plan, protocol)
    _screening(refuse, plan, protocol)
    _course(refuse, plan, protocol)
    _adverse_events(refuse, plan, protocol)
    _fields(refuse, plan, protocol)
    _death_record_dates(refuse, plan, protocol)
    _competing_deaths(refuse, plan, protocol)
    _before_today(refuse, plan, protocol)
