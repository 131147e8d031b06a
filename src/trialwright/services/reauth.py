"""Password re-entry: the signed-in person types their password again to sign, unblind, override or decide.

21 CFR 11.300(d): attempts at a password are limited. A wrong re-entry counts toward the same account lockout
as a wrong sign-in (``lockout_threshold`` failures in a row lock the account for ``lockout_minutes``). Once
locked, every re-entry is refused, even with the right password, and the lockout ends the account's browser
sessions, so the session in which the passwords were guessed cannot go on to sign. A right re-entry resets the
count. Each failure, refusal and lockout is audited (never the password).
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

from sqlalchemy import Engine, select

from trialwright.services import audit
from trialwright.services.errors import denied
from trialwright.services.users import AccessPolicy, _row, _verify
from trialwright.settings import Settings
from trialwright.store.auth_tables import users, web_sessions
from trialwright.store.engine import session_scope

__all__ = ["Reentry", "access_policy", "reenter_password", "require_password"]


class Reentry(Enum):
    """What a password re-entry came to."""

    ACCEPTED = "accepted"
    WRONG = "wrong"
    LOCKED = "locked"  # refused: the account is locked (this entry may have locked it)


def access_policy(settings: Settings) -> AccessPolicy:
    """The lockout and session limits the settings ask for."""
    return AccessPolicy(
        lockout_threshold=settings.lockout_threshold,
        lockout_minutes=settings.lockout_minutes,
        session_idle_minutes=settings.session_idle_minutes,
        session_hours=settings.session_hours,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def reenter_password(
    engine: Engine, username: str, password: str, policy: AccessPolicy | None = None, *, purpose: str
) -> Reentry:
    """Check a re-entered password, counting a wrong one toward the lockout (committed either way).

    ``purpose`` names what the password was for (``sign``, ``unblind``, ``lock override``, ...), for the trail.
    """
    policy = policy or AccessPolicy()
    now = _now()
    with session_scope(engine) as session:
        row = _row(session, username)
        if row is None or not row.active:
            return Reentry.WRONG
        if row.locked_until is not None and row.locked_until > now:
            audit.record(
                session,
                actor=row.username,
                role=row.role,
                action="user.reentry_refused",
                detail={"why": "locked", "purpose": purpose},
            )
            return Reentry.LOCKED
        if _verify(row.password_hash, password):
            if row.failed_attempts:
                session.execute(users.update().where(users.c.id == row.id).values(failed_attempts=0))
            return Reentry.ACCEPTED
        attempts = row.failed_attempts + 1
        audit.record(
            session,
            actor=row.username,
            role=row.role,
            action="user.reentry_failed",
            detail={"attempt": attempts, "purpose": purpose},
        )
        if attempts < policy.lockout_threshold:
            session.execute(users.update().where(users.c.id == row.id).values(failed_attempts=attempts))
            return Reentry.WRONG
        until = now + dt.timedelta(minutes=policy.lockout_minutes)
        session.execute(users.update().where(users.c.id == row.id).values(failed_attempts=0, locked_until=until))
        live = (web_sessions.c.user_id == row.id) & web_sessions.c.ended_at.is_(None)
        ended = len(session.execute(select(web_sessions.c.id).where(live)).all())
        session.execute(web_sessions.update().where(live).values(ended_at=now))
        audit.record(
            session,
            actor=row.username,
            role=row.role,
            action="user.locked_out",
            new_value={"locked_until": until},
            detail={"after_failures": attempts, "purpose": purpose, "sessions_ended": ended},
        )
        return Reentry.LOCKED


def require_password(
    engine: Engine,
    username: str,
    password: str,
    policy: AccessPolicy | None,
    *,
    purpose: str,
    error: type[Exception],
    message: str,
) -> None:
    """Go on only with the right password: raise ``error(message)`` for a wrong one, and ``error`` saying the
    account is locked when it is (the failure is committed before the raise); either marked ``AccessDenied``."""
    outcome = reenter_password(engine, username, password, policy, purpose=purpose)
    error = denied(error)  # still ``error`` for its callers; a matter of permission for the CLI's exit code
    if outcome is Reentry.LOCKED:
        raise error(
            "password: too many wrong passwords; your account is locked for a while and your sessions have ended. "
            "Sign in again later, or ask an administrator"
        )
    if outcome is Reentry.WRONG:
        raise error(message)
