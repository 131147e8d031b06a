"""The REDCap-compatible API's records export: the rows the caller may read, flat or eav, chosen by records,
fields, forms, events and a date range, and kept by REDCap's filter logic (``domain/redcap_logic.py``).

Records are read within the caller's sites, as the form pages read them. Filter logic is evaluated here, in
Python, over every raw value of the records read for the caller (one more read of all their forms): correct
first; its cost grows with the records read, not with the rows returned (docs/redcap.md).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from trialwright.domain.forms import FormState, StoredValue
from trialwright.domain.masking import kept_forms
from trialwright.domain.redcap import RECORD_ID, Dictionary, RedcapError, dictionary, event_name, export_value
from trialwright.domain.redcap_logic import FilterLogic, FilterRefused, filter_logic
from trialwright.protocol import Protocol
from trialwright.services import forms as form_service
from trialwright.services.errors import denied
from trialwright.services.forms.common import KEPT_FROM_MASKED
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import read_scope
from trialwright.store.screening_tables import participants

__all__ = ["STATUS", "ExportQuery", "export_records", "within"]

#: REDCap's form status: 0 incomplete, 1 unverified, 2 complete.
STATUS = {FormState.DRAFT: "0", FormState.COMPLETE: "1", FormState.VERIFIED: "2", FormState.SIGNED: "2",
          FormState.LOCKED: "2"}  # fmt: skip


def _reader(actor: UserView) -> None:
    if actor.role not in form_service.READERS:
        raise PermissionError("role: your role does not read the case report forms")


@dataclass(frozen=True)
class ExportQuery:
    """What ``content=record`` asks for (empty: everything)."""

    records: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    forms: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    eav: bool = False
    labels: bool = False
    groups: bool = False
    begin: dt.datetime | None = None
    end: dt.datetime | None = None
    logic: str = ""  # REDCap's filterLogic
    checkbox_labels: bool = False  # REDCap's exportCheckboxLabel (with labels, flat)


def _chosen(book: Dictionary, query: ExportQuery) -> tuple[list[str], set[str] | None]:
    """The forms to export and, when fields are named, the field names (the record id always comes)."""
    unknown_forms = [f for f in query.forms if f not in book.by_form]
    if unknown_forms:
        raise RedcapError(f"forms: {', '.join(unknown_forms)} are not instruments of this project")
    # A form's status column may be asked for by name (PyCap names it with the record id when forms are chosen).
    statuses = {f[: -len("_complete")] for f in query.fields if f.endswith("_complete")} & set(book.by_form)
    names = [f for f in query.fields if f != RECORD_ID and f.removesuffix("_complete") not in statuses]
    unknown = [f for f in names if f not in book.fields]
    if unknown:
        raise RedcapError(f"fields: {', '.join(unknown)} are not fields of this project")
    bad_events = [e for e in query.events if e not in book.events]
    if bad_events:
        raise RedcapError(f"events: {', '.join(bad_events)} are not events of this project")
    every = list(book.by_form)
    if not query.forms and not names:
        return every, None
    forms = set(query.forms) | {book.fields[n].form_id for n in names} | statuses
    wanted = {f.name for form in query.forms for f in book.by_form[form]} | set(names)
    return [f for f in every if f in forms], wanted


def export_records(engine: Engine, actor: UserView, query: ExportQuery) -> list[dict[str, str]]:
    """The records the caller may read, flat (one row per participant and event) or eav (one row per value); with
    ``logic``, only the rows (record-events) for which REDCap's filter logic is true (docs/redcap.md)."""
    _reader(actor)
    protocol = current_protocol(engine).protocol
    book = dictionary(protocol)
    forms, wanted = _chosen(book, query)
    # A form kept from the caller's masked role (``domain.masking.kept_forms``): asked for by name, refused; else
    # neither read nor a column, as for the web and REST readers.
    kept = kept_forms(protocol, actor.role)
    asked = set(query.forms) | {book.fields[n].form_id for n in query.fields if n in book.fields}
    asked |= {f.removesuffix("_complete") for f in query.fields if f.endswith("_complete")}
    if refused := sorted(asked & kept):
        raise denied(RedcapError)(f"forms: {', '.join(refused)} {KEPT_FROM_MASKED}")
    forms = [f for f in forms if f not in kept]
    logic = _filter(book, query.logic) if query.logic.strip() else None
    rows = _flat_rows(engine, actor, protocol, book, query, forms, wanted)
    if logic is not None:
        # The logic reads any field of the record at any event, whatever the export's fields, forms and events:
        # every raw value of the records read for the caller (their sites), then kept row by row.
        every = ExportQuery(records=query.records, begin=query.begin, end=query.end)
        by_record: dict[str, dict[str, dict[str, str]]] = {}
        for r in _flat_rows(engine, actor, protocol, book, every, [f for f in book.by_form if f not in kept], None):
            by_record.setdefault(r[RECORD_ID], {})[r["redcap_event_name"]] = r
        rows = [r for r in rows if logic.holds(by_record.get(r[RECORD_ID], {}), r["redcap_event_name"])]
    if not query.eav:
        return rows
    eav: list[dict[str, str]] = []
    for row in rows:
        for column, value in row.items():
            if column not in {RECORD_ID, "redcap_event_name", "redcap_data_access_group"} and value != "":
                eav.append({"record": row[RECORD_ID], "redcap_event_name": row["redcap_event_name"],
                            "field_name": column, "value": value})  # fmt: skip
    return eav


def _filter(book: Dictionary, text: str) -> FilterLogic:
    """The filter logic over the variables the caller reads: every field of the forms (the case report forms hold
    no arm; a role that does not read them is refused before), the record id and each form's status. Anything
    else, such as an arm, is "not a field of this project", the answer for a name that does not exist."""
    fields: dict[str, tuple[str, ...] | None] = {RECORD_ID: None}
    fields |= {f"{form_id}_complete": None for form_id in book.by_form}
    for name, f in book.fields.items():
        codes = tuple(code for _, code in book.export_names(f) if code)
        fields[name] = codes or None
    try:
        return filter_logic(text, fields, book.events)
    except FilterRefused as exc:
        raise RedcapError(str(exc)) from None


def _flat_rows(
    engine: Engine, actor: UserView, protocol: Protocol, book: Dictionary, query: ExportQuery, forms: list[str],
    wanted: set[str] | None,
) -> list[dict[str, str]]:  # fmt: skip
    """The flat rows of these forms (and fields, when ``wanted``) for the records the caller reads."""
    statuses = {f.removesuffix("_complete") for f in query.fields if f.endswith("_complete")}
    visits = {event: visit for event, visit in book.events.items() if not query.events or event in query.events}
    order = {v.id: i for i, v in enumerate(protocol.visits)}
    statement = (
        select(visit_records.c.participant_id, visit_records.c.visit_id, participants.c.site, form_records.c.form_id,
               form_records.c.form_values, form_records.c.state, form_records.c.updated_at)
        .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
        .join(participants, participants.c.participant_id == visit_records.c.participant_id)
        .where(visit_records.c.visit_id.in_(sorted(visits.values())), form_records.c.form_id.in_(forms))
    )  # fmt: skip
    if actor.role.site_scoped:
        statement = statement.where(participants.c.site.in_(list(actor.sites)))
    if query.records:
        statement = statement.where(visit_records.c.participant_id.in_(list(query.records)))
    with read_scope(engine) as session:
        found = session.execute(statement).all()
    changed: set[str] | None = None
    if query.begin is not None or query.end is not None:
        changed = {r.participant_id for r in found if within(r.updated_at, query.begin, query.end)}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for r in found:
        if changed is not None and r.participant_id not in changed:
            continue
        cell = cells.setdefault((r.participant_id, r.visit_id), {"site": r.site, "forms": {}})
        stored = {k: StoredValue.from_json(v) for k, v in json.loads(r.form_values).items()}
        cell["forms"][r.form_id] = (FormState(r.state), stored)
    rows: list[dict[str, str]] = []
    for (pid, visit_id), cell in sorted(cells.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 0))):
        visit_forms = set(protocol.visit(visit_id).forms)
        row: dict[str, str] = {RECORD_ID: pid, "redcap_event_name": event_name(visit_id)}
        if query.groups:
            row["redcap_data_access_group"] = cell["site"].lower()
        for form_id in forms:
            held = cell["forms"].get(form_id)
            for column, f, code in book.columns([form_id]):
                if wanted is not None and f.name not in wanted:
                    continue
                if form_id not in visit_forms and held is None:
                    row[column] = ""
                    continue
                value = export_value(f.field, held[1].get(f.field.id) if held else None, code, label=query.labels,
                                     choice_label=query.checkbox_labels)  # fmt: skip
                row[column] = value
            if wanted is None or form_id in statuses or any(f.name in wanted for f in book.by_form[form_id]):
                row[f"{form_id}_complete"] = "" if held is None else STATUS[held[0]]
        rows.append(row)
    return rows


def within(at: dt.datetime, begin: dt.datetime | None, end: dt.datetime | None) -> bool:
    at = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    return (begin is None or at >= begin) and (end is None or at <= end)
