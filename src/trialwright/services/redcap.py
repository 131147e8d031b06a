"""The REDCap-compatible API's use cases: the project's metadata, records exported and imported, the log, the users
and randomization, each through the service the web pages and the REST API use, so the same roles, sites,
validation, reasons for change, audit and masking hold.

Records are read within the caller's sites (as the form pages read them) and written through the bulk form import
(``services/forms``): every value is validated, coherence and data checks run, each change is audited with its
reason. REDCap overwrites saved values without a reason; here a change of a saved value needs one (the ``reason``
parameter, which REDCap does not have), refused otherwise naming the field. The log is the audit trail as the
audit page shows it to the caller: a value that could tell an arm is ``masked`` for a blinded caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from trialwright.domain.audit import AuditEntry
from trialwright.domain.masking import MASKED
from trialwright.domain.redcap import (
    RECORD_ID,
    Dictionary,
    RedcapError,
    checkbox_value,
    dictionary,
    event_name,
    export_value,
    import_value,
)
from trialwright.services import audit, audit_trail
from trialwright.services import forms as form_service
from trialwright.services import randomization as randomization_service
from trialwright.services.redcap_export import STATUS, ExportQuery, export_records, within
from trialwright.services.screening import NotFound
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView, list_users
from trialwright.store.engine import session_scope

__all__ = [
    "ExportQuery",
    "RedcapError",
    "export_log",
    "export_records",
    "export_users",
    "import_records",
    "project_dictionary",
    "randomize_record",
    "refused",
]


def refused(engine: Engine, actor: UserView, path: str, content: str) -> None:
    """A call the caller's role may not make, audited as the REST API's refusals are (``access.denied``)."""
    with session_scope(engine) as session:
        audit.record(session, actor=actor.username, role=actor.role.value, action="access.denied",
                     detail={"path": path, "method": "POST", "what": f"content={content[:64]}"})  # fmt: skip


def project_dictionary(engine: Engine) -> Dictionary:
    """The current protocol's data dictionary."""
    return dictionary(current_protocol(engine).protocol)


@dataclass(frozen=True)
class ImportResult:
    """What an import saved: the records (participants) touched, in order."""

    ids: tuple[str, ...]


def _form_rows(
    engine: Engine, actor: UserView, book: Dictionary, rows: Sequence[Mapping[str, Any]], overwrite: bool,
    reason: str | None,
) -> tuple[list[dict[str, Any]], list[str]]:  # fmt: skip
    """The bulk import's rows (one per participant, visit and form) and the records, from REDCap rows."""
    known_columns: dict[str, tuple[str, str]] = {}  # column -> (field name, checkbox code)
    for name, f in book.fields.items():
        for column, code in book.export_names(f):
            known_columns[column] = (name, code)
    out: list[dict[str, Any]] = []
    ids: list[str] = []
    current: dict[tuple[str, str, str], Any] = {}
    sites: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise RedcapError(f"data: row {number} is not an object of field names and values")
        pid = str(row.get(RECORD_ID, "")).strip()
        event = str(row.get("redcap_event_name", "")).strip()
        if not pid:
            raise RedcapError(f"{RECORD_ID}: row {number} names no record")
        if event not in book.events:
            raise RedcapError(f"redcap_event_name: row {number}: {event!r} is not an event of this project")
        visit_id = book.events[event]
        at_event = set(_visit_forms(engine, visit_id))
        values: dict[str, dict[str, Any]] = {}
        boxes: dict[str, dict[str, str]] = {}
        statuses: dict[str, str] = {}
        for column, raw in row.items():
            text = "" if raw is None else str(raw)
            if column in {RECORD_ID, "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"}:
                if column.startswith("redcap_repeat") and text.strip() not in {"", "1"}:
                    raise RedcapError(f"{column}: row {number}: this project has no repeating instruments"
                                      + _no_logs(engine))  # fmt: skip
                continue
            if column == "redcap_data_access_group":
                if text.strip() and text.strip() != _site(engine, actor, sites, pid).lower():
                    raise RedcapError(f"{column}: row {number}: {pid} is not at site {text.strip()}; sites never move")
                continue
            if column.endswith("_complete") and column[: -len("_complete")] in book.by_form:
                if _elsewhere(column[: -len("_complete")], at_event, column, text, number, event):
                    continue
                statuses[column[: -len("_complete")]] = text.strip()
                continue
            if column not in known_columns:
                raise RedcapError(f"{column}: row {number}: not a field of this project")
            name, code = known_columns[column]
            f = book.fields[name]
            if _elsewhere(f.form_id, at_event, column, text, number, event):
                continue
            if code:
                boxes.setdefault(name, {})[code] = text
                continue
            if f.field.derived is not None:
                if text.strip():
                    current_value = _current(engine, actor, current, pid, visit_id, f.form_id, f.field.id)
                    if text.strip() != current_value:
                        raise RedcapError(f"{name}: row {number}: is computed by trialwright, never imported")
                continue
            if not text.strip() and not overwrite:
                continue
            values.setdefault(f.form_id, {})[f.field.id] = import_value(f, text) if text.strip() else None
        for name, columns in boxes.items():
            f = book.fields[name]
            sent = columns if overwrite else {code: v for code, v in columns.items() if v.strip()}
            if not sent:
                continue
            kept: list[str] = []
            here = (pid, visit_id, f.form_id)
            earlier = [o["values"] for o in out if (o["participant"], o["visit"], o["form"]) == here]
            earlier = [v for v in earlier if f.field.id in v]
            if earlier:  # an earlier row of this import set it: its columns not sent keep that row's state
                kept = list(earlier[-1][f.field.id] or [])
            elif any(c.code not in sent for c in f.field.choices):  # columns not sent keep their stored state
                view = _view(engine, actor, current, pid, visit_id, f.form_id)
                stored = None if view is None else view.values.get(f.field.id)
                if stored is not None and stored.status != "value":
                    every = ", ".join(f"{name}___{c.code}" for c in f.field.choices)
                    raise RedcapError(
                        f"{name}: row {number}: is saved as {stored.status.replace('_', ' ')}, so the columns not "
                        f"sent have no state to keep; send every column of the checkbox ({every})"
                    )
                kept = list(stored.value or []) if stored is not None else []
            values.setdefault(f.form_id, {})[f.field.id] = checkbox_value(f, sent, kept) or None
        for form_id, status in statuses.items():
            if status:
                state = _state(engine, actor, current, pid, visit_id, form_id)
                if state != status:
                    raise RedcapError(
                        f"{form_id}_complete: row {number}: the form's status is {state or 'empty'}; it changes "
                        "through its lifecycle (complete, verify, sign) on the form page or the REST API, not by import"
                    )
        for form_id, entries in values.items():
            never_saved = _state(engine, actor, current, pid, visit_id, form_id) == ""
            if all(v is None for v in entries.values()) and never_saved:
                continue  # blanks for a form never saved: nothing to clear
            if form_id not in book.by_form or form_id not in _visit_forms(engine, visit_id):
                raise RedcapError(f"{form_id}: row {number}: the instrument is not in event {event}")
            out.append({"participant": pid, "visit": visit_id, "form": form_id, "values": entries,
                        **({"reason": reason} if reason else {})})  # fmt: skip
        if pid not in ids:
            ids.append(pid)
    return out, ids


def _elsewhere(form_id: str, at_event: set[str], column: str, text: str, number: int, event: str) -> bool:
    """Whether a column belongs to an instrument the row's event does not have: a blank cell is skipped (a flat
    export has every instrument's columns on every event's row), a value is refused naming the column and the
    event (walk 7: it reached the form service's own refusal, unhandled, and answered 500)."""
    if form_id in at_event:
        return False
    if text.strip():
        raise RedcapError(f"{column}: row {number}: the instrument {form_id} is not in event {event}")
    return True


def _no_logs(engine: Engine) -> str:
    """Why a repeating row is refused when the protocol has logs: their entries are not in this API (never saved
    as something else, never dropped)."""
    logs = [log.id for log in current_protocol(engine).protocol.logs]
    if not logs:
        return ""
    return (f"; log entries ({', '.join(logs)}) are not imported through the REDCap-compatible API: they are added, "
            "amended and removed with their audit trail through the log service (trialwright log add, or "
            "POST /api/v1/participants/{participant_id}/logs/{log_id}), so the import is refused and nothing is "
            "saved")  # fmt: skip


def _site(engine: Engine, actor: UserView, memo: dict[str, str], pid: str) -> str:
    if pid not in memo:
        try:
            memo[pid] = form_service.participant_schedule(engine, actor, pid).site
        except NotFound:
            raise RedcapError(f"{RECORD_ID}: {pid} is not a record you may read") from None
    return memo[pid]


def _visit_forms(engine: Engine, visit_id: str) -> list[str]:
    return list(current_protocol(engine).protocol.visit(visit_id).forms)


def _view(engine: Engine, actor: UserView, memo: dict[tuple[str, str, str], Any], pid: str, visit: str,
          form: str) -> Any:  # fmt: skip
    key = (pid, visit, form)
    if key not in memo:
        try:
            memo[key] = form_service.get_form(engine, actor, pid, visit, form)
        except NotFound:
            raise RedcapError(f"{RECORD_ID}: {pid} is not a record you may read") from None
    return memo[key]


def _state(engine: Engine, actor: UserView, memo: dict[tuple[str, str, str], Any], pid: str, visit: str,
           form: str) -> str:  # fmt: skip
    view = _view(engine, actor, memo, pid, visit, form)
    return "" if view is None else STATUS[view.state]


def _current(engine: Engine, actor: UserView, memo: dict[tuple[str, str, str], Any], pid: str, visit: str,
             form: str, field_id: str) -> str:  # fmt: skip
    view = _view(engine, actor, memo, pid, visit, form)
    protocol = current_protocol(engine).protocol
    return export_value(protocol.form(form).field(field_id), None if view is None else view.values.get(field_id))


def import_records(
    engine: Engine, actor: UserView, rows: Sequence[Mapping[str, Any]], *, overwrite: bool, reason: str | None
) -> ImportResult:
    """Save REDCap rows through the bulk form import, all or nothing; a refusal names the row, the field and the
    rule. A change of a value already saved needs ``reason`` (even on a draft)."""
    if actor.role not in form_service.DATA_ENTRY:
        raise PermissionError("role: only investigators, study coordinators and outcome assessors enter form data")
    book = project_dictionary(engine)
    form_rows, ids = _form_rows(engine, actor, book, rows, overwrite, reason)
    if not form_rows:
        return ImportResult(())
    try:
        report = form_service.import_forms(engine, actor, form_rows, all_or_nothing=True, reason_for_saved=True)
    except form_service.FormError as exc:
        raise RedcapError(str(exc)) from None
    if report.rejected:
        said = []
        for index, problems in report.rejected:
            item = form_rows[index - 1]
            where = f"record {item['participant']}, event {event_name(item['visit'])}"
            said += [f"{where}: {_redcap_named(book, item['form'], p)}" for p in problems]
        raise RedcapError("; ".join(said))
    return ImportResult(tuple(ids))


def _redcap_named(book: Dictionary, form_id: str, problem: str) -> str:
    """A form service problem ("pulse: ...") with the field said by its REDCap name ("vitals_pulse: ...")."""
    head, sep, rest = problem.partition(": ")
    ids = {f.field.id for f in book.by_form.get(form_id, ())}
    return f"{form_id}_{head}{sep}{rest}" if sep and head in ids else problem


def export_log(
    engine: Engine, actor: UserView, *, user: str | None = None, record: str | None = None,
    begin: dt.datetime | None = None, end: dt.datetime | None = None,
) -> list[dict[str, str]]:  # fmt: skip
    """The audit trail as REDCap's log, oldest first, read exactly as the audit page shows it to the caller."""
    try:
        entries: list[AuditEntry] = []
        before: int | None = None
        while True:
            page = audit_trail.read_trail(engine, actor, participant=record or None, by=user or None, limit=1000,
                                          before_seq=before)  # fmt: skip
            entries += page
            if len(page) < 1000:
                break
            before = page[-1].seq
    except audit_trail.AuditReadError as exc:
        raise PermissionError(str(exc)) from None
    out = []
    for e in reversed(entries):
        at = e.at if e.at.tzinfo is not None else e.at.replace(tzinfo=dt.UTC)
        if not within(at, begin, end):
            continue
        said = (("form", e.form), ("field", e.field), ("old", e.old_value), ("new", e.new_value),
                ("reason", e.reason), ("detail", e.detail))  # fmt: skip
        parts = [f"{k} = {v}" for k, v in said if v]
        out.append(
            {
                "timestamp": at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
                "username": e.actor,
                "action": e.action,
                "details": ", ".join(parts),
                "record": e.participant or "",
            }
        )
    return out


def export_users(engine: Engine, actor: UserView) -> list[dict[str, Any]]:
    """Every account for an administrator; anyone else reads only their own."""
    from trialwright.domain.roles import Role

    people = list_users(engine) if actor.role is Role.ADMINISTRATOR else [actor]
    return [
        {
            "username": u.username,
            "email": "",
            "firstname": "",
            "lastname": "",
            "full_name": u.full_name,
            "role": u.role.value,
            "data_access_group": u.sites[0].lower() if len(u.sites) == 1 else "",
            "sites": ",".join(u.sites),
            "expiration": "",
            "api_export": 1,
            "api_import": 1 if u.role in form_service.DATA_ENTRY else 0,
        }
        for u in people
    ]


def randomize_record(engine: Engine, actor: UserView, record: str, *, alt: bool) -> dict[str, str]:
    """Randomize a record through the randomization service (every check of the page); the answer carries the arm
    only when the caller may see it, and the preparation code (REDCap's alternate target) when asked."""
    if actor.role not in randomization_service.RANDOMIZERS:
        raise PermissionError("role: investigators and study coordinators randomize")
    try:
        done = randomization_service.randomize(engine, actor, record)
    except NotFound:
        raise RedcapError(f"record: {record} is not a record you may randomize") from None
    except randomization_service.RandomizationError as exc:
        raise RedcapError(str(exc)) from None
    answer = {"record": done.participant_id, "randomization_number": str(done.number)}
    if done.arm != MASKED:
        answer |= {"target_field": "randomization_arm", "target_value": done.arm}
    if alt:
        answer["target_alt_value"] = done.preparation_code
    return answer
