"""Central randomization with a sealed list: generating the list, and randomizing one participant.

The unblinded statistician generates the list once (stratified permuted blocks or simple randomization; the
seed comes from the operating system unless given, and only its SHA-256 is kept). Randomizing takes the
next unused entry of the participant's stratum inside one transaction that holds the randomization
lock (a PostgreSQL advisory lock; SQLite's IMMEDIATE transaction), so concurrent requests never share,
skip or repeat an entry and a participant is randomized at most once. Every step is audited without an
arm; what a viewer sees of the arm is decided by the masking policy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.eligibility import evaluate
from trialwright.domain.masking import MASKED, may_see_allocation, unblinding_applies, viewer_for
from trialwright.domain.preparation import PreparationError, validate_preparation
from trialwright.domain.randomization import (
    GENERATOR,
    Allocation,
    GenerationReport,
    ListMethod,
    Minimization,
    PermutedBlocks,
    SimpleRandomization,
    StratificationError,
    allocation_seal,
    factor_levels,
    level_of,
    list_checksum,
    seed_sha256,
    strata_of,
)
from trialwright.domain.roles import Role
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.protocol.design import Preparation, PreparationAttribute, StratificationFactor
from trialwright.services import audit, clock
from trialwright.services.audit_keys import allocation_intact, digest_of
from trialwright.services.reauth import require_password
from trialwright.services.safety import SafetyError, check_pause
from trialwright.services.screening import NotFound, _typed_values, participant_row, require_scope
from trialwright.services.trial import current_protocol
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.engine import inserted_id, serialise, session_scope
from trialwright.store.randomization_tables import (
    allocation_entries,
    allocation_lists,
    notifications,
    preparations,
    unblindings,
)
from trialwright.store.screening_tables import participants, screenings, withdrawals

__all__ = [
    "AttributeSpec",
    "Instruction",
    "ListRecord",
    "Notification",
    "ParticipantRow",
    "PreparationRefused",
    "QueueItem",
    "RandomizationError",
    "Randomized",
    "RecordedValue",
    "StratumBalance",
    "StratumExhausted",
    "StratumStatus",
    "UnblindingRecord",
    "allocation_of",
    "balance",
    "emergency_unblind",
    "export_list",
    "extend_list",
    "generate_list",
    "list_records",
    "list_status",
    "notifications_for",
    "participant_rows",
    "preparation_queue",
    "prepare",
    "randomize",
    "stratum_for",
    "unblinded_participants",
    "unblinding_log",
    "what_to_prepare",
]

RANDOMIZERS = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR)


class RandomizationError(ValueError):
    """A randomization request that breaks a rule; the message never names an arm."""


class PreparationRefused(RandomizationError):
    """Preparation values refused; ``problems`` holds one ``attribute: rule`` message per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class StratumExhausted(RandomizationError):
    """Every entry of a stratum is used: the unblinded statistician extends the list (``extend_list``)."""

    def __init__(self, stratum: str) -> None:
        super().__init__(
            f"list: stratum {stratum} has no entries left; the unblinded statistician must extend the list"
        )
        self.stratum = stratum


@dataclass(frozen=True)
class Randomized:
    """A randomization as one viewer may see it: the arm is ``masked`` unless the policy allows it."""

    participant_id: str
    number: int
    stratum: str
    at: dt.datetime
    preparation_code: str
    arm: str
    #: Emergency-unblinded (to anyone): every later report flags this participant.
    unblinded: bool = False


def _method(protocol: Protocol) -> ListMethod | Minimization:
    r = protocol.randomization
    ratio = {a.code: a.ratio for a in protocol.arms}
    if r.method == "stratified_permuted_blocks":
        return PermutedBlocks(ratio, r.block_sizes)
    if r.method == "simple":
        return SimpleRandomization(ratio)
    return Minimization(ratio, {f.id: f.weight for f in r.factors}, r.probability, r.imbalance)


def _factors(protocol: Protocol) -> list[StratificationFactor]:
    r = protocol.randomization
    if r.method == "simple":
        return []  # one list: independent draws need no strata
    return list(r.stratify_by if r.method == "stratified_permuted_blocks" else r.factors)


def _list_length(protocol: Protocol) -> int:
    """Entries generated in advance per stratum, as the protocol declares them."""
    r = protocol.randomization
    if r.method == "simple":
        return r.list_length
    assert r.method == "stratified_permuted_blocks"
    return r.list_length_per_stratum or 2 * protocol.sample_size.target


def _strata(protocol: Protocol) -> list[str]:
    """Every stratum of the protocol, in a stable order (the seed chain's stream index)."""
    return strata_of({f.id: factor_levels(f, protocol.site_codes) for f in _factors(protocol)})


def _levels(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split("|")) if key != "all" else {}


def stratum_for(protocol: Protocol, site: str, values: Mapping[str, object]) -> str:
    """A participant's stratum key (``site=RAZ``), from their site and screening values."""
    try:
        levels = {f.id: level_of(f, site, values) for f in _factors(protocol)}
    except StratificationError as exc:
        raise RandomizationError(str(exc)) from None
    return strata_of({k: [v] for k, v in levels.items()})[0]


def _statistician(actor: UserView, what: str) -> None:
    if actor.role is not Role.UNBLINDED_STATISTICIAN:
        raise RandomizationError(f"role: only the unblinded statistician {what}")


def _preparation_codes(session: Session, n: int) -> list[str]:
    taken = set(session.execute(select(allocation_entries.c.preparation_code)).scalars())
    codes: list[str] = []
    while len(codes) < n:
        code = f"P-{secrets.token_hex(3).upper()}"
        if code not in taken:
            taken.add(code)
            codes.append(code)
    return codes


def _entry_rows(session: Session, list_id: int, entries: Sequence[Allocation]) -> list[dict[str, object]]:
    codes = _preparation_codes(session, len(entries))
    rows: list[dict[str, object]] = [
        {
            "list_id": list_id,
            "stratum": e.stratum,
            "sequence": e.sequence,
            "block": e.block,
            "block_size": e.block_size,
            "position": e.position,
            "arm": e.arm,
            "preparation_code": code,
        }
        for e, code in zip(entries, codes, strict=True)
    ]
    return [{**row, "digest": digest_of(session, row)} for row in rows]


class AllocationTampered(RandomizationError):
    """An allocation entry no longer matches its keyed digest: it is refused, never handed out."""

    def __init__(self, entry_id: int) -> None:
        self.entry_id = entry_id
        super().__init__(
            f"allocation: entry {entry_id} of the list does not match its keyed digest (altered in the database) "
            "and is not used; run `trialwright audit verify` and tell the sponsor"
        )


def _checked(session: Session, entry: Any) -> None:
    """Refuse an allocation entry that does not match its digest (raises ``AllocationTampered``)."""
    if not allocation_intact(session, entry._mapping):
        raise AllocationTampered(int(entry.id))


def _audit_tampering(engine: Engine, actor: UserView, exc: AllocationTampered, participant: str | None) -> None:
    """The refusal is recorded in its own transaction (the refused one is rolled back)."""
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            participant=participant,
            action="randomization.allocation_refused",
            reason="allocation entry does not match its keyed digest",
            detail={"allocation_entry": exc.entry_id},
        )


def _report_json(report: GenerationReport, strata: Sequence[str]) -> str:
    return json.dumps(
        {
            "block_sizes": list(report.block_sizes),
            "entries": report.entries,
            "strata": list(strata),
            "entries_per_stratum": {k: sum(v.values()) for k, v in report.counts.items()},
        }
    )


def generate_list(engine: Engine, actor: UserView, *, seed: int | None = None) -> str:
    """Generate and seal the allocation list (once); returns the list's checksum.

    Under minimization there is no list in advance: this records the method and the seed from which
    each participant's random draw is made, and the checksum is that of the empty list.
    """
    _statistician(actor, "generates the allocation list")
    protocol = current_protocol(engine).protocol
    method = _method(protocol)
    seed = secrets.randbits(63) if seed is None else seed
    strata = _strata(protocol)
    if isinstance(method, ListMethod):
        generated = method.generate(strata, _list_length(protocol), seed)
        entries, report, kind = generated.entries, generated.report, "generated"
    else:
        entries, kind = (), "minimization"
        report = GenerationReport(method.describe(), GENERATOR, seed_sha256(seed), (), method.ratio, {}, 0, "")
        report = dataclasses.replace(report, checksum=list_checksum([]))
    with session_scope(engine) as session:
        serialise(session, "randomization")
        if session.execute(select(func.count()).select_from(allocation_lists)).scalar_one():
            raise RandomizationError("list: an allocation list exists already; it is never regenerated")
        list_id = inserted_id(
            session,
            allocation_lists.insert().values(
                kind=kind,
                method=report.method,
                generator=report.generator,
                seed_sha256=report.seed_sha256,
                seed=str(seed),
                checksum=report.checksum,
                report=_report_json(report, strata),
                generated_at=clock.now(),
                generated_by=actor.username,
            ),
        )
        if entries:
            session.execute(allocation_entries.insert(), _entry_rows(session, list_id, entries))
        # The trail records how the list was made, never what it holds.
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="randomization.list_generated",
            new_value={
                "checksum": report.checksum,
                "seed_sha256": report.seed_sha256,
                "entries": report.entries,
                "generator": report.generator,
                "method": report.method,
            },
        )
    return report.checksum


def extend_list(engine: Engine, actor: UserView, stratum: str, *, entries: int, reason: str) -> str:
    """Add entries (whole blocks under permuted blocks) to one stratum of the list, with the same method and
    along the same seed chain.

    Audited with the reason, the number of entries and the extension's checksum (never its arms).
    """
    _statistician(actor, "extends the allocation list")
    checked_text(reason, "reason", error=RandomizationError)
    if not reason.strip():
        raise RandomizationError("reason: say why the list is extended")
    if not 1 <= entries <= 100_000:
        raise RandomizationError("entries: must be between 1 and 100000")
    protocol = current_protocol(engine).protocol
    method = _method(protocol)
    if not isinstance(method, ListMethod):
        raise RandomizationError("list: minimization allocates as it goes; there is no list to extend")
    strata = _strata(protocol)
    if stratum not in strata:
        raise RandomizationError(f"stratum: {stratum!r} is not one of the protocol's strata {strata}")
    with session_scope(engine) as session:
        serialise(session, "randomization")
        first = session.execute(select(allocation_lists).where(allocation_lists.c.kind == "generated")).first()
        if first is None:
            raise RandomizationError("list: no allocation list yet; generate it first")
        if first.seed is None:
            raise RandomizationError("list: the seed of this list was not kept, so it cannot be extended on its chain")
        last = session.execute(
            select(allocation_entries)
            .where(allocation_entries.c.stratum == stratum)
            .order_by(allocation_entries.c.sequence.desc())
            .limit(1)
        ).first()
        assert last is not None
        number = (
            session.execute(
                select(func.count())
                .select_from(allocation_lists)
                .where(allocation_lists.c.kind == "extension", allocation_lists.c.stratum == stratum)
            ).scalar_one()
            + 1
        )
        after = Allocation(last.stratum, last.sequence, last.block, last.block_size, last.position, last.arm)
        extension = method.extension(stratum, strata.index(stratum), number, after, entries, int(first.seed))
        report = extension.report
        list_id = inserted_id(
            session,
            allocation_lists.insert().values(
                kind="extension",
                method=report.method,
                generator=report.generator,
                seed_sha256=report.seed_sha256,
                checksum=report.checksum,
                report=_report_json(report, [stratum]),
                generated_at=clock.now(),
                generated_by=actor.username,
                extends=first.id,
                stratum=stratum,
                extension_number=number,
                reason=reason,
            ),
        )
        session.execute(allocation_entries.insert(), _entry_rows(session, list_id, extension.entries))
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="randomization.list_extended",
            reason=reason,
            new_value={
                "stratum": stratum,
                "extension": number,
                "entries": report.entries,
                "checksum": report.checksum,
                "seed_sha256": report.seed_sha256,
            },
        )
    return report.checksum


def _participant_stratum(session: Session, protocol: Protocol, participant: Any) -> str:
    row = session.execute(
        select(screenings.c.screening_values).where(screenings.c.id == participant.screening_id)
    ).scalar_one()
    # The values as eligibility read them, derived fields included (a factor may read e.g. a derived ratio).
    values = evaluate(protocol, _typed_values(protocol, json.loads(row))).values
    return stratum_for(protocol, participant.site, values)


def _minimize(
    session: Session, method: Minimization, stratum: str, seed: int, number: int
) -> tuple[str, dict[str, object]]:
    counts: dict[tuple[str, str, str], int] = {}
    rows = session.execute(
        select(allocation_entries.c.stratum, allocation_entries.c.arm, func.count())
        .where(allocation_entries.c.participant_id.is_not(None))
        .group_by(allocation_entries.c.stratum, allocation_entries.c.arm)
    ).all()
    for key, arm, n in rows:
        for factor, level in _levels(key).items():
            counts[(factor, level, arm)] = counts.get((factor, level, arm), 0) + int(n)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(number,))))
    d = method.assign(counts, _levels(stratum), rng)
    return d.arm, {
        "g_values": dict(d.g_values),
        "preferred": list(d.preferred),
        "draw": d.draw,
        "tie": d.tie,
        "followed_preference": d.followed_preference,
    }


def randomize(engine: Engine, actor: UserView, participant_id: str) -> Randomized:
    """Randomize an enrolled participant: the next unused entry of their stratum, atomically, once."""
    if actor.role not in RANDOMIZERS:
        raise RandomizationError("role: investigators and study coordinators randomize")
    require_scope(engine, participant_id, "intervention")
    try:
        return _randomize(engine, actor, participant_id)
    except AllocationTampered as exc:
        _audit_tampering(engine, actor, exc, participant_id)
        raise


def _randomize(engine: Engine, actor: UserView, participant_id: str) -> Randomized:
    protocol = current_protocol(engine).protocol
    method = _method(protocol)
    with session_scope(engine) as session:
        participant = participant_row(session, actor, participant_id)
        stratum = _participant_stratum(session, protocol, participant)
        serialise(session, "randomization")
        try:
            check_pause(session, protocol)
        except SafetyError as exc:
            raise RandomizationError(str(exc)) from None
        if (
            session.execute(
                select(allocation_entries.c.id).where(allocation_entries.c.participant_id == participant_id)
            ).first()
            is not None
        ):
            raise RandomizationError(f"participant: {participant_id} is randomized already")
        head = session.execute(select(allocation_lists).order_by(allocation_lists.c.id).limit(1)).first()
        if head is None:
            raise RandomizationError("list: no allocation list yet; the unblinded statistician generates it")
        number = (session.execute(select(func.max(allocation_entries.c.randomization_number))).scalar() or 0) + 1
        now = clock.now()
        claim = {
            "participant_id": participant_id,
            "randomization_number": number,
            "randomized_at": now,
            "randomized_by": actor.username,
        }
        if isinstance(method, Minimization):
            arm, decision = _minimize(session, method, stratum, int(head.seed), number)
            sequence = (
                session.execute(
                    select(func.max(allocation_entries.c.sequence)).where(allocation_entries.c.stratum == stratum)
                ).scalar()
                or 0
            ) + 1
            code = _preparation_codes(session, 1)[0]
            row = {
                "list_id": head.id,
                "stratum": stratum,
                "sequence": sequence,
                "arm": arm,
                "preparation_code": code,
                "decision": json.dumps(decision),
                **claim,
            }
            session.execute(allocation_entries.insert().values(**row, digest=digest_of(session, row)))
        else:
            entry = session.execute(
                select(allocation_entries)
                .where(allocation_entries.c.stratum == stratum, allocation_entries.c.participant_id.is_(None))
                .order_by(allocation_entries.c.sequence)
                .limit(1)
            ).first()
            if entry is None:
                raise StratumExhausted(stratum)
            _checked(session, entry)
            digest = digest_of(session, {**entry._mapping, **claim})
            session.execute(
                allocation_entries.update().where(allocation_entries.c.id == entry.id).values(**claim, digest=digest)
            )
            arm, code, sequence = entry.arm, entry.preparation_code, entry.sequence
        recorded: dict[str, object] = {"randomization_number": number, "preparation_code": code, "stratum": stratum}
        if head.seed is not None:
            # Keyed by the sealed seed: lets `audit verify` see a flipped arm, tells a blinded reader nothing.
            recorded["seal"] = allocation_seal(head.seed, participant_id, number, code, stratum, sequence, arm)
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            action="participant.randomized",
            new_value=recorded,
        )
        viewer = viewer_for(protocol, actor.username, actor.role, frozenset(actor.sites))
        shown = arm if may_see_allocation(viewer, participant_id) else MASKED
        return Randomized(participant_id, number, stratum, now, code, shown, False)


def allocation_of(engine: Engine, actor: UserView, participant_id: str) -> Randomized | None:
    """A participant's randomization as this actor may see it (None before randomization)."""
    with session_scope(engine) as session:
        participant_row(session, actor, participant_id)
        entry = session.execute(
            select(allocation_entries).where(allocation_entries.c.participant_id == participant_id)
        ).first()
        if entry is None:
            return None
        flagged = (
            session.execute(select(unblindings.c.unblinded_by).where(unblindings.c.participant_id == participant_id))
            .scalars()
            .all()
        )
    viewer = viewer_for(
        current_protocol(engine).protocol,
        actor.username,
        actor.role,
        frozenset(actor.sites),
        frozenset({participant_id}) if actor.username in flagged else frozenset(),
    )
    arm = entry.arm if may_see_allocation(viewer, participant_id) else MASKED
    return Randomized(
        participant_id,
        entry.randomization_number,
        entry.stratum,
        entry.randomized_at,
        entry.preparation_code,
        arm,
        bool(flagged),
    )


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
class UnblindingRecord:
    """One emergency unblinding: who, when, why, whom (never the arm)."""

    participant_id: str
    unblinded_by: str
    unblinded_at: dt.datetime
    reason: str


def emergency_unblind(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    *,
    reason: str,
    password: str,
    policy: AccessPolicy | None = None,
) -> Randomized:
    """Reveal one participant's arm to the investigator at once: no approval step, a reason and the
    password are required, the designated roles are notified, and the participant is flagged as unblinded.
    """
    protocol = current_protocol(engine).protocol
    if not unblinding_applies(protocol):
        raise RandomizationError(
            f"blinding: this trial is {protocol.masking.blinding or 'not blinded'} for the investigator, who sees "
            "the arm already; there is nothing to unblind"
        )
    if actor.role is not Role.INVESTIGATOR:
        raise RandomizationError("role: an investigator performs an emergency unblinding")
    checked_text(reason, "reason", error=RandomizationError)
    if not reason.strip():
        raise RandomizationError("reason: an emergency unblinding needs a reason")
    require_password(engine, actor.username, password, policy, purpose="emergency unblinding",
                     error=RandomizationError, message="password: re-enter your own password to confirm")  # fmt: skip
    now = clock.now()
    with session_scope(engine) as session:
        entry = session.execute(
            select(allocation_entries).where(allocation_entries.c.participant_id == participant_id)
        ).first()
        participant = session.execute(
            select(participants).where(participants.c.participant_id == participant_id)
        ).first()
        if participant is None or entry is None or participant.site not in actor.sites:
            raise NotFound("no randomized participant with this id at your sites")
        session.execute(
            unblindings.insert().values(
                participant_id=participant_id, unblinded_by=actor.username, unblinded_at=now, reason=reason
            )
        )
        for role in protocol.masking.unblinding_notify:
            session.execute(
                notifications.insert().values(
                    role=role,
                    subject=f"Emergency unblinding of {participant_id} by {actor.username}",
                    participant_id=participant_id,
                    created_at=now,
                )
            )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            action="participant.unblinded",
            reason=reason,
            detail={"notified": list(protocol.masking.unblinding_notify)},
        )
        return Randomized(
            participant_id,
            entry.randomization_number,
            entry.stratum,
            entry.randomized_at,
            entry.preparation_code,
            entry.arm,
            True,
        )


def unblinded_participants(engine: Engine, username: str) -> frozenset[str]:
    """The participants emergency-unblinded to this user (the masking policy's per-viewer exceptions)."""
    with session_scope(engine) as session:
        return frozenset(
            session.execute(
                select(unblindings.c.participant_id).where(unblindings.c.unblinded_by == username)
            ).scalars()
        )


def unblinding_log(engine: Engine, actor: UserView) -> list[UnblindingRecord]:
    """Every emergency unblinding, for the unblinded roles and the DSMB (the pharmacist: of their sites)."""
    if actor.role not in {Role.UNBLINDED_STATISTICIAN, Role.UNBLINDED_PHARMACIST, Role.DSMB_MEMBER}:
        raise RandomizationError("role: the unblinding log is for the unblinded roles and the DSMB")
    query = select(unblindings).order_by(unblindings.c.id)
    if actor.role.site_scoped:
        query = query.join(participants, participants.c.participant_id == unblindings.c.participant_id).where(
            participants.c.site.in_(actor.sites)
        )
    with session_scope(engine) as session:
        rows = session.execute(query).all()
    return [UnblindingRecord(r.participant_id, r.unblinded_by, r.unblinded_at, r.reason) for r in rows]


@dataclass(frozen=True)
class StratumStatus:
    """How far a stratum's list is used: counts only, never an arm."""

    stratum: str
    used: int
    remaining: int


def list_status(engine: Engine) -> list[StratumStatus]:
    """Used and remaining entries per stratum (no arm, no next entry; under minimization, none remain)."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(
                allocation_entries.c.stratum,
                allocation_entries.c.participant_id.is_(None).label("free"),
                func.count().label("n"),
            ).group_by(allocation_entries.c.stratum, allocation_entries.c.participant_id.is_(None))
        ).all()
    counts: dict[str, dict[bool, int]] = {}
    for row in rows:
        counts.setdefault(row.stratum, {True: 0, False: 0})[bool(row.free)] = int(row.n)
    return [StratumStatus(k, v[False], v[True]) for k, v in sorted(counts.items())]


@dataclass(frozen=True)
class ListRecord:
    """One generation or extension of the list, as the statistician signs it off (no arms)."""

    kind: str
    method: str
    generator: str
    seed_sha256: str
    checksum: str
    entries: int
    stratum: str | None
    extension_number: int | None
    reason: str | None
    at: dt.datetime
    by: str


def list_records(engine: Engine, actor: UserView) -> list[ListRecord]:
    """The generation report and every extension, oldest first (unblinded statistician)."""
    _statistician(actor, "reads the list's generation report")
    with session_scope(engine) as session:
        rows = session.execute(select(allocation_lists).order_by(allocation_lists.c.id)).all()
    return [
        ListRecord(
            r.kind,
            r.method,
            r.generator,
            r.seed_sha256,
            r.checksum,
            int(json.loads(r.report)["entries"]),
            r.stratum,
            r.extension_number,
            r.reason,
            r.generated_at,
            r.generated_by,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class StratumBalance:
    """Randomized participants per arm within one stratum, and the worst running imbalance so far."""

    stratum: str
    by_arm: Mapping[str, int]
    imbalance: int  # |difference| of ratio-adjusted counts now (two arms: count difference for 1:1)
    worst_running: float  # the largest ratio-adjusted imbalance at any point in the stratum's sequence
    bound: float | None  # what permuted blocks guarantee: half the largest block (None under minimization)


def balance(engine: Engine, actor: UserView) -> list[StratumBalance]:
    """The balance-by-stratum report (unblinded statistician and DSMB; it shows arms)."""
    if actor.role not in {Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER}:
        raise RandomizationError("role: the balance report is for the unblinded statistician and the DSMB")
    protocol = current_protocol(engine).protocol
    ratio = {a.code: a.ratio for a in protocol.arms}
    r = protocol.randomization
    bound = max(r.block_sizes) / 2 if r.method == "stratified_permuted_blocks" else None
    with session_scope(engine) as session:
        rows = session.execute(
            select(allocation_entries.c.stratum, allocation_entries.c.arm)
            .where(allocation_entries.c.participant_id.is_not(None))
            .order_by(allocation_entries.c.stratum, allocation_entries.c.randomization_number)
        ).all()
    result: list[StratumBalance] = []
    by_stratum: dict[str, list[str]] = {}
    for stratum, arm in rows:
        by_stratum.setdefault(stratum, []).append(arm)
    for stratum, arms in sorted(by_stratum.items()):
        counts = dict.fromkeys(ratio, 0)
        worst = 0.0
        for arm in arms:
            counts[arm] += 1
            adjusted = [counts[a] / ratio[a] for a in ratio]
            worst = max(worst, max(adjusted) - min(adjusted))
        adjusted = [counts[a] / ratio[a] for a in ratio]
        result.append(StratumBalance(stratum, counts, round(max(adjusted) - min(adjusted)), worst, bound))
    return result


@dataclass(frozen=True)
class QueueItem:
    """A randomized preparation code and whether its dose is prepared (no arm); ``to_prepare`` is False for an
    arm with nothing to prepare."""

    preparation_code: str
    participant_id: str
    randomized_at: dt.datetime
    prepared_at: dt.datetime | None
    to_prepare: bool = True


def preparation_queue(engine: Engine, actor: UserView) -> list[QueueItem]:
    """Randomized codes of the pharmacist's sites: to prepare first, then prepared, then those with nothing to
    prepare (unblinded pharmacist)."""
    _pharmacist(actor)
    protocol = current_protocol(engine).protocol
    prepared = {a.code for a in protocol.arms if a.preparation() is not None}
    with session_scope(engine) as session:
        rows = session.execute(
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
            .order_by(allocation_entries.c.randomized_at.desc())
            .limit(1000)
        ).all()
    items = [
        QueueItem(r.preparation_code, r.participant_id, r.randomized_at, r.prepared_at, r.arm in prepared)
        for r in rows
    ]
    return sorted(items, key=lambda i: (not i.to_prepare, i.prepared_at is not None))


@dataclass(frozen=True)
class Notification:
    """A notice to a role (e.g. of an emergency unblinding); never carries an arm."""

    subject: str
    participant_id: str | None
    at: dt.datetime


def notifications_for(engine: Engine, actor: UserView, limit: int = 20) -> list[Notification]:
    """The newest notices addressed to the actor's role (for a site-scoped role: none about another site's
    participant)."""
    query = select(notifications).where(notifications.c.role == actor.role.value)
    if actor.role.site_scoped:
        query = query.outerjoin(participants, participants.c.participant_id == notifications.c.participant_id).where(
            notifications.c.participant_id.is_(None) | participants.c.site.in_(actor.sites)
        )
    with session_scope(engine) as session:
        rows = session.execute(query.order_by(notifications.c.id.desc()).limit(limit)).all()
    return [Notification(r.subject, r.participant_id, r.created_at) for r in rows]


def export_list(engine: Engine, actor: UserView) -> list[dict[str, object]]:
    """The whole list with arms (unblinded statistician only); the export itself is audited."""
    _statistician(actor, "exports the allocation list")
    with session_scope(engine) as session:
        rows = session.execute(
            select(allocation_entries).order_by(allocation_entries.c.stratum, allocation_entries.c.sequence)
        ).all()
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="randomization.list_exported",
            detail={"entries": len(rows)},
        )
    columns = [
        "stratum",
        "sequence",
        "block",
        "block_size",
        "position",
        "arm",
        "preparation_code",
        "participant_id",
        "randomization_number",
        "randomized_at",
        "decision",
    ]
    return [{c: getattr(r, c) for c in columns} for r in rows]


@dataclass(frozen=True)
class ParticipantRow:
    """An enrolled participant with their randomization (never an arm)."""

    participant_id: str
    site: str
    screening_id: int
    enrolled_at: dt.datetime
    withdrawn_scopes: tuple[str, ...]
    randomization_number: int | None
    randomized_at: dt.datetime | None
    preparation_code: str | None
    unblinded: bool


def participant_rows(
    engine: Engine, actor: UserView, *, participant_id: str | None = None, limit: int = 1000
) -> list[ParticipantRow]:
    """Enrolled participants within the actor's sites, newest first, with their randomization number."""
    query = (
        select(
            participants,
            allocation_entries.c.randomization_number,
            allocation_entries.c.randomized_at,
            allocation_entries.c.preparation_code,
        )
        .join(allocation_entries, allocation_entries.c.participant_id == participants.c.participant_id, isouter=True)
        .order_by(participants.c.enrolled_at.desc(), participants.c.participant_id.desc())
        .limit(limit)
    )
    if actor.role.site_scoped:
        query = query.where(participants.c.site.in_(actor.sites))
    if participant_id is not None:
        query = query.where(participants.c.participant_id == participant_id)
    with session_scope(engine) as session:
        rows = session.execute(query).all()
        ids = [r.participant_id for r in rows]
        flagged = set(
            session.execute(select(unblindings.c.participant_id).where(unblindings.c.participant_id.in_(ids))).scalars()
        )
        scopes: dict[str, list[str]] = {}
        for pid, scope in session.execute(
            select(withdrawals.c.participant_id, withdrawals.c.scope).where(withdrawals.c.participant_id.in_(ids))
        ):
            scopes.setdefault(pid, []).append(scope)
    return [
        ParticipantRow(
            r.participant_id,
            r.site,
            r.screening_id,
            r.enrolled_at,
            tuple(sorted(scopes.get(r.participant_id, []))),
            r.randomization_number,
            r.randomized_at,
            r.preparation_code,
            r.participant_id in flagged,
        )
        for r in rows
    ]
