"""Set-password tokens: nobody but the account's holder ever knows its password.

A new account, and an account whose password an administrator resets, gets a one-time token instead of a
password. The account cannot sign in until its holder opens ``/set-password?token=...`` (or runs
``trialwright user set-password --token``) and chooses a password. The token is stored only as a SHA-256
digest, expires after ``TOKEN_HOURS`` hours, works once, and a newer token for the same account retires the
older one. Issuing and using a token are audited; the token and the password never are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from trialwright.services import audit, clock
from trialwright.services.users import UserError, check_password_policy, trial_names
from trialwright.store.approval_tables import set_password_tokens
from trialwright.store.auth_tables import users, web_sessions
from trialwright.store.engine import session_scope

__all__ = [
    "TOKEN_HOURS",
    "TOKEN_REFUSED",
    "IssuedToken",
    "issue_in",
    "retire_password_in",
    "set_password",
    "token_holder",
]

#: How long a set-password token stays usable (an engine default, documented in docs/roles.md).
TOKEN_HOURS = 72
#: The one answer for an unknown, used or expired token (it never says which).
TOKEN_REFUSED = "set-password token: unknown, already used or expired; ask an administrator for a new one"  # noqa: S105
_hasher = PasswordHasher()


@dataclass(frozen=True)
class IssuedToken:
    """A set-password token, shown once to whoever hands it to the account's holder."""

    username: str
    token: str
    expires_at: dt.datetime

    @property
    def path(self) -> str:
        """Where the holder sets their password, relative to the web app."""
        return f"/set-password?token={self.token}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def retire_password_in(session: Session, user_row: Any) -> None:
    """Make the account's password unknown to everyone and end its sessions: it cannot sign in until its
    holder sets a password with a token."""
    now = clock.now()
    session.execute(
        users.update()
        .where(users.c.id == user_row.id)
        .values(password_hash=_hasher.hash(secrets.token_urlsafe(32)), failed_attempts=0, locked_until=None)
    )
    session.execute(
        web_sessions.update()
        .where(web_sessions.c.user_id == user_row.id, web_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )


def issue_in(session: Session, user_row: Any, *, issued_by: str) -> IssuedToken:
    """A new token for the account in the caller's transaction; earlier unused tokens of the account expire."""
    now = clock.now()
    session.execute(
        set_password_tokens.update()
        .where(
            set_password_tokens.c.user_id == user_row.id,
            set_password_tokens.c.used_at.is_(None),
            set_password_tokens.c.expires_at > now,
        )
        .values(expires_at=now)
    )
    token = "sp_" + secrets.token_urlsafe(32)
    expires = now + dt.timedelta(hours=TOKEN_HOURS)
    session.execute(
        set_password_tokens.insert().values(
            token_hash=_digest(token), user_id=user_row.id, issued_by=issued_by, created_at=now, expires_at=expires
        )
    )
    audit.record(
        session,
        actor=issued_by,
        action="user.set_password_token_issued",
        new_value={"expires_at": expires},
        detail={"username": user_row.username},
    )
    return IssuedToken(user_row.username, token, expires)


def _live(session: Session, token: str) -> Any:
    row = session.execute(
        select(set_password_tokens, users.c.username, users.c.active)
        .join(users, users.c.id == set_password_tokens.c.user_id)
        .where(set_password_tokens.c.token_hash == _digest(token))
    ).first()
    if row is None or row.used_at is not None or clock.now() >= row.expires_at or not row.active:
        return None
    return row


def token_holder(engine: Engine, token: str) -> str | None:
    """The username a live token sets the password of, or None."""
    with session_scope(engine) as session:
        row = _live(session, token)
        return None if row is None else str(row.username)


def set_password(engine: Engine, token: str, password: str) -> str:
    """Set the account's password with a live token (once); returns the username. Audited as
    ``user.password_set``; the account's sessions end and any lockout is lifted."""
    names = trial_names(engine)  # read before the write transaction begins
    with session_scope(engine) as session:
        row = _live(session, token)
        if row is None:
            raise UserError(TOKEN_REFUSED)
        check_password_policy(row.username, password, names=names)
        now = clock.now()
        session.execute(set_password_tokens.update().where(set_password_tokens.c.id == row.id).values(used_at=now))
        session.execute(
            users.update()
            .where(users.c.id == row.user_id)
            .values(password_hash=_hasher.hash(password), password_changed_at=now, failed_attempts=0, locked_until=None)
        )
        session.execute(
            web_sessions.update()
            .where(web_sessions.c.user_id == row.user_id, web_sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
        audit.record(session, actor=row.username, action="user.password_set", detail={"with": "set-password token"})
        return str(row.username)
