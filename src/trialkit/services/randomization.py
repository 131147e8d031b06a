"""Central randomization with a sealed list: generating the list, and randomizing one participant.

The unblinded statistician generates the list once (stratified permuted blocks from the protocol; the
seed comes from the operating system unless given, and only its SHA-256 is kept). Randomizing takes the
next unused entry of the participant's stratum inside one transaction that holds the randomization
lock (a PostgreSQL advisory lock; SQLite's IMMEDIATE transaction), so concurrent requests never share,
skip or repeat an entry and a participant is randomized at most once. Every step is audited without an
arm; what a viewer sees of the arm is decided by the masking policy.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from trialkit.domain.masking import MASKED, Viewer, may_see_allocation
from trialkit.domain.randomization import PermutedBlocks, strata_of
from trialkit.domain.roles import Role
from trialkit.protocol import Protocol
from trialkit.services import audit
from trialkit.services.screening import NotFound, require_scope
from trialkit.services.trial import current_protocol
from trialkit.services.users import UserView, confirm_password
from trialkit.store.engine import inserted_id, serialise, session_scope
from trialkit.store.randomization_tables import (
    allocation_entries,
    allocation_lists,
    notifications,
    preparations,
    unblindings,
)
from trialkit.store.screening_tables import participants

__all__ = [
    "Instruction",
    "RandomizationError",
    "Randomized",
    "StratumStatus",
    "UnblindingRecord",
    "emergency_unblind",
    "export_list",
    "generate_list",
    "list_status",
    "prepare",
    "randomize",
    "unblinded_participants",
    "unblinding_log",
    "what_to_prepare",
]

RANDOMIZERS = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR)


class RandomizationError(ValueError):
    """A randomization request that breaks a rule; the message never names an arm."""


@dataclass(frozen=True)
class Randomized:
    """A randomization as one viewer may see it: the arm is ``masked`` unless the policy allows it."""

    participant_id: str
    number: int
    stratum: str
    at: dt.datetime
    preparation_code: str
    arm: str


def _strata(protocol: Protocol) -> list[str]:
    r = protocol.randomization
    if r.method != "stratified_permuted_blocks":
        raise RandomizationError("randomization: this protocol uses minimization, which has no list to generate")
    levels: dict[str, list[str]] = {}
    for factor in r.stratify_by:
        if factor.id == "site" and factor.field is None:
            levels["site"] = protocol.site_codes
        else:
            raise RandomizationError(f"randomization.stratify_by: factor {factor.id!r} is not supported yet")
    return strata_of(levels)


def generate_list(engine: Engine, actor: UserView, *, seed: int | None = None) -> str:
    """Generate and seal the allocation list (once); returns the list's checksum."""
    if actor.role is not Role.UNBLINDED_STATISTICIAN:
        raise RandomizationError("role: only the unblinded statistician generates the allocation list")
    protocol = current_protocol(engine).protocol
    r = protocol.randomization
    assert r.method == "stratified_permuted_blocks"
    method = PermutedBlocks({a.code: a.ratio for a in protocol.arms}, r.block_sizes)
    per_stratum = r.list_length_per_stratum or 2 * protocol.sample_size.target
    generated = method.generate(_strata(protocol), per_stratum, secrets.randbits(63) if seed is None else seed)
    codes: set[str] = set()
    with session_scope(engine) as session:
        if session.execute(select(func.count()).select_from(allocation_lists)).scalar_one():
            raise RandomizationError("list: an allocation list exists already; it is never regenerated")
        rep = generated.report
        list_id = inserted_id(
            session,
            allocation_lists.insert().values(
                method=rep.method,
                generator=rep.generator,
                seed_sha256=rep.seed_sha256,
                checksum=rep.checksum,
                report=json.dumps(
                    {"block_sizes": list(rep.block_sizes), "entries": rep.entries, "strata": list(rep.counts)}
                ),
                generated_at=dt.datetime.now(dt.UTC),
                generated_by=actor.username,
            ),
        )
        rows = []
        for e in generated.entries:
            code = f"P-{secrets.token_hex(3).upper()}"
            while code in codes:
                code = f"P-{secrets.token_hex(3).upper()}"
            codes.add(code)
            rows.append(
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
            )
        session.execute(allocation_entries.insert(), rows)
        # The trail records how the list was made, never what it holds.
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="randomization.list_generated",
            new_value={
                "checksum": rep.checksum,
                "seed_sha256": rep.seed_sha256,
                "entries": rep.entries,
                "generator": rep.generator,
                "method": rep.method,
            },
        )
    return generated.report.checksum


def randomize(engine: Engine, actor: UserView, participant_id: str) -> Randomized:
    """Randomize an enrolled participant: the next unused entry of their stratum, atomically, once."""
    if actor.role not in RANDOMIZERS:
        raise RandomizationError("role: investigators and study coordinators randomize")
    require_scope(engine, participant_id, "intervention")
    with session_scope(engine) as session:
        participant = session.execute(
            select(participants).where(participants.c.participant_id == participant_id)
        ).first()
        if participant is None or (actor.role.site_scoped and participant.site not in actor.sites):
            raise NotFound("no such participant")
        serialise(session, "randomization")
        if (
            session.execute(
                select(allocation_entries.c.id).where(allocation_entries.c.participant_id == participant_id)
            ).first()
            is not None
        ):
            raise RandomizationError(f"participant: {participant_id} is randomized already")
        stratum = f"site={participant.site}"
        entry = session.execute(
            select(allocation_entries)
            .where(allocation_entries.c.stratum == stratum, allocation_entries.c.participant_id.is_(None))
            .order_by(allocation_entries.c.sequence)
            .limit(1)
        ).first()
        if entry is None:
            if not session.execute(select(func.count()).select_from(allocation_lists)).scalar_one():
                raise RandomizationError("list: no allocation list yet; the unblinded statistician generates it")
            raise RandomizationError(
                f"list: stratum {stratum} has no entries left; the unblinded statistician must extend the list"
            )
        number = (session.execute(select(func.max(allocation_entries.c.randomization_number))).scalar() or 0) + 1
        now = dt.datetime.now(dt.UTC)
        session.execute(
            allocation_entries.update()
            .where(allocation_entries.c.id == entry.id)
            .values(
                participant_id=participant_id,
                randomization_number=number,
                randomized_at=now,
                randomized_by=actor.username,
            )
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            action="participant.randomized",
            new_value={"randomization_number": number, "preparation_code": entry.preparation_code},
        )
        viewer = Viewer(actor.username, actor.role, frozenset(actor.sites))
        arm = entry.arm if may_see_allocation(viewer, participant_id) else MASKED
        return Randomized(participant_id, number, stratum, now, entry.preparation_code, arm)


@dataclass(frozen=True)
class Instruction:
    """What the unblinded pharmacist prepares for one preparation code."""

    preparation_code: str
    participant_id: str | None
    arm: str
    product: str
    dose: str | None
    volume: str | None
    route: str
    identical_appearance: bool
    prepared: bool


def _pharmacist(actor: UserView) -> None:
    if actor.role is not Role.UNBLINDED_PHARMACIST:
        raise RandomizationError("role: only the unblinded pharmacist sees what a preparation code holds")


def what_to_prepare(engine: Engine, actor: UserView, preparation_code: str) -> Instruction:
    """The arm and intervention behind a preparation code (unblinded pharmacist only)."""
    _pharmacist(actor)
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        entry = session.execute(
            select(allocation_entries).where(allocation_entries.c.preparation_code == preparation_code)
        ).first()
        if entry is None or entry.participant_id is None:
            raise NotFound("no randomized participant has this preparation code")
        done = (
            session.execute(
                select(preparations.c.id).where(preparations.c.preparation_code == preparation_code)
            ).first()
            is not None
        )
    arm = protocol.arm_by_code(entry.arm)
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
        done,
    )


def prepare(
    engine: Engine,
    actor: UserView,
    preparation_code: str,
    *,
    product_lot: str,
    volume_ml: float,
    particles: str | None = None,
) -> Instruction:
    """Record the preparation of one dose (once): lot, volume, particles, by whom and when."""
    instruction = what_to_prepare(engine, actor, preparation_code)
    if instruction.prepared:
        raise RandomizationError(f"preparation_code: {preparation_code} is prepared already")
    if not product_lot.strip():
        raise RandomizationError("product_lot: name the lot")
    if not 0 < volume_ml <= 50:
        raise RandomizationError("volume_ml: must be above 0 and at most 50 mL")
    with session_scope(engine) as session:
        session.execute(
            preparations.insert().values(
                preparation_code=preparation_code,
                product_lot=product_lot,
                particles=particles,
                volume_ml=f"{volume_ml:g}",
                prepared_at=dt.datetime.now(dt.UTC),
                prepared_by=actor.username,
            )
        )
        # Audited by code, lot and volume only: the trail is readable by blinded roles.
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            participant=instruction.participant_id,
            action="dose.prepared",
            new_value={"preparation_code": preparation_code, "product_lot": product_lot, "volume_ml": volume_ml},
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
    engine: Engine, actor: UserView, participant_id: str, *, reason: str, password: str
) -> Randomized:
    """Reveal one participant's arm to the investigator at once: no approval step, a reason and the
    password are required, the designated roles are notified, and the participant is flagged as unblinded.
    """
    if actor.role is not Role.INVESTIGATOR:
        raise RandomizationError("role: an investigator performs an emergency unblinding")
    if not reason.strip():
        raise RandomizationError("reason: an emergency unblinding needs a reason")
    if not confirm_password(engine, actor.username, password):
        raise RandomizationError("password: re-enter your own password to confirm")
    protocol = current_protocol(engine).protocol
    now = dt.datetime.now(dt.UTC)
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
    """Every emergency unblinding, for the unblinded roles and the DSMB."""
    if actor.role not in {Role.UNBLINDED_STATISTICIAN, Role.UNBLINDED_PHARMACIST, Role.DSMB_MEMBER}:
        raise RandomizationError("role: the unblinding log is for the unblinded roles and the DSMB")
    with session_scope(engine) as session:
        rows = session.execute(select(unblindings).order_by(unblindings.c.id)).all()
    return [UnblindingRecord(r.participant_id, r.unblinded_by, r.unblinded_at, r.reason) for r in rows]


@dataclass(frozen=True)
class StratumStatus:
    """How far a stratum's list is used: counts only, never an arm."""

    stratum: str
    used: int
    remaining: int


def list_status(engine: Engine) -> list[StratumStatus]:
    """Used and remaining entries per stratum (safe for every role: no arm, no next entry)."""
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


def export_list(engine: Engine, actor: UserView) -> list[dict[str, object]]:
    """The whole list with arms (unblinded statistician only); the export itself is audited."""
    if actor.role is not Role.UNBLINDED_STATISTICIAN:
        raise RandomizationError("role: only the unblinded statistician exports the allocation list")
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
    ]
    return [{c: getattr(r, c) for c in columns} for r in rows]
