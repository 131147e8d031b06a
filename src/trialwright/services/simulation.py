"""Synthetic trials driven through the real services: the same eligibility, consent, randomization,
validation, queries and audit entries a person's clicks make, on a simulated clock.

A simulation file next to the protocol (``NAME.simulation.yaml``) says how to draw the trial: the
recruitment period and site rates, a typical eligible patient and how screening values vary and fail,
consent by representative, withdrawals, missed and late visits, distributions per form field (with a
baseline / follow-up correlation), length of stay, deaths and adverse events. Everything is drawn from
one seeded generator before anything is stored, then executed in time order, so the same seed gives the
same trial on every database.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from ruamel.yaml import YAML
from sqlalchemy import Engine

from trialwright.domain.assent import age_in
from trialwright.domain.calendars import local_date
from trialwright.domain.eligibility import ScreeningValueError, evaluate, inapplicable_fields, validate_values
from trialwright.domain.roles import SIMULATION_ACTOR, Role
from trialwright.domain.safety import DeadlineKind, DeadlineState, names_death
from trialwright.domain.visits import added_after_window, window_of
from trialwright.protocol import Protocol, load_protocol
from trialwright.protocol.design import Preparation
from trialwright.protocol.forms import FieldType, FormDef
from trialwright.protocol.outcomes import AdverseEventAction
from trialwright.services import clock
from trialwright.services.forms import (
    FormError,
    VisitFormSave,
    miss_visit,
    save_form,
    sign_forms,
    verify_forms,
)
from trialwright.services.randomization import (
    StratumExhausted,
    allocation_of,
    extend_list,
    generate_list,
    list_exists,
    prepare,
    randomize,
)
from trialwright.services.safety import pause, record_decision, record_submission, report_event
from trialwright.services.safety.common import DeadlineView
from trialwright.services.screening import enrol, record_consent, screen, set_non_enrolment, withdraw
from trialwright.services.simulation_file import AWARE_AT, admission_dates, check_settings, competing_dates
from trialwright.services.trial import current_protocol, visit_additions_in
from trialwright.services.users import (
    UserView,
    create_user,
    generate_password,
    get_user,
    reset_password,
    trial_names,
)
from trialwright.store.engine import session_scope

__all__ = ["REFUSED_MORE", "REFUSED_WHOM", "SimulationError", "SimulationSummary", "refusal_lines", "simulate",
           "simulation_file_for"]  # fmt: skip


class SimulationError(ValueError):
    """A simulation file or request that cannot be used; the message names the key and the rule."""


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation made."""

    screened: int
    enrolled: int
    randomized: int
    not_enrolled: Mapping[str, int]
    by_representative: int
    withdrawn: int
    forms_saved: int
    forms_completed: int
    forms_signed: int
    visits_missed: int
    adverse_events: int
    serious: int
    deaths: int
    refused: int  # service refusals met on the way (e.g. a value a rule turned down); none are fatal
    refusals: Mapping[str, int]  # the same, by the rule's words (most frequent first)
    #: Whom each refusal of a rule concerns, one entry per refusal in the order met: the participant's number, or
    #: "screening N" for a screened patient not (yet) enrolled; a series refused whole names each of its participants.
    refused_whom: Mapping[str, tuple[str, ...]]
    pauses_resumed: int  # safety pauses the simulated DSMB lifted
    list_extensions: int  # strata the unblinded statistician extended when the trial outgrew them
    seconds: float
    #: The due reports of SAEs and SUSARs the site sent (recorded through ``record_submission``), and how many late.
    reports_submitted: int = 0
    reports_late: int = 0

    @property
    def rate(self) -> float:
        """Participants screened per second."""
        return self.screened / self.seconds if self.seconds else 0.0


def simulation_file_for(protocol_path: Path) -> Path:
    """``NAME.simulation.yaml`` beside ``NAME.yaml``."""
    return protocol_path.with_name(protocol_path.stem + ".simulation.yaml")


def load_plan(path: Path, protocol: Protocol | None = None) -> dict[str, Any]:
    """Read a simulation file; with ``protocol``, every setting checked against its rule and the protocol
    (``simulation_file.check_settings``), so what would crash, do nothing or draw only refusals is refused here,
    before any database is created or written."""
    if not path.exists():
        raise SimulationError(f"simulation file: {path} does not exist (it says how to draw this protocol's values)")
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SimulationError(f"simulation file: {path} must be a mapping")
    for key in ("recruitment", "screening", "fields"):
        if key not in data:
            raise SimulationError(f"simulation file: {path}: '{key}' is required")
    if unknown := sorted(set(data) - _PLAN_KEYS):
        raise SimulationError(
            f"simulation file: {path}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(_PLAN_KEYS))})"
        )
    events = data.get("adverse_events") or {}
    if unknown := sorted(set(events) - _EVENT_KEYS):
        raise SimulationError(
            f"simulation file: {path}: adverse_events: unknown key {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_EVENT_KEYS))})"
        )
    if protocol is not None:
        check_settings(path, data, protocol)
    return data


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """A refusal of a simulation file's setting names the file, as ``load_plan``'s and ``check_settings``' do:
    ``simulation file: PATH: KEY: rule`` (walk 5: ``simulation file: fields.cognition.amt: ...`` named no file)."""
    try:
        yield
    except SimulationError as error:
        text = str(error)
        if text.startswith(f"simulation file: {path}"):
            raise
        raise SimulationError(f"simulation file: {path}: {text.removeprefix('simulation file: ')}") from None


_PLAN_KEYS = frozenset({"recruitment", "screening", "consent", "withdrawal", "lifecycle", "visits",
                        "length_of_stay", "death", "adverse_events", "fields"})  # fmt: skip
_EVENT_KEYS = frozenset({"rate", "serious", "related", "terms", "expected", "causality", "late", "action_taken"})


def _causality_codes(plan: Mapping[str, Any], protocol: Protocol) -> tuple[str, str]:
    """The causality codes simulated events are reported with: ``adverse_events.causality: {related: CODE,
    unrelated: CODE}`` from the simulation file, each checked against the protocol's scale, or else the scale's
    first category that counts as related and its first that does not."""
    scale = {c.code: c.related for c in protocol.safety.causality}
    chosen = (plan.get("adverse_events") or {}).get("causality") or {}
    if unknown := sorted(set(chosen) - {"related", "unrelated"}):
        raise SimulationError(f"adverse_events.causality: unknown key {', '.join(unknown)} (known: related, unrelated)")
    codes = []
    for key, related in (("related", True), ("unrelated", False)):
        code = chosen.get(key, next(c for c, r in scale.items() if r is related))
        if scale.get(code) is not related:
            what = "is not on the protocol's causality scale" if code not in scale else (
                f"counts as {'not ' if related else ''}related on the protocol's scale")
            raise SimulationError(f"adverse_events.causality.{key}: {code!r} {what} "
                                  f"(scale: {', '.join(scale)})")  # fmt: skip
        codes.append(code)
    return codes[0], codes[1]


#: The stream each event's action taken is drawn from, beside its step's own (``[rng_state, order]``): a draw from
#: the step's stream would move every draw after it, and a seed would give another trial in everything else.
_ACTION_STREAM = 1


@dataclass(frozen=True)
class _ActionShares:
    """The actions taken simulated events are reported with and their weights, for serious events (a fatal one
    among them) and for the others."""

    serious: Mapping[str, float]
    non_serious: Mapping[str, float]

    def draw(self, serious: bool, rng: np.random.Generator) -> str:
        shares = self.serious if serious else self.non_serious
        codes = list(shares)
        weights = np.array([float(shares[c]) for c in codes])
        return codes[int(rng.choice(len(codes), p=weights / weights.sum()))]


def _action_shares(plan: Mapping[str, Any], protocol: Protocol) -> _ActionShares:
    """The actions taken simulated events are drawn from: the simulation file's ``adverse_events.action_taken:
    {non_serious: {CODE: weight}, serious: {CODE: weight}}`` (either alone serves every event; the codes are the
    protocol's, checked by ``simulation_file``), else the protocol's answers whose SDTM term is NOT APPLICABLE: what a
    site did with the product is the trial's to say (equal shares of every declared answer would invent, e.g., a dose
    increased of a single infusion), so without the file's shares nothing is invented. Refused when the protocol
    declares no NOT APPLICABLE answer and the file gives no shares."""
    chosen = (plan.get("adverse_events") or {}).get("action_taken") or {}
    declared = protocol.safety.action_choices
    neutral = [a.code for a in declared if a.sdtm is AdverseEventAction.NOT_APPLICABLE]
    if not neutral and not chosen:
        raise SimulationError("simulation file: adverse_events.action_taken: the protocol declares no NOT APPLICABLE "
                              "action taken, so give the shares simulated events draw from "
                              f"({', '.join(a.code for a in declared)})")  # fmt: skip
    equal = dict.fromkeys(neutral, 1.0)
    serious = chosen.get("serious") or chosen.get("non_serious") or equal
    return _ActionShares(serious=serious, non_serious=chosen.get("non_serious") or serious)


def _death(plan: Mapping[str, Any]) -> tuple[float, str, str]:
    """``death: {rate, term, cause}``: the chance to die and the fatal event's term (the cause of death, never
    "Death": death is the event's outcome); ``death: 0`` for none. A rate without a term is refused."""
    spec = plan.get("death", 0)
    rate, term = (float(spec.get("rate", 0)), spec.get("term")) if isinstance(spec, Mapping) else (float(spec), None)
    if rate > 0 and (not isinstance(term, str) or not term.strip() or names_death(term)):
        raise SimulationError(
            f"simulation file: death: {spec!r}: name the fatal adverse event's term, the cause of death (e.g. "
            "death: {rate: 0.1, term: Respiratory failure}); death is its outcome, never its term"
        )
    # The cause of death written into the death record is the fatal event's term unless the file words it otherwise.
    cause = spec.get("cause", term) if isinstance(spec, Mapping) else term
    return rate, str(term or ""), str(cause or "")


def _expected(protocol: Protocol, events: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``adverse_events.expected: {CODE: {rate, term, day, grades: [lo, hi]}}``: events the protocol expects
    (``safety.expected_events``), each reported as that expected event; an unknown code is refused."""
    declared = {e.code for e in protocol.safety.expected_events}
    out = []
    for code, spec in (events.get("expected") or {}).items():
        if code not in declared:
            raise SimulationError(
                f"simulation file: adverse_events.expected: {code!r} is not an expected event of the protocol "
                f"({', '.join(sorted(declared)) or 'none declared'})"
            )
        out.append((str(code), spec))
    return out


# --- drawing values ------------------------------------------------------------------------------------


def _shape(value: float, spec: Mapping[str, Any]) -> Any:
    if "clip" in spec:
        low, high = spec["clip"]
        value = min(max(value, low), high)
    if "round" in spec:
        places = int(spec["round"])
        value = round(value, places)
        if places <= 0:
            return int(value)
    return float(value)


def _from_z(spec: Mapping[str, Any], z: float, rng: np.random.Generator) -> Any:
    """A value from a distribution, using the standard normal draw ``z`` where the distribution has one."""
    if "normal" in spec:
        mean, sd = spec["normal"]
        return _shape(mean + sd * z, spec)
    if "lognormal" in spec:
        mu, sigma = spec["lognormal"]
        return _shape(math.exp(mu + sigma * z), spec)
    if "uniform" in spec:
        low, high = spec["uniform"]
        return _shape(float(rng.uniform(low, high)), spec)
    if "choice" in spec:
        codes = list(spec["choice"])
        weights = np.array([float(spec["choice"][c]) for c in codes])
        return codes[int(rng.choice(len(codes), p=weights / weights.sum()))]
    if "bernoulli" in spec:
        return bool(rng.random() < float(spec["bernoulli"]))
    raise SimulationError(f"distribution: {dict(spec)} names none of normal, lognormal, uniform, choice, bernoulli")


def field_specs(protocol: Protocol, plan: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The simulation file's ``fields``, each checked against the protocol: a key that is not a form.field of
    the protocol, or a ``round`` finer than the field's ``decimals`` (the save would refuse every value), is
    refused naming the key; a number drawn for a field that keeps ``decimals`` places, without ``round``,
    is rounded to them (``tests/spec/simulation/test_field_specs.py``)."""
    specs: dict[str, Mapping[str, Any]] = {}
    for key, spec in (plan.get("fields") or {}).items():
        form_id, _, field_id = str(key).partition(".")
        try:
            f = protocol.form(form_id).field(field_id)
        except (KeyError, ValueError, LookupError):
            computed = next((o for o in protocol.outcomes if o.estimand.variable.responder is not None
                             and o.id in (str(key), field_id)), None)  # fmt: skip
            if computed is not None:
                raise SimulationError(
                    f"simulation file: fields.{key}: {computed.id} is a responder computed at analysis from "
                    f"{computed.estimand.variable.fields[0]}'s values: nothing is drawn for it (draw "
                    f"{computed.estimand.variable.fields[0]}, with --effect to plant one)"
                ) from None
            raise SimulationError(f"simulation file: fields.{key}: not a form.field of the protocol") from None
        if not isinstance(spec, Mapping):
            raise SimulationError(f"simulation file: fields.{key}: must be a mapping, e.g. {{normal: [37, 0.5]}}")
        if f.type is FieldType.DECIMAL and f.decimals is not None and not {"from_screening", "years_before"} & set(
            spec
        ):
            if "round" not in spec:
                spec = {**spec, "round": f.decimals}
            elif int(spec["round"]) > f.decimals:
                raise SimulationError(
                    f"simulation file: fields.{key}.round: {spec['round']} places, but the protocol keeps "
                    f"{f.decimals} (decimals); a save would refuse every value drawn"
                )
        specs[str(key)] = spec
    return specs


def check_effects(protocol: Protocol, specs: Mapping[str, Mapping[str, Any]], effects: Mapping[str, float]) -> None:
    """Each ``--effect FORM.FIELD=VALUE`` is added to a number the simulation file draws: an effect on no form.field,
    a derived field (computed, never drawn), a field that is no number, or one the file draws no distribution for
    (its value is then the field's own default, which no effect reaches) would silently do nothing, and is refused."""
    for key in effects:
        form_id, _, field_id = key.partition(".")
        try:
            f = protocol.form(form_id).field(field_id)
        except (KeyError, ValueError, LookupError):
            raise SimulationError(f"effect: {key!r} is not a form.field of the protocol") from None
        if f.derived is not None:
            raise SimulationError(f"effect: {key!r} is a derived field, computed from its formula, never drawn")
        if f.type not in {FieldType.INTEGER, FieldType.DECIMAL}:
            raise SimulationError(f"effect: {key!r} is a {f.type.value} field; an effect is added to a number")
        spec = specs.get(key)
        if spec is None or {"from_screening", "years_before"} & set(spec):
            raise SimulationError(f"effect: {key!r} has no distribution in the simulation file's fields, to which "
                                  "the effect is added")  # fmt: skip


def check_plan(protocol_path: Path, effects: Mapping[str, float] | None = None) -> None:
    """The simulation file beside ``protocol_path`` read and checked against the protocol, before any database
    is created for it: a missing or wrong file is refused first, not after an empty trial was made; so are
    ``effects`` (``check_effects``)."""
    protocol = load_protocol(protocol_path).protocol
    path = simulation_file_for(protocol_path)
    plan = load_plan(path, protocol)
    with _naming(path):
        specs = field_specs(protocol, plan)
    check_effects(protocol, specs, effects or {})  # the request's effects, not the file's
    # every other part ``simulate`` reads from the file, checked the same way before anything is created: the
    # causality codes, the actions taken (the protocol's), death, and the patients' draws (sites, expected events)
    # for one patient
    with _naming(path):
        _causality_codes(plan, protocol)
    with _naming(path):
        _action_shares(plan, protocol)
        _people(plan, protocol, 1, None, np.random.default_rng(0))


def _default(field_def: Any, rng: np.random.Generator) -> Any:
    """A plausible value from the field's own definition (soft limits, else hard limits, choices)."""
    kind = field_def.type
    if kind is FieldType.BOOLEAN:
        return bool(rng.random() < 0.5)
    if kind in {FieldType.CHOICE, FieldType.MULTI_CHOICE}:
        code = field_def.choices[int(rng.integers(len(field_def.choices)))].code
        return [code] if kind is FieldType.MULTI_CHOICE else code
    if kind in {FieldType.INTEGER, FieldType.DECIMAL}:
        limits = field_def.soft_limits or field_def.hard_limits
        low = limits.min if limits is not None and limits.min is not None else 0.0
        high = limits.max if limits is not None and limits.max is not None else low + 100.0
        value = float(rng.uniform(low, high))
        if kind is FieldType.INTEGER:
            return round(value)
        return round(value, field_def.decimals if field_def.decimals is not None else 1)
    if kind is FieldType.TEXT:
        return "simulated"
    return None


# --- the plan ------------------------------------------------------------------------------------------


@dataclass
class _Person:
    index: int
    site: str
    screened_at: dt.datetime
    values: dict[str, Any]
    eligible_plan: bool
    declines: bool
    representative: bool
    #: The follow-up visit (day > 0) a withdrawal prevents: the participant withdraws between the visit before it and
    #: it, and neither it nor any visit after it is held (none: no withdrawal).
    withdraws_before: str | None
    los: int
    dies: bool
    ae: dict[str, Any] | None
    missed: set[str]
    late: set[str]
    z: dict[str, float] = field(default_factory=dict)
    rng_state: int = 0


@dataclass
class _Action:
    at: dt.datetime
    order: int
    person: _Person
    step: str
    visit: str | None = None


@dataclass
class _PlannedVisit:
    action: _Action
    visit_id: str
    day: dt.date
    planned: list[tuple[VisitFormSave, tuple[bool, bool] | None]]


#: At most this many visits joined in one transaction (``simulate``).
_RUN = 64


def _people(
    plan: Mapping[str, Any], protocol: Protocol, n: int | None, target: int | None, rng: np.random.Generator
) -> list[_Person]:
    """``n`` screened patients, or as many as it takes for ``target`` of them to be enrolled."""
    recruitment = plan["recruitment"]
    start = dt.date.fromisoformat(str(recruitment["start"]))
    days = int(recruitment.get("days", 180))
    rates = recruitment.get("sites") or dict.fromkeys(protocol.site_codes, 1)
    for code in rates:
        if code not in protocol.site_codes:
            known = ", ".join(protocol.site_codes)
            raise SimulationError(f"recruitment.sites: unknown site {code!r} (sites: {known})")
    codes = list(rates)
    weights = np.array([float(rates[c]) for c in codes])
    screening = plan["screening"]
    visits = plan.get("visits", {})
    events = plan.get("adverse_events", {})
    expected = _expected(protocol, events)
    death_rate = _death(plan)[0]
    people = []
    follow_ups = [v.id for v in protocol.visits if v.day > 0]
    predicted, i = 0, 0
    consent_field = protocol.eligibility.consent_field
    while (n is not None and i < n) or (target is not None and predicted < target):
        if target is not None and i >= 50 * target:
            raise SimulationError(f"participants: {i} screened without {target} enrolled; check the simulation file")
        site = codes[int(rng.choice(len(codes), p=weights / weights.sum()))]
        tz = ZoneInfo(protocol.site(site).timezone)
        day = start + dt.timedelta(days=int(rng.integers(days)))
        minute = int(rng.integers(8 * 60, 18 * 60))
        screened_at = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=tz).astimezone(dt.UTC)
        values = dict(screening.get("eligible", {}))
        for name, spec in (screening.get("vary") or {}).items():
            values[name] = _from_z(spec, float(rng.standard_normal()), rng)
        for failure in screening.get("failures") or []:
            if rng.random() < float(failure["p"]):
                values.update(failure["set"])
        for f in protocol.eligibility.screening_fields:
            if f.id in values or f.id == protocol.eligibility.consent_field:
                continue
            if f.type == "boolean":
                values[f.id] = False  # an exclusion not present unless the file says otherwise
            elif f.type == "date":
                values[f.id] = day.isoformat()
        try:  # a field not asked of this patient (applies_if false: pregnancy for a man) gets no value
            for name in inapplicable_fields(protocol, validate_values(protocol, values)):
                values.pop(name, None)
        except ScreeningValueError:
            pass  # a value the screening refuses: the screening says so, naming it, when the run reaches it
        ae = None
        if rng.random() < float(events.get("rate", 0)):
            terms = list(events.get("terms") or ["Adverse event"])
            serious = bool(rng.random() < float(events.get("serious", 0)))
            ae = {
                "term": terms[int(rng.integers(len(terms)))],
                "day": int(rng.integers(0, 8)),
                "grade": int(rng.integers(3, 5)) if serious else int(rng.integers(1, 3)),
                "serious": serious,
                "related": bool(rng.random() < float(events.get("related", 0))),
            }
        else:
            if not expected:
                rng.random()  # one draw as for an expected event, so a seed gives the same trial as before
            for code, spec in expected:
                if rng.random() < float(spec.get("rate", 0)):
                    low, high = spec.get("grades", [1, 2])
                    ae = {"term": str(spec.get("term", code)), "day": int(spec.get("day", 0)),
                          "grade": int(rng.integers(int(low), int(high) + 1)), "serious": False, "related": True,
                          "expected_event": code}  # fmt: skip
                    break
        los_spec = plan.get("length_of_stay", {"uniform": [5, 20], "round": 0})
        declines = bool(rng.random() < float(screening.get("declined", 0)))
        if target is not None:
            with_consent = {**values, **({consent_field: True} if consent_field else {})}
            decision = evaluate(protocol, validate_values(protocol, with_consent))
            predicted += decision.decision.value == "eligible" and not declines
        i += 1
        people.append(
            _Person(
                index=i - 1,
                site=site,
                screened_at=screened_at,
                values=values,
                eligible_plan=True,
                declines=declines,
                # drawn first (the stream stays as it was); a minor is always consented for by a representative
                representative=bool(rng.random() < float(plan.get("consent", {}).get("representative", 0)))
                or _minor(protocol, values),
                withdraws_before=(
                    follow_ups[int(rng.integers(len(follow_ups)))]
                    if follow_ups and rng.random() < float(plan.get("withdrawal", 0))
                    else None
                ),
                los=int(_from_z(los_spec, float(rng.standard_normal()), rng)),
                dies=bool(rng.random() < death_rate),
                ae=ae,
                missed={v for v in follow_ups if rng.random() < float(visits.get("missed", 0))},
                late={v for v in follow_ups if rng.random() < float(visits.get("out_of_window", 0))},
                rng_state=int(rng.integers(2**31)),
            )
        )
    return people


# --- executing -----------------------------------------------------------------------------------------


def ensure_users(engine: Engine, protocol: Protocol, prefix: str = "sim-") -> dict[Role, tuple[UserView, str]]:
    """One account per role (site-scoped roles at every site), each with a new random password: created,
    or for an existing account reset (audited). Returns the accounts and their passwords."""
    out = {}
    names = trial_names(engine)
    # The simulator's accounts are its own (no person signs in as them); the demo's are people's (passwords shown).
    actor = SIMULATION_ACTOR if prefix == "sim-" else "demo"
    for role in Role:
        name = f"{prefix}{role.value.replace('_', '-')}"
        password = generate_password(name, names)
        user = get_user(engine, name)
        if user is None:
            user = create_user(
                engine,
                username=name,
                password=password,
                role=role,
                sites=list(protocol.site_codes) if role.site_scoped else [],
                full_name=f"{'Demo' if prefix != 'sim-' else 'Simulated'} {role.label}",
                actor=actor,
            )
        else:
            reset_password(engine, name, password, actor=actor)
        out[role] = (user, password)
    return out


def _prepared(preparation: Preparation, code: str) -> dict[str, Any]:
    """What the simulated pharmacist records: a number in the middle of its hard limits, a text naming the dose."""
    values: dict[str, Any] = {}
    for a in preparation.attributes:
        if a.type == "text":
            values[a.id] = f"SIM-{code}"
            continue
        low, high = (a.hard_limits.min, a.hard_limits.max) if a.hard_limits else (None, None)
        number = (low + high) / 2 if low is not None and high is not None else (low if low is not None else 1.0)
        values[a.id] = round(number) if a.type == "integer" else number
    return values


def _form_values(
    protocol: Protocol,
    form: FormDef,
    specs: Mapping[str, Mapping[str, Any]],
    person: _Person,
    visit_day: dt.date,
    moment: dt.datetime,
    follow_up: bool,
    effects: Mapping[str, float],
    experimental: bool,
    rng: np.random.Generator,
) -> dict[str, Any]:
    tz = ZoneInfo(protocol.site(person.site).timezone)
    values: dict[str, Any] = {}
    for f in form.fields:
        if f.derived is not None:
            continue
        key = f"{form.id}.{f.id}"
        spec = specs.get(key)
        if spec is not None and "from_screening" in spec:  # the value the screening recorded
            values[f.id] = person.values.get(str(spec["from_screening"]))
            continue
        if spec is not None and "years_before" in spec and f.type is FieldType.DATE:
            # A date that many years (a screening value, e.g. age) before the visit: a birth date.
            years = int(person.values[str(spec["years_before"])])
            try:
                anniversary = visit_day.replace(year=visit_day.year - years)
            except ValueError:  # 29 February
                anniversary = visit_day.replace(year=visit_day.year - years, day=28)
            values[f.id] = (anniversary - dt.timedelta(days=int(rng.integers(0, 365)))).isoformat()
            continue
        if f.type in {FieldType.DATE, FieldType.DATETIME} and spec is None and not f.required:
            continue  # an optional date (a reoperation, a discharge) is left for the rules that write it
        if f.type is FieldType.DATE:
            values[f.id] = visit_day.isoformat()
            continue
        if f.type is FieldType.DATETIME:  # the moment of the visit: after consent and randomization, as in life
            values[f.id] = moment.astimezone(tz).isoformat(timespec="minutes")
            continue
        if spec is None:
            if not f.required:
                continue
            values[f.id] = _default(f, rng)
            continue
        z = float(rng.standard_normal())
        if "follow_up" in spec:
            base = person.z.setdefault(key, z)
            rho = float(spec["follow_up"])
            z = rho * base + math.sqrt(max(0.0, 1 - rho * rho)) * z if follow_up else base
        value = _from_z(spec, z, rng)
        if follow_up and experimental and key in effects and isinstance(value, int | float):
            value = _shape(float(value) + effects[key], {k: v for k, v in spec.items() if k in ("round",)})
        values[f.id] = value
    return values


def _lifecycle(plan: Mapping[str, Any], form_id: str, rng: np.random.Generator) -> tuple[bool, bool, bool]:
    """Whether a form is to be marked complete as it is saved, then verified against source by the monitor,
    then signed by the investigator, as the plan's rates say (the plan names the forms to sign)."""
    rates = plan.get("lifecycle", {})
    complete = bool(rng.random() < float(rates.get("complete", 0)))
    verify = complete and bool(rng.random() < float(rates.get("verify", 0)))
    sign = verify and form_id in rates.get("sign_forms", []) and bool(rng.random() < float(rates.get("sign", 0)))
    return complete, verify, sign


def N_(message: str) -> str:
    """Marks a message for the catalog (the gettext convention); said in Persian where a Persian reader reads it."""
    return message


#: One line of the summary per rule refused: how many times, the rule, and whom (participants or screenings).
REFUSED_WHOM = N_("%(n)s refused, %(rule)s: %(whom)s")
#: Said after the first few named when a rule refused more of them.
REFUSED_MORE = N_("and %(n)s more")
#: A screened patient not (yet) enrolled, by the screening's number.
SCREENING_NUMBER = N_("screening %(n)s")


def refusal_lines(summary: SimulationSummary, *, rules: int = 5, named: int = 5,
                  gettext: Callable[[str], str] = lambda m: m) -> list[str]:  # fmt: skip
    """The summary's refusals, the most frequent ``rules`` rules, each naming whom it refused (the first ``named``
    distinct participants or screenings, then how many more), in the words ``gettext`` gives (English as is)."""
    lines = []
    for rule, n in list(summary.refusals.items())[:rules]:
        whom = [gettext(SCREENING_NUMBER) % {"n": w.split()[1]} if w.startswith("screening ") else w
                for w in dict.fromkeys(w for entry in summary.refused_whom.get(rule, ()) for w in entry.split(", "))]
        # a series refused whole is one entry naming each of its participants: each counts as one of them
        shown = ", ".join(whom[:named])
        if len(whom) > named:
            shown += " " + gettext(REFUSED_MORE) % {"n": len(whom) - named}
        lines.append(gettext(REFUSED_WHOM) % {"n": n, "rule": rule, "whom": shown})
    return lines


def _rule_of(exc: Exception) -> str:
    """A refusal's words with each number (1.5e+06 too), date, time and participant said as "…", so refusals of one
    rule count together and still read as words ("participant: … withdrew from follow-up on …")."""
    return re.sub(r"(?<![\w.])(?:[A-Z]{2,}-)?-?\d+(?:[.:/-]\d+)*(?:e[+-]?\d+)?(?![\w.])", "…",
                  str(exc).split(";")[0])[:100]  # fmt: skip


#: Entries added to a stratum each time a simulated trial outgrows it (whole blocks of the protocol's sizes).
_EXTENSION = 48
#: The dose (an event visit that dates others: an infusion, a first dose) follows the randomization by this much.
_DOSE_AFTER = dt.timedelta(hours=2)
#: In a visit whose forms hold the dose beside measurements, the measurements are taken this long before the dose.
_MEASURED_BEFORE_DOSE = dt.timedelta(minutes=30)


#: The order of a report's submission among a participant's steps at one moment, by the report (after the event, 40).
_SUBMISSION_ORDER = {DeadlineKind.SAE_TO_SPONSOR: 41, DeadlineKind.SUSAR_INITIAL: 42, DeadlineKind.SUSAR_COMPLETE: 43}


def _submitted_at(deadline: DeadlineView, late: float, rng: np.random.Generator) -> dt.datetime:
    """When the site sends a due report: a whole minute drawn uniformly after the clock started, up to its due time
    (inclusive); with probability ``late`` (``adverse_events.late``) a minute after it instead, up to as long again
    as the report was given (``simulation_file._submission_days`` bounds the last date either can reach)."""
    minutes = max(int((deadline.due_at - deadline.clock_start).total_seconds() // 60), 1)
    if rng.random() < late:
        return deadline.due_at + dt.timedelta(minutes=int(rng.integers(1, minutes + 1)))
    return deadline.clock_start + dt.timedelta(minutes=int(rng.integers(1, minutes + 1)))


def _next_signing(after: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The site's next weekly signing session: Friday 16:00 local time, after ``after``."""
    local = after.astimezone(tz)
    friday = local.date() + dt.timedelta(days=(4 - local.weekday()) % 7)
    at = dt.datetime.combine(friday, dt.time(16, 0), tzinfo=tz)
    if at <= local:
        at += dt.timedelta(days=7)
    return at.astimezone(dt.UTC)


def _minor(protocol: Protocol, values: dict[str, Any]) -> bool:
    """Whether the simulated patient is below the protocol's age of consent (``eligibility.assent.consent_age``):
    then only a representative consents, and the simulated representative is a parent, not a spouse."""
    rule = protocol.eligibility.assent
    age = values.get(rule.age_field) if rule is not None else None
    if rule is None or rule.consent_age is None or not isinstance(age, int | float) or isinstance(age, bool):
        return False
    field = next((f for f in protocol.eligibility.screening_fields if f.id == rule.age_field), None)
    return age_in(float(age), (field.unit if field is not None else None) or "years", rule.unit) < rule.consent_age


def _assent(protocol: Protocol, values: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    """A child of the protocol's assent age (``eligibility.assent``) gives assent to the coordinator who takes the
    representative's consent, on the latest assent form: recorded with the consent as the service requires."""
    rule = protocol.eligibility.assent
    age = values.get(rule.age_field) if rule is not None else None
    if rule is None or not isinstance(age, int | float) or isinstance(age, bool):
        return {}
    field = next((f for f in protocol.eligibility.screening_fields if f.id == rule.age_field), None)
    if age_in(float(age), (field.unit if field is not None else None) or "years", rule.unit) < rule.from_age:
        return {}
    version = rule.form_versions[-1] if rule.form_versions else None
    return {"assent": "given", "assent_obtained_by": "Dr Sim", "assent_obtained_at": at, "assent_form_version": version}


def simulate(
    engine: Engine,
    protocol_path: Path,
    participants: int | None,
    seed: int,
    *,
    enrolled: int | None = None,
    effects: Mapping[str, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    batched: bool = True,
) -> SimulationSummary:
    """Screen ``participants`` synthetic patients (or as many as it takes to enrol ``enrolled``) of the trial
    in ``engine`` (created from ``protocol_path``) through the services, and carry the enrolled ones through
    the whole trial. ``effects`` adds a value to a form field at follow-up visits in the experimental arm.

    With ``batched`` (the default) a visit's forms are saved and the completed ones verified in one transaction
    (``save_and_verify_visit``: each form as ``save_form`` would save it, in a savepoint, then the monitor's
    series as ``verify_forms`` would verify it; the visits next in time with nothing between them share it,
    ``save_and_verify_visits``), and the investigator's password is checked once
    (``pre_authenticate``) for every weekly signing session (``sign_as``); without, one ``save_form`` each, the
    series in a transaction of its own and the password re-entered at every session (``sign_forms``). The same
    seed gives the same trial, and the same audit trail, either way (``tests/spec/simulation/test_batched.py``)."""
    import time

    # Imported here, never at module level: this module re-exports none of the simulator's lifecycle steps, and no
    # module but this one imports them (the "protected" import-linter contract in pyproject.toml).
    from trialwright.services.forms.simulated import (
        VisitSaves,
        allocation_and_preparation,
        consent_and_enrol,
        pre_authenticate,
        save_and_verify_visits,
        screen_and_decide,
        sign_as,
    )

    began = time.perf_counter()
    protocol = current_protocol(engine).protocol
    plan_path = simulation_file_for(protocol_path)
    plan = load_plan(plan_path, protocol)
    with _naming(plan_path):
        specs = field_specs(protocol, plan)
    effects = dict(effects or {})
    check_effects(protocol, specs, effects)
    rng = np.random.default_rng(seed)
    if participants is None and enrolled is None:
        raise SimulationError("participants: give the number to screen, or the number to enrol")
    with _naming(plan_path):
        people = _people(plan, protocol, participants, enrolled, rng)
    participants = len(people)
    accounts = ensure_users(engine, protocol)
    users = {role: user for role, (user, _) in accounts.items()}
    coordinator, investigator = users[Role.STUDY_COORDINATOR], users[Role.INVESTIGATOR]
    dsmb, dsmb_password = accounts[Role.DSMB_MEMBER]
    if not list_exists(engine):
        first = min((p.screened_at for p in people), default=clock.now())
        with clock.simulated_time(first - dt.timedelta(days=1)):
            generate_list(engine, users[Role.UNBLINDED_STATISTICIAN], seed=int(rng.integers(2**31)))
    experimental_arms = {a.code for a in protocol.arms if a.role.value == "experimental"}
    # The protocol's own causality scale: its first category that counts as related, and its first that does not.
    with _naming(plan_path):
        related_code, unrelated_code = _causality_codes(plan, protocol)
    with _naming(plan_path):
        action_shares = _action_shares(plan, protocol)
    # The share of due reports (an SAE's to the sponsor, a SUSAR's) the site sends after their deadline.
    late_share = float((plan.get("adverse_events") or {}).get("late", 0))
    death_record = protocol.safety.death_record
    # The visit that ends the hospital stay is the one the death record writes, whatever the protocol calls it.
    stay_end = death_record.visit if death_record is not None else None
    # The death record form's admission dates (``simulation_file.admission_dates``), and a status of the living drawn
    # as the file's ``fields`` declares (checked to be among the alive codes), else the first alive code.
    admitted = sorted(admission_dates(protocol))
    status_drawn = specs.get(f"{death_record.form}.{death_record.status_field}") if death_record else None
    # Each form's date left blank at a death on the day its time to event with death competing is read.
    competing_blank: dict[str, set[str]] = {}
    for _, blank_form, blank_field, read_at in competing_dates(protocol):
        if read_at == stay_end:
            competing_blank.setdefault(blank_form, set()).add(blank_field)
    # Events an event visit dates (an infusion, a first dose, surgery) happen two hours after randomization.
    dated_events = {v.id for v in protocol.visits if v.kind == "event" and v.reference == v.id}
    # A visit an amendment added is held only where the schedule says it is due: its window not closed when the
    # amendment took effect, and never before that day (``domain.visits.added_after_window``; walk 4, F3).
    with session_scope(engine) as session:
        added = visit_additions_in(session)
    treatment = protocol.analysis_plan.treatment if protocol.analysis_plan is not None else None
    # A visit that records the dose beside other forms (a baseline visit ending with the first dose): its other forms
    # are measured before the dose, as a site measures the baseline and then gives the dose.
    dosed_with_others = {treatment.visit} if treatment is not None and treatment.visit not in dated_events and len(
        protocol.visit(treatment.visit).forms) > 1 else set()  # fmt: skip
    # The field where staff copy the preparation code given, if the protocol declares one.
    code_field = (treatment.form, treatment.code_field) if treatment is not None and treatment.code_field else None
    names = ("enrolled", "randomized", "rep", "withdrawn", "forms", "missed", "aes", "serious", "deaths", "refused",
             "resumed", "completed", "signed", "extensions", "submitted", "late")  # fmt: skip
    counts: dict[str, Any] = dict.fromkeys(names, 0)
    reasons: dict[str, int] = {}
    screening_ids: dict[int, int] = {}
    pids: dict[int, str] = {}
    arms: dict[int, bool] = {}
    died_on: dict[int, dt.date] = {}  # the day a simulated participant dies: no visit is held after it
    # (participant, visit) of each visit due on or after the participant's death but the death record's: not held,
    # and not recorded as missed either when drawn missed (walk 6 F8; "not done: died", as the schedule says)
    due_after_death: set[tuple[int, str]] = set()
    actions = [_Action(p.screened_at, 0, p, "screen") for p in people]
    actions.sort(key=lambda a: (a.at, a.person.index, a.order))
    done = 0
    queue = list(reversed(actions))
    unsigned: dict[str, list[tuple[str, str, str]]] = {}
    refusals: dict[str, int] = {}
    refused_whom: dict[str, list[str]] = {}
    signing_booked: set[str] = set()

    def later(action: _Action) -> None:
        # Insert keeping the queue sorted (popped from the end: the earliest last).
        key = (action.at, action.person.index, action.order)
        lo, hi = 0, len(queue)
        while lo < hi:
            mid = (lo + hi) // 2
            q = queue[mid]
            if (q.at, q.person.index, q.order) > key:
                lo = mid + 1
            else:
                hi = mid
        queue.insert(lo, action)

    def whom(person: _Person) -> str:
        """The participant's number, or the screening's before enrolment."""
        pid = pids.get(person.index)
        return pid if pid is not None else SCREENING_NUMBER % {"n": screening_ids[person.index]}

    def refused(exc: Exception, who: str) -> None:  # a rule turned a simulated value down: count it, go on
        counts["refused"] += 1
        rule = _rule_of(exc)
        refusals[rule] = refusals.get(rule, 0) + 1
        refused_whom.setdefault(rule, []).append(who)

    def attempt(who: str, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return work(*args, **kwargs)
        except (FormError, ValueError) as exc:
            refused(exc, who)
            return exc

    def of_series(forms: list[tuple[str, str, str]]) -> str:
        """The participants of a series of forms (verified or signed as one)."""
        return ", ".join(dict.fromkeys(pid for pid, _, _ in forms))

    investigator_account, investigator_password = accounts[Role.INVESTIGATOR]
    if batched:  # the password checked once (argon2), then each weekly series signed as after an accepted re-entry
        signer = pre_authenticate(engine, investigator_account, investigator_password)

        def signs(forms: list[tuple[str, str, str]]) -> Any:
            return sign_as(engine, signer, forms)
    else:  # the password re-entered at every signing session, as a person signs

        def signs(forms: list[tuple[str, str, str]]) -> Any:
            return sign_forms(engine, investigator_account, forms, password=investigator_password)

    zones = {ZoneInfo(protocol.site(code).timezone) for code in protocol.site_codes}
    pack_codes: dict[str, str] = {}

    def saves_forms(action: _Action) -> bool:
        """A visit whose forms are entered: not a missed one, nor one dated on or after the participant's death but
        the death record's (held that day, ``plan_visit`` fills its form alone). Another visit that falls on the day
        of death (a day-7 visit the day a death ends the stay) measures nothing: a dead participant has no value of
        that day. Skipping it draws nothing less: each visit draws from a generator of its own."""
        assert action.visit is not None
        person = action.person
        died = died_on.get(person.index)
        if died is not None and local_date(action.at, ZoneInfo(protocol.site(person.site).timezone)) >= died:
            return action.visit == stay_end
        return not (action.visit in person.missed and action.visit != stay_end)

    def plan_visit(action: _Action, step_rng: np.random.Generator) -> _PlannedVisit:
        """The visit's forms as the site enters them, in order: each save, and (verify, sign) for a form carried on
        through its lifecycle (None for the death record's admission date alone)."""
        assert action.visit is not None
        person = action.person
        tz = ZoneInfo(protocol.site(person.site).timezone)
        pid = pids[person.index]
        visit = protocol.visit(action.visit)
        day = local_date(action.at, tz)
        planned: list[tuple[VisitFormSave, tuple[bool, bool] | None]] = []
        for form_id in visit.forms:
            form = protocol.form(form_id)
            # Measurements beside the dose were taken before it; the dose (and every other form) at the visit's moment.
            moment = action.at - _MEASURED_BEFORE_DOSE if visit.id in dosed_with_others and (
                treatment is None or form_id != treatment.form) else action.at  # fmt: skip
            values = _form_values(protocol, form, specs, person, day, moment, visit.day > 0, effects,
                                  arms.get(person.index, False), step_rng)  # fmt: skip
            record = protocol.safety.death_record
            if person.dies and visit.id == stay_end and (record is None or form_id != record.form):
                # The visit held on the day of death records the death, nothing measured: a dead participant has no
                # day-30 score. A form whose date a time to event with death competing reads here is saved with every
                # field blank (the event had not happened by the death), as docs/analysis.md records a competing
                # death; every other form of the visit is left unfilled. Its values and lifecycle are still drawn
                # (and dropped), so the seeded draws of the visit's other forms are the same as before.
                complete, verify, sign = _lifecycle(plan, form_id, step_rng)
                if form_id in competing_blank:
                    planned.append((VisitFormSave(form_id, {}, complete), (verify, sign)))
                continue
            if record is not None and form_id == record.form:
                for admission in admitted:  # the admission date: the stay's length before its end, before enrolment
                    values[admission] = (day - dt.timedelta(days=person.los + 1)).isoformat()
                if person.dies:
                    # The site records the admission date that morning; the fatal adverse event reported
                    # later that day writes how the stay ended (status, date, cause) into the same form.
                    dates = {f.id: values[f.id] for f in form.fields if f.id in values
                             and f.type is FieldType.DATE and f.id != record.date_field}  # fmt: skip
                    planned.append((VisitFormSave(form_id, dates), None))
                    continue
                if status_drawn is None:  # the file declares no choice among the alive codes: the first
                    values[record.status_field] = record.alive_values[0] if record.alive_values else None
                values[record.date_field] = day.isoformat()
                if record.cause_field:
                    values.pop(record.cause_field, None)
            if code_field is not None and code_field[0] == form_id:  # the code on the pack, as copied
                if pid not in pack_codes:  # read once: a participant's preparation code never changes
                    allocation = allocation_of(engine, investigator, pid)
                    pack_codes[pid] = allocation.preparation_code if allocation else "unknown"
                values[code_field[1]] = pack_codes[pid]
            complete, verify, sign = _lifecycle(plan, form_id, step_rng)
            planned.append((VisitFormSave(form_id, values, complete), (verify, sign)))
        return _PlannedVisit(action, visit.id, day, planned)

    def submissions(action: _Action, event: Any, kinds: Iterable[DeadlineKind], rng: np.random.Generator) -> None:
        """Book the sending of each of ``kinds`` of the event's reports that is due and not yet sent, at a seeded
        moment within its deadline (or, for the share ``adverse_events.late``, after it)."""
        for deadline in event.deadlines:
            if deadline.kind in kinds and deadline.submitted_at is None:
                later(_Action(_submitted_at(deadline, late_share, rng), _SUBMISSION_ORDER[deadline.kind],
                              action.person, "submit", f"{event.ae_number} {deadline.kind.value}"))  # fmt: skip

    def book_signing(action: _Action, to_sign: list[tuple[str, str, str]]) -> None:
        if to_sign:  # signed at the site's next weekly signing session
            site = action.person.site
            unsigned.setdefault(site, []).extend(to_sign)
            if site not in signing_booked:
                signing_booked.add(site)
                later(_Action(_next_signing(action.at, ZoneInfo(protocol.site(site).timezone)), 60, action.person,
                              "sign"))  # fmt: skip

    while queue:
        action = queue.pop()
        person = action.person
        tz = ZoneInfo(protocol.site(person.site).timezone)
        step_rng = np.random.default_rng([person.rng_state, action.order])
        with clock.simulated_time(action.at):
            if action.step == "screen":

                def not_enrolled(s: Any, person: _Person = person) -> str | None:
                    """Why the screened patient is not enrolled (none: consent is sought); values left unset refused."""
                    waiting = set(s.missing) - {protocol.eligibility.consent_field}
                    if s.decision.value == "incomplete" and waiting:
                        raise SimulationError(f"simulation file: {plan_path}: screening: the simulation file "
                                              f"leaves {', '.join(sorted(waiting))} unset")  # fmt: skip
                    if s.decision.value == "not_eligible":
                        return "not_eligible"
                    return "declined" if person.declines else None

                screened_on = local_date(action.at, tz)
                if batched:  # the screening and the reason not enrolled in one transaction
                    s = screen_and_decide(engine, coordinator, site=person.site, screened_on=screened_on,
                                          values=person.values, not_enrolled=not_enrolled)  # fmt: skip
                    reason = not_enrolled(s)
                else:
                    s = screen(engine, coordinator, site=person.site, screened_on=screened_on, values=person.values)
                    reason = not_enrolled(s)
                    if reason is not None:
                        set_non_enrolment(engine, coordinator, s.id, reason=reason)
                screening_ids[person.index] = s.id
                done += 1
                if progress:
                    progress(done, participants)
                if reason is not None:
                    reasons[reason] = reasons.get(reason, 0) + 1
                else:
                    later(_Action(action.at + dt.timedelta(hours=1), 1, person, "consent"))
            elif action.step == "consent":
                sid = screening_ids[person.index]
                extra = {"representative_name": "Simulated relative",
                         "representative_relationship": "parent" if _minor(protocol, person.values) else "spouse"}
                consent: dict[str, Any] = {
                    "form_version": protocol.consent_versions[-1].version,
                    "given_by": "representative" if person.representative else "participant",
                    "obtained_by": "Dr Sim", "obtained_at": action.at, **(extra if person.representative else {}),
                }  # fmt: skip
                if person.representative:
                    consent |= _assent(protocol, person.values, action.at)
                if batched:  # the consent and the enrolment in one transaction
                    pids[person.index] = consent_and_enrol(engine, coordinator, sid, consent)
                else:
                    record_consent(engine, coordinator, sid, **consent)
                    view = enrol(engine, coordinator, sid)
                    assert view.participant is not None
                    pids[person.index] = view.participant.participant_id
                counts["rep"] += person.representative
                counts["enrolled"] += 1
                later(_Action(action.at + dt.timedelta(hours=1), 2, person, "randomize"))
            elif action.step == "randomize":
                pid = pids[person.index]
                held = pause(engine)
                if held.active and not held.stopped:
                    # The simulated DSMB reviews the related SAEs and lets the trial go on.
                    record_decision(engine, dsmb, "resume", "Simulated DSMB review: no safety concern", dsmb_password)
                    counts["resumed"] += 1
                outcome = attempt(pid, randomize, engine, investigator, pid)
                if isinstance(outcome, StratumExhausted):  # the statistician extends the list, as in a real trial
                    counts["refused"] -= 1
                    rule = _rule_of(outcome)
                    refusals[rule] -= 1
                    refused_whom[rule].pop()
                    if not refusals[rule]:
                        del refusals[rule], refused_whom[rule]
                    extend_list(engine, users[Role.UNBLINDED_STATISTICIAN], outcome.stratum, entries=_EXTENSION,
                                reason="Simulated: recruitment continues beyond the stratum's entries")  # fmt: skip
                    counts["extensions"] += 1
                    outcome = attempt(pid, randomize, engine, investigator, pid)
                if isinstance(outcome, Exception):
                    continue
                counts["randomized"] += 1
                pack_codes[pid] = outcome.preparation_code  # the code on the pack: known here, never read again

                def dose(allocation: Any, code: str = outcome.preparation_code) -> tuple[str, dict[str, Any]] | None:
                    """The dose the pharmacist prepares for the arm the statistician read, if the arm has one."""
                    preparation = protocol.arm_by_code(allocation.arm).preparation() if allocation else None
                    return None if preparation is None else (code, _prepared(preparation, code))

                statistician, pharmacist = users[Role.UNBLINDED_STATISTICIAN], users[Role.UNBLINDED_PHARMACIST]
                prepared_at = action.at + dt.timedelta(minutes=15)  # the dose prepared a quarter of an hour later
                if batched:  # the statistician's read and the pharmacist's preparation in one transaction
                    allocation = allocation_and_preparation(engine, statistician, pharmacist, pid, dose, prepared_at)
                else:
                    allocation = allocation_of(engine, statistician, pid)
                    if (wanted := dose(allocation)) is not None:
                        with clock.simulated_time(prepared_at):
                            prepare(engine, pharmacist, *wanted)
                arms[person.index] = allocation is not None and allocation.arm in experimental_arms
                infusion = local_date(action.at + _DOSE_AFTER, tz)
                # Each visit counts its days from its reference event's date at the site.
                references = {"randomization": local_date(action.at, tz)} | dict.fromkeys(dated_events, infusion)
                by_day = sorted(protocol.visits, key=lambda v: (v.day, v.id not in dated_events))
                schedule: list[tuple[dt.datetime, int, str, bool]] = []  # (when, order, visit, due)
                for k, visit in enumerate(by_day):
                    start = references.get(visit.reference, infusion)
                    if person.dies and visit.id != stay_end and start + dt.timedelta(days=visit.day) >= (
                            infusion + dt.timedelta(days=person.los)):  # fmt: skip
                        due_after_death.add((person.index, visit.id))
                    if person.dies and death_record is not None and visit.id == death_record.visit:
                        day = infusion + dt.timedelta(days=person.los)  # the stay ends with the death, that day
                    elif visit.id == stay_end or visit.id in person.missed:
                        day = start + dt.timedelta(days=max(person.los, visit.day))
                    else:
                        shift = (visit.window.after + 1) if visit.id in person.late else 0
                        day = start + dt.timedelta(days=visit.day + shift)
                    addition = added.get(visit.id)
                    due = not added_after_window(addition, window_of(visit, start)[2])
                    if addition is not None and due and day < addition.effective:
                        day = addition.effective  # due, its window still open that day: held from the amendment on
                    # At 10:00 at the site, and on the day of randomization no earlier than half an hour after it.
                    at = max(dt.datetime.combine(day, dt.time(10, 0), tzinfo=tz).astimezone(dt.UTC),
                             action.at + dt.timedelta(minutes=30))  # fmt: skip
                    if visit.id in dated_events:
                        # The dose (an event visit that dates others): two hours after the randomization and an hour
                        # after that day's other visits, so the baseline measured that day comes before it.
                        at = max(at + dt.timedelta(hours=1), action.at + _DOSE_AFTER)
                    elif visit.id in dosed_with_others:
                        # A visit whose forms hold the dose beside measurements: measured at the visit's time, the
                        # dose given and the forms entered half an hour later (``plan_visit`` stamps them so).
                        at += _MEASURED_BEFORE_DOSE
                    schedule.append((at + dt.timedelta(minutes=k), 10 + k, visit.id, due))
                prevented: dt.datetime | None = None  # the moment of the visit a withdrawal prevents
                withdrawn_at: dt.datetime | None = None
                if person.withdraws_before is not None and not person.dies:
                    # The withdrawal falls within follow-up, at a random minute between the visit held before the one
                    # it prevents and that visit: neither that visit nor any after it is held (a participant who dies
                    # is followed to the death and does not withdraw).
                    prevented = next(at for at, _, v, _ in schedule if v == person.withdraws_before)
                    before = max([action.at, *(at for at, _, _, due in schedule if at < prevented and due)])
                    gap = int((prevented - before).total_seconds() // 60)
                    withdrawn_at = before + dt.timedelta(minutes=int(step_rng.integers(gap)) if gap > 0 else 0)
                    later(_Action(withdrawn_at, 50, person, "withdraw"))
                for at, order, visit_id, due in schedule:
                    if due and (prevented is None or at < prevented):
                        later(_Action(at, order, person, "visit", visit_id))
                if person.dies:
                    died_on[person.index] = infusion + dt.timedelta(days=person.los)
                if person.ae is not None or person.dies:
                    # A death is the one event reported for a participant who dies, on the day the stay ends.
                    event_day = infusion + dt.timedelta(days=person.los if person.dies or not person.ae
                                                        else person.ae["day"])  # fmt: skip
                    at = dt.datetime.combine(event_day, AWARE_AT, tzinfo=tz).astimezone(dt.UTC)
                    if withdrawn_at is None or at < withdrawn_at:  # after a withdrawal the site learns of none
                        later(_Action(at, 40, person, "adverse_event"))
            elif action.step == "withdraw":
                # Every third withdrawal is a loss to follow-up, the others a withdrawal of consent.
                lost = person.index % 3 == 0
                withdraw(engine, investigator, pids[person.index], scope="follow_up",
                         cause="lost_to_follow_up" if lost else "withdrew_consent",
                         reason="Simulated: could not be reached" if lost
                         else "Simulated: the participant asked to stop follow-up",
                         withdrawn_on=local_date(action.at, tz))  # fmt: skip
                counts["withdrawn"] += 1
            elif action.step == "visit":
                assert action.visit is not None
                pid = pids[person.index]
                if not saves_forms(action):
                    if (action.visit in person.missed and action.visit != stay_end
                            and (person.index, action.visit) not in due_after_death):  # fmt: skip
                        why = "Simulated: not possible that day"
                        missed = attempt(pid, miss_visit, engine, coordinator, pid, action.visit, why)
                        if not isinstance(missed, Exception):
                            counts["missed"] += 1
                    continue  # (or no visit after death: the schedule ends with it)
                run = [plan_visit(action, step_rng)]
                if batched:  # one transaction for the visit: each form in a savepoint, then the monitor's series
                    # The visits next in the trial's time order, of any participant, join this one's transaction
                    # while nothing else comes between them: no other step is queued before them, none is a missed
                    # visit or one after a death (those write otherwise or nothing), and each comes before the
                    # earliest weekly signing session a visit of the run could book. The same writes in the same
                    # order as one transaction per visit (tests/spec/simulation/test_batched.py).
                    bound = min(_next_signing(action.at, zone) for zone in zones)
                    while (queue and len(run) < _RUN and queue[-1].step == "visit" and queue[-1].at < bound
                           and saves_forms(queue[-1])):  # fmt: skip
                        joined = queue.pop()
                        with clock.simulated_time(joined.at):
                            run.append(plan_visit(joined, np.random.default_rng([joined.person.rng_state,
                                                                                 joined.order])))  # fmt: skip
                    outcomes = save_and_verify_visits(engine, coordinator, users[Role.MONITOR], [
                        VisitSaves(pids[one.action.person.index], one.visit_id,
                                   [(each, review is not None and review[0]) for each, review in one.planned],
                                   one.day, one.action.at)
                        for one in run])  # fmt: skip
                    for one, visit_done in zip(run, outcomes, strict=True):
                        for problem in (*[r for r in visit_done.saves if isinstance(r, Exception)],
                                        *visit_done.refusals):  # fmt: skip
                            refused(problem, whom(one.action.person))
                        to_sign: list[tuple[str, str, str]] = []
                        for (each, review), saved in zip(one.planned, visit_done.saves, strict=True):
                            if isinstance(saved, Exception):
                                continue
                            counts["forms"] += 1
                            if review is None or saved.state.value != "complete":
                                continue
                            counts["completed"] += 1
                            if review[1] and each.form_id in visit_done.verified:
                                to_sign.append((pids[one.action.person.index], one.visit_id, each.form_id))
                        book_signing(one.action, to_sign)
                    continue
                one = run[0]
                to_verify: list[tuple[tuple[str, str, str], bool]] = []
                # one save_form (one transaction) per form, then the monitor's series in one of its own
                results = [attempt(pid, save_form, engine, coordinator, pid, one.visit_id, each.form_id, each.entries,
                                   visit_date=one.day, complete=each.complete) for each, _ in one.planned]  # fmt: skip
                for (each, review), result in zip(one.planned, results, strict=True):
                    if isinstance(result, Exception):
                        continue
                    counts["forms"] += 1
                    if review is None or result.state.value != "complete":
                        continue
                    counts["completed"] += 1
                    if review[0]:
                        to_verify.append(((pid, one.visit_id, each.form_id), review[1]))
                slow_sign: list[tuple[str, str, str]] = []
                if to_verify:  # the monitor verifies the visit's completed forms against source as one series
                    monitor = users[Role.MONITOR]
                    verified = [item for item, _ in to_verify]
                    if isinstance(attempt(pid, verify_forms, engine, monitor, verified), Exception):
                        # a form changed on the way: verify the others one by one
                        single = [attempt(pid, verify_forms, engine, monitor, [item]) for item in verified]
                        verified = [item for item, done in zip(verified, single, strict=True)
                                    if not isinstance(done, Exception)]  # fmt: skip
                    slow_sign = [item for item, sign in to_verify if sign and item in verified]
                book_signing(action, slow_sign)
            elif action.step == "sign":
                # The investigator signs the site's verified forms of the week as one series: one entry of
                # the password, one signature and audit entry per form (21 CFR 11.200(a)(1)).
                batch = unsigned.pop(person.site, [])
                signing_booked.discard(person.site)
                if not isinstance(attempt(of_series(batch), signs, batch), Exception):
                    counts["signed"] += len(batch)
                    continue
                for item in batch:  # a form changed since it was verified: sign the others one by one
                    if not isinstance(attempt(item[0], signs, [item]), Exception):
                        counts["signed"] += 1
            elif action.step == "adverse_event":
                pid = pids[person.index]
                local = action.at.astimezone(tz)
                serious = person.dies or bool((person.ae or {}).get("serious"))
                own = np.random.default_rng([person.rng_state, action.order, _ACTION_STREAM])  # the event's own stream
                taken = action_shares.draw(serious, own)
                report: dict[str, Any]
                if person.dies:
                    _, term, cause = _death(plan)
                    report = {"term": term, "onset": local.date().isoformat(), "grade": 5,
                              "serious": True, "seriousness_criteria": ["death"], "causality": unrelated_code,
                              "action_taken": taken, "outcome": "fatal",
                              "death_date": local.date().isoformat(), "death_cause": cause,
                              "aware_at": local.isoformat()}  # fmt: skip
                    counts["deaths"] += 1
                else:
                    ae = person.ae or {}
                    report = {
                        "term": ae["term"], "onset": local.date().isoformat(), "grade": ae["grade"],
                        "serious": ae["serious"], "seriousness_criteria": ["hospitalisation"] if ae["serious"] else [],
                        "causality": related_code if ae["related"] else unrelated_code,
                        "expected_event": ae.get("expected_event"), "action_taken": taken,
                        "outcome": "recovered", "end": local.date().isoformat(), "aware_at": local.isoformat(),
                    }  # fmt: skip
                reported = attempt(pid, report_event, engine, investigator, pid, report)
                if not isinstance(reported, Exception):
                    counts["aes"] += 1
                    counts["serious"] += bool(report["serious"])
                    submissions(action, reported, (DeadlineKind.SAE_TO_SPONSOR, DeadlineKind.SUSAR_INITIAL), step_rng)
            elif action.step == "submit":
                # The site sends a due report (to the sponsor, a SUSAR's) and records when, through the safety service.
                assert action.visit is not None
                number, _, kind = action.visit.partition(" ")
                sent = attempt(pids[person.index], record_submission, engine, investigator, number, kind, action.at)
                if not isinstance(sent, Exception):
                    counts["submitted"] += 1
                    counts["late"] += any(d.kind.value == kind and d.state is DeadlineState.LATE
                                          for d in sent.deadlines)  # fmt: skip
                    # A fatal or life-threatening SUSAR's complete report is due once its initial report is sent.
                    submissions(action, sent, (DeadlineKind.SUSAR_COMPLETE,), step_rng)
    return SimulationSummary(
        screened=participants,
        enrolled=counts["enrolled"],
        randomized=counts["randomized"],
        not_enrolled=reasons,
        by_representative=counts["rep"],
        withdrawn=counts["withdrawn"],
        forms_saved=counts["forms"],
        forms_completed=counts["completed"],
        forms_signed=counts["signed"],
        visits_missed=counts["missed"],
        adverse_events=counts["aes"],
        serious=counts["serious"],
        reports_submitted=counts["submitted"],
        reports_late=counts["late"],
        deaths=counts["deaths"],
        refused=counts["refused"],
        refusals=dict(sorted(refusals.items(), key=lambda kv: -kv[1])),
        refused_whom={rule: tuple(who) for rule, who in refused_whom.items()},
        pauses_resumed=counts["resumed"],
        list_extensions=counts["extensions"],
        seconds=time.perf_counter() - began,
    )


def parse_effects(items: Iterable[str]) -> dict[str, float]:
    """``FORM.FIELD=VALUE`` items as a mapping; a clear error for anything else."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or "." not in key:
            raise SimulationError(f"effect: {item!r} must be FORM.FIELD=NUMBER, e.g. labs.il6=-40")
    return out
