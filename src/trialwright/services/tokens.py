"""API tokens: issued to a person, shown once, stored as a hash, expiring, listed and revoked.

A token lives at most ``max_days`` (the ``api_token_days`` setting, 90 by default) and may be issued with a
shorter life. An expired, revoked or unknown token, or one whose owner is disabled, answers no request: the
API refuses them all alike (401). Tokens are listed and revoked by their owner and by an administrator; anyone
else is refused, and the refusal is audited. Issue and revocation are audited; use at most once a minute per
token; the token itself never is.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from trialwright.domain.roles import Role
from trialwright.domain.text import checked_text
from trialwright.protocol.base import SHORT_TEXT
from trialwright.services import audit
from trialwright.services.trial import CURRENT_SHA
from trialwright.services.users import UserError, UserView, _digest, _require, view_of_rows, with_sites
from trialwright.store.auth_tables import api_tokens, users
from trialwright.store.engine import inserted_id, read_scope, session_scope

__all__ = [
    "DEFAULT_TOKEN_DAYS",
    "TokenAccessDenied",
    "TokenUse",
    "TokenView",
    "issue_token",
    "list_tokens",
    "record_use",
    "resolve_token",
    "revoke_token",
    "token_in",
]

#: A token's life when the setting says nothing else.
DEFAULT_TOKEN_DAYS = 90


class TokenAccessDenied(UserError):
    """Someone other than the owner or an administrator asked for a user's tokens."""


@dataclass(frozen=True)
class TokenView:
    """An API token's record (never the token itself)."""

    id: int
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    expires_at: dt.datetime

    def state(self, now: dt.datetime | None = None) -> str:
        """``revoked``, ``expired`` or ``live``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if (now or dt.datetime.now(dt.UTC)) >= self.expires_at else "live"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _token_view(r: Any) -> TokenView:
    return TokenView(r.id, r.name, r.created_at, r.last_used_at, r.revoked_at, r.expires_at)


def _check_access(engine: Engine, viewer: UserView | None, username: str, what: str) -> None:
    """The owner and administrators only (``viewer`` None: the command line, run by the operator)."""
    if viewer is None or viewer.role is Role.ADMINISTRATOR or viewer.username == username.strip().lower():
        return
    with session_scope(engine) as session:  # committed before the refusal is raised
        audit.record(
            session,
            actor=viewer.username,
            role=viewer.role.value,
            action="access.denied",
            detail={"what": what, "username": username[:64]},
        )
    raise TokenAccessDenied(f"username: only {username!r} and an administrator may {what}")


def issue_token(
    engine: Engine,
    username: str,
    *,
    name: str,
    actor: str,
    days: int | None = None,
    max_days: int = DEFAULT_TOKEN_DAYS,
    redcap: bool = False,
) -> tuple[str, TokenView]:
    """A new API token for the user, living ``days`` (at most and by default ``max_days``); the token is
    returned once and stored only as a hash (audited).

    With ``redcap`` the token has REDCap's shape, 32 uppercase hexadecimal characters (128 random bits), so that
    REDCap clients (PyCap, REDCapR) that check the shape accept it; it is the same token in every other way: the
    same user, role, sites and masking, the same expiry, and it answers ``/api/v1`` as well as ``/redcap/api/``.
    """
    checked_text(name, "name", SHORT_TEXT, multiline=False, error=UserError)
    life = max_days if days is None else days
    if not 1 <= life <= max_days:
        raise UserError(f"days: a token lives 1 to {max_days} days")
    token = secrets.token_hex(16).upper() if redcap else "tw_" + secrets.token_urlsafe(32)
    now = _now()
    expires = now + dt.timedelta(days=life)
    with session_scope(engine) as session:
        row = _require(session, username)
        if not row.active:
            raise UserError(f"username: {row.username!r} is disabled")
        label = name[:64] or "token"
        token_id = inserted_id(
            session,
            api_tokens.insert().values(
                token_hash=_digest(token), user_id=row.id, name=label, created_at=now, expires_at=expires
            ),
        )
        audit.record(
            session,
            actor=actor,
            action="api.token_issued",
            new_value={
                "token_id": token_id,
                "name": name,
                "expires_at": expires,
                "style": "redcap" if redcap else "trialwright",
            },
            detail={"username": row.username},
        )
    return token, TokenView(token_id, label, now, None, None, expires)


def list_tokens(engine: Engine, username: str, *, viewer: UserView | None = None) -> list[TokenView]:
    """The user's tokens, live, expired and revoked (never the tokens themselves)."""
    _check_access(engine, viewer, username, "list these API tokens")
    with session_scope(engine) as session:
        row = _require(session, username)
        rows = session.execute(select(api_tokens).where(api_tokens.c.user_id == row.id).order_by(api_tokens.c.id))
        return [_token_view(r) for r in rows]


def revoke_token(
    engine: Engine, token_id: int, *, actor: str, owner: str | None = None, viewer: UserView | None = None
) -> bool:
    """Revoke a token (of ``owner`` when given); False when there is no such unrevoked token (audited).

    With a ``viewer``, the owner must be named and the viewer must be that owner or an administrator.
    """
    if viewer is not None:
        if owner is None:
            raise TokenAccessDenied("username: name whose token to revoke")
        _check_access(engine, viewer, owner, "revoke these API tokens")
    with session_scope(engine) as session:
        query = (
            select(api_tokens, users.c.username)
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        )
        if owner is not None:
            query = query.where(users.c.username == owner.strip().lower())
        row = session.execute(query).first()
        if row is None:
            return False
        session.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(revoked_at=_now()))
        audit.record(
            session, actor=actor, action="api.token_revoked", detail={"token_id": token_id, "username": row.username}
        )
        return True


_USE_AUDIT_INTERVAL = dt.timedelta(minutes=1)


def resolve_token(engine: Engine, token: str) -> UserView | None:
    """The user a bearer token belongs to, or None (unknown, revoked, expired, user disabled).

    One statement reads the token, its user and their sites. Use is audited at most once a minute per token, to
    keep the trail readable; only then is anything written.
    """
    with read_scope(engine) as session:
        found = token_in(session, token)
    if found is not None and found.use_due:
        with session_scope(engine) as session:
            record_use(session, found)
    return None if found is None else found.user


@dataclass(frozen=True)
class TokenUse:
    """A live token found in a transaction: its user, and whether its use is due to be audited (at most once a
    minute per token: ``record_use``)."""

    user: UserView
    token_id: int
    use_due: bool
    now: dt.datetime
    #: The SHA-256 of the protocol the trial runs under, read in the same statement (``token_in(..., protocol=)``).
    protocol_sha: str | None = None


_TOKEN_COLUMNS = select(api_tokens.c.id.label("token_id"), api_tokens.c.revoked_at, api_tokens.c.expires_at,
                        api_tokens.c.last_used_at)  # fmt: skip
_TOKEN_AND_PROTOCOL = _TOKEN_COLUMNS.add_columns(CURRENT_SHA.label("protocol_sha"))


def token_in(session: Session, token: str, *, with_protocol: bool = False) -> TokenUse | None:
    """``resolve_token``'s read in the caller's transaction (one statement, nothing written): the live token's user
    and whether its use is due to be audited, or None (unknown, revoked, expired, user disabled). With ``with_protocol``
    the same statement reads the current protocol's SHA-256 too (``protocol_sha``, for ``protocol_by_sha``), so that
    a request's token and protocol are one statement."""
    now = _now()
    columns = _TOKEN_AND_PROTOCOL if with_protocol else _TOKEN_COLUMNS
    rows = session.execute(with_sites(columns, api_tokens).where(api_tokens.c.token_hash == _digest(token))).all()
    if not rows:
        return None
    row = rows[0]
    if row.revoked_at is not None or now >= row.expires_at or not row.active:
        return None
    due = row.last_used_at is None or now - row.last_used_at >= _USE_AUDIT_INTERVAL
    return TokenUse(view_of_rows(rows), int(row.token_id), due, now, row.protocol_sha if with_protocol else None)


def record_use(session: Session, found: TokenUse) -> None:
    """The token's use, audited in the caller's transaction unless another request recorded it within the minute."""
    now = found.now
    used = session.execute(
        api_tokens.update()
        .where(api_tokens.c.id == found.token_id)
        .where((api_tokens.c.last_used_at.is_(None)) | (api_tokens.c.last_used_at <= now - _USE_AUDIT_INTERVAL))
        .values(last_used_at=now)
    )
    if used.rowcount:  # type: ignore[attr-defined]
        audit.record(
            session,
            actor=found.user.username,
            role=found.user.role.value,
            action="api.token_used",
            detail={"token_id": found.token_id},
        )
