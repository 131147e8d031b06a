"""Data queries: raised by hand (monitor, data manager) or automatically (a soft limit, a data check,
another capability), answered by site staff, closed by their raiser or, when the data that raised them
changes, by the system.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Select, case, select, true
from sqlalchemy.orm import Session

from trialwright.domain.masking import kept_forms
from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.roles import SYSTEM_ACTOR, SYSTEM_ACTORS
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.protocol.logs import LogDef
from trialwright.services import audit, clock
from trialwright.services.errors import FormError, denied
from trialwright.services.forms.common import (
    QUERY_ANSWERERS,
    QUERY_RAISERS,
    READERS,
    QueryView,
    _role,
    _visit_forms,
    _visit_row,
    form_queried,
    kept_from,
    no_query_on,
    not_on_kept_forms,
)
from trialwright.services.lock import require_unlocked
from trialwright.services.log_views import REMOVED, log_def
from trialwright.services.paging import keyset_page
from trialwright.services.screening import NotFound, participant_row
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import inserted_id, read_scope, session_scope
from trialwright.store.log_tables import log_entries
from trialwright.store.screening_tables import participants

__all__ = [
    "CORRECTED_NOTE",
    "answer_query",
    "close_query",
    "get_query",
    "list_queries",
    "may_raise_queries",
    "may_read_queries",
    "page_queries",
    "raise_automatic_query",
    "raise_query",
    "record_query",
]


#: The note the system closes an automatic query with when the value that raised it changed (stored as written, in
#: the queries table and the audit trail; a page says it in the reader's language, ``web.fact_words``).
CORRECTED_NOTE = "resolved: the value was corrected"


def record_query(
    session: Session,
    *,
    actor: str,
    participant_id: str,
    site: str,
    text: str,
    origin: str,
    role: str | None = None,
    form_record_id: int | None = None,
    form_id: str | None = None,
    field_id: str | None = None,
    check_id: str | None = None,
    log_entry_id: int | None = None,
    sequence: int | None = None,
) -> int:
    """Store an open query and its ``query.raised`` audit entry in the caller's transaction: the one way every
    capability (manual queries, automatic checks, coding questions) raises a query. Returns its id."""
    query_id = inserted_id(
        session,
        queries.insert().values(
            participant_id=participant_id,
            site=site,
            form_record_id=form_record_id,
            log_entry_id=log_entry_id,
            field=field_id,
            origin=origin,
            check_id=check_id,
            text=text,
            status="open",
            raised_at=clock.now(),
            raised_by=actor,
        ),
    )
    if form_record_id is not None:
        form_queried(session, form_record_id)
    audit.record(
        session,
        actor=actor,
        role=role,
        site=site,
        participant=participant_id,
        form=form_id,
        field=field_id,
        action="query.raised",
        new_value={"query": query_id, "text": text, "origin": origin},
        detail=None if log_entry_id is None else {"sequence": sequence},
    )
    return query_id


def _open_query(
    session: Session,
    actor: str,
    participant: Any,
    form_record_id: int | None,
    field_id: str | None,
    origin: str,
    text: str,
    check_id: str | None = None,
) -> None:
    """Raise an automatic query unless the same one is open already (a record this transaction inserted and raised
    no query on since has none: it is not read for, as ``_auto_close`` does not read)."""
    if form_record_id is None or not no_query_on(session, form_record_id):
        existing = session.execute(
            select(queries.c.id).where(
                queries.c.participant_id == participant.participant_id,
                queries.c.form_record_id == form_record_id,
                queries.c.origin == origin,
                queries.c.status != "closed",
                (queries.c.field == field_id) if field_id else queries.c.check_id == check_id,
                (queries.c.check_id == check_id) if check_id and field_id else true(),
            )
        ).first()
        if existing is not None:
            return
    record_query(
        session,
        actor=actor,
        participant_id=participant.participant_id,
        site=participant.site,
        text=text,
        origin=origin,
        form_record_id=form_record_id,
        field_id=field_id,
        check_id=check_id,
    )


def _auto_close(
    session: Session,
    participant: Any,
    form_record_id: int,
    origin: str,
    *,
    field_id: str | Sequence[str] | None,
    check_id: str | None,
) -> None:
    """Close the open automatic queries of ``origin`` on a field (or several fields, in one look-up) or a
    check, because the data that raised them changed."""
    if no_query_on(session, form_record_id):
        return  # inserted by this transaction and never queried: nothing to close, nothing to read
    where = [
        queries.c.participant_id == participant.participant_id,
        queries.c.form_record_id == form_record_id,
        queries.c.origin == origin,
        queries.c.status != "closed",
    ]
    if isinstance(field_id, str):
        where.append(queries.c.field == field_id)
        if check_id is not None:
            where.append(queries.c.check_id == check_id)
    elif field_id is not None:
        if not field_id:
            return
        where.append(queries.c.field.in_(list(field_id)))
    else:
        where.append(queries.c.check_id == check_id)
    found = session.execute(select(queries.c.id, queries.c.field).where(*where).order_by(queries.c.id)).all()
    form_id = (
        session.execute(select(form_records.c.form_id).where(form_records.c.id == form_record_id)).scalar()
        if found
        else None
    )
    for query_id, query_field in found:
        now = clock.now()
        note = CORRECTED_NOTE
        session.execute(
            queries.update()
            .where(queries.c.id == query_id)
            .values(status="closed", closed_at=now, closed_by=SYSTEM_ACTOR, close_note=note)
        )
        audit.record(
            session,
            actor=SYSTEM_ACTOR,
            site=participant.site,
            participant=participant.participant_id,
            form=form_id,  # as every entry about a query on a form: the masking keeps a form's whole trail
            field=query_field,
            action="query.closed",
            new_value={"query": query_id, "note": note},
        )


def query_view(session: Session, row: Any) -> QueryView:
    """A ``queries`` row as the view every reader gets (also for the coder's questions, ``services.coding``)."""
    visit_id = form_id = log_id = sequence = None
    if row.log_entry_id is not None:
        log_id, sequence = session.execute(
            select(log_entries.c.log_id, log_entries.c.sequence).where(log_entries.c.id == row.log_entry_id)
        ).one()
    if row.form_record_id is not None:
        found = session.execute(
            select(visit_records.c.visit_id, form_records.c.form_id)
            .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
            .where(form_records.c.id == row.form_record_id)
        ).first()
        if found is not None:
            visit_id, form_id = found
    return QueryView(
        row.id,
        row.participant_id,
        row.site,
        visit_id,
        form_id,
        row.field,
        row.origin,
        row.check_id,
        row.text,
        row.status,
        row.raised_by,
        row.raised_at,
        row.answer,
        row.answered_by,
        row.closed_by,
        row.close_note,
        row.raised_by in SYSTEM_ACTORS,
        log_id,
        sequence,
    )


def may_read_queries(actor: UserView) -> None:
    """Refuse, with the role rule, a user whose role does not read queries (the API's query routes and the command
    line's ``query list|show|answer|close`` ask it first, before an unblinded account's password)."""
    _role(actor, READERS, "read queries")


def may_raise_queries(actor: UserView) -> None:
    """Refuse, with the role rule, a user whose role does not raise queries by hand (``POST /api/v1/queries``,
    ``query raise``)."""
    _role(actor, QUERY_RAISERS, "raise queries")


def _queries_query(
    protocol: Protocol,
    actor: UserView,
    participant_id: str | None,
    status: str | None,
    site: str | None,
    participant: str | None = None,
) -> Select[Any]:
    may_read_queries(actor)
    query = select(queries).where(not_on_kept_forms(queries.c.form_record_id, kept_forms(protocol, actor.role)))
    if actor.role.site_scoped:
        query = query.where(queries.c.site.in_(actor.sites))
    if participant_id:
        query = query.where(queries.c.participant_id == participant_id)
    if participant:
        query = query.where(queries.c.participant_id.startswith(participant, autoescape=True))
    if status:
        query = query.where(queries.c.status == status)
    if site:
        query = query.where(queries.c.site == site)
    return query


#: The inbox order: open (and answered) queries first, then closed ones; newest first within each.
_INBOX_KEY = (case((queries.c.status == "closed", 0), else_=1), queries.c.id)


def list_queries(
    engine: Engine,
    actor: UserView,
    *,
    participant_id: str | None = None,
    status: str | None = None,
    site: str | None = None,
) -> list[QueryView]:
    """Every query within the actor's sites, open first, newest first (pages: ``page_queries``)."""
    protocol = current_protocol(engine).protocol
    query = _queries_query(protocol, actor, participant_id, status, site).order_by(*(k.desc() for k in _INBOX_KEY))
    with session_scope(engine) as session:
        return [query_view(session, r) for r in session.execute(query).all()]


def page_queries(
    engine: Engine,
    actor: UserView,
    *,
    participant_id: str | None = None,
    participant: str | None = None,
    status: str | None = None,
    site: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[QueryView]:
    """A page of the query inbox within the actor's sites, open first, newest first; ``participant_id`` keeps
    one participant's queries, ``participant`` those whose participant id starts with it."""
    query = _queries_query(current_protocol(engine).protocol, actor, participant_id, status, site, participant)
    with read_scope(engine) as session:
        return keyset_page(
            session,
            query,
            _INBOX_KEY,
            lambda s, rows: [query_view(s, r) for r in rows],
            limit=limit,
            cursor=cursor,
        )


def raise_query(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    text: str,
    *,
    visit_id: str | None = None,
    form_id: str | None = None,
    field_id: str | None = None,
    log_id: str | None = None,
    sequence: int | None = None,
) -> QueryView:
    """A query raised by hand by a monitor or data manager, on a participant, a form or its field, or a log entry
    (``log_id`` and ``sequence``) or its field. A log entry's query is raised on an active entry and a field the log
    declares; it stays open when the entry is amended or removed, until its raiser closes it (as a form's query
    stays open when the value is changed or cleared: only the system's own queries close by themselves)."""
    may_raise_queries(actor)
    checked_text(text, "text", error=FormError)
    if not text.strip():
        raise FormError("text: write the question")
    log = None
    if log_id is not None or sequence is not None:
        if form_id:
            raise FormError("log: a query is on a form or on a log entry, not both")
        if log_id is None or sequence is None:
            raise FormError("sequence: a query on a log entry names the log and the entry's sequence")
        log = log_def(current_protocol(engine).protocol, log_id)
    elif form_id or visit_id or field_id:
        protocol = current_protocol(engine).protocol
        kept_from(protocol, actor.role, form_id)
        _form_target(protocol, visit_id, form_id, field_id)
    with session_scope(engine) as session:
        require_unlocked(session)
        participant = participant_row(session, actor, participant_id)
        record_id = entry_id = None
        if log is not None and sequence is not None:
            entry_id = _log_target(session, participant_id, log, sequence, field_id)
            form_id = log.id
        elif form_id:
            visit_row = _visit_row(session, participant_id, visit_id or "")
            row = _visit_forms(session, visit_row).get(form_id) if visit_row is not None else None
            if row is None:
                raise FormError(f"form: {form_id} at {visit_id} has no data to query")
            record_id = row.id
        query_id = record_query(
            session,
            actor=actor.username,
            role=actor.role.value,
            participant_id=participant_id,
            site=participant.site,
            text=text,
            origin="manual",
            form_record_id=record_id,
            form_id=form_id,
            field_id=field_id,
            log_entry_id=entry_id,
            sequence=sequence,
        )
        return query_view(session, session.execute(select(queries).where(queries.c.id == query_id)).one())


def _form_target(protocol: Protocol, visit_id: str | None, form_id: str | None, field_id: str | None) -> None:
    """A query on a form or its field names a visit, a form it collects and one of that form's fields, as the
    protocol declares them: anything else is refused naming it (a query on no field is never raised unsaid)."""
    if not form_id:
        raise FormError(f"form: a query on {'field ' + repr(field_id) if field_id else 'a visit'} names its form")
    visits = {v.id: v for v in protocol.visits}
    if not visit_id or (visit_id not in visits and not visit_id.startswith("unscheduled-")):
        known = ", ".join(visits)
        raise FormError(f"visit: {visit_id!r} is not a visit of the protocol (visits: {known})")
    try:
        form = protocol.form(form_id)
    except KeyError:
        raise FormError(f"form: {form_id!r} is not a form of the protocol") from None
    if field_id and field_id not in {f.id for f in form.fields}:
        fields = ", ".join(f.id for f in form.fields)
        raise FormError(f"field: form {form_id} has no field {field_id!r} (fields: {fields})")


def _log_target(
    session: Session,
    participant_id: str,
    log: LogDef,
    sequence: int,
    field_id: str | None,
) -> int:
    """The id of the log entry a query names: refused unless it is one active entry, and the field one of its log."""
    log_id = log.id
    if field_id and field_id not in {f.id for f in log.fields}:
        raise FormError(f"field: the {log.id} log has no field {field_id!r}")
    row = session.execute(
        select(log_entries.c.id, log_entries.c.state, log_entries.c.removed_reason).where(
            log_entries.c.participant_id == participant_id,
            log_entries.c.log_id == log_id,
            log_entries.c.sequence == sequence,
        )
    ).first()
    if row is None:
        raise FormError(f"sequence: {participant_id} has no entry {sequence} in log {log_id}")
    if row.state == REMOVED:
        raise FormError(f"sequence: entry {sequence} of {log_id} was removed ({row.removed_reason}); nothing to query")
    return int(row.id)


def raise_automatic_query(engine: Engine, participant_id: str, text: str, *, check_id: str) -> None:
    """A query another capability raises on a participant (e.g. a reported death the hospital course
    lacks); one open query per ``check_id``."""
    with session_scope(engine) as session:
        participant = session.execute(select(participants).where(participants.c.participant_id == participant_id)).one()
        _open_query(session, SYSTEM_ACTOR, participant, None, None, "system", text, check_id=check_id)


def _form_of(session: Session, row: Any) -> str | None:
    """The id of the form a query (a ``queries`` row) is on (None: on a participant or a log entry)."""
    if row.form_record_id is None:
        return None
    return session.execute(select(form_records.c.form_id).where(form_records.c.id == row.form_record_id)).scalar()


def _query_row(session: Session, protocol: Protocol, actor: UserView, query_id: int) -> Any:
    """The query by id as ``actor`` may act on it: one outside their sites, or on a form kept from their masked role,
    is not found (as a query that does not exist: its presence may differ by arm)."""
    kept = not_on_kept_forms(queries.c.form_record_id, kept_forms(protocol, actor.role))
    row = session.execute(select(queries).where(queries.c.id == query_id, kept)).first()
    if row is None or (actor.role.site_scoped and row.site not in actor.sites):
        raise NotFound(f"query: no query {query_id}")
    return row


def get_query(engine: Engine, actor: UserView, query_id: int) -> QueryView:
    """One query by id, as the inbox shows it to ``actor``: one outside their sites, or on a form kept from their
    masked role, is not found, in the same words as an id no query has."""
    may_read_queries(actor)
    protocol = current_protocol(engine).protocol
    with read_scope(engine) as session:
        return query_view(session, _query_row(session, protocol, actor, query_id))


def answer_query(engine: Engine, actor: UserView, query_id: int, answer: str) -> QueryView:
    """Site staff answer an open query."""
    _role(actor, QUERY_ANSWERERS, "answer queries")
    checked_text(answer, "answer", error=FormError)
    if not answer.strip():
        raise FormError("answer: write the answer")
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        require_unlocked(session)
        row = _query_row(session, protocol, actor, query_id)
        if row.status == "closed":
            raise FormError(f"query: {query_id} is closed")
        now = clock.now()
        session.execute(
            queries.update()
            .where(queries.c.id == query_id)
            .values(status="answered", answer=answer, answered_at=now, answered_by=actor.username)
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=row.site,
            participant=row.participant_id,
            form=_form_of(session, row),
            field=row.field,
            action="query.answered",
            old_value=row.answer,
            new_value={"query": query_id, "answer": answer},
        )
        return query_view(session, _query_row(session, protocol, actor, query_id))


def close_query(engine: Engine, actor: UserView, query_id: int, note: str = "") -> QueryView:
    """Close a query: its raiser, or for an automatic query a monitor or data manager."""
    checked_text(note, "note", error=FormError)
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        require_unlocked(session)
        row = _query_row(session, protocol, actor, query_id)
        automatic = row.raised_by in SYSTEM_ACTORS
        if not (row.raised_by == actor.username or (automatic and actor.role in QUERY_RAISERS)):
            raise denied(FormError)(
                "role: only whoever raised a query closes it (a monitor or data manager for automatic ones)"
            )
        if row.status == "closed":
            raise FormError(f"query: {query_id} is closed already")
        now = clock.now()
        session.execute(
            queries.update()
            .where(queries.c.id == query_id)
            .values(status="closed", closed_at=now, closed_by=actor.username, close_note=note or None)
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=row.site,
            participant=row.participant_id,
            form=_form_of(session, row),
            field=row.field,
            action="query.closed",
            old_value=row.status,
            new_value={"query": query_id, "note": note},
        )
        return query_view(session, _query_row(session, protocol, actor, query_id))
