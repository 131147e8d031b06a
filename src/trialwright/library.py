"""trialwright as a Python library: open a trial database and read it as a named user.

``trialwright.open_trial(database_url, user)`` returns an :class:`OpenTrial`, whose methods are the main read
operations, each one call of the same service the pages, the REST API and the CLI use, so the user's role and
sites apply exactly as there (a blinded user never reads an arm; a site-scoped user reads only their sites).
Results are the services' typed, frozen objects (dataclasses and pydantic models); writes stay with the
services (``trialwright.services``), which take the same ``engine`` and ``actor`` this object holds.

An unblinded account (unblinded statistician, pharmacist, DSMB member) is opened by its holder only: its password
is required, as on the command line, so that the audit trail names who read the arms.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from trialwright.protocol import Protocol
    from trialwright.services.users import UserView
    from trialwright.settings import Settings

__all__ = ["OpenTrial", "open_trial"]


@dataclass(frozen=True)
class OpenTrial:
    """A trial database opened as one user. Use it as a context manager (or call :meth:`close`) to release the
    database connections."""

    engine: Engine
    actor: UserView

    @property
    def protocol(self) -> Protocol:
        """The protocol the database was initialised (or last amended) with."""
        from trialwright.services.trial import current_protocol

        return current_protocol(self.engine).protocol

    def screenings(self, *, site: str | None = None, decision: str | None = None) -> list[Any]:
        """The screening log within the user's sites (``ScreeningView``s), optionally one site or decision."""
        from trialwright.services.screening import list_screenings

        return list_screenings(self.engine, self.actor, site=site, decision=decision)

    def screening(self, reference: str) -> Any:
        """One screening (``ScreeningView``) by its label (e.g. ``RAZ-S0001``) or number; NotFound otherwise."""
        from trialwright.services.screening import get_screening, screening_id_of

        return get_screening(self.engine, self.actor, screening_id_of(self.engine, self.actor, reference))

    def form(self, participant_id: str, visit_id: str, form_id: str) -> Any:
        """One form's values and state (``FormView``), or None when nothing was entered yet."""
        from trialwright.services.forms import get_form

        return get_form(self.engine, self.actor, participant_id, visit_id, form_id)

    def adverse_events(
        self, *, participant_id: str | None = None, overdue_only: bool = False, serious_only: bool = False
    ) -> list[Any]:
        """Adverse events within the user's sites with their deadlines (``AdverseEventView``s)."""
        from trialwright.services.safety import list_events

        return list_events(
            self.engine, self.actor, participant_id=participant_id, overdue_only=overdue_only, serious_only=serious_only
        )

    def recruitment(self, *, as_of: dt.date | None = None) -> Any:
        """Recruitment against the target, per site and over time (``RecruitmentStatus``)."""
        from trialwright.services.recruitment import recruitment_status

        return recruitment_status(self.engine, self.actor, as_of=as_of)

    def readiness(self, *, site: str | None = None) -> Any:
        """What blocks the database lock (``Readiness``; data manager and monitor)."""
        from trialwright.services.readiness import lock_readiness

        return lock_readiness(self.engine, self.actor, site)

    def audit_trail(
        self, *, participant: str | None = None, action_prefix: str | None = None, limit: int = 100
    ) -> list[Any]:
        """Audit entries newest first (``AuditEntry``s; administrators, data managers and monitors), values that
        could tell an arm masked for a blinded reader."""
        from trialwright.services.audit_trail import read_trail

        return read_trail(self.engine, self.actor, participant=participant, action_prefix=action_prefix, limit=limit)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> OpenTrial:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_trial(
    database_url: str, user: str, *, password: str | None = None, settings: Settings | None = None
) -> OpenTrial:
    """Open the trial database at ``database_url`` as the active account ``user``.

    The database must hold a trial (``trialwright init``) and its audit key must be the one configured (the
    ``TRIALWRIGHT_AUDIT_KEY*`` settings, read from the environment unless ``settings`` is given). Refuses with
    PermissionError when there is no such active account, or when an unblinded account is opened without its
    right ``password``."""
    from trialwright.domain.masking import UNBLINDED_ROLES
    from trialwright.services.audit_keys import check_key, engine_for
    from trialwright.services.users import confirm_password, get_user
    from trialwright.settings import Settings
    from trialwright.store.engine import check_connection

    chosen = settings.model_copy(update={"database_url": database_url}) if settings else Settings(
        database_url=database_url
    )
    engine = engine_for(chosen)
    try:
        check_connection(engine)
        check_key(engine)
        actor = get_user(engine, user)
        if actor is None or not actor.active:
            raise PermissionError(f"no active user {user!r}")
        if actor.role in UNBLINDED_ROLES and (
            password is None or not confirm_password(engine, actor.username, password, purpose="library")
        ):
            raise PermissionError(f"{user} reads the arms: its holder opens it, with its password")
    except BaseException:
        engine.dispose()
        raise
    return OpenTrial(engine, actor)
