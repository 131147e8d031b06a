"""The audit trail as an export reads it in bulk: plain rows of a few columns, masked column by column.

``DatabaseSource.audit_columns`` and ``audit_distinct`` (``trialwright.services.exports``) read here. Three parts of
the trail: every entry the action filter takes, oldest first (``part="all"``); only those naming no participant
(``"unnamed"``: a screening's, a consent's before enrolment); only those naming a participant the source exports
(``"named"``), joined to the participants so that they come in the order ``participants`` streams them (by
participant id, as the database orders it), each participant's oldest first: a writer that goes participant by
participant takes them beside the participant stream (a merge join) instead of indexing the trail. ``audit_distinct``
reduces the rows to the distinct values of a few columns (some read only as present or not), each with its newest
seq, in the database: what the entries say about who acted, without a row per entry in Python.

Masking: every value of a masked column (``MASKED_COLUMNS``) is shown as ``mask_value`` shows it to the exporter,
exactly as ``audit`` masks a whole entry; a source made ``with_arms`` shows them as stored. Its ``hash`` column
is ``masked`` on every row of a source without the arms: a hash is a SHA-256 of all of its entry's fields and of
the entry before's hash, so a reader given the hashes around an entry with a masked value of few possibilities (a
count, a lot, an arm) could try each value against them (``trialwright.domain.audit_masking``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import String, and_, case, func, literal, or_, select, type_coerce
from sqlalchemy.orm import Session

from trialwright.domain.audit_masking import MASKED_COLUMNS, mask_value
from trialwright.domain.masking import MASKED
from trialwright.store.screening_tables import participants
from trialwright.store.tables import audit_entries

__all__ = ["Part", "audit_distinct", "audit_latest", "audit_rows"]

#: Which entries of the trail: every one, those naming no participant, those naming an exported participant.
Part = Literal["all", "unnamed", "named"]
_UNSEEN: Any = object()


def _only(column: Any, action: Any, actions: Collection[str] | None) -> Any:
    """``column``, or NULL for an entry whose action is not one of ``actions`` (when given)."""
    return column if actions is None else case((action.in_(sorted(actions)), column), else_=None)


def _where(
    actions: Collection[str], prefixes: Sequence[str], unnamed: Collection[str], site_filter: Any, part: Part
) -> Any:
    table = audit_entries.c
    chosen = or_(table.action.in_(sorted(actions)), *(table.action.startswith(p, autoescape=True) for p in prefixes))
    unnamed_rows = and_(table.participant.is_(None), table.form.in_(sorted(unnamed)))
    named = {"all": or_(table.participant.is_not(None), unnamed_rows), "unnamed": unnamed_rows,
             "named": table.participant.is_not(None)}[part]  # fmt: skip
    return and_(named, site_filter(table.site), chosen)


def _masker(with_arms: bool, columns: Sequence[str], batch: int) -> Any:
    """A function masking a row's masked columns in place (None when nothing is masked)."""
    masked = [] if with_arms else [(n, c) for n, c in enumerate(columns) if c in MASKED_COLUMNS]
    if not masked:
        return None
    # Masked texts repeat (a detail naming the visit, a reason): remembered per column, so that the values of one
    # column that seldom repeat (a stored value) do not push out another's that do.
    remembered: list[tuple[int, str, dict[tuple[str, str], str | None]]] = [(n, c, {}) for n, c in masked]

    def mask(row: list[Any], action: str) -> None:
        for n, column, seen in remembered:
            raw = row[n]
            if raw is None:
                continue
            key = (action, raw)
            shown = seen.get(key, _UNSEEN)
            if shown is _UNSEEN:
                shown = mask_value(action, column, raw)
                if len(seen) >= batch:
                    seen.clear()
                seen[key] = shown
            row[n] = shown

    return mask


def _check(columns: Sequence[str]) -> None:
    unknown = sorted(set(columns) - set(audit_entries.c.keys()))
    if unknown:
        raise ValueError(f"columns: {', '.join(unknown)} are not audit columns")


def audit_rows(
    session: Session, columns: Sequence[str], actions: Collection[str], prefixes: Sequence[str],
    only: Mapping[str, Collection[str]], unnamed: Collection[str], *, site_filter: Any, with_arms: bool, batch: int,
    part: Part = "all",
) -> Iterator[tuple[Any, ...]]:  # fmt: skip
    """The rows of ``ExportSource.audit_columns`` read from the database (see the module's note)."""
    _check(columns)
    table = audit_entries.c
    # The time stamps of the entries one save wrote repeat: each is read as the database holds it and converted by
    # its column type's own result processor once per distinct stored value (``_Stamps``), not once per row.
    stamps = [(n, _Stamps(session, table[c].type)) for n, c in enumerate(columns) if c == "at" and c not in only]
    read = [type_coerce(table[c], String) if c == "at" and c not in only else table[c] for c in columns]
    withheld = set() if with_arms else {"hash", "prev_hash"}  # no entry's hashes without the arms (module's note)
    query = select(*(_only(r, table.action, only.get(c)) if c not in withheld else literal(MASKED).label(c)
                     for r, c in zip(read, columns, strict=True)),
                   table.action).where(_where(actions, prefixes, unnamed, site_filter, part))  # fmt: skip
    if part == "named":  # beside the participant stream: its participants, its order (``DatabaseSource.participants``)
        query = (
            query.join(participants, participants.c.participant_id == table.participant)
            .where(site_filter(participants.c.site))
            .order_by(participants.c.participant_id, table.seq)
        )
    else:
        query = query.order_by(table.seq)
    mask = _masker(with_arms, columns, batch)
    for r in session.execute(query.execution_options(yield_per=batch)):
        if mask is None and not stamps:
            yield tuple(r[:-1])
            continue
        row = list(r[:-1])
        for n, stamp in stamps:
            row[n] = stamp(row[n], batch)
        if mask is not None:
            mask(row, r[-1])
        yield tuple(row)


class _Stamps:
    """A date-time column's stored values converted as its type converts them (``UTCDateTime``: an aware UTC
    datetime), each distinct stored value once; at most ``batch`` remembered (forgotten all at once when full)."""

    def __init__(self, session: Session, kind: Any) -> None:
        dialect = session.get_bind().dialect
        self._convert = kind.dialect_impl(dialect).result_processor(dialect, None) or (lambda value: value)
        self._seen: dict[Any, Any] = {}

    def __call__(self, raw: Any, batch: int) -> Any:
        if raw is None:
            return None
        found = self._seen.get(raw)
        if found is None:
            found = self._convert(raw)
            if len(self._seen) >= batch:
                self._seen.clear()
            self._seen[raw] = found
        return found


def audit_latest(session: Session, *, site_filter: Any) -> dt.datetime | None:
    """``ExportSource.audit_latest`` in the database: the newest ``at`` of the entries ``audit_rows`` reads for every
    action (``prefixes=("",)``, part ``all``), its column type's own conversion applied (an aware UTC datetime; an
    entry's time is never masked)."""
    table = audit_entries.c
    latest = select(func.max(table.at)).where(_where((), ("",), (), site_filter, "all"))
    found: dt.datetime | None = session.execute(latest).scalar()
    return found


def audit_distinct(
    session: Session, columns: Sequence[str], actions: Collection[str], prefixes: Sequence[str],
    only: Mapping[str, Collection[str]], unnamed: Collection[str], present: Collection[str], *, site_filter: Any,
    with_arms: bool, batch: int,
) -> Iterator[tuple[Any, ...]]:  # fmt: skip
    """The rows of ``ExportSource.audit_distinct`` read from the database: grouped there, masked here."""
    _check([*columns, *present])
    if "hash" in columns:  # each entry's own: nothing to group
        raise ValueError("columns: an entry's hash is read by audit_rows, never grouped")
    table = audit_entries.c
    read = [
        (table[c].is_not(None) if c in present else _only(table[c], table.action, only.get(c))).label(f"c{n}")
        for n, c in enumerate(columns)
    ]
    newest = func.max(table.seq)
    query = (
        select(newest, *read, table.action.label("act"))
        .where(_where(actions, prefixes, unnamed, site_filter, "all"))
        .group_by(*read, table.action)
        .order_by(newest)
    )
    mask = _masker(with_arms, [c if c not in present else "" for c in columns], batch)
    for r in session.execute(query.execution_options(yield_per=batch)):
        row = [(True if v else None) if c in present else v for c, v in zip(columns, r[1:-1], strict=True)]
        if mask is not None:
            mask(row, r[-1])
        yield (r[0], *row)
