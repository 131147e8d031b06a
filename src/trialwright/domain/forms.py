"""Form data: validating what a person enters, converting units, computing derived fields, and the form
lifecycle. Pure code: the services store the results and audit every change.

A value as entered is one of:

- a plain value: ``12.5``, ``"2021-05-20"``, ``true``, ``"male"``, ``["a", "b"]``;
- a value with its unit: ``{"value": 800, "unit": "ng/mL FEU"}``;
- not done or not applicable, with a reason: ``{"not_done": "sample clotted"}``,
  ``{"not_applicable": "no oxygen given"}``;
- below or above the assay's limit of quantification, with the limit: ``{"below_lloq": 1.5}``,
  ``{"above_uloq": 5000, "unit": "pg/mL"}``; stored as censored, never as zero or as the limit.

Each is stored as a ``StoredValue``: the canonical value, the value and unit as entered, a status and
any reason. A hard-limit breach, a wrong type, an unknown unit or field, a date in the future or before
enrolment, text longer than the field's limit or holding control or bidi-override characters
(``trialwright.domain.text``) is refused with a message naming the field, the rule and what is accepted;
a soft-limit breach is saved and reported so that a query is raised.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from trialwright.domain.calendars import local_date, on_site_clock
from trialwright.domain.numerals import typed_number
from trialwright.domain.text import text_problem
from trialwright.protocol.base import FREE_TEXT, Range
from trialwright.protocol.forms import FieldType, FormDef, FormField

__all__ = [
    "FormState",
    "FormValueError",
    "SoftBreach",
    "StoredValue",
    "Transition",
    "ValidatedEntry",
    "audit_value",
    "dump_values",
    "missing_required",
    "next_state",
    "number_text",
    "places_typed",
    "round_half_up",
    "validate_entries",
    "value_meaning",
]

STATUSES = ("value", "not_done", "not_applicable", "below_lloq", "above_uloq")


class FormValueError(ValueError):
    """Values refused; ``problems`` holds one ``field: rule`` message per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class StoredValue:
    """One field's value as stored: canonical value, what was entered, and its status."""

    value: Any  # canonical (number in the canonical unit, ISO text for dates and times, code, list, bool)
    status: str = "value"  # value, not_done, not_applicable, below_lloq, above_uloq, derived
    entered: Any = None  # the value as typed, before unit conversion
    unit: str | None = None  # the unit as entered (the canonical unit if none was named)
    reason: str | None = None  # not done, not applicable; a derived value's note (why none, or from fewer inputs)
    limit: float | None = None  # the LLOQ or ULOQ in the canonical unit, for censored values
    components: Mapping[str, Any] | None = None  # a derived score's parts (e.g. NEWS2's seven parameters)

    def as_json(self) -> dict[str, Any]:
        """The stored form (keys with empty values left out)."""
        return {k: (dict(v) if k == "components" else v) for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoredValue:
        """Back from the stored form."""
        return cls(**{"value": None, **data})

    def shown(self) -> str:
        """How people see it: the value, or <LLOQ, or not done (reason)."""
        if self.status == "below_lloq":
            return f"< {number_text(self.limit or 0.0)}"
        if self.status == "above_uloq":
            return f"> {number_text(self.limit or 0.0)}"
        if self.status in {"not_done", "not_applicable"}:
            return self.status.replace("_", " ")
        if isinstance(self.value, float):
            return number_text(self.value)
        if isinstance(self.value, list):
            return ", ".join(map(str, self.value))
        return "" if self.value is None else str(self.value)


def number_text(value: float | int) -> str:
    """A stored number written out exactly: ``12.5``, ``1000`` (not ``1000.0``), ``1234567`` (``:g`` would print
    ``1.23457e+06``, six digits)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class SoftBreach:
    """A saved value outside its soft limits: a query is raised for it."""

    field: str
    value: float
    limits: str


def dump_values(values: Mapping[str, StoredValue]) -> str:
    """Field id -> stored value as the JSON text a form's or a log entry's values are stored in (keys sorted)."""
    return _ENCODE({k: v.as_json() for k, v in values.items()})


#: ``json.dumps(..., sort_keys=True, ensure_ascii=False)``, its encoder built once (this runs several times a save).
_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def audit_value(value: StoredValue | None) -> Any:
    """A value as the audit trail records it (old or new): its stored form, None when there is none."""
    return None if value is None else value.as_json()


def value_meaning(value: StoredValue | None) -> Any:
    """What a change of a value is judged by: the value, status, reason and limit (a unit or spelling typed
    differently for the same value is no change)."""
    return None if value is None else (value.value, value.status, value.reason, value.limit)


@dataclass(frozen=True)
class ValidatedEntry:
    """The values of one save, validated: what to store, and the soft-limit breaches among them."""

    values: Mapping[str, StoredValue]
    soft: tuple[SoftBreach, ...] = field(default=())


def range_text(r: Range, unit: str | None) -> str:
    low = "" if r.min is None else f"{r.min:g}"
    high = "" if r.max is None else f"{r.max:g}"
    text = f"{low}-{high}" if r.min is not None and r.max is not None else (f">= {low}" if low else f"<= {high}")
    return f"{text} {unit}" if unit else text


def _outside(r: Range | None, value: float) -> bool:
    return r is not None and ((r.min is not None and value < r.min) or (r.max is not None and value > r.max))


def _number(f: FormField, raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("must be a number")
    if isinstance(raw, str):
        raw = typed_number(raw)
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, not {raw!r}") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _decimal(number: float | int | str) -> Decimal:
    """A number as the decimal it was written as: a float by its shortest repr (``80.25``, not the binary
    fraction nearest to it), text as typed (its digits and decimal separator made Latin)."""
    if isinstance(number, str):
        return Decimal(typed_number(number))
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def places_typed(raw: Any) -> int:
    """How many decimal places a typed number carries, trailing zeros not counted (``80.250`` has 2, ``80.0``
    none). A value that is not a finite number has none (the number rule names that problem)."""
    try:
        exponent = _decimal(raw).normalize().as_tuple().exponent
    except (InvalidOperation, TypeError, ValueError):
        return 0
    return max(0, -exponent) if isinstance(exponent, int) else 0


def round_half_up(value: float, places: int) -> float:
    """``value`` to ``places`` decimal places, a half rounded away from zero (80.25 -> 80.3, -2.675 -> -2.68;
    Python's ``round`` rounds 80.25 to 80.2, to even). The float is read to the 15 significant digits a double
    holds exactly, so a computed 100.1 / 0.8 (125.12499999999999 in binary) is the 125.125 it stands for."""
    exact = Context(prec=15, rounding=ROUND_HALF_EVEN).create_decimal(_decimal(value))
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _convert(f: FormField, number: float, unit: str | None) -> float:
    if _canonical_unit(f, unit):
        return number
    for alt in f.alternative_units:
        if alt.unit == unit:
            return float(_decimal(number) * _decimal(alt.factor) + _decimal(alt.offset))
    accepted = [u for u in [f.unit, *(a.unit for a in f.alternative_units)] if u]
    raise ValueError(f"unknown unit {unit!r}; accepted: {', '.join(accepted) or 'no unit'}")


def _canonical_unit(f: FormField, unit: str | None) -> bool:
    return unit is None or unit == f.unit or (f.unit is None and unit == "")


def _rounded(f: FormField, value: float, raw: Any, unit: str | None) -> float | int:
    """The canonical number to store. A number typed in the field's own unit is kept exactly as typed: one
    with more decimal places than the protocol keeps is refused, never rounded behind the typist's back. A
    number converted from another unit is rounded half away from zero to the protocol's places (the stored
    value keeps what was typed, and its unit, beside it)."""
    if f.type is FieldType.INTEGER:
        if abs(value - round(value)) > 1e-9:
            raise ValueError(f"must be a whole number, not {value:g}")
        return round(value)
    if f.decimals is None:
        return value
    if _canonical_unit(f, unit):
        if (places := places_typed(raw)) > f.decimals:
            kept = "a whole number" if f.decimals == 0 else f"{f.decimals} decimal place{'s' * (f.decimals > 1)}"
            typed = f"{str(raw).strip()} has {places} decimal place{'s' * (places > 1)}"
            raise ValueError(f"{typed}; this field keeps {kept} (the protocol's decimals), so give it to that "
                             "precision")  # fmt: skip
        return value
    return round_half_up(value, f.decimals)


def _moment(f: FormField, raw: Any, tz: ZoneInfo, site_clock: bool) -> tuple[str, dt.date]:
    """ISO text and the calendar date (the site's local date) of a date, datetime or time value."""
    text = raw.isoformat() if isinstance(raw, dt.date | dt.time) else str(raw).strip()
    if f.type is FieldType.DATE:
        try:
            instant = dt.datetime.fromisoformat(text) if "T" in text else None
        except ValueError:
            instant = None
        if instant is not None and instant.tzinfo is not None:  # an instant: its date at the site
            day = local_date(instant, tz, f.id)
            return day.isoformat(), day
        try:
            day = dt.date.fromisoformat(text[:10]) if len(text) >= 10 else dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"must be a date written YYYY-MM-DD, not {text!r}") from None
        return day.isoformat(), day
    if f.type is FieldType.DATETIME:
        try:
            moment = dt.datetime.fromisoformat(on_site_clock(text, tz, f.id) if site_clock else text)
        except ValueError as exc:
            if str(exc).startswith(f"{f.id}: "):
                raise ValueError(str(exc).split(": ", 1)[1]) from None
            raise ValueError(f"must be a date and time written YYYY-MM-DDTHH:MM+HH:MM, not {text!r}") from None
        if moment.tzinfo is None:
            raise ValueError(f"{text} has no UTC offset; give the time with its offset, e.g. 2024-05-01T09:30+03:30")
        return moment.astimezone(dt.UTC).isoformat(timespec="minutes"), local_date(moment, tz, f.id)
    try:
        return dt.time.fromisoformat(text).isoformat(timespec="minutes"), dt.date.min
    except ValueError:
        raise ValueError(f"must be a time written HH:MM, not {text!r}") from None


def _choice(f: FormField, raw: Any) -> Any:
    codes = [c.code for c in f.choices]
    if f.type is FieldType.MULTI_CHOICE:
        picked = raw if isinstance(raw, list) else [p for p in str(raw).split(",") if p.strip()]
        bad = [str(p) for p in picked if str(p).strip() not in codes]
        if bad:
            raise ValueError(f"{', '.join(bad)} not among the choices {', '.join(codes)}")
        return [str(p).strip() for p in picked]
    code = str(raw).strip()
    if code not in codes:
        raise ValueError(f"{code!r} is not one of the choices {', '.join(codes)}")
    return code


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "yes", "1", "y"}:
        return True
    if text in {"false", "no", "0", "n"}:
        return False
    raise ValueError(f"must be yes or no, not {raw!r}")


def _one(
    f: FormField,
    raw: Any,
    *,
    today: dt.date,
    enrolled_on: dt.date | None,
    tz: ZoneInfo,
    site_clock: bool,
    now: dt.datetime | None = None,
) -> tuple[StoredValue, SoftBreach | None]:
    unit: str | None = None
    if isinstance(raw, Mapping):
        unit = raw.get("unit")
        special = [k for k in ("not_done", "not_applicable", "below_lloq", "above_uloq") if k in raw]
        if len(special) > 1:
            raise ValueError(f"give only one of {', '.join(special)}")
        if special:
            status, detail = special[0], raw[special[0]]
            if status in {"not_done", "not_applicable"}:
                allowed = f.not_done_allowed if status == "not_done" else f.not_applicable_allowed
                if not allowed:
                    raise ValueError(f"may not be recorded as {status.replace('_', ' ')}")
                if not str(detail or "").strip():
                    raise ValueError(f"{status.replace('_', ' ')} needs a reason")
                reason = str(detail).strip()
                if (problem := text_problem(reason, limit=FREE_TEXT, multiline=True)) is not None:
                    raise ValueError(f"the reason {problem}")
                return StoredValue(None, status, reason=reason), None
            if not f.quantification_limits:
                raise ValueError("has no limits of quantification; enter the value")
            limit = _convert(f, _number(f, detail), unit)
            if _outside(f.hard_limits, limit):
                raise ValueError(f"limit {limit:g} is outside the accepted range {range_text(f.hard_limits, f.unit)}")  # type: ignore[arg-type]
            return StoredValue(None, status, entered=detail, unit=unit or f.unit, limit=limit), None
        if "value" not in raw:
            raise ValueError("give value, not_done, not_applicable, below_lloq or above_uloq")
        raw = raw["value"]
    if f.type in {FieldType.INTEGER, FieldType.DECIMAL}:
        number = _number(f, raw)
        canonical = _rounded(f, _convert(f, number, unit), raw, unit)
        if f.hard_limits is not None and _outside(f.hard_limits, canonical):
            shown = f"{canonical:g} {f.unit}" if f.unit else f"{canonical:g}"
            if unit and unit != f.unit:  # what was typed, then what it is in the field's unit
                shown = f"{str(raw).strip()} {unit} ({shown})"
            raise ValueError(f"{shown} is outside the accepted range {range_text(f.hard_limits, f.unit)}")
        soft = None
        if f.soft_limits is not None and _outside(f.soft_limits, canonical):
            soft = SoftBreach(f.id, float(canonical), range_text(f.soft_limits, f.unit))
        return StoredValue(canonical, entered=raw, unit=unit or f.unit), soft
    if f.type in {FieldType.DATE, FieldType.DATETIME, FieldType.TIME}:
        text, day = _moment(f, raw, tz, site_clock)
        if f.type is not FieldType.TIME:
            if day > today:
                raise ValueError(f"{day.isoformat()} is in the future")
            if f.type is FieldType.DATETIME and now is not None and dt.datetime.fromisoformat(text) > now:
                at, site_now = dt.datetime.fromisoformat(text).astimezone(tz), now.astimezone(tz)
                raise ValueError(f"{at:%Y-%m-%d %H:%M} is in the future (it is {site_now:%Y-%m-%d %H:%M} at the site)")
            if enrolled_on is not None and day < enrolled_on and not f.may_precede_enrolment:
                raise ValueError(f"{day.isoformat()} is before enrolment on {enrolled_on.isoformat()}")
        return StoredValue(text, entered=None if text == raw else str(raw)), None
    if f.type in {FieldType.CHOICE, FieldType.MULTI_CHOICE}:
        return StoredValue(_choice(f, raw)), None
    if f.type is FieldType.BOOLEAN:
        return StoredValue(_boolean(raw)), None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"must be text, not {type(raw).__name__}")
    text = str(raw).strip()
    if not text:
        raise ValueError("is empty; leave it out, or record it as not done with a reason")
    if (problem := text_problem(text, limit=f.text_limit, multiline=f.multiline)) is not None:
        raise ValueError(problem)
    return StoredValue(text), None


def validate_entries(
    form: FormDef,
    entries: Mapping[str, Any],
    *,
    today: dt.date,
    enrolled_on: dt.date | None = None,
    timezone: str = "UTC",
    typed_on_site_clock: bool = False,
    now: dt.datetime | None = None,
) -> ValidatedEntry:
    """Validate the values entered on one form; every problem is reported at once.

    Dates are compared as the site's local dates (``timezone``; ``today`` and ``enrolled_on`` are the
    site's). A date and time needs its UTC offset, unless ``typed_on_site_clock`` (a page whose input says
    "site time") reads an offset-less time on the site's clock. Given ``now`` (aware), a date and time
    after it is refused as in the future, to the minute; without it only its date is compared with today.

    ``None`` or ``""`` for a field means "clear it" and is returned as ``None`` in ``values``.
    """
    problems: list[str] = []
    values: dict[str, StoredValue] = {}
    soft: list[SoftBreach] = []
    tz = ZoneInfo(timezone)
    known = {f.id: f for f in form.fields}
    for name, raw in entries.items():
        f = known.get(name)
        if f is None:
            problems.append(f"{name}: form {form.id!r} has no such field (fields: {', '.join(known)})")
            continue
        if f.derived is not None:
            problems.append(f"{name}: is computed by trialwright ({f.derived.name}), never entered")
            continue
        if raw is None or raw == "":
            values[name] = None  # type: ignore[assignment]
            continue
        try:
            stored, breach = _one(
                f, raw, today=today, enrolled_on=enrolled_on, tz=tz, site_clock=typed_on_site_clock, now=now
            )
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        values[name] = stored
        if breach is not None:
            soft.append(breach)
    if problems:
        raise FormValueError(problems)
    return ValidatedEntry(values, tuple(soft))


def missing_required(form: FormDef, values: Mapping[str, StoredValue]) -> list[str]:
    """Required fields with neither a value nor a recorded reason (derived fields excluded)."""
    return [f.id for f in form.fields if f.required and f.derived is None and values.get(f.id) is None]


class FormState(StrEnum):
    """Where a form is in its lifecycle."""

    DRAFT = "draft"
    COMPLETE = "complete"
    VERIFIED = "verified"
    SIGNED = "signed"
    LOCKED = "locked"


class Transition(StrEnum):
    """What can happen to a form."""

    EDIT = "edit"
    COMPLETE = "complete"
    VERIFY = "verify"
    SIGN = "sign"
    LOCK = "lock"
    UNLOCK = "unlock"


_MOVES: dict[Transition, dict[FormState, FormState]] = {
    # Editing a completed form needs a reason; it voids source data verification and the signature.
    Transition.EDIT: {
        FormState.DRAFT: FormState.DRAFT,
        FormState.COMPLETE: FormState.COMPLETE,
        FormState.VERIFIED: FormState.COMPLETE,
        FormState.SIGNED: FormState.COMPLETE,
    },
    Transition.COMPLETE: {FormState.DRAFT: FormState.COMPLETE},
    # Source data verification after the signature is recorded on the signed form (its verified_at/by), which
    # stays signed: verifying neither voids nor precedes the signature. A form is verified at most once.
    Transition.VERIFY: {FormState.COMPLETE: FormState.VERIFIED, FormState.SIGNED: FormState.SIGNED},
    Transition.SIGN: {FormState.COMPLETE: FormState.SIGNED, FormState.VERIFIED: FormState.SIGNED},
    Transition.LOCK: {
        FormState.COMPLETE: FormState.LOCKED,
        FormState.VERIFIED: FormState.LOCKED,
        FormState.SIGNED: FormState.LOCKED,
    },
}


def next_state(state: FormState, move: Transition, *, before_lock: FormState | None = None) -> FormState:
    """The state after ``move``, or ValueError naming the rule (unlock returns to the state before the lock)."""
    if move is Transition.UNLOCK:
        if state is not FormState.LOCKED:
            raise ValueError(f"state: the form is {state.value}, not locked")
        return before_lock or FormState.COMPLETE
    allowed = _MOVES[move]
    if state not in allowed:
        if state is FormState.LOCKED:
            raise ValueError("state: the form is locked; the data manager unlocks it with a reason first")
        sources = ", ".join(s.value for s in allowed)
        raise ValueError(f"state: a {state.value} form cannot be {_PAST[move]} (only a form that is {sources})")
    return allowed[state]


_PAST = {
    Transition.EDIT: "edited",
    Transition.COMPLETE: "completed",
    Transition.VERIFY: "verified",
    Transition.SIGN: "signed",
    Transition.LOCK: "locked",
    Transition.UNLOCK: "unlocked",
}
