"""The recruitment funnel counted by the database (``Tally``): one ``GROUP BY`` per count, so what a load reads grows
with days x sites, never with the patients screened.

Days are on the patient's site's calendar, as recruitment counts them: a screening's own date; a consent's or a
randomization's instant on the site's clock (the trial's zone for a site the protocol no longer lists). The database
buckets instants into days without a time-zone database of its own: over the instants' range, each site's midnights
are worked out here with ``zoneinfo`` and the range cut where the zone's offset changes; between two changes an
instant's day is the day of the instant plus the offset (``date(ts + offset)``, the fraction of a second dropped,
as offsets and midnights are whole seconds), and a day in which the offset changes is named whole (an instant
between its midnight and the next is on that day). So an instant is on day ``d`` exactly when it is at or after
``d``'s midnight and before the next day's, the rule the per-arm series (``recruitment._per_arm``) counts by.

Eligibility apart from consent and the criteria failed are read from the screening's stored decision (JSON) by the
database's JSON functions, SQLite's and PostgreSQL's, with the rule of ``domain.recruitment.eligible_apart_from_
consent``: eligible; or not eligible on the consent criterion alone; or undecided with nothing failed and nothing
missing but consent. No arm is read here.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, bindparam, case, cast, func, literal, literal_column, null, select, text
from sqlalchemy.orm import Session

from trialwright.domain.recruitment import Tally
from trialwright.protocol import Protocol
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import consents, participants, screenings

__all__ = ["tally"]

#: Eligible apart from consent, per screening (``:cf`` the protocol's consent field, or NULL), per dialect.
_ELIGIBLE = {
    "sqlite": """CASE
        WHEN s.decision = 'eligible' THEN 1
        WHEN s.decision = 'not_eligible' THEN (:cf IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM json_each(s.decision_detail, '$.failed') AS f WHERE EXISTS (
                SELECT 1 FROM json_each(f.value, '$.values') AS k
                WHERE (CASE WHEN json_type(f.value, '$.values') = 'array' THEN k.value ELSE k.key END) <> :cf)))
        ELSE (json_array_length(s.decision_detail, '$.failed') = 0 AND NOT EXISTS (
            SELECT 1 FROM json_each(s.decision_detail, '$.missing') AS m WHERE :cf IS NULL OR m.value <> :cf))
        END""",
    "postgresql": """CASE
        WHEN s.decision = 'eligible' THEN true
        WHEN s.decision = 'not_eligible' THEN (CAST(:cf AS text) IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM jsonb_array_elements(CAST(s.decision_detail AS jsonb) -> 'failed') AS f(v) WHERE EXISTS (
                SELECT 1 FROM jsonb_object_keys(f.v -> 'values') AS k(key) WHERE k.key <> CAST(:cf AS text))))
        ELSE (jsonb_array_length(CAST(s.decision_detail AS jsonb) -> 'failed') = 0 AND NOT EXISTS (
            SELECT 1 FROM jsonb_array_elements_text(CAST(s.decision_detail AS jsonb) -> 'missing') AS m(v)
            WHERE CAST(:cf AS text) IS NULL OR m.v <> CAST(:cf AS text)))
        END""",
}

#: The screened by site, day and eligibility apart from consent, per dialect (the expression above is a constant).
_SCREENED = {
    dialect: "SELECT site, screened_on, eligible, count(*) AS n FROM (SELECT s.site AS site, s.screened_on AS "  # noqa: S608
    f"screened_on, {eligible} AS eligible FROM screenings AS s WHERE s.screened_on <= :as_of) AS screened "
    "GROUP BY site, screened_on, eligible"
    for dialect, eligible in _ELIGIBLE.items()
}

#: The criteria failed by the not-eligible screenings, consent aside: (id, wording) and how many failed it.
_FAILED = {
    "sqlite": """SELECT id, text, count(*) AS n FROM (
        SELECT json_extract(f.value, '$.id') AS id, json_extract(f.value, '$.text') AS text
        FROM screenings AS s, json_each(s.decision_detail, '$.failed') AS f
        WHERE s.decision = 'not_eligible' AND s.screened_on <= :as_of AND NOT (:cf IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM json_each(f.value, '$.values') AS k
            WHERE (CASE WHEN json_type(f.value, '$.values') = 'array' THEN k.value ELSE k.key END) <> :cf))
        ) AS failed GROUP BY id, text""",
    "postgresql": """SELECT id, text, count(*) AS n FROM (
        SELECT f.v ->> 'id' AS id, f.v ->> 'text' AS text
        FROM screenings AS s, jsonb_array_elements(CAST(s.decision_detail AS jsonb) -> 'failed') AS f(v)
        WHERE s.decision = 'not_eligible' AND s.screened_on <= :as_of AND NOT (CAST(:cf AS text) IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys(f.v -> 'values') AS k(key)
                            WHERE k.key <> CAST(:cf AS text)))
        ) AS failed GROUP BY id, text""",
}


def _dialect(session: Session) -> str:
    name = session.get_bind().dialect.name
    if name not in _ELIGIBLE:
        raise NotImplementedError(f"recruitment counts on {name}: only SQLite and PostgreSQL are supported")
    return name


# --- instants to days -------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _stretches(zone: str, first: dt.date, last: dt.date) -> tuple[tuple[dt.datetime, int | dt.date], ...]:
    """The days ``first`` to ``last`` of a zone as stretches ``(until, how)``, in order: an instant before ``until``
    (and at or after the previous stretch's) is on the day of itself plus ``how`` seconds, or on the day ``how``.
    Built from each day's midnight on the zone's clock (``zoneinfo``), once per zone and range."""
    tz = ZoneInfo(zone)
    out: list[tuple[dt.datetime, int | dt.date]] = []
    day = first
    while day <= last:
        start = dt.datetime.combine(day, dt.time(), tzinfo=tz)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
        offset, following = start.utcoffset(), end.utcoffset()
        assert offset is not None and following is not None
        seconds = int(offset.total_seconds())
        if offset == following and offset.total_seconds() == seconds:  # the whole day at one offset
            until = end.astimezone(dt.UTC)
            if out and out[-1][1] == seconds:
                out[-1] = (until, seconds)
            else:
                out.append((until, seconds))
        else:  # the offset changes in the day: the day named whole
            out.append((end.astimezone(dt.UTC), day))
        day += dt.timedelta(days=1)
    return tuple(out)


def _plus(dialect: str, instant: Any, seconds: int) -> Any:
    """The day of ``instant`` plus a whole number of seconds, in SQL."""
    if dialect == "sqlite":  # stored as naive UTC text with microseconds; SQLite would round them, so they go first
        return func.date(func.substr(instant, 1, 19), f"{seconds:+d} seconds")
    return cast(func.timezone("UTC", instant) + literal_column(f"INTERVAL '{seconds:d} seconds'"), Date)


def _named(dialect: str, day: dt.date) -> Any:
    return literal(day.isoformat()) if dialect == "sqlite" else literal(day, Date)


def _day(dialect: str, instant: Any, zone: str, first: dt.date, last: dt.date) -> Any:
    """The day of ``instant`` on ``zone``'s clock, in SQL, for instants from ``first``'s midnight to ``last``'s end
    (NULL outside them: refused by the caller)."""
    stretches = _stretches(zone, first, last)
    start = dt.datetime.combine(first, dt.time(), tzinfo=ZoneInfo(zone))
    whens: list[Any] = [(instant < start, null())]
    for until, how in stretches:
        whens.append((instant < until, _plus(dialect, instant, how) if isinstance(how, int) else _named(dialect, how)))
    return case(*whens, else_=null())


@functools.lru_cache(maxsize=32)
def _site_day(dialect: str, which: str, zones: tuple[tuple[str, str], ...], fallback: str,
              span: tuple[dt.date, dt.date]) -> Any:  # fmt: skip
    """The day of a consent's (``which``: "consent") or a randomization's instant on the clock of its screening's
    site (``fallback``: a site no longer listed), in SQL; built once per zones and range, not once per load."""
    instant = consents.c.obtained_at if which == "consent" else allocation_entries.c.randomized_at
    whens = [(screenings.c.site == code, _day(dialect, instant, zone, *span)) for code, zone in zones]
    return case(*whens, else_=_day(dialect, instant, fallback, *span))


def _as_date(value: Any) -> dt.date:
    if isinstance(value, str):  # SQLite's date()
        return dt.date.fromisoformat(value)
    if value is None:
        raise RuntimeError("an instant outside the range recruitment counted: refused rather than dropped")
    assert isinstance(value, dt.date)
    return value


# --- the tally ----------------------------------------------------------------------------------------------------


def tally(session: Session, protocol: Protocol, as_of: dt.date, moment: dt.datetime, fallback: str) -> Tally:
    """The screened patients as of ``as_of`` (screened by that day; consented, enrolled and randomized by
    ``moment``), counted by the database in one read (the caller's transaction)."""
    dialect = _dialect(session)
    cf = protocol.eligibility.consent_field
    s, c, p, e = screenings, consents, participants, allocation_entries
    screened_by = s.c.screened_on <= as_of

    rows = session.execute(
        text(_SCREENED[dialect])
        .bindparams(bindparam("cf", cf), bindparam("as_of", as_of, type_=Date))
        .columns(screened_on=Date)
    ).all()
    screened = tuple(((r.site, _as_date(r.screened_on), bool(r.eligible)), int(r.n)) for r in rows)

    failed_rows = session.execute(
        text(_FAILED[dialect]).bindparams(bindparam("cf", cf), bindparam("as_of", as_of, type_=Date))
    ).all()
    failed = tuple(((r.id, r.text), int(r.n)) for r in failed_rows)

    enrolled_rows = session.execute(
        select(s.c.site, func.count().label("n"))
        .select_from(p.join(s, s.c.id == p.c.screening_id))
        .where(p.c.enrolled_at <= moment, screened_by)
        .group_by(s.c.site)
    ).all()
    enrolled = tuple((r.site, int(r.n)) for r in enrolled_rows)

    not_enrolled_rows = session.execute(
        select(s.c.non_enrolment_reason, func.count().label("n"))
        .select_from(s.outerjoin(p, and_(p.c.screening_id == s.c.id, p.c.enrolled_at <= moment)))
        .where(screened_by, p.c.participant_id.is_(None))
        .group_by(s.c.non_enrolment_reason)
    ).all()
    not_enrolled = tuple((r.non_enrolment_reason, int(r.n)) for r in not_enrolled_rows)

    # The instants' range: from the first consent's or randomization's UTC day (less a day: no zone is a day
    # ahead of UTC) to the moment's (plus two: a zone's day may run a day past the trial's).
    given = and_(c.c.decision == "consent", c.c.obtained_at <= moment)
    claimed = and_(e.c.participant_id.is_not(None), e.c.randomized_at <= moment)
    earliest = [
        v
        for v in (
            session.execute(select(func.min(c.c.obtained_at)).where(given)).scalar_one(),
            session.execute(select(func.min(e.c.randomized_at)).where(claimed)).scalar_one(),
        )
        if v is not None
    ]
    consented: tuple[tuple[tuple[str, dt.date, str], int], ...] = ()
    randomized: tuple[tuple[tuple[str, dt.date, dt.date], int], ...] = ()
    if earliest:
        span = (min(earliest).astimezone(dt.UTC).date() - dt.timedelta(days=1),
                moment.astimezone(dt.UTC).date() + dt.timedelta(days=2))  # fmt: skip
        zones = tuple((site.code, site.timezone) for site in protocol.sites)
        ranked = (
            select(s.c.site.label("site"), c.c.given_by.label("given_by"),
                   _site_day(dialect, "consent", zones, fallback, span).label("day"),
                   func.row_number().over(partition_by=c.c.screening_id, order_by=(c.c.obtained_at, c.c.id))
                   .label("nth"))
            .select_from(c.join(s, s.c.id == c.c.screening_id))
            .where(given, screened_by)
            .subquery()
        )  # fmt: skip
        consent_rows = session.execute(
            select(ranked.c.site, ranked.c.day, ranked.c.given_by, func.count().label("n"))
            .where(ranked.c.nth == 1)
            .group_by(ranked.c.site, ranked.c.day, ranked.c.given_by)
        ).all()
        consented = tuple(((r.site, _as_date(r.day), r.given_by), int(r.n)) for r in consent_rows)
        randomized_days = (
            select(s.c.site.label("site"), s.c.screened_on.label("screened_on"),
                   _site_day(dialect, "randomized", zones, fallback, span).label("day"))
            .select_from(e.join(p, p.c.participant_id == e.c.participant_id).join(s, s.c.id == p.c.screening_id))
            .where(claimed, p.c.enrolled_at <= moment, screened_by)
            .subquery()
        )  # fmt: skip
        randomized_rows = session.execute(
            select(randomized_days.c.site, randomized_days.c.screened_on, randomized_days.c.day,
                   func.count().label("n"))
            .group_by(randomized_days.c.site, randomized_days.c.screened_on, randomized_days.c.day)
        ).all()  # fmt: skip
        randomized = tuple(
            ((r.site, _as_date(r.screened_on), _as_date(r.day)), int(r.n)) for r in randomized_rows
        )
    return Tally(screened, consented, enrolled, randomized, failed, not_enrolled)
