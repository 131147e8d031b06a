"""What the randomization modules share: who randomizes, the errors (none names an arm), a randomization
as a viewer sees it, the protocol's method and stratification factors, preparation codes, and the keyed
digest every allocation entry is checked against before use.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from trialwright.domain.randomization import ListMethod, Minimization, PermutedBlocks, SimpleRandomization
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.protocol.design import StratificationFactor
from trialwright.services import audit
from trialwright.services.audit_keys import allocation_intact
from trialwright.services.errors import denied
from trialwright.services.users import UserView
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries

__all__ = [
    "PARTICIPANT_READERS",
    "RANDOMIZERS",
    "AllocationTampered",
    "PreparationRefused",
    "RandomizationError",
    "Randomized",
    "StratumExhausted",
]


RANDOMIZERS = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR)
#: Who reads the participant list (the blinded team; arms stay masked for them): the service's rule, which the
#: participants page and ``GET /api/v1/participants`` read.
PARTICIPANT_READERS = (
    Role.ADMINISTRATOR,
    Role.INVESTIGATOR,
    Role.STUDY_COORDINATOR,
    Role.MONITOR,
    Role.DATA_MANAGER,
    Role.OUTCOME_ASSESSOR,
)


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


def _statistician(actor: UserView, what: str) -> None:
    if actor.role is not Role.UNBLINDED_STATISTICIAN:
        raise denied(RandomizationError)(f"role: only the unblinded statistician {what}")


def _preparation_codes(session: Session, n: int) -> list[str]:
    taken = set(session.execute(select(allocation_entries.c.preparation_code)).scalars())
    codes: list[str] = []
    while len(codes) < n:
        code = f"P-{secrets.token_hex(3).upper()}"
        if code not in taken:
            taken.add(code)
            codes.append(code)
    return codes


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
