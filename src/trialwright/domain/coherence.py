"""Rules that keep a participant's data coherent across forms and events (pure: no database).

Built in, for every trial, and refused on save (a hard rule names the field, the value and what it breaks):

- **nothing clinical before consent**: a date or date-time on a form is not before the participant's consent
  (a field the protocol marks ``may_precede_enrolment``, such as a birth or admission date, is exempt);
- **no treatment before randomization**: a date or date-time on the protocol's treatment record
  (``analysis_plan.treatment.form``) is not before the randomization, nor before the pharmacist recorded the
  participant's dose as prepared (when the arm has something to prepare);
- **a derived value within its hard limits**: an age of 221 or of -3 (a birth date after enrolment) is refused,
  naming the inputs it was derived from.

Declared in the protocol:

- ``not_before`` on a date or date-time field: each listed reference (``field`` on the same form,
  ``form.field`` at the same visit, or ``participant.consented_at``, ``participant.enrolled_at``,
  ``participant.randomized_at``) is not after this field's value (an infusion stops no earlier than it started).

Two date-times compare at the minute, the precision a form's date-time carries (it is stored to the minute): a
dose given at 17:02:49, stored as 17:02, is not before its preparation recorded at 17:02:01 (the same minute), and
a refusal's two times then always differ as shown. A date and a date-time compare as the site's local dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from trialwright.domain.calendars import local_date
from trialwright.domain.forms import StoredValue, range_text
from trialwright.protocol import FieldType, Protocol

__all__ = ["EVENTS", "Breach", "Moment", "ParticipantFacts", "hard_breaches", "is_before", "moment_of"]

#: The participant's events a rule may name, as ``participant.<event>``.
EVENTS = ("consented_at", "enrolled_at", "randomized_at")
_WORDS = {"consented_at": "the consent", "enrolled_at": "the enrolment", "randomized_at": "the randomization"}
_TIMED = {FieldType.DATE, FieldType.DATETIME}


@dataclass(frozen=True)
class ParticipantFacts:
    """What the rules compare a form's values with: the participant's events (UTC) and the site's zone."""

    timezone: ZoneInfo
    consented_at: dt.datetime | None = None
    enrolled_at: dt.datetime | None = None
    randomized_at: dt.datetime | None = None
    prepared_at: dt.datetime | None = None  # the participant's dose, recorded as prepared by the pharmacist

    def event(self, name: str) -> dt.datetime | None:
        return {"consented_at": self.consented_at, "enrolled_at": self.enrolled_at,
                "randomized_at": self.randomized_at}[name]  # fmt: skip


@dataclass(frozen=True)
class Breach:
    """A rule the data breaks: the rule, the fields concerned (form.field) and what to tell the person."""

    rule: str
    fields: tuple[str, ...]
    message: str


Moment = dt.date | dt.datetime


def moment_of(kind: FieldType, stored: StoredValue | None) -> Moment | None:
    """A date or date-time field's stored value as a date or an aware date-time (None: no value, or not timed)."""
    if stored is None or stored.status not in {"value", "derived"} or stored.value is None:
        return None
    if kind is FieldType.DATETIME:
        return dt.datetime.fromisoformat(stored.value)
    if kind is FieldType.DATE:
        return dt.date.fromisoformat(stored.value)
    return None


def is_before(a: Moment, b: Moment, tz: ZoneInfo) -> bool:
    """Whether ``a`` is before ``b``: by the minute when both are date-times (a form's date-time carries minutes; an
    event such as a preparation carries seconds, never compared beyond what both carry), else as the site's local
    dates."""
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return _minute(a) < _minute(b)
    day_a = local_date(a, tz) if isinstance(a, dt.datetime) else a
    day_b = local_date(b, tz) if isinstance(b, dt.datetime) else b
    return day_a < day_b


def _minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _shown(moment: Moment, tz: ZoneInfo) -> str:
    if isinstance(moment, dt.datetime):
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return moment.isoformat()


def hard_breaches(
    protocol: Protocol,
    form_id: str,
    forms: Mapping[str, Mapping[str, StoredValue]],
    facts: ParticipantFacts,
    changed: Callable[[str, str], bool] = lambda form_id, field_id: True,
) -> list[Breach]:
    """The hard rules that ``forms`` (form id -> values, the visit's forms after this save, derived values
    included) break in what changed: the built-in invariants and each field's ``not_before``."""
    return list(_breaches(protocol, form_id, forms, facts, changed))


def _breaches(
    protocol: Protocol,
    form_id: str,
    forms: Mapping[str, Mapping[str, StoredValue]],
    facts: ParticipantFacts,
    changed: Callable[[str, str], bool],
) -> Iterator[Breach]:
    treatment = protocol.analysis_plan.treatment if protocol.analysis_plan else None
    # Every form of the visit: a not_before on another form is checked when the end saved now changes.
    for fid in sorted(forms, key=lambda f: f != form_id):
        yield from _timed(protocol, fid, forms, facts, changed, treatment)
    yield from _derived_limits(protocol, forms, changed)


def _timed(
    protocol: Protocol,
    form_id: str,
    forms: Mapping[str, Mapping[str, StoredValue]],
    facts: ParticipantFacts,
    changed: Callable[[str, str], bool],
    treatment: Any,
) -> Iterator[Breach]:
    tz = facts.timezone
    form = protocol.form(form_id)
    values = forms.get(form_id, {})
    for f in form.fields:
        moment = moment_of(f.type, values.get(f.id)) if f.type in _TIMED else None
        if moment is None:
            continue
        ref = f"{form_id}.{f.id}"
        for other in f.not_before:  # checked when either end changed (moving a start past its stop too)
            earlier, name = _reference(protocol, form_id, other, forms, facts)
            other_end = other.split(".", 1) if "." in other else (form_id, other)
            either = changed(form_id, f.id) or changed(other_end[0], other_end[1])
            if earlier is not None and either and is_before(moment, earlier, tz):
                yield Breach("not_before", (ref, name), (
                    f"{ref}: {_shown(moment, tz)} is before {name} ({_shown(earlier, tz)}); the protocol says it "
                    f"is not before {other} (not_before)"))  # fmt: skip
        if not changed(form_id, f.id):
            continue
        if not f.may_precede_enrolment and facts.consented_at and is_before(moment, facts.consented_at, tz):
            yield Breach("before_consent", (ref,), (
                f"{ref}: {_shown(moment, tz)} is before the consent ({_shown(facts.consented_at, tz)}); nothing "
                "is recorded about a participant before they consent (built-in rule)"))  # fmt: skip
        if treatment is not None and treatment.form == form_id and facts.randomized_at and is_before(
            moment, facts.randomized_at, tz
        ):
            yield Breach("treatment_before_randomization", (ref,), (
                f"{ref}: {_shown(moment, tz)} is before the randomization ({_shown(facts.randomized_at, tz)}); "
                "no treatment is given before randomization (built-in rule)"))  # fmt: skip
        if treatment is not None and treatment.form == form_id and facts.prepared_at and is_before(
            moment, facts.prepared_at, tz
        ):
            yield Breach("treatment_before_preparation", (ref,), (
                f"{ref}: {_shown(moment, tz)} is before the dose was prepared ({_shown(facts.prepared_at, tz)}); "
                "no treatment is given before its preparation (built-in rule)"))  # fmt: skip



def _reference(
    protocol: Protocol,
    form_id: str,
    ref: str,
    forms: Mapping[str, Mapping[str, StoredValue]],
    facts: ParticipantFacts,
) -> tuple[Moment | None, str]:
    """The moment ``ref`` names and how to say it: a participant event, ``form.field`` at the visit or ``field``."""
    other, dot, name = ref.partition(".")
    if other == "participant":
        return facts.event(name), _WORDS[name]
    if not dot:
        other, name = form_id, ref
    kind = protocol.form(other).field(name).type
    return moment_of(kind, forms.get(other, {}).get(name)), f"{other}.{name}"


def _derived_limits(
    protocol: Protocol, forms: Mapping[str, Mapping[str, StoredValue]], changed: Callable[[str, str], bool]
) -> Iterator[Breach]:
    for form_id, values in forms.items():
        for f in protocol.form(form_id).fields:
            stored = values.get(f.id)
            limits = f.hard_limits
            if f.derived is None or limits is None or stored is None or not changed(form_id, f.id):
                continue
            inputs = _inputs(form_id, f.derived)
            if stored.value is None and (stored.reason or "").startswith("not computable"):
                yield Breach("derived_hard_limits", (f"{form_id}.{f.id}", *inputs), (
                    f"{form_id}.{f.id}, derived from {', '.join(inputs)}, is {stored.reason}; its hard limits "
                    f"{range_text(limits, f.unit)} expect a value: correct the values it is derived from"))  # fmt: skip
                continue
            if not isinstance(stored.value, int | float):
                continue
            low, high = limits.min, limits.max
            if (low is not None and stored.value < low) or (high is not None and stored.value > high):
                yield Breach("derived_hard_limits", (f"{form_id}.{f.id}", *inputs), (
                    f"{form_id}.{f.id}: {stored.value:g}, derived from {', '.join(inputs)}, is outside the hard "
                    f"limits {range_text(limits, f.unit)}; correct the values it is derived from"))  # fmt: skip


def _inputs(form_id: str, derived: Any) -> tuple[str, ...]:
    """The form.field (or screening.field) references a derived field reads."""
    sources = derived.inputs.values() if hasattr(derived, "inputs") else derived.sources
    return tuple(s if "." in s else f"{form_id}.{s}" for s in sources)
