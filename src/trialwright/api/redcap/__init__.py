"""The REDCap-compatible API at ``/redcap/api/``: one form-encoded POST, ``token`` and ``content`` choosing the
answer, so REDCap clients (PyCap, REDCapR) work unchanged (docs/redcap.md).

Thin: the parameters are read here, the answer comes from ``services/redcap.py`` and the services it calls, which
hold the roles, sites, validation, reasons for change, audit and masking of the web pages and the REST API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from trialwright.api.redcap.formats import Params, answer, error, rows_of
from trialwright.domain.redcap import (
    ARM_NUM,
    METADATA_COLUMNS,
    RECORD_ID,
    RedcapError,
    event_mapping,
    project_info,
)
from trialwright.services import redcap as svc
from trialwright.services.tokens import resolve_token
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.web.deps import EngineDep, LimitsDep, client_address

__all__ = ["REDCAP_VERSION", "router"]

router = APIRouter(tags=["redcap"])

#: The REDCap version whose API this endpoint answers as (the randomization API came with REDCap 14).
REDCAP_VERSION = "14.7.0"


async def _params(request: Request) -> Params:
    form = await request.form()
    return Params([(k, v) for k, v in form.multi_items() if isinstance(v, str)])


ParamsDep = Annotated[Params, Depends(_params)]


def _user(request: Request, engine: Any, limits: Any, params: Params) -> UserView | None:
    """The token's user (an address past its limit of refused tokens is refused before its token is read)."""
    address = client_address(request)
    limits.token_refusals.check(("address", address))
    token = params.get("token")
    user = resolve_token(engine, token) if token else None
    if user is None:
        limits.token_refusals.hit(("address", address))
        limits.refusal_tally.refused(engine, address, request.url.path, token="present" if token else "missing")
    return user


@router.post("/redcap/api/", include_in_schema=False)
def redcap_api(request: Request, params: ParamsDep, engine: EngineDep, limits: LimitsDep) -> Response:
    """Every REDCap API call: ``content`` (and ``action``) say which; errors answer 400 (the request) or 403 (the
    role), with REDCap's error body."""
    fmt = params.error_format
    user = _user(request, engine, limits, params)
    if user is None:
        return error("You do not have permissions to use the API: a valid API token is required", fmt, 401)
    try:
        return _dispatch(engine, user, params)
    except RedcapError as exc:
        return error(str(exc), fmt, 400)
    except PermissionError as exc:
        svc.refused(engine, user, request.url.path, params.get("content"))
        return error(str(exc), fmt, 403)


def _dispatch(engine: Any, user: UserView, p: Params) -> Response:
    content = p.get("content")
    handler = _HANDLERS.get(content)
    if handler is None:
        raise RedcapError(f"content: {content or 'nothing'} is not supported (supported: {', '.join(_HANDLERS)})")
    return handler(engine, user, p)


def _version(engine: Any, user: UserView, p: Params) -> Response:
    return Response(REDCAP_VERSION, media_type="text/plain")


def _project(engine: Any, user: UserView, p: Params) -> Response:
    return answer(project_info(current_protocol(engine).protocol), p.format)


def _metadata(engine: Any, user: UserView, p: Params) -> Response:
    book = svc.project_dictionary(engine)
    fields, forms = set(p.array("fields")), set(p.array("forms"))
    unknown = sorted(fields - {r["field_name"] for r in book.rows}) + sorted(forms - set(book.by_form))
    if unknown:
        raise RedcapError(f"fields, forms: {', '.join(unknown)} are not fields or instruments of this project")
    rows = [r for r in book.rows if (not fields and not forms) or r["field_name"] in fields or r["form_name"] in forms]
    return answer(rows, p.format, METADATA_COLUMNS)


def _instrument(engine: Any, user: UserView, p: Params) -> Response:
    protocol = current_protocol(engine).protocol
    book = svc.project_dictionary(engine)
    rows = [{"instrument_name": f, "instrument_label": protocol.form(f).name} for f in book.by_form]
    return answer(rows, p.format, ["instrument_name", "instrument_label"])


def _arms_param(p: Params) -> None:
    arms = p.array("arms")
    if any(a != str(ARM_NUM) for a in arms):
        raise RedcapError(f"arms: this project has one event arm, {ARM_NUM}")


def _event(engine: Any, user: UserView, p: Params) -> Response:
    _arms_param(p)
    protocol = current_protocol(engine).protocol
    rows = [
        {
            "event_name": v.name,
            "arm_num": ARM_NUM,
            "unique_event_name": f"{v.id}_arm_{ARM_NUM}",
            "custom_event_label": "",
            "event_id": n,
            "days_offset": v.day,
            "offset_min": v.window.before,
            "offset_max": v.window.after,
        }
        for n, v in enumerate(protocol.visits, start=1)
    ]
    return answer(rows, p.format)


def _mapping(engine: Any, user: UserView, p: Params) -> Response:
    _arms_param(p)
    protocol = current_protocol(engine).protocol
    return answer(event_mapping(protocol), p.format, ["arm_num", "unique_event_name", "form"])


def _arm(engine: Any, user: UserView, p: Params) -> Response:
    # REDCap's arms are event arms: one, for every caller. Randomization arms are never among them.
    _arms_param(p)
    return answer([{"arm_num": ARM_NUM, "name": f"Arm {ARM_NUM}"}], p.format)


def _field_names(engine: Any, user: UserView, p: Params) -> Response:
    book = svc.project_dictionary(engine)
    only = p.get("field")
    if only and only != RECORD_ID and only not in book.fields:
        raise RedcapError(f"field: {only} is not a field of this project")
    rows = [] if only and only != RECORD_ID else [
        {"original_field_name": RECORD_ID, "choice_value": "", "export_field_name": RECORD_ID}
    ]  # fmt: skip
    for name, f in book.fields.items():
        if only and name != only:
            continue
        rows += [{"original_field_name": name, "choice_value": code, "export_field_name": column}
                 for column, code in book.export_names(f)]  # fmt: skip
    return answer(rows, p.format, ["original_field_name", "choice_value", "export_field_name"])


def _user_content(engine: Any, user: UserView, p: Params) -> Response:
    if p.get("data"):
        raise RedcapError("content: user: users are managed in trialwright (users page, `trialwright user`), not here")
    return answer(svc.export_users(engine, user), p.format)


def _log(engine: Any, user: UserView, p: Params) -> Response:
    for key in ("logtype", "dag"):
        if p.get(key):
            raise RedcapError(f"{key}: filtering the log by {key} is not supported; filter by user, record or time")
    rows = svc.export_log(engine, user, user=p.get("user") or None, record=p.get("record") or None,
                          begin=p.moment("beginTime"), end=p.moment("endTime"))  # fmt: skip
    return answer(rows, p.format, ["timestamp", "username", "action", "details", "record"])


_UNSUPPORTED_TRUE = ("exportBlankForGrayFormStatus", "forceAutoNumber")


def _record(engine: Any, user: UserView, p: Params) -> Response:
    actions = ("export", "import", "randomize", "delete")
    action = p.choice("action", actions, "import" if "data" in p.single else "export")
    if action == "randomize":
        return _randomize(engine, user, p)
    if action == "delete":
        raise RedcapError("action: records are never deleted; withdraw a participant in trialwright")
    for key in _UNSUPPORTED_TRUE:
        if p.flag(key):
            raise RedcapError(f"{key}: true is not supported")
    if p.get("csvDelimiter") not in {"", ","} or p.get("decimalCharacter") not in {"", "."}:
        raise RedcapError("csvDelimiter, decimalCharacter: only the comma and the full stop")
    eav = p.choice("type", ("flat", "eav"), "flat") == "eav"
    if action == "import":
        if p.get("filterLogic").strip():
            raise RedcapError("filterLogic: filters an export, not an import")
        if p.flag("exportCheckboxLabel"):
            raise RedcapError("exportCheckboxLabel: writes an export, not an import")
        return _import(engine, user, p, eav)
    p.choice("rawOrLabelHeaders", ("raw",), "raw")
    labels = p.choice("rawOrLabel", ("raw", "label"), "raw") == "label"
    checkbox_labels = p.flag("exportCheckboxLabel")
    if checkbox_labels and (eav or not labels):
        raise RedcapError("exportCheckboxLabel: true applies to rawOrLabel=label with type=flat only")
    query = svc.ExportQuery(
        records=p.array("records"), fields=p.array("fields"), forms=p.array("forms"), events=p.array("events"),
        eav=eav, labels=labels, checkbox_labels=checkbox_labels,
        groups=p.flag("exportDataAccessGroups"), begin=p.moment("dateRangeBegin"), end=p.moment("dateRangeEnd"),
        logic=p.get("filterLogic"),
    )  # fmt: skip
    rows = svc.export_records(engine, user, query)
    columns = ["record", "redcap_event_name", "field_name", "value"] if eav else None
    return answer(rows, p.format, columns)


def _import(engine: Any, user: UserView, p: Params, eav: bool) -> Response:
    p.choice("dateFormat", ("YMD",), "YMD")
    overwrite = p.choice("overwriteBehavior", ("normal", "overwrite"), "normal") == "overwrite"
    returned = p.choice("returnContent", ("count", "ids", "nothing"), "count")
    rows = rows_of(p.single.get("data", ""), p.choice("format", ("json", "csv", "xml"), "xml"))
    if eav:
        rows = _flat(rows)
    done = svc.import_records(engine, user, rows, overwrite=overwrite, reason=p.single.get("reason") or None)
    fmt = p.error_format
    if returned == "ids":
        return answer([{"id": i} for i in done.ids], fmt, ["id"]) if fmt != "json" else answer(list(done.ids), fmt)
    if returned == "nothing":
        return Response("", media_type="text/plain")
    return answer({"count": len(done.ids)}, fmt)


def _flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """EAV rows (record, redcap_event_name, field_name, value) as flat rows."""
    flat: dict[tuple[str, str], dict[str, Any]] = {}
    for n, r in enumerate(rows, start=1):
        if not {"record", "field_name", "value"} <= set(r):
            raise RedcapError(f"data: eav row {n} needs record, redcap_event_name, field_name and value")
        key = (str(r["record"]), str(r.get("redcap_event_name", "")))
        flat.setdefault(key, {RECORD_ID: key[0], "redcap_event_name": key[1]})[str(r["field_name"])] = r["value"]
    return list(flat.values())


def _randomize(engine: Any, user: UserView, p: Params) -> Response:
    record = p.get("record")
    if not record:
        raise RedcapError("record: name the record to randomize")
    if p.get("randomization_id") not in {"", "1"}:
        raise RedcapError("randomization_id: this project has one randomization, id 1")
    done = svc.randomize_record(engine, user, record, alt=p.flag("returnAlt"))
    return answer(done, p.error_format)


_HANDLERS = {
    "version": _version,
    "project": _project,
    "metadata": _metadata,
    "instrument": _instrument,
    "event": _event,
    "formEventMapping": _mapping,
    "arm": _arm,
    "exportFieldNames": _field_names,
    "user": _user_content,
    "log": _log,
    "record": _record,
}
