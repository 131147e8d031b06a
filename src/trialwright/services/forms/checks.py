"""What a save computes and checks across fields: derived values (each after those it reads), the
protocol's data checks (refusing ones before the write, the others as automatic queries after it), the
kit check and forms at a visit after the participant's death.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.declared import Missing, derivation_order, evaluate
from trialwright.domain.derivations import components, derive
from trialwright.domain.forms import StoredValue, dump_values, round_half_up
from trialwright.domain.roles import SYSTEM_ACTOR
from trialwright.domain.treatment import code_held, kit_field
from trialwright.domain.visits import window_of
from trialwright.domain.wording import check_words, field_words
from trialwright.protocol import Derivation, Protocol
from trialwright.protocol.forms import DataCheck, FieldType, FormField
from trialwright.services.bulk_reads import once
from trialwright.services.deaths import death_of
from trialwright.services.forms.common import RefusedValues, _load, _tz
from trialwright.services.forms.queries import _auto_close, _open_query
from trialwright.services.forms.visits import _references
from trialwright.store.administered import claimant, hold, holders, release
from trialwright.store.randomization_tables import allocation_entries, preparations
from trialwright.store.screening_tables import screenings


def _typed(kind: FieldType, value: Any) -> Any:
    if value is None:
        return None
    if kind is FieldType.DATE:
        return dt.date.fromisoformat(value)
    if kind is FieldType.DATETIME:
        return dt.datetime.fromisoformat(value)
    return value


_ABSENT = {"not_done": "not done", "not_applicable": "not applicable", "below_lloq": "below the LLOQ",
           "above_uloq": "above the ULOQ", "derived": "not computed"}  # fmt: skip


def _derive_all(
    session: Session,
    protocol: Protocol,
    participant: Any,
    visit_row: Any,
    pending: dict[str, dict[str, StoredValue]],
) -> None:
    """Recompute every derived field of the forms at this visit (``pending``: form id -> values), each
    after the derived fields it reads."""
    text = once(
        session,
        ("screening_values", participant.screening_id),
        lambda: session.execute(
            select(screenings.c.screening_values).where(screenings.c.id == participant.screening_id)
        ).scalar_one(),
    )
    screening_values: list[dict[str, Any]] = []  # read from its text only if a derivation is computed

    def value_of(other: str, name: str, kind: Any) -> Any:
        """The typed value an input holds, or Missing with why."""
        if kind is _SCREENING:
            if not screening_values:
                screening_values.append(json.loads(text))
            value = screening_values[0].get(name)
            return Missing("empty") if value is None else value
        stored = pending.get(other, _NONE).get(name)
        if stored is None:
            return Missing("empty")
        if stored.status not in _PRESENT or stored.value is None:
            return Missing(_ABSENT.get(stored.status, stored.status))
        if kind is _UNKNOWN:  # no such field in the protocol: refused as the look-up refuses it
            kind = protocol.form(other).field(name).type
        return _typed(kind, stored.value)

    steps, memo = _derivation_plan(protocol)
    for index, (form_id, f, spec, sources, reads_screening) in enumerate(steps):
        if form_id not in pending:
            continue
        values = pending[form_id]
        # A derivation is a function of its inputs' stored values (and the screening's, and the protocol's): the
        # very same input objects as a derivation computed before give the value it gave (the objects are frozen,
        # and the memo holds them, so their ids are not reused while it does).
        held = tuple(None if kind is _SCREENING else pending.get(other, _NONE).get(name)
                     for _, other, name, kind in sources)  # fmt: skip
        memo_key = (index, text if reads_screening else None, *map(id, held))
        known = memo.get(memo_key)
        if known is not None and all(a is b for a, b in zip(known[0], held, strict=True)):
            derived = known[1]
        else:
            derived = _derived(spec, f, functools.partial(_inputs, value_of, sources))
            if len(memo) >= 4096:
                memo.clear()
            memo[memo_key] = (held, derived)
        if derived is None:
            values.pop(f.id, None)
        else:
            _put(values, f.id, derived)


def _inputs(value_of: Callable[[str, str, Any], Any], sources: Sequence[tuple[str, str, str, Any]]) -> dict[str, Any]:
    return {key: value_of(other, name, kind) for key, other, name, kind in sources}


def _derived(spec: Any, f: FormField, read: Callable[[], dict[str, Any]]) -> StoredValue | None:
    """A derived field's value from its inputs (``read``: by role or source, typed, or ``Missing``; for a declared
    derivation read inside its refusal, as before); None: none (removed)."""
    if isinstance(spec, Derivation):
        inputs = {role: None if isinstance(v, Missing) else v for role, v in read().items()}
        try:
            result = derive(spec.name, inputs, spec.parameters)
        except ValueError as exc:
            return StoredValue(None, "derived", reason=f"not computable: {exc}")
        if result is None:
            return None
        if isinstance(result, float) and f.type is FieldType.INTEGER:
            if not result.is_integer():  # protocol check refuses such a declaration; never truncate
                return StoredValue(None, "derived", reason=f"not computable: {result:g} is not whole")
            result = int(result)
        elif isinstance(result, float):
            result = round_half_up(result, _places(f))
        parts = components(spec.name, inputs, spec.parameters)
        return StoredValue(result, "derived", components=parts)
    try:
        declared = evaluate(spec, read())
    except ValueError as exc:
        return StoredValue(None, "derived", reason=f"not computable: {exc}")
    number = declared.value
    if number is not None and f.type is FieldType.INTEGER:
        if not float(number).is_integer():  # protocol check refuses such a declaration; never truncate
            return StoredValue(None, "derived", reason=f"not computable: {number:g} is not whole")
        number = int(number)
    elif number is not None:
        number = round_half_up(float(number), _places(f))
    return StoredValue(number, "derived", reason=declared.note)


_PRESENT = frozenset({"value", "derived"})
_NONE: Mapping[str, StoredValue] = {}
_SCREENING = object()  # an input read from the screening's values
_UNKNOWN = object()  # an input naming a field the protocol does not have (looked up when read, to refuse it)


#: A derived field to compute: its form id, field, derivation, inputs as (key, form id, field id, field type) and
#: whether one is the screening's.
_Step = tuple[str, FormField, Any, tuple[tuple[str, str, str, Any], ...], bool]
#: What derivations gave: (step, the screening's text, the inputs' ids) -> (the inputs, the value or None).
_Memo = dict[tuple[Any, ...], tuple[tuple[StoredValue | None, ...], StoredValue | None]]


def _derivation_plan(protocol: Protocol) -> tuple[tuple[_Step, ...], _Memo]:
    """The derived fields in ``derivation_order``, each with its definition and its inputs resolved once per
    protocol (the protocol is frozen): (key, form id, field id, field type) per input, the key a derivation's role
    or a declared derivation's source as written."""
    held = _PLANS.get(id(protocol))
    if held is not None and held[0] is protocol:
        return held[1], held[2]
    steps: list[_Step] = []
    for form_id, field_id in derivation_order(protocol):
        f = protocol.form(form_id).field(field_id)
        spec = f.derived
        assert spec is not None
        written = spec.inputs.items() if isinstance(spec, Derivation) else ((s, s) for s in spec.sources)
        sources: list[tuple[str, str, str, Any]] = []
        for key, source in written:
            other, dot, name = source.partition(".")
            if not dot:
                other, name = form_id, source
            kind: Any = _SCREENING
            if other != "screening":
                try:
                    kind = protocol.form(other).field(name).type
                except KeyError:
                    kind = _UNKNOWN
            sources.append((key, other, name, kind))
        steps.append((form_id, f, spec, tuple(sources), any(kind is _SCREENING for *_, kind in sources)))
    if len(_PLANS) >= 16:  # protocols come and go in long-lived processes (tests): forget the old ones
        _PLANS.clear()
    memo: _Memo = {}
    _PLANS[id(protocol)] = (protocol, tuple(steps), memo)
    return tuple(steps), memo


_PLANS: dict[int, tuple[Protocol, tuple[_Step, ...], _Memo]] = {}


def _put(values: dict[str, StoredValue], field_id: str, derived: StoredValue) -> None:
    """A derived value stored, the value already held kept when it is the very same stored value (the same JSON,
    types and all): the save then sees an unchanged form unchanged (the same objects, ``save._same_values``) and
    its JSON is not built again (``common._dump`` remembers the objects)."""
    held = values.get(field_id)
    if held is derived:
        return
    # Equal in Python is not enough (``1`` and ``1.0``, ``0.0`` and ``-0.0`` are written differently): the same JSON.
    if held is None or held != derived or dump_values({"": held}) != dump_values({"": derived}):
        values[field_id] = derived


def _places(f: FormField) -> int:
    """The places a derived decimal is rounded to: the protocol's, never a default (protocol check refuses a
    derived decimal field without them)."""
    if f.decimals is None:
        raise ValueError(f"{f.id}: a derived decimal field needs decimals (protocol check refuses it without)")
    return f.decimals


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}


def _check_value(protocol: Protocol, forms: Mapping[str, Mapping[str, StoredValue]], ref: str) -> Any:
    form_id, _, name = ref.partition(".")
    stored = forms.get(form_id, {}).get(name)
    if stored is None or stored.status not in {"value", "derived"} or stored.value is None:
        return None
    kind = protocol.form(form_id).field(name).type
    return _typed(kind, stored.value)


def _failed(
    protocol: Protocol, check: DataCheck, forms: Mapping[str, Mapping[str, StoredValue]], window: Any
) -> bool | None:
    """Whether a check fails on these forms (None: not applicable yet)."""
    if check.kind == "in_window":
        assert check.field is not None
        value = _check_value(protocol, forms, check.field)
        if value is None or window is None:
            return None
        day = value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else None
        if day is None:
            day = local_date(value, window[2])
        return not window[0] <= day <= window[1]
    left = [_check_value(protocol, forms, r) for r in check.left]
    right = [_check_value(protocol, forms, r) for r in check.right]
    if any(v is None for v in [*left, *right]):
        return None
    if all(isinstance(v, int | float) for v in [*left, *right]):
        lhs: Any = sum(left)
        rhs: Any = sum(right) + check.tolerance
    else:  # dates and times compare one to one
        lhs, rhs = left[0], right[0]
    assert check.op is not None
    return not _OPS[check.op](lhs, rhs)


def _refs(check: DataCheck) -> list[str]:
    return [*check.left, *check.right, *([check.field] if check.field else [])]


def _window(session: Session, protocol: Protocol, participant: Any, visit_row: Any) -> Any:
    """The visit's window as (earliest, latest, site zone), or None (an event or unscheduled visit)."""
    if visit_row.visit_id.startswith("unscheduled-"):
        return None
    visit = protocol.visit(visit_row.visit_id)
    reference = _references(session, protocol, participant).get(visit.reference)
    if reference is None or visit.kind != "scheduled":
        return None
    _, earliest, latest = window_of(visit, reference)
    return earliest, latest, _tz(protocol, participant.site)


def _refused_checks(
    session: Session,
    protocol: Protocol,
    participant: Any,
    visit_row: Any,
    pending: Mapping[str, Mapping[str, StoredValue]],
    changed: Mapping[str, Sequence[str]],
) -> list[str]:
    """The data checks declared ``severity: refuse`` that this save would break, as messages naming the fields."""
    out = []
    for check in (c for c in protocol.data_checks if c.severity == "refuse"):
        refs = _refs(check)
        if not any(ref.partition(".")[2] in changed.get(ref.partition(".")[0], ()) for ref in refs):
            continue
        if _failed(protocol, check, pending, _window(session, protocol, participant, visit_row)):
            out.append(f"{', '.join(refs)}: {check.message} (data check {check.id})")
    return out


def _run_checks(
    session: Session,
    protocol: Protocol,
    participant: Any,
    visit_row: Any,
    rows: Mapping[str, Any],
    changed: Mapping[str, Sequence[str]],
    *,
    created: int | None = None,
) -> None:
    """Evaluate the checks that read a field changed now (a query once closed is not raised again for
    the same data). ``created``: the record this save created, which has no query of a check yet to close."""
    forms = {form_id: _load(row) for form_id, row in rows.items()}
    window: list[Any] = []  # read once, and only if a check is evaluated

    def visit_window() -> Any:
        if not window:
            window.append(_window(session, protocol, participant, visit_row))
        return window[0]

    for check in protocol.data_checks:
        refs = _refs(check)
        first = refs[0].partition(".")[0]
        touched = any(ref.partition(".")[2] in changed.get(ref.partition(".")[0], ()) for ref in refs)
        if first not in rows or not touched or check.severity == "refuse":
            continue
        failed = _failed(protocol, check, forms, visit_window())
        # A query on each field concerned, on its own form of the visit.
        concerned = [(fid, name) for fid, _, name in (ref.partition(".") for ref in refs) if fid in rows]
        text = _check_text(protocol, check, forms, visit_window()) if failed else ""
        for fid, name in concerned:
            if failed:
                _open_query(session, SYSTEM_ACTOR, participant, rows[fid].id, name, "data_check", text, check.id)
            elif failed is False and rows[fid].id != created:
                _auto_close(session, participant, rows[fid].id, "data_check", field_id=name, check_id=check.id)


def _check_text(
    protocol: Protocol, check: DataCheck, forms: Mapping[str, Mapping[str, StoredValue]], window: Any
) -> str:
    """The query a failed data check raises: the protocol's message, then the rule in words; an out-of-window one
    says the value and the window (dates on the site's calendar)."""
    if check.kind == "in_window" and window is not None:
        assert check.field is not None
        value = _check_value(protocol, forms, check.field)
        day = value if not isinstance(value, dt.datetime) else local_date(value, window[2])
        label = field_words(protocol, check.field, form_id=check.field.partition(".")[0]) or check.field
        return (f"{check.message} ({label} {day.isoformat()} is outside the visit window {window[0].isoformat()} to "
                f"{window[1].isoformat()})")  # fmt: skip
    return f"{check.message} (expected: {check_words(protocol, check)})"


def _after_death(session: Session, protocol: Protocol, participant_id: str, visit_row: Any, reason: str | None) -> None:
    """A form at a visit held after the participant's death needs a reason (e.g. post-mortem results); the visit
    that records the death (the protocol's death record) does not."""
    record = protocol.safety.death_record
    if visit_row.visit_date is None or (record is not None and visit_row.visit_id == record.visit):
        return
    death = death_of(session, protocol, participant_id)
    if death is not None and visit_row.visit_date > death.on and not (reason or "").strip():
        raise RefusedValues(
            [
                f"visit_date: {visit_row.visit_id} on {visit_row.visit_date.isoformat()} is after the participant's "
                f"death on {death.on.isoformat()} ({death.source}); a form after death needs a reason"
            ]
        )


def _kit_check(
    session: Session,
    protocol: Protocol,
    participant_id: str,
    form_id: str,
    values: Mapping[str, StoredValue],
    changed: Sequence[str],
) -> Sequence[Any] | None:
    """The kit check: a preparation code entered on the form the protocol names as recording the
    administration (``analysis_plan.treatment``: its ``form`` and ``code_field``) must be the code allocated to
    this participant, and not one another participant's administration record holds already (found by the index of
    ``administered_codes``, not by reading the records). The rows holding the code (for ``_kit_codes``), or None
    when nothing was checked.

    The refusal says only "not this participant's code": never whose code it is, which arm, or what the right
    code is, so a blinded nurse learns nothing from a wrong label but to stop.
    """
    kit = kit_field(protocol)
    if kit is None or form_id != kit[0]:
        return None
    name = kit[1]
    code = code_held(values.get(name))
    if name not in changed or code is None:
        return None
    entry = session.execute(
        select(allocation_entries.c.preparation_code, allocation_entries.c.arm).where(
            allocation_entries.c.participant_id == participant_id
        )
    ).first()
    allocated = entry.preparation_code if entry is not None else None
    if allocated is None:
        raise RefusedValues(
            [
                f"{name}: {code} is not the code allocated to participant {participant_id} (kit check: "
                f"{participant_id} is not randomized, so no preparation is theirs yet)"
            ]
        )
    if code != allocated:
        raise RefusedValues(
            [
                f"{name}: {code} is not the code allocated to participant {participant_id} (kit check); do not give "
                "it: check the label against the participant's randomization record"
            ]
        )
    if all(a.preparation() is not None for a in protocol.arms) and (
        session.execute(select(preparations.c.id).where(preparations.c.preparation_code == code)).first() is None
    ):
        # Walk 4 (F9): a dose recorded as given before it was prepared. Asked only where every arm prepares a dose,
        # so whether it is asked never depends on the participant's arm: in a trial where an arm prepares nothing
        # (preparation: none, no_intervention) a refusal for the others would tell a masked coordinator the arm
        # (docs/forms.md). The same words for every arm.
        raise RefusedValues(
            [
                f"{name}: {code} has no preparation recorded yet (kit check: a dose is given only once the unblinded "
                "pharmacist has recorded its preparation); ask the pharmacy to record it, then save again"
            ]
        )
    held = holders(session, code)
    if any(h.participant_id != participant_id for h in held):
        raise RefusedValues([_given_already(name, code, form_id)])
    return held


def _given_already(name: str, code: str, form_id: str) -> str:
    return (f"{name}: {code} is recorded already on another participant's {form_id} form (kit check: a preparation "
            "code is given once); the data manager resolves the other record first")  # fmt: skip


def _kit_codes(
    session: Session,
    protocol: Protocol,
    participant_id: str,
    form_id: str,
    record_id: int,
    was: Mapping[str, StoredValue],
    now: Mapping[str, StoredValue],
    held: Sequence[Any] | None,
) -> None:
    """Keep ``administered_codes`` exact for a record this save wrote (``was``: its values before, ``now``: as
    written), in the save's transaction: a code it no longer holds is let go, a code it holds now is recorded. A
    code another participant's save claimed since the check read (a concurrent save that committed first) is refused
    as the kit check refuses it (the transaction then rolls back: nothing of the save is kept)."""
    kit = kit_field(protocol)
    if kit is None or form_id != kit[0]:
        return
    name = kit[1]
    before, after = code_held(was.get(name)), code_held(now.get(name))
    if before == after:
        return
    if before is not None:
        release(session, before, record_id)
    if after is None:
        return
    if held is None:  # not typed (a derived code): read here, refused as typed
        held = holders(session, after)
        if any(h.participant_id != participant_id for h in held):
            raise RefusedValues([_given_already(name, after, form_id)])
    first = not any(h.form_record_id != record_id for h in held)
    if hold(session, after, participant_id, form_id, record_id, claim=first):
        return
    # The claim was taken meanwhile: by this participant's save of another record (then this one holds it too), or
    # by another participant's, which the kit check refuses.
    if claimant(session, after) == participant_id and hold(session, after, participant_id, form_id, record_id,
                                                            claim=False):  # fmt: skip
        return
    raise RefusedValues([_given_already(name, after, form_id)])
