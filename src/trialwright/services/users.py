"""People and their access: accounts, passwords, sign-in with lockout, browser sessions (API tokens:
``trialwright.services.tokens``; password re-entry: ``trialwright.services.reauth``).

Every use case is one transaction and leaves audit entries (who, what, old and new value) — never a
password, a hash or a token. Unknown users, wrong passwords, locked and disabled accounts fail with the same
message after the same work, so sign-in reveals nothing about which accounts exist (the audit trail says why).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, Select, Table, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import CalendarPreference
from trialwright.domain.passwords import password_problem
from trialwright.domain.roles import RESERVED_USERNAMES, Role
from trialwright.domain.text import checked_text
from trialwright.protocol.base import SHORT_TEXT
from trialwright.services import audit
from trialwright.store.auth_tables import api_tokens, user_sites, users, web_sessions
from trialwright.store.engine import inserted_id, read_scope, session_scope
from trialwright.store.tables import sites as sites_table

__all__ = [
    "LANGUAGES",
    "SIGN_IN_MESSAGES",
    "AccessPolicy",
    "AuthenticationFailed",
    "SessionView",
    "UserError",
    "UserView",
    "authenticate",
    "change_password",
    "check_password_policy",
    "confirm_password",
    "create_user",
    "create_user_in",
    "disable_user",
    "end_session",
    "generate_password",
    "get_user",
    "list_users",
    "normalise_username",
    "prepare_sign_in",
    "reset_password",
    "resolve_session",
    "set_email",
    "set_preferences",
    "start_session",
    "trial_names",
    "trial_names_in",
    "user_count",
]

LANGUAGES = ("en", "fa")
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, verified against when the user does not exist, so that unknown users and wrong
    passwords take the same time; made at the first such sign-in (an Argon2 hash costs ~0.2 s of CPU, which every
    command would otherwise pay at import)."""
    return _hasher.hash(secrets.token_urlsafe(16))


def prepare_sign_in() -> None:
    """Make the unknown-user hash now: the web app calls this at its start, so that its first sign-in of an unknown
    user costs what a wrong password costs."""
    _dummy_hash()


class UserError(ValueError):
    """A request about users that cannot be done; the message names the field and the rule."""


class AuthenticationFailed(Exception):
    """Sign-in refused; the message is safe to show (it never says whether the user exists)."""


@dataclass(frozen=True)
class AccessPolicy:
    """Lockout and session limits (from Settings)."""

    lockout_threshold: int = 5
    lockout_minutes: int = 15
    session_idle_minutes: int = 30
    session_hours: int = 12


@dataclass(frozen=True)
class UserView:
    """A user as the rest of trialwright sees them (no password hash)."""

    id: int
    username: str
    full_name: str
    role: Role
    sites: tuple[str, ...]
    active: bool
    locked_until: dt.datetime | None
    language: str
    calendar: str
    created_at: dt.datetime
    #: Where e-mail notifications go (none: no e-mail for this account).
    email: str | None = None


@dataclass(frozen=True)
class SessionView:
    """A signed-in browser session."""

    user: UserView
    csrf_token: str
    expires_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_password(username: str = "", names: Sequence[str] = ()) -> str:
    """A random password that meets the policy (for new accounts and resets by an administrator): drawn again until
    the policy accepts it for ``username`` and the trial's ``names``, since a random draw can, rarely, hold a run of
    sequential characters, a common word or the username (a simulated account once failed that way)."""
    while True:
        password = secrets.token_urlsafe(15) + secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + secrets.choice("23456789")
        if password_problem(password, username=username, names=names) is None:
            return password


def check_password_policy(username: str, password: str, *, names: Sequence[str] = ()) -> None:
    """The policy of ``trialwright.domain.passwords``: at least 12 characters of two kinds, not common, not the
    username or the trial's ``names``, not mostly repeated or sequential characters."""
    problem = password_problem(password, username=username, names=names)
    if problem is not None:
        raise UserError(f"password: {problem}")


def trial_names(engine: Engine) -> tuple[str, ...]:
    """The trial's id, acronym and short title, which no password may contain (none before ``init``)."""
    with session_scope(engine) as session:
        return trial_names_in(session)


def trial_names_in(session: Session) -> tuple[str, ...]:
    """``trial_names`` in the caller's transaction."""
    from trialwright.services.trial import _parsed
    from trialwright.store.tables import protocol_versions, trial

    row = session.execute(
        select(protocol_versions.c.source_text, protocol_versions.c.trial_id).join(
            trial, trial.c.current_protocol_version_id == protocol_versions.c.id
        )
    ).first()
    if row is None:
        return ()
    protocol = _parsed(row.source_text, f"<database: {row.trial_id}>").protocol
    titles = protocol.trial.titles
    return tuple(n for n in (protocol.trial_id, titles.acronym, titles.short) if n)


def _normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not (2 <= len(name) <= 64) or not all(c.isalnum() or c in "._-" for c in name):
        raise UserError("username: 2 to 64 letters, digits, '.', '_' or '-'")
    if name in RESERVED_USERNAMES:
        raise UserError(f"username: {name!r} is the name the system records its own actions under")
    return name


#: The username rule, for checks made before an account exists (a request waiting for approval).
normalise_username = _normalise_username


def _view(session: Session, row: Any) -> UserView:
    codes = tuple(
        session.execute(
            select(user_sites.c.site_code).where(user_sites.c.user_id == row.id).order_by(user_sites.c.site_code)
        ).scalars()
    )
    return _view_of(row, codes)


def with_sites(query: Select[Any], base: Table) -> Select[Any]:
    """``query`` (columns of ``base``, a table with a ``user_id``: a session or a token) joined to the user and
    their sites, so one statement gives all a request needs: a row per site (one with no site for a user of none)."""
    return (
        query.add_columns(*users.c, user_sites.c.site_code.label("user_site"))
        .join_from(base, users, users.c.id == base.c.user_id)
        .outerjoin(user_sites, user_sites.c.user_id == users.c.id)
    )


def view_of_rows(rows: Sequence[Any]) -> UserView:
    """The user of ``with_sites`` rows (all of one user)."""
    return _view_of(rows[0], tuple(sorted({r.user_site for r in rows if r.user_site is not None})))


def _view_of(row: Any, codes: tuple[str, ...]) -> UserView:
    return UserView(
        id=row.id,
        username=row.username,
        full_name=row.full_name,
        role=Role(row.role),
        sites=codes,
        active=row.active,
        locked_until=row.locked_until,
        language=row.language,
        calendar=row.calendar,
        created_at=row.created_at,
        email=row.email,
    )


def _row(session: Session, username: str) -> Any:
    return session.execute(select(users).where(users.c.username == username.strip().lower())).first()


def _require(session: Session, username: str) -> Any:
    row = _row(session, username)
    if row is None:
        raise UserError(f"username: no user {username!r}")
    return row


def user_count(engine: Engine) -> int:
    """How many accounts exist."""
    with session_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(users)).scalar_one())


def create_user(
    engine: Engine,
    *,
    username: str,
    password: str,
    role: Role | str,
    sites: Sequence[str] = (),
    full_name: str | None = None,
    actor: str,
    language: str = "en",
    calendar: str = "both",
) -> UserView:
    """Create an account (audited as ``user.created``)."""
    with session_scope(engine) as session:
        return create_user_in(
            session,
            username=username,
            password=password,
            role=role,
            sites=sites,
            full_name=full_name,
            actor=actor,
            language=language,
            calendar=calendar,
        )


def create_user_in(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    sites: Sequence[str] = (),
    full_name: str | None = None,
    actor: str,
    language: str = "en",
    calendar: str = "both",
    detail: dict[str, object] | None = None,
) -> UserView:
    """``create_user`` inside the caller's transaction (the two-person rule creates on approval)."""
    name = _normalise_username(username)
    try:
        role = Role(role)
    except ValueError:
        raise UserError(f"role: must be one of {', '.join(r.value for r in Role)}") from None
    check_password_policy(name, password, names=trial_names_in(session))
    checked_text(full_name, "full_name", SHORT_TEXT, multiline=False, error=UserError)
    wanted = sorted(set(sites))
    if role.site_scoped and not wanted:
        article = "an" if role.value[0] in "aeiou" else "a"
        raise UserError(f"site: {article} {role.value.replace('_', ' ')} works at sites; name at least one with --site")
    known = set(session.execute(select(sites_table.c.code)).scalars())
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise UserError(f"site: unknown site {', '.join(unknown)} (sites: {', '.join(sorted(known))})")
    if _row(session, name) is not None:
        raise UserError(f"username: {name!r} is already taken")
    now = _now()
    user_id = inserted_id(
        session,
        users.insert().values(
            username=name,
            full_name=full_name or name,
            role=role.value,
            password_hash=_hasher.hash(password),
            active=True,
            failed_attempts=0,
            locked_until=None,
            language=language,
            calendar=CalendarPreference(calendar).value,
            created_at=now,
            password_changed_at=now,
        ),
    )
    for code in wanted:
        session.execute(user_sites.insert().values(user_id=user_id, site_code=code))
    audit.record(
        session,
        actor=actor,
        action="user.created",
        new_value={"username": name, "role": role.value, "sites": wanted, "full_name": full_name or name},
        detail=detail,
    )
    return _view(session, _require(session, name))


def get_user(engine: Engine, username: str) -> UserView | None:
    """The user, or None."""
    with read_scope(engine) as session:
        row = _row(session, username)
        return _view(session, row) if row is not None else None


def list_users(engine: Engine) -> list[UserView]:
    """Every account, by username."""
    with read_scope(engine) as session:
        return [_view(session, row) for row in session.execute(select(users).order_by(users.c.username))]


def disable_user(engine: Engine, username: str, *, actor: str, reason: str | None = None) -> UserView:
    """Disable an account and end its sessions and tokens (audited)."""
    checked_text(reason, "reason", error=UserError)
    with session_scope(engine) as session:
        row = _require(session, username)
        now = _now()
        session.execute(users.update().where(users.c.id == row.id).values(active=False))
        session.execute(
            web_sessions.update()
            .where(web_sessions.c.user_id == row.id, web_sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
        session.execute(
            api_tokens.update()
            .where(api_tokens.c.user_id == row.id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        audit.record(
            session,
            actor=actor,
            action="user.disabled",
            old_value={"active": row.active},
            new_value={"active": False},
            detail={"username": row.username},
            reason=reason,
        )
        return _view(session, _require(session, username))


def set_sites(
    engine: Engine,
    username: str,
    sites: Sequence[str],
    *,
    actor: str,
    reason: str,
    guarded: Collection[Role] = frozenset(),
) -> UserView:
    """Move a user of a site-scoped role to other sites (administrator; audited with the old and new sites and
    why); what they see changes at their next request. An account under the two-person rule (``guarded``: an
    unblinded pharmacist's, or an approver's) may lose sites but gains none this way: a second person approves a
    new account for the new site (``trialwright.services.approvals``)."""
    checked_text(reason, "reason", error=UserError)
    if not reason.strip():
        raise UserError("reason: say why the user's sites change, for the audit trail")
    wanted = sorted(set(sites))
    with session_scope(engine) as session:
        row = _require(session, username)
        role = Role(row.role)
        if not role.site_scoped:
            raise UserError(f"site: {role.value.replace('_', ' ')} is a trial-wide role; it works at no site")
        if not wanted:
            raise UserError("site: a user of a site-scoped role works at one site at least; name it with --site")
        known = set(session.execute(select(sites_table.c.code)).scalars())
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise UserError(f"site: unknown site {', '.join(unknown)} (sites: {', '.join(sorted(known))})")
        before = sorted(session.execute(select(user_sites.c.site_code).where(user_sites.c.user_id == row.id)).scalars())
        added = [s for s in wanted if s not in before]
        if role in guarded and added:
            raise UserError(
                f"site: {row.username}'s account is under the two-person rule; one person cannot add a site to it "
                f"({', '.join(added)}): ask for a new account there, which a second person approves"
            )
        if before != wanted:
            session.execute(user_sites.delete().where(user_sites.c.user_id == row.id))
            for code in wanted:
                session.execute(user_sites.insert().values(user_id=row.id, site_code=code))
            audit.record(
                session, actor=actor, action="user.sites_changed", old_value={"sites": before},
                new_value={"sites": wanted}, detail={"username": row.username}, reason=reason,
            )  # fmt: skip
        return _view(session, _require(session, username))


def reset_password(engine: Engine, username: str, new_password: str, *, actor: str) -> None:
    """Set a new password (administrator), unlock the account, end its sessions (audited)."""
    names = trial_names(engine)
    with session_scope(engine) as session:
        row = _require(session, username)
        check_password_policy(row.username, new_password, names=names)
        _set_password(session, row, new_password)
        audit.record(session, actor=actor, action="user.password_reset", detail={"username": row.username})


def change_password(engine: Engine, username: str, old_password: str, new_password: str) -> None:
    """A user changes their own password; the old one must be right (audited)."""
    names = trial_names(engine)
    with session_scope(engine) as session:
        row = _require(session, username)
        if not _verify(row.password_hash, old_password):
            raise UserError("old_password: is not your current password")
        check_password_policy(row.username, new_password, names=names)
        if old_password == new_password:
            raise UserError("new_password: must differ from the current password")
        _set_password(session, row, new_password)
        audit.record(session, actor=row.username, action="user.password_changed")


def _set_password(session: Session, row: Any, password: str) -> None:
    now = _now()
    session.execute(
        users.update()
        .where(users.c.id == row.id)
        .values(password_hash=_hasher.hash(password), password_changed_at=now, failed_attempts=0, locked_until=None)
    )
    session.execute(
        web_sessions.update()
        .where(web_sessions.c.user_id == row.id, web_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )


def set_preferences(
    engine: Engine, username: str, *, language: str | None = None, calendar: str | None = None
) -> UserView:
    """Change a user's language and calendar preference (audited with old and new values)."""
    changes: dict[str, str] = {}
    if language is not None:
        if language not in LANGUAGES:
            raise UserError(f"language: must be one of {', '.join(LANGUAGES)}")
        changes["language"] = language
    if calendar is not None:
        try:
            changes["calendar"] = CalendarPreference(calendar).value
        except ValueError:
            raise UserError("calendar: must be one of gregorian, jalali, both") from None
    with session_scope(engine) as session:
        row = _require(session, username)
        old = {k: getattr(row, k) for k in changes}
        if changes and old != changes:
            session.execute(users.update().where(users.c.id == row.id).values(**changes))
            audit.record(
                session, actor=row.username, action="user.preferences_changed", old_value=old, new_value=changes
            )
        return _view(session, _require(session, username))


#: An e-mail address: a local part without spaces or specials, then a domain of two or more dotted labels.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL = re.compile(rf"[^@\s<>(),;:\"\[\]]+@{_LABEL}(?:\.{_LABEL})+")


def set_email(engine: Engine, actor: UserView, username: str, email: str | None) -> UserView:
    """Set (or, with None or "", remove) the e-mail address notifications go to: a user their own, an
    administrator anyone's. Audited ``user.email_changed`` with the old and new address."""
    if actor.role is not Role.ADMINISTRATOR and username.strip().lower() != actor.username:
        raise UserError("email: you may change your own e-mail address; an administrator changes others'")
    address = (email or "").strip() or None
    if address is not None and (len(address) > 254 or not _EMAIL.fullmatch(address)):
        raise UserError(f"email: {address!r} is not an e-mail address (name@hospital.example)")
    with session_scope(engine) as session:
        row = _require(session, username)
        if row.email != address:
            session.execute(users.update().where(users.c.id == row.id).values(email=address))
            audit.record(
                session,
                actor=actor.username,
                role=actor.role.value,
                action="user.email_changed",
                old_value={"email": row.email},
                new_value={"email": address, "username": row.username},
            )
        return _view(session, _require(session, username))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def confirm_password(
    engine: Engine, username: str, password: str, policy: AccessPolicy | None = None, *, purpose: str = "confirm"
) -> bool:
    """Whether this is the user's current password; a wrong one counts toward the lockout, and a locked
    account's is refused (``trialwright.services.reauth``, which says why a re-entry failed)."""
    from trialwright.services.reauth import Reentry, reenter_password

    return reenter_password(engine, username, password, policy, purpose=purpose) is Reentry.ACCEPTED


# One answer for every refusal: a distinct message for a locked or disabled account would tell anyone
# guessing that the username exists.
_GENERIC = "wrong username or password, or the account is locked or disabled; try again later or ask an administrator"
#: Every message a refused sign-in can show (the web app's catalogs translate them).
SIGN_IN_MESSAGES = (_GENERIC,)


def authenticate(
    engine: Engine, username: str, password: str, policy: AccessPolicy, *, channel: str = "web"
) -> UserView:
    """Check a sign-in; count failures and lock the account after ``policy.lockout_threshold`` in a row.

    The failure is committed (and audited) even though sign-in is refused.
    """
    now = _now()
    with session_scope(engine) as session:
        row = _row(session, username)
        if row is None:
            _verify(_dummy_hash(), password)  # same work as for a real user
            audit.record(
                session,
                actor="anonymous",
                action="user.sign_in_failed",
                detail={"username": username[:64], "channel": channel, "why": "wrong credentials"},
            )
            failure = _GENERIC
        elif not row.active:
            _verify(row.password_hash, password)  # same work, same answer as for an unknown user
            audit.record(
                session,
                actor=row.username,
                action="user.sign_in_refused",
                detail={"why": "disabled", "channel": channel},
            )
            failure = _GENERIC
        elif row.locked_until is not None and row.locked_until > now:
            _verify(row.password_hash, password)
            audit.record(
                session, actor=row.username, action="user.sign_in_refused", detail={"why": "locked", "channel": channel}
            )
            failure = _GENERIC
        elif not _verify(row.password_hash, password):
            attempts = row.failed_attempts + 1
            values: dict[str, object] = {"failed_attempts": attempts}
            audit.record(
                session,
                actor=row.username,
                action="user.sign_in_failed",
                detail={"attempt": attempts, "channel": channel},
            )
            if attempts >= policy.lockout_threshold:
                values.update(failed_attempts=0, locked_until=now + dt.timedelta(minutes=policy.lockout_minutes))
                audit.record(
                    session,
                    actor=row.username,
                    action="user.locked_out",
                    new_value={"locked_until": values["locked_until"]},
                    detail={"after_failures": attempts},
                )
            session.execute(users.update().where(users.c.id == row.id).values(**values))
            failure = _GENERIC
        else:
            session.execute(users.update().where(users.c.id == row.id).values(failed_attempts=0, locked_until=None))
            audit.record(
                session, actor=row.username, role=row.role, action="user.signed_in", detail={"channel": channel}
            )
            return _view(session, _require(session, row.username))
    raise AuthenticationFailed(failure)


def start_session(engine: Engine, user: UserView, policy: AccessPolicy) -> tuple[str, SessionView]:
    """A new browser session; returns the cookie token (shown once) and the session."""
    token = secrets.token_urlsafe(32)
    now = _now()
    expires = now + dt.timedelta(hours=policy.session_hours)
    csrf = secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        session.execute(
            web_sessions.insert().values(
                token_hash=_digest(token),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=expires,
            )
        )
    return token, SessionView(user=user, csrf_token=csrf, expires_at=expires)


#: A session's last activity is written at most this often (its idle limit counts in minutes), so that most
#: requests only read.
_SEEN_INTERVAL = dt.timedelta(seconds=30)


def resolve_session(engine: Engine, token: str, policy: AccessPolicy) -> SessionView | None:
    """The live session for a cookie token, or None (unknown, ended, expired, idle too long, user disabled).

    One read (the session, its user and their sites in one statement); a write only to end an expired session
    or, at most every 30 seconds, to note the session's activity."""
    now = _now()
    columns = select(web_sessions.c.id.label("session_id"), web_sessions.c.ended_at, web_sessions.c.expires_at,
                     web_sessions.c.last_seen_at, web_sessions.c.csrf_token)  # fmt: skip
    query = with_sites(columns, web_sessions).where(web_sessions.c.token_hash == _digest(token))
    with read_scope(engine) as session:
        rows = session.execute(query).all()
    if not rows or rows[0].ended_at is not None:
        return None
    row = rows[0]
    idle_limit = row.last_seen_at + dt.timedelta(minutes=policy.session_idle_minutes)
    if now >= row.expires_at or now >= idle_limit:
        with session_scope(engine) as session:
            ended = session.execute(
                web_sessions.update()
                .where(web_sessions.c.id == row.session_id, web_sessions.c.ended_at.is_(None))
                .values(ended_at=now)
            )
            if ended.rowcount:  # type: ignore[attr-defined]
                audit.record(
                    session,
                    actor=row.username,
                    action="user.session_expired",
                    detail={"why": "idle" if now >= idle_limit else "expired"},
                )
        return None
    if not row.active:
        return None
    if now - row.last_seen_at >= _SEEN_INTERVAL:
        with session_scope(engine) as session:
            session.execute(web_sessions.update().where(web_sessions.c.id == row.session_id).values(last_seen_at=now))
    return SessionView(user=view_of_rows(rows), csrf_token=row.csrf_token, expires_at=row.expires_at)


def end_session(engine: Engine, token: str) -> None:
    """Sign out: end the session (audited)."""
    with session_scope(engine) as session:
        row = session.execute(select(web_sessions).where(web_sessions.c.token_hash == _digest(token))).first()
        if row is None or row.ended_at is not None:
            return
        session.execute(web_sessions.update().where(web_sessions.c.id == row.id).values(ended_at=_now()))
        user = session.execute(select(users.c.username).where(users.c.id == row.user_id)).scalar_one()
        audit.record(session, actor=user, action="user.signed_out")


# API tokens moved to ``trialwright.services.tokens``; these names are still found here for older callers.
_MOVED_TO_TOKENS = frozenset({"TokenView", "issue_token", "list_tokens", "resolve_token", "revoke_token"})


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_TOKENS:
        from trialwright.services import tokens

        return getattr(tokens, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
