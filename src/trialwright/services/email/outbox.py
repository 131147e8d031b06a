"""Writing to the e-mail outbox, inside the transaction of the event the message tells of.

The services that record an SAE, an emergency unblinding, a safety pause or a DSMB decision, or a request under the
two-person rule call ``enqueue`` in their own session: the rows are committed with the event or not at all, so a
mail server that is down loses nothing. Recipients are chosen here by role and site: every active account of the
roles named (a site-scoped role only when the account holds the event's site). The params never hold an arm:
``enqueue`` refuses a key that names one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialwright.domain.roles import Role
from trialwright.services import clock
from trialwright.store.auth_tables import user_sites, users
from trialwright.store.email_tables import email_outbox

__all__ = ["FORBIDDEN_PARAMS", "enqueue", "recipients"]

#: Keys a message's params may never hold: whatever could carry an allocation.
FORBIDDEN_PARAMS = frozenset({"arm", "arm_code", "arm_name", "allocation", "group", "preparation", "seal"})


def recipients(session: Session, roles: Iterable[Role | str], site: str | None) -> list[str]:
    """The active accounts of these roles (a site-scoped role's only when it holds ``site``), by username."""
    wanted = {Role(r) for r in roles}
    rows = session.execute(
        select(users.c.username, users.c.role, user_sites.c.site_code)
        .outerjoin(user_sites, user_sites.c.user_id == users.c.id)
        .where(users.c.active, users.c.role.in_([r.value for r in wanted]))
    ).all()
    chosen: set[str] = set()
    for r in rows:
        role = Role(r.role)
        if not role.site_scoped or site is None or r.site_code == site:
            chosen.add(r.username)
    return sorted(chosen)


def enqueue(
    session: Session,
    kind: str,
    usernames: Iterable[str],
    params: Mapping[str, Any],
    *,
    key: str,
    site: str | None = None,
    participant_id: str | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Add one message of ``kind`` per recipient (``key`` + the username keeps each once); returns how many were
    added. Runs in the caller's transaction."""
    named = FORBIDDEN_PARAMS & set(params)
    if named:
        raise ValueError(f"e-mail: a message may not carry {', '.join(sorted(named))}")
    now = at or clock.now()
    body = json.dumps({"at": now.isoformat(), **params}, sort_keys=True, ensure_ascii=False)
    wanted = {f"{key}:{u}": u for u in usernames}
    if not wanted:
        return 0
    present = set(
        session.execute(select(email_outbox.c.dedupe_key).where(email_outbox.c.dedupe_key.in_(wanted))).scalars()
    )
    added = 0
    for dedupe, username in sorted(wanted.items()):
        if dedupe in present:
            continue
        session.execute(
            email_outbox.insert().values(
                kind=kind, recipient=username, dedupe_key=dedupe, params=body, site=site,
                participant_id=participant_id, created_at=now, state="pending", attempts=0, next_attempt_at=now,
            )
        )  # fmt: skip
        added += 1
    return added
