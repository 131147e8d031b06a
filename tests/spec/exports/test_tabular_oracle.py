"""The CSV export's wide and long tables against an independent reading of the stored rows (issue 23, the read path).

The specs beside this one compare two code paths of the export with each other; this one computes the tables
itself, as docs/exports.md and the export's README.txt describe them, from nothing but the database's rows (plain
SQL, ``json.loads``) and the protocol's declared fields, and compares every cell with the export's CSV. A simulated
trial, exported blinded (the data manager) and with arms (the unblinded statistician), on SQLite and PostgreSQL.

| table               | one row per                                   | columns                                      |
|---------------------|-----------------------------------------------|----------------------------------------------|
| ``forms/<form>.csv``| form record: by participant, the protocol's   | participant_id, site, visit_id, visit_date,  |
|                     | visit order (unscheduled visits after, by id),| form_state; per field its value, ``_flag``   |
|                     | then visit and form record as stored          | (fields with limits), ``_status`` and        |
|                     |                                               | ``_reason`` (fields not done or not          |
|                     |                                               | applicable in some record)                   |
| ``values_long.csv`` | stored value: form by form in protocol order, | participant_id, site, visit_id, visit_date,  |
|                     | records as above, keys in their stored order  | form_id, field_id, value, value_num, unit,   |
|                     |                                               | status, reason, limit, entered, entered_unit |

Cells: numbers in full precision (Python's shortest repr, without a trailing ``.0``), dates ``YYYY-MM-DD``,
date-times in UTC as ``isoformat`` writes them, yes/no ``1``/``0``, multiple choices joined by ``|``, a censored
value as its limit with ``<LLOQ``/``>ULOQ`` in ``_flag`` (long: the value empty, the limit in ``limit``), a value not
done or not applicable empty with its status and reason, a text cell that would start a spreadsheet formula with a
leading apostrophe; an empty cell for nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.trialfixtures import FIRST_PROTOCOL, Trial, first_protocol, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.tabular import CsvExporter
from trialwright.protocol.forms import FieldType, FormDef
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate

_CENSORED = {"below_lloq": "<LLOQ", "above_uloq": ">ULOQ"}
_MISSING = ("not_done", "not_applicable")
_FORMULA = re.compile(r"[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 30, seed=11)
    _store_awkward_values(t)
    yield t
    t.engine.dispose()


#: Stored values the simulator does not make, written into the first records of some forms (field -> stored JSON).
_AWKWARD: dict[str, dict[str, Any]] = {
    "labs": {
        "il6": {"status": "below_lloq", "limit": 1.5, "value": None, "entered": "<1.5", "unit": "pg/mL"},
        "crp": {"status": "above_uloq", "limit": 300, "value": None, "entered": ">300"},
        "tnf_alpha": {"status": "not_done", "reason": 'sample lost, "haemolysed"'},
        "tnf_alpha_kit": {"status": "value", "value": '=HYPERLINK("x")'},
        "cd3_pct": {"status": "value", "value": 1e-07, "entered": 1e-07},
        "cd4_abs": {"status": "value", "value": 1.5e17, "entered": 150000000000000000},
        "sampled_at": {"status": "value", "value": "2021-05-13T17:19:02.5+04:30", "entered": "2021-05-13T17:19+04:30"},
        "retired_assay": {"status": "value", "value": "-x", "entered": "-x", "unit": "U/L"},
    },
    "vitals": {
        "resp_rate": {"status": "not_applicable", "reason": "-on ECMO"},
        "on_oxygen": {"status": "value", "value": True},
        "temperature": {"status": "value", "value": -0.0, "entered": 0, "unit": "°C"},
    },
    "soc_therapy": {"details": {"status": "value", "value": ["-3.5", "b,c", 4]}},
    "performance": {"status": {"status": "not_done", "reason": "@bedside\r\nline two"}},
}


def _store_awkward_values(trial: Trial) -> None:
    with trial.engine.begin() as c:
        for form_id, values in _AWKWARD.items():
            for nth in (0, 3):
                row = c.execute(
                    text("SELECT id, form_values FROM form_records WHERE form_id = :f ORDER BY id"), {"f": form_id}
                ).all()[nth]
                stored = {**json.loads(row.form_values), **values}
                c.execute(text("UPDATE form_records SET form_values = :v WHERE id = :id"),
                          {"v": json.dumps(stored), "id": row.id})  # fmt: skip


@pytest.fixture(scope="module", params=["blinded", "with arms"])
def exported(request: pytest.FixtureRequest, trial: Trial, tmp_path_factory: pytest.TempPathFactory) -> Path:
    role = Role.DATA_MANAGER if request.param == "blinded" else Role.UNBLINDED_STATISTICIAN
    assert not role.site_scoped  # every site's records: the oracle reads them all
    source = export_source(trial.engine, who(trial, role), with_arms=request.param == "with arms")
    folder = tmp_path_factory.mktemp("csv")
    CsvExporter(batch_rows=64).write(source, folder)
    return folder


# --- the oracle: the stored rows read with plain SQL and json.loads --------------------------------------------


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    text_ = repr(float(value))
    return text_[:-2] if text_.endswith(".0") else text_


def _textual(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    return str(value)


def _cell(text_: str) -> str:
    """A text cell as the CSV writes it: a would-be formula gets an apostrophe (not a plain number)."""
    if text_ and _FORMULA.match(text_) and not _PLAIN_NUMBER.fullmatch(text_):
        return "'" + text_
    return text_


def _typed(kind: FieldType, value: Any) -> str:
    """A stored value in the wide table, by its field's type."""
    try:
        if kind in (FieldType.INTEGER, FieldType.DECIMAL):
            return _number(value)
        if kind is FieldType.DATE:
            return dt.date.fromisoformat(str(value)[:10]).isoformat()
        if kind is FieldType.DATETIME:
            moment = dt.datetime.fromisoformat(str(value))
            moment = moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
            return moment.isoformat()
        if kind is FieldType.BOOLEAN:
            return "1" if value else "0"
    except ValueError:
        return ""
    return _cell("|".join(str(v) for v in value) if isinstance(value, list) else str(value))


def _records(trial: Trial, form_id: str, visit_order: dict[str, int]) -> list[tuple[Any, ...]]:
    """(participant, site, visit, visit date, form, state, values) of one form's records, in the documented order."""
    with trial.engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT v.participant_id, p.site, v.visit_id, v.visit_date, f.form_id, f.state, f.form_values, "
                "v.id, f.id FROM form_records f JOIN visit_records v ON v.id = f.visit_record_id "
                "JOIN participants p ON p.participant_id = v.participant_id WHERE f.form_id = :form"
            ),
            {"form": form_id},
        ).all()
    last = len(visit_order)
    rows.sort(key=lambda r: (r[0], visit_order.get(r[2], last), r[2], r[7], r[8]))
    return [(*r[:6], json.loads(r[6])) for r in rows]


def _day(value: Any) -> str:
    return "" if value is None else (value if isinstance(value, str) else value.isoformat())


def _wide(form: FormDef, records: list[tuple[Any, ...]]) -> list[list[str]]:
    missing = {k for r in records for k, s in r[6].items() if isinstance(s, dict) and s.get("status") in _MISSING}
    header = ["participant_id", "site", "visit_id", "visit_date", "form_state"]
    for f in form.fields:
        header.append(f.id)
        if f.quantification_limits:
            header.append(f"{f.id}_flag")
        if f.id in missing:
            header += [f"{f.id}_status", f"{f.id}_reason"]
    table = [header]
    for pid, site, visit, on, _, state, values in records:
        row = [pid, site or "", visit, _day(on), state]
        for f in form.fields:
            stored = values.get(f.id)
            stored = stored if isinstance(stored, dict) else {}
            status = stored.get("status", "value")
            value = stored.get("value")
            if status in _CENSORED:
                row.append(_number(stored.get("limit")))
            elif value is None or status in _MISSING:
                row.append("")
            else:
                row.append(_typed(f.type, value))
            if f.quantification_limits:
                row.append(_CENSORED.get(status, ""))
            if f.id in missing:
                row.append(status if status in _MISSING else "")
                row.append(_cell(stored.get("reason") or "") if status in _MISSING else "")
        table.append(row)
    return table


_LONG_HEADER = ["participant_id", "site", "visit_id", "visit_date", "form_id", "field_id", "value", "value_num",
                "unit", "status", "reason", "limit", "entered", "entered_unit"]  # fmt: skip


def _long(form: FormDef, records: list[tuple[Any, ...]]) -> list[list[str]]:
    units = {f.id: f.unit for f in form.fields}
    rows = []
    for pid, site, visit, on, form_id, _, values in records:
        for key, stored in values.items():
            if not isinstance(stored, dict):
                continue
            status = stored.get("status", "value")
            value = None if status in _CENSORED else stored.get("value")
            entered = stored.get("entered")
            rows.append([
                pid, site or "", visit, _day(on), form_id, _cell(key),
                "" if value is None else _cell(_textual(value)), "" if value is None else _number(value),
                _cell(units.get(key) or ""), status, _cell(stored.get("reason") or ""), _number(stored.get("limit")),
                "" if entered is None else _cell(_textual(entered)), _cell(stored.get("unit") or ""),
            ])  # fmt: skip
    return rows


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _differences(expected: list[list[str]], written: list[list[str]]) -> list[str]:
    out = [f"rows: expected {len(expected)}, written {len(written)}"] if len(expected) != len(written) else []
    for i, (e, w) in enumerate(zip(expected, written, strict=False)):
        if e != w:
            out.append(f"row {i}: " + "; ".join(
                f"{expected[0][j] if j < len(expected[0]) else j}: expected {a!r}, written {b!r}"
                for j, (a, b) in enumerate(zip(e, w, strict=False)) if a != b
            ) + ("" if len(e) == len(w) else f" (cells: expected {len(e)}, written {len(w)})"))  # fmt: skip
    return out[:20]


# --- the specification -----------------------------------------------------------------------------------------


def test_every_cell_of_the_wide_and_long_tables_is_the_stored_value_as_documented(trial: Trial, exported: Path) -> None:
    protocol = first_protocol().protocol
    order = {v.id: i for i, v in enumerate(protocol.visits)}
    long_expected = [_LONG_HEADER]
    seen: dict[str, int] = {}
    for form in protocol.forms:
        records = _records(trial, form.id, order)
        wide = _wide(form, records)
        assert _differences(wide, _read(exported / "forms" / f"{form.id}.csv")) == [], form.id
        long_expected += _long(form, records)
        for r in records:
            for s in r[6].values():
                seen[s.get("status", "value")] = seen.get(s.get("status", "value"), 0) + 1
    assert _differences(long_expected, _read(exported / "values_long.csv")) == []
    # The trial holds what the layout distinguishes: many values, derived ones, censored, not done, not applicable.
    assert len(long_expected) > 1000, len(long_expected)
    assert {"value", "derived", "below_lloq", "above_uloq", "not_done", "not_applicable"} <= seen.keys(), seen
