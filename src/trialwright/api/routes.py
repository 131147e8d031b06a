"""REST endpoints under /api/v1: thin over the services, every answer filtered by the masking policy."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response

from trialwright.api.schemas import (
    AccountRequestOut,
    ArmOut,
    MeOut,
    SiteOut,
    TokenCreated,
    TokenIn,
    TokenOut,
    TrialOut,
    UserOut,
)
from trialwright.domain.calendars import trial_calendars
from trialwright.domain.masking import masked_roles, present_arms
from trialwright.domain.roles import Role
from trialwright.services import tokens as token_svc
from trialwright.services import users as user_svc
from trialwright.services.approvals import may_approve, pending_requests
from trialwright.services.tokens import TokenAccessDenied, TokenView, issue_token, revoke_token
from trialwright.services.users import UserError, UserView
from trialwright.web.deps import (
    ApiUser,
    EngineDep,
    ProtocolDep,
    RowId,
    SettingsDep,
    require_api_roles,
    trial_language,
    viewer_of,
)

router = APIRouter(prefix="/api/v1", tags=["trial"])
AdminUser = Annotated[UserView, Depends(require_api_roles(Role.ADMINISTRATOR))]


@router.get("/me", response_model=MeOut)
def get_me(user: ApiUser, protocol: ProtocolDep) -> MeOut:
    """Who the token belongs to, with the language and calendar the trial shows them (their own preference when
    the protocol declares it, else the protocol's first language and default calendar)."""
    calendars = [c.value for c in trial_calendars(protocol.calendars)]
    return MeOut(
        username=user.username,
        full_name=user.full_name,
        role=user.role.value,
        sites=list(user.sites),
        language=trial_language(protocol, user.language),
        calendar=user.calendar if user.calendar in calendars else calendars[0],
    )


@router.get("/trial", response_model=TrialOut)
def get_trial(user: ApiUser, protocol: ProtocolDep, engine: EngineDep) -> TrialOut:
    """The trial's registry summary; arms as the caller may see them."""
    arms = [
        ArmOut(label=a.label, code=a.code, name=a.name, role=a.role, ratio=a.ratio)
        for a in present_arms(viewer_of(user, engine), protocol)
    ]
    t = protocol.trial
    return TrialOut(
        trial_id=protocol.trial_id,
        scientific_title=t.titles.scientific,
        public_title=t.titles.public,
        registry_ids=[f"{i.registry}: {i.id}" for i in t.ids],
        registration_date=t.registration.date,
        protocol_version=protocol.version.number,
        sites=[SiteOut(code=s.code, name=s.name, timezone=s.timezone) for s in protocol.sites],
        arms=arms,
        target_sample_size=protocol.sample_size.target,
        masked_parties=[m.value for m in protocol.masking.masked],
        blinding=protocol.masking.blinding.value if protocol.masking.blinding else None,
        masked_roles=sorted(r.value for r in masked_roles(protocol)),
    )


@router.get("/users", response_model=list[UserOut], tags=["users"])
def list_users(_admin: AdminUser, engine: EngineDep) -> list[UserOut]:
    """Every account (administrators)."""
    now = dt.datetime.now(dt.UTC)
    return [
        UserOut(
            username=u.username,
            full_name=u.full_name,
            role=u.role.value,
            sites=list(u.sites),
            active=u.active,
            locked=u.locked_until is not None and u.locked_until > now,
        )
        for u in user_svc.list_users(engine)
    ]


def _token_out(t: TokenView) -> TokenOut:
    return TokenOut(**t.__dict__, state=t.state())


@router.get("/users/requests", response_model=list[AccountRequestOut], tags=["users"])
def list_account_requests(user: ApiUser, engine: EngineDep, protocol: ProtocolDep) -> list[AccountRequestOut]:
    """The two-person rule's work list: requests waiting for a second person (approving roles; approve or
    reject them on the Account requests page or with `trialwright user approve|reject`)."""
    if not may_approve(protocol, user.role):
        raise HTTPException(status_code=403, detail="your role may not do this")
    return [
        AccountRequestOut(
            id=r.id,
            kind=r.kind.value,
            username=r.username,
            role=r.role.value,
            sites=list(r.sites),
            requested_by=r.requested_by,
            requested_at=r.requested_at,
            reason=r.reason,
        )
        for r in pending_requests(engine)
    ]


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
def list_tokens(user: ApiUser, engine: EngineDep) -> list[TokenOut]:
    """The caller's API tokens, live, expired and revoked (never the tokens themselves)."""
    return [_token_out(t) for t in token_svc.list_tokens(engine, user.username)]


@router.post("/tokens", response_model=TokenCreated, status_code=201, tags=["tokens"])
def create_token(body: TokenIn, user: ApiUser, engine: EngineDep, settings: SettingsDep) -> TokenCreated:
    """A new token for the caller, shown once; it lives ``days`` (by default and at most: the setting)."""
    try:
        token, view = issue_token(
            engine, user.username, name=body.name, actor=user.username, days=body.days,
            max_days=settings.api_token_days, redcap=body.redcap,
        )  # fmt: skip
    except UserError as exc:
        field, _, _ = str(exc).partition(":")
        raise HTTPException(status_code=422, detail=[{"field": field, "rule": str(exc)}]) from None
    return TokenCreated(token=token, **view.__dict__, state=view.state())


@router.delete("/tokens/{token_id}", status_code=204, tags=["tokens"])
def delete_token(token_id: RowId, user: ApiUser, engine: EngineDep) -> Response:
    """Revoke one of the caller's tokens."""
    if not revoke_token(engine, token_id, actor=user.username, owner=user.username):
        raise HTTPException(status_code=404, detail="no such token")
    return Response(status_code=204)


@router.get("/users/{username}/tokens", response_model=list[TokenOut], tags=["tokens"])
def list_user_tokens(username: Annotated[str, Path(max_length=64)], user: ApiUser, engine: EngineDep) -> list[TokenOut]:
    """A user's API tokens: for that user and administrators (403 for anyone else, audited)."""
    try:
        return [_token_out(t) for t in token_svc.list_tokens(engine, username, viewer=user)]
    except TokenAccessDenied:
        raise HTTPException(status_code=403, detail="only the token's owner and an administrator may") from None
    except UserError:
        raise HTTPException(status_code=404, detail="no such user") from None


@router.delete("/users/{username}/tokens/{token_id}", status_code=204, tags=["tokens"])
def revoke_user_token(
    username: Annotated[str, Path(max_length=64)], token_id: RowId, user: ApiUser, engine: EngineDep
) -> Response:
    """Revoke one of a user's tokens: that user or an administrator (403 for anyone else, audited)."""
    try:
        revoked = revoke_token(engine, token_id, actor=user.username, owner=username, viewer=user)
    except TokenAccessDenied:
        raise HTTPException(status_code=403, detail="only the token's owner and an administrator may") from None
    if not revoked:
        raise HTTPException(status_code=404, detail="no such token")
    return Response(status_code=204)
