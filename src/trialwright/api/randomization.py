"""REST endpoints for randomization, preparation and emergency unblinding (bearer tokens).

Arms appear only where the masking policy allows: the randomization service decides, never this module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from trialwright.api.paging import CursorParam, LimitParam, PageOut, cursor_checked, page_out
from trialwright.api.schemas import ClosedBody, FieldValueIn
from trialwright.domain.paging import DEFAULT_LIMIT
from trialwright.domain.roles import Role
from trialwright.services import randomization as svc
from trialwright.services.screening import NotFound, ScreeningError
from trialwright.services.users import UserView
from trialwright.web.deps import ApiReentry, EngineDep, require_api_roles

router = APIRouter(prefix="/api/v1", tags=["randomization"])
Reader = Annotated[
    UserView,
    Depends(
        require_api_roles(
            Role.ADMINISTRATOR,
            Role.INVESTIGATOR,
            Role.STUDY_COORDINATOR,
            Role.MONITOR,
            Role.DATA_MANAGER,
            Role.OUTCOME_ASSESSOR,
            Role.UNBLINDED_STATISTICIAN,
        )
    ),
]
#: Who reads the participant list (the blinded team, as the participants page): the service's rule.
ParticipantReader = Annotated[UserView, Depends(require_api_roles(*svc.PARTICIPANT_READERS))]
Randomizer = Annotated[UserView, Depends(require_api_roles(*svc.RANDOMIZERS))]
Investigator = Annotated[UserView, Depends(require_api_roles(Role.INVESTIGATOR))]
Statistician = Annotated[UserView, Depends(require_api_roles(Role.UNBLINDED_STATISTICIAN))]
Pharmacist = Annotated[UserView, Depends(require_api_roles(Role.UNBLINDED_PHARMACIST))]
Unblinded = Annotated[
    UserView,
    Depends(require_api_roles(Role.UNBLINDED_STATISTICIAN, Role.UNBLINDED_PHARMACIST, Role.DSMB_MEMBER)),
]
BalanceReader = Annotated[UserView, Depends(require_api_roles(Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER))]


class RandomizationOut(BaseModel):
    """A participant's randomization; ``arm`` is ``masked`` unless the caller may see it."""

    participant_id: str
    randomization_number: int
    stratum: str
    randomized_at: dt.datetime
    preparation_code: str
    arm: str
    emergency_unblinded: bool


class UnblindIn(ClosedBody):
    """An emergency unblinding request: a reason and the caller's own password."""

    reason: str
    password: str


class GenerateOut(BaseModel):
    """The sealed list's checksum."""

    checksum: str


class ExtendIn(ClosedBody):
    """An extension of one stratum."""

    stratum: str
    entries: int = Field(ge=1, le=100_000)
    reason: str


class PreparationIn(ClosedBody):
    """A dose's preparation record: a value for each attribute the arm's protocol declares (attribute id ->
    value, or {value, unit} to state the unit, which must be the declared one)."""

    values: dict[str, FieldValueIn] = Field(default_factory=dict)


class AttributeOut(BaseModel):
    """One attribute the pharmacist records for this arm's doses."""

    id: str
    label: str
    type: str
    unit: str | None
    limits: str | None
    required: bool


class RecordedOut(BaseModel):
    """One recorded value of a dose's preparation."""

    id: str
    label: str
    value: int | float | str
    unit: str | None


class InstructionOut(BaseModel):
    """What to prepare for one code, and its record once prepared (unblinded pharmacist)."""

    preparation_code: str
    participant_id: str | None
    arm: str
    product: str
    dose: str | None
    volume: str | None
    route: str
    identical_appearance: bool
    to_prepare: bool
    attributes: list[AttributeOut]
    prepared: bool
    prepared_at: dt.datetime | None
    prepared_by: str | None
    recorded: list[RecordedOut]


class AllocationEntryOut(BaseModel):
    """One entry of the allocation list, with its arm (unblinded statistician)."""

    stratum: str
    sequence: int
    block: int | None
    block_size: int | None
    position: int | None
    arm: str
    preparation_code: str
    participant_id: str | None
    randomization_number: int | None
    randomized_at: dt.datetime | None
    decision: str | None = Field(description="Under minimization: the decision's record (JSON text).")


class ListRecordOut(BaseModel):
    """The list's generation or one extension, as signed off (no arms)."""

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


class StratumStatusOut(BaseModel):
    """Entries used and left in one stratum."""

    stratum: str
    used: int
    remaining: int


class StratumBalanceOut(BaseModel):
    """Randomized per arm in one stratum, the imbalance now and the worst running one."""

    stratum: str
    by_arm: dict[str, int]
    imbalance: float = Field(description="The range of ratio-adjusted counts (count / ratio) now, not rounded.")
    worst_running: float
    bound: float | None = Field(description="What permuted blocks guarantee (null under minimization).")


class UnblindingOut(BaseModel):
    """One emergency unblinding: who, when, why (never the arm)."""

    participant_id: str
    unblinded_by: str
    unblinded_at: dt.datetime
    reason: str


def _instruction(i: svc.Instruction) -> InstructionOut:
    return InstructionOut.model_validate(dataclasses.asdict(i))


def _out(r: svc.Randomized) -> RandomizationOut:
    return RandomizationOut(
        participant_id=r.participant_id,
        randomization_number=r.number,
        stratum=r.stratum,
        randomized_at=r.at,
        preparation_code=r.preparation_code,
        arm=r.arm,
        emergency_unblinded=r.unblinded,
    )


_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*): ")


def _refusal(message: str) -> dict[str, str | None]:
    """One refusal as the API answers it: the field a message starts with ("volume_ml: ..."), and the rule."""
    named = _FIELD.match(message)
    return {"field": named.group(1) if named else None, "rule": message}


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except NotFound:
        raise HTTPException(status_code=404, detail="not found") from None
    except (svc.RandomizationError, ScreeningError) as exc:
        raise HTTPException(status_code=422, detail=[_refusal(str(exc))]) from None


@router.post("/participants/{participant_id}/randomization", response_model=RandomizationOut, status_code=201)
def randomize_participant(participant_id: str, user: Randomizer, engine: EngineDep) -> RandomizationOut:
    """Randomize an enrolled participant (the next concealed entry of their stratum, once)."""
    return _out(_call(svc.randomize, engine, user, participant_id))


class ParticipantOut(BaseModel):
    """An enrolled participant with their randomization number (never an arm)."""

    participant_id: str
    site: str
    screening_id: int
    enrolled_at: dt.datetime
    withdrawn_scopes: list[str]
    randomization_number: int | None
    randomized_at: dt.datetime | None
    preparation_code: str | None
    emergency_unblinded: bool


def _participant(p: svc.ParticipantRow) -> ParticipantOut:
    return ParticipantOut(
        participant_id=p.participant_id,
        site=p.site,
        screening_id=p.screening_id,
        enrolled_at=p.enrolled_at,
        withdrawn_scopes=list(p.withdrawn_scopes),
        randomization_number=p.randomization_number,
        randomized_at=p.randomized_at,
        preparation_code=p.preparation_code,
        emergency_unblinded=p.unblinded,
    )


@router.get("/participants", response_model=PageOut[ParticipantOut])
def list_participants(
    request: Request,
    response: Response,
    user: ParticipantReader,
    engine: EngineDep,
    site: str | None = None,
    search: Annotated[str | None, Query(max_length=32, description="Participant id prefix.")] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> PageOut[ParticipantOut]:
    """A page of the enrolled participants within the caller's sites, newest enrolment first."""
    with cursor_checked():
        found = svc.page_participants(engine, user, site=site, search=search, limit=limit, cursor=cursor)
    return page_out(request, response, found, _participant)


@router.get("/participants/{participant_id}/randomization", response_model=RandomizationOut)
def get_randomization(participant_id: str, user: Reader, engine: EngineDep) -> RandomizationOut:
    """A participant's randomization (404 before it)."""
    found = _call(svc.allocation_of, engine, user, participant_id)
    if found is None:
        raise HTTPException(status_code=404, detail="not randomized yet")
    return _out(found)


@router.post("/participants/{participant_id}/unblinding", response_model=RandomizationOut, status_code=201)
def unblind_participant(
    participant_id: str, body: UnblindIn, user: Investigator, engine: EngineDep, policy: ApiReentry
) -> RandomizationOut:
    """Emergency unblinding: the arm at once to this investigator only; recorded and notified."""
    return _out(_call(svc.emergency_unblind, engine, user, participant_id, reason=body.reason, password=body.password,
                      policy=policy))  # fmt: skip


@router.post("/randomization/list", response_model=GenerateOut, status_code=201)
def generate_allocation_list(user: Statistician, engine: EngineDep) -> GenerateOut:
    """Generate and seal the allocation list (once)."""
    return GenerateOut(checksum=_call(svc.generate_list, engine, user))


@router.post("/randomization/extensions", response_model=GenerateOut, status_code=201)
def extend_allocation_list(body: ExtendIn, user: Statistician, engine: EngineDep) -> GenerateOut:
    """Extend one stratum along the seed chain (audited with the reason)."""
    return GenerateOut(
        checksum=_call(svc.extend_list, engine, user, body.stratum, entries=body.entries, reason=body.reason)
    )


@router.get("/randomization/list", response_model=list[AllocationEntryOut])
def export_allocation_list(user: Statistician, engine: EngineDep) -> list[dict[str, Any]]:
    """The whole list with arms (unblinded statistician; the export is audited)."""
    return list(_call(svc.export_list, engine, user))


@router.get("/randomization/records", response_model=list[ListRecordOut])
def list_allocation_records(user: Statistician, engine: EngineDep) -> list[dict[str, Any]]:
    """The generation report and each extension (no arms)."""
    return [r.__dict__ for r in _call(svc.list_records, engine, user)]


@router.get("/randomization/status", response_model=list[StratumStatusOut])
def get_allocation_status(user: Statistician, engine: EngineDep) -> list[dict[str, Any]]:
    """Entries used and left per stratum."""
    return [s.__dict__ for s in _call(svc.list_status, engine, user)]


@router.get("/randomization/balance", response_model=list[StratumBalanceOut])
def get_allocation_balance(user: BalanceReader, engine: EngineDep) -> list[dict[str, Any]]:
    """Randomized participants per arm and stratum, with the worst running imbalance."""
    return [{**b.__dict__, "by_arm": dict(b.by_arm)} for b in _call(svc.balance, engine, user)]


@router.get("/pharmacy/{code}", response_model=InstructionOut)
def what_to_prepare(code: str, user: Pharmacist, engine: EngineDep) -> InstructionOut:
    """What to prepare for one preparation code: the arm's declared attributes, and the record once prepared."""
    return _instruction(_call(svc.what_to_prepare, engine, user, code))


@router.post("/pharmacy/{code}/preparation", response_model=InstructionOut, status_code=201)
def record_preparation(code: str, body: PreparationIn, user: Pharmacist, engine: EngineDep) -> InstructionOut:
    """Record a dose's preparation (once); each refused value is named with its attribute and rule."""
    try:
        done = svc.prepare(engine, user, code, body.values)
    except svc.PreparationRefused as exc:
        raise HTTPException(status_code=422, detail=[_refusal(p) for p in exc.problems]) from None
    except NotFound:
        raise HTTPException(status_code=404, detail="not found") from None
    except svc.RandomizationError as exc:
        raise HTTPException(status_code=422, detail=[_refusal(str(exc))]) from None
    return _instruction(done)


@router.get("/unblindings", response_model=list[UnblindingOut])
def list_unblindings(user: Unblinded, engine: EngineDep) -> list[dict[str, Any]]:
    """Every emergency unblinding: who, when, why (never the arm)."""
    return [u.__dict__ for u in _call(svc.unblinding_log, engine, user)]
