"""The sealed allocation list: generating it once, extending a stratum along the same seed chain, and what
the unblinded statistician reads of it (status by stratum, the generation report, balance, the export).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.randomization import (
    GENERATOR,
    Allocation,
    GenerationReport,
    ListMethod,
    factor_levels,
    list_checksum,
    seed_sha256,
    strata_of,
)
from trialwright.domain.roles import Role
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.audit_keys import digest_of
from trialwright.services.errors import denied
from trialwright.services.lock import require_unlocked
from trialwright.services.randomization.common import (
    RandomizationError,
    _factors,
    _method,
    _preparation_codes,
    _statistician,
)
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import inserted_id, read_scope, serialise, session_scope
from trialwright.store.randomization_tables import allocation_entries, allocation_lists

__all__ = [
    "ListRecord",
    "StratumBalance",
    "StratumStatus",
    "balance",
    "export_list",
    "extend_list",
    "generate_list",
    "list_exists",
    "list_records",
    "list_status",
    "ratio_adjusted_range",
]


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
        require_unlocked(session, error=RandomizationError)  # the database lock freezes the list too
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
        require_unlocked(session, error=RandomizationError)  # the database lock freezes the list too
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


@dataclass(frozen=True)
class StratumStatus:
    """How far a stratum's list is used: counts only, never an arm."""

    stratum: str
    used: int
    remaining: int


def list_exists(engine: Engine) -> bool:
    """Whether the allocation list has been generated (anyone may know this: it says nothing of its entries); the
    same test randomizing makes (a list under minimization holds no entries)."""
    with read_scope(engine) as session:
        return session.execute(select(allocation_lists.c.id).limit(1)).first() is not None


def list_status(engine: Engine, actor: UserView) -> list[StratumStatus]:
    """Used and remaining entries per stratum (no arm, no next entry; under minimization, none remain).

    Unblinded statistician only: how many entries a stratum's list holds hints at its block sizes, which the
    blinded staff must not learn."""
    _statistician(actor, "reads how far the allocation list is used")
    with read_scope(engine) as session:
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
    # the range of ratio-adjusted counts (count / ratio) now, never rounded: {DXZ 1, PBO 2} at 2:1 is 1.5 (for 1:1
    # the count difference); a stratum half a ratio unit off must not read as balanced
    imbalance: float
    worst_running: float  # the largest ratio-adjusted imbalance at any point in the stratum's sequence
    bound: float | None  # what permuted blocks guarantee: half the largest block (None under minimization)


def ratio_adjusted_range(counts: Mapping[str, int], ratio: Mapping[str, int]) -> float:
    """The largest minus the smallest ratio-adjusted count (count / ratio) over the arms, exactly (fractions, then
    one float): {DXZ 1, PBO 2} at DXZ:PBO 2:1 is |1/2 - 2/1| = 1.5, never rounded to a whole number."""
    adjusted = [Fraction(counts.get(arm, 0), share) for arm, share in ratio.items()]
    return float(max(adjusted) - min(adjusted))


def balance(engine: Engine, actor: UserView) -> list[StratumBalance]:
    """The balance-by-stratum report (unblinded statistician and DSMB; it shows arms)."""
    if actor.role not in {Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER}:
        raise denied(RandomizationError)("role: the balance report is for the unblinded statistician and the DSMB")
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
            worst = max(worst, ratio_adjusted_range(counts, ratio))
        result.append(StratumBalance(stratum, counts, ratio_adjusted_range(counts, ratio), worst, bound))
    return result


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
