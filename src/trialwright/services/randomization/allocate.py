"""Randomizing one participant: their stratum, the next unused entry of it (or a minimization draw) taken
atomically under the randomization lock, and the randomization as each viewer may see it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Engine,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    func,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session

from trialwright.domain.eligibility import evaluate
from trialwright.domain.masking import MASKED, may_see_allocation, viewer_for
from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.randomization import Minimization, StratificationError, allocation_seal, level_of, strata_of
from trialwright.domain.roles import only_roles_may
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.audit_keys import digest_of
from trialwright.services.errors import denied
from trialwright.services.lock import DATA_LOCK, frozen_expression, require_unlocked
from trialwright.services.paging import keyset_page
from trialwright.services.randomization.common import (
    PARTICIPANT_READERS,
    RANDOMIZERS,
    AllocationTampered,
    RandomizationError,
    Randomized,
    StratumExhausted,
    _audit_tampering,
    _checked,
    _factors,
    _method,
    _preparation_codes,
)
from trialwright.services.safety import PAUSE_FACTS, SafetyError, check_pause
from trialwright.services.screening import NotFound, _typed_values, participant_row, refuse_withdrawn, withdrawn_on
from trialwright.services.trial import CURRENT_SHA, protocol_by_sha, protocol_in
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope, serialise, serialised_by, session_scope
from trialwright.store.prepared import Prepared
from trialwright.store.randomization_tables import allocation_entries, allocation_lists, unblindings
from trialwright.store.screening_tables import participants, screenings, withdrawals

__all__ = [
    "ParticipantRow",
    "RandomizationPreview",
    "allocation_in",
    "allocation_of",
    "page_participants",
    "participant_rows",
    "preview_randomization",
    "randomize",
    "stratum_for",
]


def _levels(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split("|")) if key != "all" else {}


def stratum_for(protocol: Protocol, site: str, values: Mapping[str, object]) -> str:
    """A participant's stratum key (``site=RAZ``), from their site and screening values."""
    try:
        levels = {f.id: level_of(f, site, values) for f in _factors(protocol)}
    except StratificationError as exc:
        raise RandomizationError(str(exc)) from None
    return strata_of({k: [v] for k, v in levels.items()})[0]


def _stratum_of(protocol: Protocol, site: str, screening_values: str) -> str:
    # The values as eligibility read them, derived fields included (a factor may read e.g. a derived ratio).
    values = evaluate(protocol, _typed_values(protocol, json.loads(screening_values))).values
    return stratum_for(protocol, site, values)


def _participant_facts(*, lock: bool, serialised: bool = False) -> Select[Any]:
    """One statement for everything randomizing needs of the participant (``participant_id``) before its locks:
    their id and site, their screening values, when they withdrew from the intervention (NULL: never), and the protocol
    version the trial runs under. With ``lock``, the participant's row is locked (PostgreSQL), so two requests for
    one participant queue on it. With ``serialised`` (PostgreSQL), the same statement takes the randomization lock:
    shared when the protocol version it reads is one of ``list_shas`` (a parameter: versions known to randomize from
    a list), else exclusive (minimization, or a version not parsed yet: exclusive is never wrong, only slower)."""
    columns: list[Any] = [
        participants.c.participant_id,
        participants.c.site,
        screenings.c.screening_values,
        withdrawn_on(participants.c.participant_id, "intervention").label("withdrawn_on"),
        CURRENT_SHA.label("protocol_sha"),
    ]
    if serialised:
        from_a_list = any_(bindparam("list_shas", type_=ARRAY(String))) == CURRENT_SHA
        columns.append(serialised_by("randomization", shared_if=from_a_list).label("randomization_lock"))
        # The data lock, shared, as every data change holds it (``services.lock.require_unlocked``): a database or
        # soft lock being set waits for this randomization, and ``_ready`` reads the lock facts after it.
        columns.append(serialised_by(DATA_LOCK, shared_if=true()).label("data_lock"))
    query = (
        select(*columns)
        .join_from(participants, screenings, screenings.c.id == participants.c.screening_id)
        .where(participants.c.participant_id == bindparam("participant_id"))
    )
    return query.with_for_update(of=participants) if lock else query


#: Built once: a randomization's statements are the same every time but for their parameters.
_FACTS = {lock: Prepared(_participant_facts(lock=lock)) for lock in (True, False)}
_FACTS_SERIALISED = Prepared(_participant_facts(lock=True, serialised=True))
#: The protocol versions (SHA-256) seen to randomize from a list, whose randomizations share the randomization lock.
_LIST_SHAS: set[str] = set()


def _read_participant(
    session: Session, actor: UserView, participant_id: str, *, lock: bool
) -> tuple[Protocol, dict[str, Any], str]:
    """The protocol, the participant's row (a dict: id, site, screening values, withdrawal, protocol version;
    within the actor's sites, else ``NotFound``) and their stratum; refused as randomizing refuses before its locks
    (withdrawn from the intervention, a missing stratification value).
    With ``lock``, the randomization lock is held when it returns (``serialise``; on PostgreSQL taken by the same
    statement, in the mode the protocol version it read asks for)."""
    serialised = lock and session.get_bind().dialect.name == "postgresql"
    if serialised:
        parameters = {"participant_id": participant_id, "list_shas": sorted(_LIST_SHAS)}
        rows = _FACTS_SERIALISED.rows(session, parameters)
    else:
        rows = _FACTS[lock].rows(session, {"participant_id": participant_id})
    row = rows[0] if rows else None
    if row is None or (actor.role.site_scoped and row["site"] not in actor.sites):
        raise NotFound("no such participant")
    refuse_withdrawn(participant_id, "intervention", row["withdrawn_on"])
    protocol = protocol_by_sha(session, row["protocol_sha"]).protocol
    if lock:
        if not isinstance(_method(protocol), Minimization):
            _LIST_SHAS.add(row["protocol_sha"])  # its next randomizations take the lock shared
        if not serialised:
            serialise(session, "randomization", shared=not isinstance(_method(protocol), Minimization))
    return protocol, row, _stratum_of(protocol, row["site"], row["screening_values"])


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
        raise denied(RandomizationError)("role: investigators and study coordinators randomize")
    try:
        return _randomize(engine, actor, participant_id)
    except AllocationTampered as exc:
        _audit_tampering(engine, actor, exc, participant_id)
        raise


def _randomize(engine: Engine, actor: UserView, participant_id: str) -> Randomized:
    # One transaction. No lock on the whole trial: the participant's own row (two requests for one participant
    # queue), then the list entry taken with a row lock. Minimization alone decides from every earlier allocation, so
    # its requests queue on one lock. A list's requests share that lock: they run together, and none runs while a
    # DSMB decision holds it alone, so a stop or pause recorded now is seen by the checks after it (``_ready``).
    with session_scope(engine) as session:
        protocol, participant, stratum = _read_participant(session, actor, participant_id, lock=True)
        method = _method(protocol)  # the randomization lock is held (``_read_participant``)
        # On PostgreSQL a list's first free entry that no other request holds is taken by the same statement.
        take = not isinstance(method, Minimization) and session.get_bind().dialect.name == "postgresql"
        list_id, seed, unlocked, taken = _ready(session, protocol, participant_id, free_in=stratum if take else None)
        now = clock.now()

        def claim(number: int) -> dict[str, Any]:
            return {
                "participant_id": participant_id,
                "randomization_number": number,
                "randomized_at": now,
                "randomized_by": actor.username,
            }

        if isinstance(method, Minimization):
            assert seed is not None, "generate_list keeps the seed of a minimization record"
            number = _next_number(session)
            arm, decision = _minimize(session, method, stratum, int(seed), number)
            sequence = (
                session.execute(
                    select(func.max(allocation_entries.c.sequence)).where(allocation_entries.c.stratum == stratum)
                ).scalar()
                or 0
            ) + 1
            code = _preparation_codes(session, 1)[0]
            row = {
                "list_id": list_id,
                "stratum": stratum,
                "sequence": sequence,
                "arm": arm,
                "preparation_code": code,
                "decision": json.dumps(decision),
                **claim(number),
            }
            session.execute(allocation_entries.insert().values(**row, digest=digest_of(session, row)))
        else:
            # The first free entry of the stratum that no other request holds (PostgreSQL: a row lock, skipping
            # entries locked by concurrent requests; SQLite: its single writer). Under concurrency entries are
            # therefore taken out of sequence order now and then (B takes entry 6 while A holds 5; if A fails, a
            # later request takes 5), and randomization numbers follow the order requests finish, not the list's:
            # each entry still goes to exactly one participant, and the seal and digest bind entry, number and arm.
            entry = unlocked if take else session.execute(_FREE_UNLOCKED, {"stratum": stratum}).first()
            if entry is None:
                # Every free entry may be held by a request still running (or by keying, which locks them all):
                # wait for it rather than call the stratum exhausted; if its holder fails, it is ours.
                entry = session.execute(_FREE, {"stratum": stratum}).first()
            if entry is None:
                raise StratumExhausted(stratum)
            _checked(session, entry)
            # Taken with the entry by ``_ready`` when nothing could refuse (PostgreSQL), else now, after every check.
            number = taken if taken is not None and entry is unlocked else _next_number(session)
            claimed = claim(number)
            digest = digest_of(session, {**entry._mapping, **claimed})
            _CLAIM.rows(session, {"entry_id": entry.id, **claimed, "digest": digest})
            arm, code, sequence = entry.arm, entry.preparation_code, entry.sequence
        recorded: dict[str, object] = {"randomization_number": number, "preparation_code": code, "stratum": stratum}
        if seed is not None:
            # Keyed by the sealed seed: lets `audit verify` see a flipped arm, tells a blinded reader nothing.
            recorded["seal"] = allocation_seal(seed, participant_id, number, code, stratum, sequence, arm)
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant["site"],
            participant=participant_id,
            action="participant.randomized",
            new_value=recorded,
            last=True,  # its last write, after every lock: numbered in commit order by its INSERT
        )
        viewer = viewer_for(protocol, actor.username, actor.role, frozenset(actor.sites))
        shown = arm if may_see_allocation(viewer, participant_id) else MASKED
        return Randomized(participant_id, number, stratum, now, code, shown, False)


_FIRST_FREE = (
    select(allocation_entries)
    .where(allocation_entries.c.stratum == bindparam("stratum"), allocation_entries.c.participant_id.is_(None))
    .order_by(allocation_entries.c.sequence)
    .limit(1)
)
#: The first free entry of a stratum that no other request holds; and the first free entry, waiting for its holder.
_FREE_UNLOCKED = _FIRST_FREE.with_for_update(skip_locked=True)
_FREE = _FIRST_FREE.with_for_update()
_CLAIMED = ("participant_id", "randomization_number", "randomized_at", "randomized_by", "digest")
_CLAIM = Prepared(
    allocation_entries.update()
    .where(allocation_entries.c.id == bindparam("entry_id"))
    .values({name: bindparam(name) for name in _CLAIMED})
)


@functools.cache
def _prepared_ready_facts(free: bool) -> Prepared:
    return Prepared(_ready_facts(free))


@functools.cache
def _ready_facts(free: bool = False) -> Select[Any]:
    """What ``_ready`` decides from, in one statement (built once, at first use: the import's query is read from a
    module that imports this one's callers); with ``free`` (PostgreSQL), also the first free entry of the stratum
    (``stratum``) that no other request holds, locked (``_FREE_UNLOCKED``), its columns named ``entry_...`` (NULL
    when there is none)."""
    from trialwright.services.odm_import import imported_randomization_entries

    if free:
        lateral = _FREE_UNLOCKED.lateral("free")
        one = select(literal(1).label("one")).subquery("one")
        # OFFSET 0 keeps PostgreSQL from inlining the facts into the number's condition (each read once).
        facts = (
            _ready_facts()
            .add_columns(*(c.label(f"entry_{c.name}") for c in lateral.c))
            .select_from(one.outerjoin(lateral, true()))
            .offset(0)
            .subquery("facts")
        )
        # The randomization number, taken only when nothing refuses and an entry was found: no pause facts to
        # weigh, not randomized, nothing imported, not withdrawn, a list. Else NULL (``_next_number`` takes it).
        may = and_(
            ~facts.c.frozen,
            ~facts.c.pause_facts,
            ~facts.c.randomized,
            ~facts.c.imported,
            facts.c.withdrawn_on.is_(None),
            facts.c.list_id.is_not(None),
            facts.c.entry_id.is_not(None),
        )
        return select(facts, case((may, func.nextval("randomization_numbers")), else_=None).label("number"))

    first = select(allocation_lists.c.id, allocation_lists.c.seed).order_by(allocation_lists.c.id).limit(1)
    participant_id: ColumnElement[str] = bindparam("participant_id")
    return select(
        frozen_expression(participant_id).label("frozen"),
        PAUSE_FACTS.label("pause_facts"),
        select(allocation_entries.c.id)
        .where(allocation_entries.c.participant_id == participant_id)
        .exists()
        .label("randomized"),
        imported_randomization_entries(participant_id).exists().label("imported"),
        withdrawn_on(participant_id, "intervention").label("withdrawn_on"),
        first.with_only_columns(allocation_lists.c.id).scalar_subquery().label("list_id"),
        first.with_only_columns(allocation_lists.c.seed).scalar_subquery().label("seed"),
    )


class _Entry:
    """An allocation entry read by ``_ready`` (its columns, as a row of ``allocation_entries`` gives them)."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping
        self.id, self.arm = mapping["id"], mapping["arm"]
        self.preparation_code, self.sequence = mapping["preparation_code"], mapping["sequence"]


def _ready(
    session: Session, protocol: Protocol, participant_id: str, *, free_in: str | None = None
) -> tuple[int, str | None, _Entry | None, int | None]:
    """Refuse as randomizing does before an allocation is claimed (a withdrawal from the intervention, the safety
    pause, a participant randomized already, or in the trial this one was imported from, no list yet); else the
    list's first record: its id and seed, and with ``free_in`` (a stratum; PostgreSQL) its first free entry that no
    other request holds, locked (None: none such), and the randomization number the same statement took from the
    sequence when it found nothing that refuses (no pause facts to weigh) and an entry (None: not taken).
    Everything it decides from is read in one statement (after the caller's locks); the pause's rows and an import's
    entries only when there are any."""
    from trialwright.services.odm_import import imported_randomization  # the import reads this module's callers

    parameters = (
        {"participant_id": participant_id}
        if free_in is None
        else {"participant_id": participant_id, "stratum": free_in}
    )
    (facts,) = _prepared_ready_facts(free_in is not None).rows(session, parameters)
    if facts["frozen"]:  # the database locked, or the participant or their site soft-locked: refused in its words
        require_unlocked(session, participant_id, error=RandomizationError)
    # Read again after the locks: a withdrawal committed while this request waited for the participant's row is not
    # in the snapshot of the statement that waited (PostgreSQL, READ COMMITTED).
    refuse_withdrawn(participant_id, "intervention", facts["withdrawn_on"])
    try:
        check_pause(session, protocol, facts=bool(facts["pause_facts"]))
    except SafetyError as exc:
        raise RandomizationError(str(exc)) from None
    if facts["randomized"]:
        raise RandomizationError(f"participant: {participant_id} is randomized already")
    kept = imported_randomization(session, participant_id) if facts["imported"] else None
    if kept is not None:
        raise RandomizationError(
            f"participant: {participant_id} was randomized in the trial this one was imported from (number "
            f"{kept.get('RandomizationNumber')}); its arm is in that trial's sealed list: it is not randomized again"
        )
    if facts["list_id"] is None:
        raise RandomizationError("list: no allocation list yet; the unblinded statistician generates it")
    entry, number = None, None
    if free_in is not None and facts["entry_id"] is not None:
        entry = _Entry({c.name: facts[f"entry_{c.name}"] for c in allocation_entries.columns})
        number = None if facts["number"] is None else int(facts["number"])
    return int(facts["list_id"]), facts["seed"], entry, number


@dataclass(frozen=True)
class RandomizationPreview:
    """What randomizing a participant now would do, for the confirmation step before it (never an arm, nor
    anything of the list): who, and where the trial stands against the protocol's target sample size.

    ``randomized`` counts the participants randomized in the whole trial (every site), the number a
    recruitment report shows; ``past_target`` is True when this randomization would go beyond the target
    (the 31st of 30). The protocol sets no ceiling, so randomizing past the target is allowed: the
    confirmation says so plainly."""

    participant_id: str
    site: str
    randomized: int
    target: int

    @property
    def ordinal(self) -> int:
        """This participant's place in the trial's count if randomized now (others may come first)."""
        return self.randomized + 1

    @property
    def past_target(self) -> bool:
        return self.ordinal > self.target


def preview_randomization(engine: Engine, actor: UserView, participant_id: str) -> RandomizationPreview:
    """Randomizing ``participant_id`` as it would go now, changing nothing: refused (``RandomizationError``,
    ``ScreeningError``, ``NotFound``) with the words ``randomize`` would use for the refusals it can know
    before claiming an entry; otherwise where the trial stands against its target. ``randomize`` checks
    everything again: a preview is never a promise."""
    if actor.role not in RANDOMIZERS:
        raise denied(RandomizationError)("role: investigators and study coordinators randomize")
    with read_scope(engine) as session:
        # A withdrawal or a missing stratification value refuses here, as in ``randomize``.
        protocol, participant, _ = _read_participant(session, actor, participant_id, lock=False)
        _ready(session, protocol, participant_id)  # takes no number: no ``free_in``
        randomized = session.execute(
            select(func.count()).select_from(allocation_entries).where(allocation_entries.c.participant_id.is_not(None))
        ).scalar_one()
    return RandomizationPreview(participant_id, participant["site"], int(randomized), protocol.sample_size.target)


def _next_number(session: Session) -> int:
    """The next randomization number: on PostgreSQL from the ``randomization_numbers`` sequence, taken after every
    check so that only a request that fails between here and its commit (a crash, a lost connection, an entry
    refused by its digest) leaves its number unused, never given to anyone else; on SQLite, under its single writer,
    one more than the largest. A list's randomization on PostgreSQL usually has its number already, taken by the
    statement of its checks when none of them could refuse (``_ready_facts``)."""
    if session.get_bind().dialect.name == "postgresql":
        return int(session.execute(text("SELECT nextval('randomization_numbers')")).scalar_one())
    return int(session.execute(select(func.max(allocation_entries.c.randomization_number))).scalar() or 0) + 1


def allocation_of(engine: Engine, actor: UserView, participant_id: str) -> Randomized | None:
    """A participant's randomization as this actor may see it (None before randomization)."""
    with session_scope(engine) as session:
        return allocation_in(session, None, actor, participant_id)


def allocation_in(
    session: Session, protocol: Protocol | None, actor: UserView, participant_id: str
) -> Randomized | None:
    """``allocation_of`` in the caller's transaction (``protocol`` None: the current one, read in it)."""
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
        protocol if protocol is not None else protocol_in(session).protocol,
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


def _participants_query(
    actor: UserView, participant_id: str | None, site: str | None = None, search: str | None = None
) -> Select[Any]:
    query = select(
        participants,
        allocation_entries.c.randomization_number,
        allocation_entries.c.randomized_at,
        allocation_entries.c.preparation_code,
    ).join(allocation_entries, allocation_entries.c.participant_id == participants.c.participant_id, isouter=True)
    if actor.role.site_scoped:
        query = query.where(participants.c.site.in_(actor.sites))
    if participant_id is not None:
        query = query.where(participants.c.participant_id == participant_id)
    if site:
        query = query.where(participants.c.site == site)
    if search:
        query = query.where(participants.c.participant_id.startswith(search, autoescape=True))
    return query


def _participant_views(session: Session, rows: Sequence[Any]) -> list[ParticipantRow]:
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


#: Newest enrolment first; the participant id breaks ties.
_PARTICIPANT_KEY = (participants.c.enrolled_at, participants.c.participant_id)


def _may_read_participants(actor: UserView) -> None:
    if actor.role not in PARTICIPANT_READERS:
        raise denied(RandomizationError)(f"role: {only_roles_may(PARTICIPANT_READERS, 'read the participant list')}")


def participant_rows(engine: Engine, actor: UserView, *, participant_id: str | None = None) -> list[ParticipantRow]:
    """Every enrolled participant within the actor's sites, newest first, with their randomization number
    (pages: ``page_participants``)."""
    _may_read_participants(actor)
    query = _participants_query(actor, participant_id).order_by(*(k.desc() for k in _PARTICIPANT_KEY))
    with session_scope(engine) as session:
        return _participant_views(session, session.execute(query).all())


def page_participants(
    engine: Engine,
    actor: UserView,
    *,
    site: str | None = None,
    search: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[ParticipantRow]:
    """A page of the enrolled participants within the actor's sites, newest first; ``search`` keeps those
    whose participant id starts with it."""
    _may_read_participants(actor)
    query = _participants_query(actor, None, site, search)
    with read_scope(engine) as session:
        return keyset_page(session, query, _PARTICIPANT_KEY, _participant_views, limit=limit, cursor=cursor)
