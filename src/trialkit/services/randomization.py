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

from sqlalchemy import Engine, func, select, text

from trialkit.domain.masking import MASKED, Viewer, may_see_allocation
from trialkit.domain.randomization import PermutedBlocks, strata_of
from trialkit.domain.roles import Role
from trialkit.protocol import Protocol
from trialkit.services import audit
from trialkit.services.screening import NotFound, require_scope
from trialkit.services.trial import current_protocol
from trialkit.services.users import UserView
from trialkit.store.engine import inserted_id, session_scope
from trialkit.store.randomization_tables import allocation_entries, allocation_lists
from trialkit.store.screening_tables import participants

__all__ = ["RandomizationError", "Randomized", "generate_list", "randomize"]

_LOCK = 0x7261_6E64  # "rand"
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


def _lock(session: object) -> None:
    bind = session.get_bind()  # type: ignore[attr-defined]
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})  # type: ignore[attr-defined]


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
        _lock(session)
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
