"""The unblinded pharmacist: what a preparation code holds, recording a dose's preparation (checked against
the arm's declared attributes, audited without its values) and the preparation queue of their sites.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, Select, and_, case, false, func, not_, or_, select
from sqlalchemy.orm import Session

from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.preparation import PreparationError, validate_preparation
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.protocol.design import Preparation, PreparationAttribute
from trialwright.services import audit, clock
from trialwright.services.errors import denied
from trialwright.services.lock import require_unlocked
from trialwright.services.paging import keyset_page
from trialwright.services.randomization.common import (
    AllocationTampered,
    PreparationRefused,
    RandomizationError,
    _audit_tampering,
    _checked,
)
from trialwright.services.screening import NotFound, participant_row
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.randomization_tables import allocation_entries, preparations
from trialwright.store.screening_tables import participants

__all__ = [
    "AttributeSpec",
    "Instruction",
    "PreparationState",
    "QueueItem",
    "RecordedValue",
    "page_preparation_queue",
    "preparation_counts",
    "preparation_queue",
    "prepare",
    "prepare_in",
    "what_to_prepare",
]


@dataclass(frozen=True)
class AttributeSpec:
    """One value the pharmacist records for this arm's doses, as the protocol declares it."""

    id: str
    label: str
    type: str
    unit: str | None
    limits: str | None
    required: bool
    #: the label in the protocol's other languages (``translations: {fa: ...}``), said on the page's language
    translations: Mapping[str, str] = field(default_factory=dict)
    #: the hard limits' ends (None: open), so a page says ``limits`` in its own words
    low: float | None = None
    high: float | None = None
    #: the unit in the protocol's other languages (``unit_translations``)
    unit_translations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedValue:
    """One value of a dose's preparation record (label and unit from the protocol; the id itself for a value
    recorded under an attribute the current protocol no longer declares)."""

    id: str
    label: str
    value: int | float | str
    unit: str | None
    #: the label in the protocol's other languages (none for an attribute the protocol no longer declares)
    translations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Instruction:
    """What the unblinded pharmacist prepares for one preparation code, and the record once prepared.

    ``to_prepare`` is False for an arm with nothing to prepare (``preparation: none``, or a no_intervention
    arm): its code exists, like every code of the list, but there is no dose and no record.
    """

    preparation_code: str
    participant_id: str | None
    arm: str
    product: str
    dose: str | None
    volume: str | None
    route: str
    identical_appearance: bool
    to_prepare: bool
    attributes: tuple[AttributeSpec, ...]
    prepared: bool
    prepared_at: dt.datetime | None = None
    prepared_by: str | None = None
    recorded: tuple[RecordedValue, ...] = ()


def _pharmacist(actor: UserView) -> None:
    if actor.role is not Role.UNBLINDED_PHARMACIST:
        raise denied(RandomizationError)("role: only the unblinded pharmacist sees what a preparation code holds")


def _limits(a: PreparationAttribute) -> str | None:
    r = a.hard_limits
    if r is None:
        return None
    low, high = ("" if r.min is None else f"{r.min:g}"), ("" if r.max is None else f"{r.max:g}")
    text = f"{low} to {high}" if low and high else (f"at least {low}" if low else f"at most {high}")
    return f"{text} {a.unit}" if a.unit else text


def _recorded(preparation: Preparation | None, stored: Mapping[str, Any]) -> tuple[RecordedValue, ...]:
    declared = {a.id: a for a in preparation.attributes} if preparation else {}
    shown = [
        RecordedValue(a.id, a.label, stored[a.id], a.unit, dict(a.translations))
        for a in declared.values()
        if a.id in stored
    ]
    shown += [RecordedValue(k, k, v, None) for k, v in stored.items() if k not in declared]
    return tuple(shown)


def what_to_prepare(engine: Engine, actor: UserView, preparation_code: str) -> Instruction:
    """The arm and intervention behind a preparation code, and its record (the unblinded pharmacist of the
    participant's site only: another site's code answers as an unknown one).

    An allocation entry that no longer matches its keyed digest is refused (``AllocationTampered``, audited).
    """
    try:
        return _what_to_prepare(engine, actor, preparation_code)
    except AllocationTampered as exc:
        _audit_tampering(engine, actor, exc, None)
        raise


def _what_to_prepare(engine: Engine, actor: UserView, preparation_code: str) -> Instruction:
    _pharmacist(actor)
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        return _instruction_in(session, protocol, actor, preparation_code)


def _instruction_in(session: Session, protocol: Protocol, actor: UserView, preparation_code: str) -> Instruction:
    entry = session.execute(
        select(allocation_entries).where(allocation_entries.c.preparation_code == preparation_code)
    ).first()
    if entry is None or entry.participant_id is None:
        raise NotFound("no randomized participant has this preparation code")
    participant_row(session, actor, entry.participant_id)  # NotFound outside the actor's sites
    _checked(session, entry)
    done = session.execute(select(preparations).where(preparations.c.preparation_code == preparation_code)).first()
    arm = protocol.arm_by_code(entry.arm)
    preparation = arm.preparation()
    volume = arm.intervention.volume
    return Instruction(
        preparation_code,
        entry.participant_id,
        arm.name,
        arm.intervention.name,
        arm.intervention.dose,
        f"{volume.min:g}-{volume.max:g} {volume.unit}" if volume else None,
        arm.intervention.route,
        protocol.masking.identical_appearance,
        preparation is not None,
        tuple(
            AttributeSpec(
                a.id,
                a.label,
                a.type,
                a.unit,
                _limits(a),
                a.required,
                dict(a.translations),
                low=a.hard_limits.min if a.hard_limits else None,
                high=a.hard_limits.max if a.hard_limits else None,
                unit_translations=dict(a.unit_translations),
            )
            for a in (preparation.attributes if preparation else [])
        ),
        done is not None,
        done.prepared_at if done else None,
        done.prepared_by if done else None,
        _recorded(preparation, json.loads(done.attributes)) if done else (),
    )


def prepare(engine: Engine, actor: UserView, preparation_code: str, values: Mapping[str, Any]) -> Instruction:
    """Record the preparation of one dose (once): the values its arm declares, by whom and when.

    The values are checked against the arm's declared attributes (type, unit, hard limits, required) and stored
    where only the unblinded pharmacist reads them. The audit entry holds the preparation code and that it was
    prepared, never the values: a lot or a volume can differ by arm and the trail is read by blinded roles.
    """
    _pharmacist(actor)
    protocol = current_protocol(engine).protocol
    try:
        with session_scope(engine) as session:
            prepare_in(session, protocol, actor, preparation_code, values)
            return _instruction_in(session, protocol, actor, preparation_code)
    except AllocationTampered as exc:  # audited in a transaction of its own, as ``what_to_prepare`` does
        _audit_tampering(engine, actor, exc, None)
        raise


def prepare_in(
    session: Session, protocol: Protocol, actor: UserView, preparation_code: str, values: Mapping[str, Any]
) -> None:
    """``prepare`` in the caller's transaction, under ``protocol``: the same checks in the same order (what the code
    holds, nothing to prepare, prepared already, the arm's attributes), the record and its audit entry. An
    ``AllocationTampered`` raised here is the caller's to audit once its transaction is rolled back."""
    _pharmacist(actor)
    instruction = _instruction_in(session, protocol, actor, preparation_code)
    if not instruction.to_prepare:
        raise RandomizationError(f"preparation_code: {preparation_code} has nothing to prepare (no product)")
    if instruction.prepared:
        raise RandomizationError(f"preparation_code: {preparation_code} is prepared already")
    # What the code holds refuses first (as ever); then the database lock or a soft lock, before the values.
    site = participant_row(session, actor, instruction.participant_id or "").site
    require_unlocked(session, instruction.participant_id, site=site, error=RandomizationError)
    arm_code = session.execute(
        select(allocation_entries.c.arm).where(allocation_entries.c.preparation_code == preparation_code)
    ).scalar_one()
    preparation = protocol.arm_by_code(arm_code).preparation()
    assert preparation is not None  # to_prepare above
    try:
        stored = validate_preparation(preparation, values)
    except PreparationError as exc:
        raise PreparationRefused(exc.problems) from None
    session.execute(
        preparations.insert().values(
            preparation_code=preparation_code,
            attributes=json.dumps(stored),
            prepared_at=clock.now(),
            prepared_by=actor.username,
        )
    )
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=site,
        participant=instruction.participant_id,
        action="dose.prepared",
        new_value={"preparation_code": preparation_code, "prepared": True},
    )


class PreparationState(StrEnum):
    """Where a randomized preparation code stands on the pharmacy's work list. "Today" is the site's day, on its
    clock (``sites[].timezone``), so a dose prepared at 01:00 Tehran time counts as today in Tehran."""

    TO_PREPARE = "to_prepare"  # randomized, its dose not yet prepared
    PREPARED_TODAY = "prepared_today"  # prepared since midnight on the site's clock
    DONE = "done"  # prepared on an earlier day
    NOTHING_TO_PREPARE = "nothing_to_prepare"  # an arm with no product (open-label trials only, see protocol check)


@dataclass(frozen=True)
class QueueItem:
    """A randomized preparation code, who randomized it and when, and whether and by whom its dose is prepared
    (no arm, though ``to_prepare`` False tells an arm with nothing to prepare: the pharmacist's page only);
    ``timezone`` is the participant's site's, for showing the times on its clock."""

    preparation_code: str
    participant_id: str
    randomized_at: dt.datetime
    prepared_at: dt.datetime | None
    to_prepare: bool = True
    site: str = ""
    timezone: str = "UTC"
    randomized_by: str | None = None
    prepared_by: str | None = None
    state: PreparationState = PreparationState.TO_PREPARE


def _queue_query(actor: UserView, participant: str | None) -> Select[Any]:
    query = (
        select(
            allocation_entries.c.preparation_code,
            allocation_entries.c.participant_id,
            allocation_entries.c.randomized_at,
            allocation_entries.c.randomized_by,
            allocation_entries.c.arm,
            preparations.c.prepared_at,
            preparations.c.prepared_by,
            participants.c.site,
        )
        .join(preparations, preparations.c.preparation_code == allocation_entries.c.preparation_code, isouter=True)
        .join(participants, participants.c.participant_id == allocation_entries.c.participant_id)
        .where(allocation_entries.c.participant_id.is_not(None), participants.c.site.in_(actor.sites))
    )
    if participant:
        query = query.where(allocation_entries.c.participant_id.startswith(participant, autoescape=True))
    return query


def _queue_key(prepared_arms: set[str]) -> tuple[ColumnElement[Any], ...]:
    """To prepare (2), then prepared (1), then nothing to prepare (0); newest randomization first in each."""
    group = case(
        (allocation_entries.c.arm.not_in(prepared_arms), 0),
        (preparations.c.prepared_at.is_(None), 2),
        else_=1,
    )
    return group, allocation_entries.c.randomized_at, allocation_entries.c.preparation_code


@dataclass(frozen=True)
class _Day:
    """Each site's midnight today (UTC), and the sites' zones, as of one moment."""

    zones: dict[str, str]
    midnight: dict[str, dt.datetime]

    @classmethod
    def of(cls, protocol: Protocol, site_codes: Sequence[str], now: dt.datetime) -> _Day:
        zones = {code: protocol.site(code).timezone for code in site_codes if code in protocol.site_codes}
        midnight = {}
        for code, zone in zones.items():
            local = now.astimezone(ZoneInfo(zone))
            start = dt.datetime.combine(local.date(), dt.time(), tzinfo=ZoneInfo(zone))
            midnight[code] = start.astimezone(dt.UTC)
        return cls(zones, midnight)

    def prepared_today(self) -> ColumnElement[bool]:
        return or_(
            false(),
            *(
                and_(participants.c.site == code, preparations.c.prepared_at >= start)
                for code, start in self.midnight.items()
            ),
        )

    def state_of(self, prepared_arms: set[str], row: Any) -> PreparationState:
        if row.arm not in prepared_arms:
            return PreparationState.NOTHING_TO_PREPARE
        if row.prepared_at is None:
            return PreparationState.TO_PREPARE
        start = self.midnight.get(row.site)
        today = start is not None and row.prepared_at >= start
        return PreparationState.PREPARED_TODAY if today else PreparationState.DONE


def _state_where(prepared_arms: set[str], day: _Day, state: PreparationState) -> ColumnElement[bool]:
    prepared = allocation_entries.c.arm.in_(prepared_arms)
    done = preparations.c.prepared_at.is_not(None)
    return {
        PreparationState.TO_PREPARE: and_(prepared, preparations.c.prepared_at.is_(None)),
        PreparationState.PREPARED_TODAY: and_(prepared, done, day.prepared_today()),
        PreparationState.DONE: and_(prepared, done, not_(day.prepared_today())),
        PreparationState.NOTHING_TO_PREPARE: allocation_entries.c.arm.not_in(prepared_arms),
    }[state]


def _state_key(state: PreparationState) -> tuple[ColumnElement[Any], ...]:
    """Within one state: what is waiting, newest randomization first; what is prepared, latest first."""
    if state in (PreparationState.PREPARED_TODAY, PreparationState.DONE):
        return preparations.c.prepared_at, allocation_entries.c.preparation_code
    return allocation_entries.c.randomized_at, allocation_entries.c.preparation_code


def _queue_items(prepared_arms: set[str], day: _Day, rows: Sequence[Any]) -> list[QueueItem]:
    return [
        QueueItem(
            r.preparation_code,
            r.participant_id,
            r.randomized_at,
            r.prepared_at,
            r.arm in prepared_arms,
            r.site,
            day.zones.get(r.site, "UTC"),
            r.randomized_by,
            r.prepared_by,
            day.state_of(prepared_arms, r),
        )
        for r in rows
    ]


def _prepared_arms(protocol: Protocol) -> set[str]:
    return {a.code for a in protocol.arms if a.preparation() is not None}


def preparation_queue(engine: Engine, actor: UserView) -> list[QueueItem]:
    """The whole queue of the pharmacist's sites: to prepare first, then prepared, then those with nothing to
    prepare (unblinded pharmacist); newest randomization first in each (pages: ``page_preparation_queue``)."""
    _pharmacist(actor)
    protocol = current_protocol(engine).protocol
    prepared = _prepared_arms(protocol)
    day = _Day.of(protocol, actor.sites, clock.now())
    query = _queue_query(actor, None).order_by(*(k.desc() for k in _queue_key(prepared)))
    with session_scope(engine) as session:
        return _queue_items(prepared, day, session.execute(query).all())


def page_preparation_queue(
    engine: Engine,
    actor: UserView,
    *,
    participant: str | None = None,
    state: PreparationState | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[QueueItem]:
    """A page of the preparation queue, in the order of ``preparation_queue``; ``participant`` keeps codes
    whose participant id starts with it. With ``state``, only the codes in that state: waiting ones newest
    randomization first, prepared ones latest preparation first."""
    _pharmacist(actor)
    protocol = current_protocol(engine).protocol
    prepared = _prepared_arms(protocol)
    day = _Day.of(protocol, actor.sites, clock.now())
    query, keys = _queue_query(actor, participant), _queue_key(prepared)
    if state is not None:
        query, keys = query.where(_state_where(prepared, day, state)), _state_key(state)
    with read_scope(engine) as session:
        return keyset_page(
            session,
            query,
            keys,
            lambda _s, rows: _queue_items(prepared, day, rows),
            limit=limit,
            cursor=cursor,
        )


def preparation_counts(
    engine: Engine, actor: UserView, *, participant: str | None = None
) -> dict[PreparationState, int]:
    """How many of the pharmacist's sites' codes are in each state now (the tabs of the pharmacy page)."""
    _pharmacist(actor)
    protocol = current_protocol(engine).protocol
    prepared = _prepared_arms(protocol)
    day = _Day.of(protocol, actor.sites, clock.now())
    counts = {}
    with read_scope(engine) as session:
        for state in PreparationState:
            query = _queue_query(actor, participant).where(_state_where(prepared, day, state))
            counted = query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
            counts[state] = int(session.execute(counted).scalar_one())
    return counts
