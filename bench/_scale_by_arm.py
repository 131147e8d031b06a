"""The tables by arm of bench/scale.py: the DSMB's safety tables by arm and the recruitment dashboard by arm, page
and API, against a raw SQL ``GROUP BY`` of the same counts.

Read as the DSMB member of a simulated trial through the real app (``create_app`` and Starlette's TestClient, in the
forked child of ``_scale_steps.measured``; a browser session cookie for the pages, an API token for the API):
``/dsmb`` and ``GET /api/v1/safety/tables`` (the safety tables by arm: the allocation entries added or changed since
the last load checked against their digests, a sweep, the counts per arm by the database), ``/recruitment`` (the
dashboard by arm, and the forecast the page also draws) and ``GET /api/v1/recruitment/status`` (the dashboard by arm
alone). Each request is made once untimed (templates; the first load verifies every entry and remembers them), then
``requests`` times; p50 and p95 are nearest-rank.

The raw baseline, in the same child and through the same engine: the randomized participants per arm, and the
participants with an adverse event per arm, each one ``GROUP BY`` over the claimed allocation entries (joined to
the adverse events); for the recruitment, the participants per arm joined to their enrolment and screening. The API
answers are checked against these counts (the same denominators, the same randomized per arm).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _scale_lists import _get_plain, _timed
from _scale_steps import user_of
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from trialwright.services.reauth import access_policy
from trialwright.services.tokens import issue_token
from trialwright.services.users import start_session
from trialwright.settings import Settings
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.safety_tables import adverse_events
from trialwright.store.screening_tables import participants, screenings
from trialwright.web.app import create_app
from trialwright.web.security import SESSION_COOKIE

__all__ = ["BY_ARM", "DSMB", "by_arm_step"]

DSMB = "sim-dsmb-member"
#: (name, path, API?): what the step times.
BY_ARM = (
    ("safety by arm page", "/dsmb", False),
    ("safety by arm api", "/api/v1/safety/tables", True),
    ("recruitment by arm page", "/recruitment", False),
    ("recruitment by arm api", "/api/v1/recruitment/status", True),
)


def _raw(engine: Engine) -> tuple[Callable[[], None], Callable[[], None], dict[str, Any]]:
    """The raw reads (safety, recruitment) and what they count."""
    e = allocation_entries
    claimed = e.c.participant_id.is_not(None)
    per_arm = select(e.c.arm, func.count()).where(claimed).group_by(e.c.arm)
    with_events = (
        select(e.c.arm, func.count(func.distinct(adverse_events.c.participant_id)))
        .join(adverse_events, adverse_events.c.participant_id == e.c.participant_id)
        .group_by(e.c.arm)
    )
    enrolled = (
        select(e.c.arm, func.count())
        .select_from(e.join(participants, participants.c.participant_id == e.c.participant_id)
                     .join(screenings, screenings.c.id == participants.c.screening_id))
        .where(claimed)
        .group_by(e.c.arm)
    )  # fmt: skip

    def safety() -> None:
        with engine.connect() as conn:
            conn.execute(per_arm).all()
            conn.execute(with_events).all()

    def recruitment() -> None:
        with engine.connect() as conn:
            conn.execute(enrolled).all()

    with engine.connect() as conn:
        counts = {"per_arm": dict(conn.execute(per_arm).all()), "enrolled": dict(conn.execute(enrolled).all())}
    return safety, recruitment, counts


def _check(name: str, said: dict[str, Any], counts: dict[str, Any]) -> None:
    if name == "safety by arm api" and said["participants"] != sum(counts["per_arm"].values()):
        raise RuntimeError(f"{name}: {said['participants']} participants; the raw count {counts['per_arm']}")
    if name == "recruitment by arm api":
        mine = {a["code"]: a["randomized"] for a in said["arms"] or ()}
        if {k: v for k, v in mine.items() if v} != counts["enrolled"]:
            raise RuntimeError(f"{name}: {mine} randomized per arm; the raw count {counts['enrolled']}")


def by_arm_step(url: str, requests: int) -> Callable[[], dict[str, Any]]:
    """Each page and API of ``BY_ARM`` as the DSMB member, ``requests`` times, and the raw reads beside them."""

    def work() -> dict[str, Any]:
        settings = Settings(database_url=url)
        app = create_app(settings)
        engine: Engine = app.state.engine
        user = user_of(engine, DSMB)
        cookie, _ = start_session(engine, user, access_policy(settings))
        token, _ = issue_token(engine, DSMB, name="bench scale by arm", actor="bench")
        bearer = {"Authorization": f"Bearer {token}"}
        safety, recruitment, counts = _raw(engine)
        figures: dict[str, Any] = {"seconds": 0.0, "randomized": sum(counts["per_arm"].values())}
        with TestClient(app, follow_redirects=False) as client:
            client.cookies.set(SESSION_COOKIE, cookie)
            for name, path, api in BY_ARM:
                headers = bearer if api else {}
                if api:
                    _check(name, _get_plain(client, path, headers).json(), counts)
                figures[name] = _timed(lambda p=path, h=headers: _get_plain(client, p, h), requests)
        figures["raw safety"] = _timed(safety, requests)
        figures["raw recruitment"] = _timed(recruitment, requests)
        engine.dispose()
        return figures

    return work
