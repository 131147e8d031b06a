"""The administered preparation codes (``administered_codes``): who holds a code, found by its index, kept exact by the
transaction that saves an administration record, and rebuilt from the records (the migration that made the table,
and an amendment that names another form or code field).

A row is one form record of the kit form whose code field holds a value (``domain.treatment.code_held``). Of the
rows of one code, exactly one carries the code in ``claim`` (unique): the first to hold it, and when that one lets it
go, the earliest row left. A save whose code nobody holds yet inserts its row claiming it; a second transaction doing
the same for the same code waits (PostgreSQL) for the first and, when that one commits, finds the claim taken and
inserts nothing (``ON CONFLICT (claim) DO NOTHING``): it never holds a code another participant's save took meanwhile.
The conflict is named: only the taken claim is read as "the code is held"; a clash on any other key (the record's
row written twice) raises, never passes for the kit check's refusal.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from trialwright.domain.treatment import code_held
from trialwright.store.data_tables import administered_codes, form_records

__all__ = ["claimant", "held_codes", "hold", "hold_many", "holders", "rebuild", "release"]

_T = administered_codes
_HELD = select(_T.c.preparation_code).where(_T.c.preparation_code.in_(bindparam("codes", expanding=True)))
_HOLDERS = select(_T.c.participant_id, _T.c.form_record_id, _T.c.claim).where(
    _T.c.preparation_code == bindparam("code")
)


def holders(session: Session | Connection, code: str) -> Sequence[Any]:
    """Every row holding ``code`` (participant, record, claim): an index search, a handful of rows at most."""
    return session.execute(_HOLDERS, {"code": code}).all()


def held_codes(session: Session | Connection, codes: Collection[str]) -> set[str]:
    """Of ``codes``, those some row holds already: one index search for them all (a bulk import's batch)."""
    if not codes:
        return set()
    found = session.execute(_HELD, {"codes": sorted(codes)})
    return set(found.scalars())


def claimant(session: Session | Connection, code: str) -> str | None:
    """The participant whose row claims ``code`` (read after an insert that found the claim taken)."""
    return session.execute(select(_T.c.participant_id).where(_T.c.claim == code)).scalar()


def _insert(dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_T)


def hold(
    session: Session | Connection, code: str, participant_id: str, form_id: str, record_id: int, *, claim: bool
) -> bool:
    """Record that the record ``record_id`` holds ``code``; with ``claim``, as the code's first holder. False when
    the claim is taken (by a transaction that committed since the caller read ``holders``): nothing is written. A
    row the record holds already (its key) is no taken claim: that clash raises ``IntegrityError``."""
    dialect = session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    statement = (
        _insert(dialect)
        .values(form_record_id=record_id, preparation_code=code, participant_id=participant_id, form_id=form_id,
                claim=code if claim else None)
        .on_conflict_do_nothing(index_elements=[_T.c.claim])
        .returning(_T.c.form_record_id)
    )  # fmt: skip
    return session.execute(statement).first() is not None


def hold_many(session: Session | Connection, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Record many holds with one executemany (``rows``: the table's columns, ``claim`` the code or None), as
    ``hold`` does one. The rows whose claim was taken (nothing written for them) are returned; any other clash
    raises."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    statement = _insert(dialect).on_conflict_do_nothing(index_elements=[_T.c.claim]).returning(_T.c.form_record_id)
    written = set(session.execute(statement, [dict(r) for r in rows]).scalars())
    return [r for r in rows if r["form_record_id"] not in written]


def release(session: Session | Connection, code: str, record_id: int) -> None:
    """The record ``record_id`` no longer holds ``code``: its row goes, and if it claimed the code, the earliest
    row left of that code (another record of the participant, or data from before the check) claims it."""
    claimed = session.execute(_T.delete().where(_T.c.form_record_id == record_id).returning(_T.c.claim)).scalar()
    if claimed is None:
        return
    earliest = select(func.min(_T.c.form_record_id)).where(_T.c.preparation_code == code).scalar_subquery()
    session.execute(_T.update().where(_T.c.form_record_id == earliest).values(claim=_T.c.preparation_code))


def rebuild(connection: Connection, kit: tuple[str, str] | None) -> int:
    """Make the table anew from the form records of the kit form (``kit``: its form and code field, by
    ``domain.treatment.kit_field``; None: no code field, so no row), each record's code read by the rule the check
    uses (``code_held``); the earliest record of each code claims it. How many rows it holds now."""
    connection.execute(_T.delete())
    if kit is None:
        return 0
    form_id, field = kit
    rows: list[dict[str, Any]] = []
    claimed: set[str] = set()
    records = connection.execute(
        select(form_records.c.id, form_records.c.participant_id, form_records.c.form_values)
        .where(form_records.c.form_id == form_id)
        .order_by(form_records.c.id)
    )
    for record in records:
        code = code_held(json.loads(record.form_values).get(field))
        if code is None:
            continue
        rows.append({"form_record_id": record.id, "preparation_code": code, "participant_id": record.participant_id,
                     "form_id": form_id, "claim": None if code in claimed else code})  # fmt: skip
        claimed.add(code)
    if rows:
        connection.execute(_T.insert(), rows)
    return len(rows)
