"""The unblinded pharmacist: what a preparation code holds, recording a dose's preparation (checked against
the arm's declared attributes, audited without its values) and the preparation queue of their sites.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, case, select

from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.preparation import PreparationError, validate_preparation
from trialwright.domain.roles import Role
from trialwright.protocol.design import Preparation, PreparationAttribute
from trialwright.services import audit, clock
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
    "QueueItem",
    "RecordedValue",
    "page_preparation_queue",
    "preparation_queue",
    "prepare",
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


@dataclass(frozen=True)
class RecordedValue:
    """One value of a dose's preparation record (label and unit from the protocol; the id itself for a value
    recorded under an attribute the current protocol no longer declares)."""

    id: str
    label: str
    value: int | float | str
    unit: str | None


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
        raise RandomizationError("role: only the unblinded pharmacist sees what a preparation code holds")


def _limits(a: PreparationAttribute) -> str | None:
    r = a.hard_limits
    if r is None:
        return None
    low, high = ("" if r.min is None else f"{r.min:g}"), ("" if r.max is None else f"{r.max:g}")
    text = f"{low} to {high}" if low and high else (f"at least {low}" if low else f"at most {high}")
    return f"{text} {a.unit}" if a.unit else text


def _recorded(preparation: Preparation | None, stored: Mapping[str, Any]) -> tuple[RecordedValue, ...]:
    declared = {a.id: a for a in preparation.attributes} if preparation else {}
    shown = [RecordedValue(a.id, a.label, stored[a.id], a.unit) for a in declared.values() if a.id in stored]
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
            AttributeSpec(a.id, a.label, a.type, a.unit, _limits(a), a.required)
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
    instruction = what_to_prepare(engine, actor, preparation_code)
    if not instruction.to_prepare:
        raise RandomizationError(f"preparation_code: {preparation_code} has nothing to prepare (no product)")
    if instruction.prepared:
        raise RandomizationError(f"preparation_code: {preparation_code} is prepared already")
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        arm_code = session.execute(
            select(allocation_entries.c.arm).where(allocation_entries.c.preparation_code == preparation_code)
        ).scalar_one()
    preparation = protocol.arm_by_code(arm_code).preparation()
    assert preparation is not None  # to_prepare above
    try:
        stored = validate_preparation(preparation, values)
    except PreparationError as exc:
        raise PreparationRefused(exc.problems) from None
    with session_scope(engine) as session:
        site = participant_row(session, actor, instruction.participant_id or "").site
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
    return what_to_prepare(engine, actor, preparation_code)


@dataclass(frozen=True)
class QueueItem:
    """A randomized preparation code and whether its dose is prepared (no arm); ``to_prepare`` is False for an
    arm with nothing to prepare."""

    preparation_code: str
    participant_id: str
    randomized_at: dt.datetime
    prepared_at: dt.datetime | None
    to_prepare: bool = True


def _queue_query(actor: UserView, participant: str | None) -> Select[Any]:
    query = (
        select(
            allocation_entries.c.preparation_code,
            allocation_entries.c.participant_id,
            allocation_entries.c.randomized_at,
            allocation_entries.c.arm,
            preparations.c.prepared_at,
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


def _queue_items(prepared_arms: set[str], rows: Sequence[Any]) -> list[QueueItem]:
    return [
        QueueItem(r.preparation_code, r.participant_id, r.randomized_at, r.prepared_at, r.arm in prepared_arms)
        for r in rows
    ]


def preparation_queue(engine: Engine, actor: UserView) -> list[QueueItem]:
    """The whole queue of the pharmacist's sites: to prepare first, then prepared, then those with nothing to
    prepare (unblinded pharmacist); newest randomization first in each (pages: ``page_preparation_queue``)."""
    _pharmacist(actor)
    protocol = current_protocol(engine).protocol
    prepared = {a.code for a in protocol.arms if a.preparation() is not None}
    query = _queue_query(actor, None).order_by(*(k.desc() for k in _queue_key(prepared)))
    with session_scope(engine) as session:
        return _queue_items(prepared, session.execute(query).all())


def page_preparation_queue(
    engine: Engine,
    actor: UserView,
    *,
    participant: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[QueueItem]:
    """A page of the preparation queue, in the order of ``preparation_queue``; ``participant`` keeps codes
    whose participant id starts with it."""
    _pharmacist(actor)
    protocol = current_protocol(engine).protocol
    prepared = {a.code for a in protocol.arms if a.preparation() is not None}
    with read_scope(engine) as session:
        return keyset_page(
            session,
            _queue_query(actor, participant),
            _queue_key(prepared),
            lambda _s, rows: _queue_items(prepared, rows),
            limit=limit,
            cursor=cursor,
        )
