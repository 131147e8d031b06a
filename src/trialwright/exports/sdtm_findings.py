"""SDTM findings (LB, VS): one record per test result with its study day (--DY), baseline flag (--LOBXFL),
sequence and, where the protocol declares a normal range, its reference range and indicator (LBNRIND). Used by
``trialwright.exports.sdtm``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trialwright.domain.numerals import typed_number
from trialwright.exports.base import StoredJson
from trialwright.exports.tabular import analysis_value, value_text
from trialwright.protocol.base import Range
from trialwright.protocol.codes import SdtmTest
from trialwright.protocol.forms import FieldType, FormDef, FormField

FINDINGS = ("LB", "VS")
AT_COLUMN = "_AT"

__all__ = [
    "AT_COLUMN",
    "FINDINGS",
    "SubjectReference",
    "baseline_flags",
    "finding_record",
    "moment_field",
    "normal_range_columns",
    "sequence_numbers",
    "study_days",
]


@dataclass(frozen=True, slots=True)
class SubjectReference:
    """A subject's reference dates: RFSTDTC's local date (for --DY) and the first exposure (for --LOBXFL)."""

    start: dt.date | None
    exposure: dt.datetime | None  # UTC
    exposure_day: dt.date | None  # its local date


def study_days(
    dtc: pa.ChunkedArray, subjects: pa.ChunkedArray, reference: Mapping[str, SubjectReference]
) -> np.ndarray:
    """--DY: the --DTC's date minus RFSTDTC's date, plus one on or after it (no day 0; SDTMIG 3.4 4.4.4); empty
    when either date is incomplete or missing. Both dates are the site's local calendar dates."""
    if len(dtc) == 0:
        return np.zeros(0, dtype="float64")
    text = pc.utf8_slice_codeunits(pc.fill_null(dtc, ""), 0, 10)
    days = pc.cast(pc.cast(pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32()),
                   pa.int32()).to_numpy(zero_copy_only=False).astype("float64")  # fmt: skip
    coded = subjects.combine_chunks().dictionary_encode()
    epoch = dt.date(1970, 1, 1)
    starts = np.array([(r.start - epoch).days if (r := reference.get(u)) and r.start else np.nan
                       for u in coded.dictionary.to_pylist()], dtype="float64")  # fmt: skip
    start = starts[coded.indices.to_numpy(zero_copy_only=False)] if len(starts) else np.full(len(dtc), np.nan)
    diff = days - start
    days_out: np.ndarray = np.where(diff >= 0, diff + 1, diff)
    return days_out


def baseline_flags(
    data: pa.Table, prefix: str, reference: Mapping[str, SubjectReference], notes: list[str]
) -> pa.Array:
    """--LOBXFL (SDTMIG 3.4): Y on each subject's last non-missing result of a test taken before the first
    exposure (RFXSTDTC). A result known only by its date, on the day of the first exposure or on a day with
    another result of the test, cannot be ordered: that test gets no flag for that subject, and the notes say so."""
    subjects = data.column("USUBJID").to_pylist()
    tests = data.column(f"{prefix}TESTCD").to_pylist()
    results = data.column(f"{prefix}ORRES").to_pylist()
    taken = data.column(AT_COLUMN).to_pylist()
    candidates: dict[tuple[str, str], list[tuple[str, int]]] = {}
    unordered: set[tuple[str, str]] = set()
    for i, (subject, test, result, at) in enumerate(zip(subjects, tests, results, taken, strict=True)):
        ref = reference.get(subject)
        if not result or not at or ref is None or ref.exposure is None or ref.exposure_day is None:
            continue
        if "T" in at:
            before = dt.datetime.fromisoformat(at) < ref.exposure
        else:
            day = dt.date.fromisoformat(at)
            if day == ref.exposure_day:
                unordered.add((subject, test))
            before = day < ref.exposure_day
        if before:
            candidates.setdefault((subject, test), []).append((at, i))
    flags: list[str | None] = [None] * len(subjects)
    for key, found in candidates.items():
        last_day = max(at[:10] for at, _ in found)
        on_last = [(at, i) for at, i in found if at[:10] == last_day]
        if key in unordered or (len(on_last) > 1 and any("T" not in at for at, _ in on_last)):
            unordered.add(key)
            continue
        flags[max(on_last)[1]] = "Y"
    if unordered:
        notes.append(f"{prefix}LOBXFL: not set for {len(unordered)} subject/test pair(s) whose last result before "
                     "the first exposure cannot be told (a result recorded by its date only, on the day of the "
                     "first exposure or on a day with another result of the test).")  # fmt: skip
    return pa.array(flags, pa.string())


def sequence_numbers(subjects: pa.ChunkedArray) -> np.ndarray:
    """1, 2, 3, ... within each run of equal USUBJID (the rows sorted by USUBJID), as float64."""
    rows = len(subjects)
    if rows == 0:
        return np.zeros(0, dtype="float64")
    changed = pc.not_equal(subjects.slice(1), subjects.slice(0, rows - 1)).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.concatenate(([True], changed)))
    first = np.repeat(starts, np.diff(np.append(starts, rows)))
    return (np.arange(rows) - first + 1).astype("float64")


def moment_field(form: FormDef) -> FormField | None:
    return next((f for f in form.fields if f.type is FieldType.DATETIME and f.derived is None), None)


_PLAIN_NUMBER = re.compile(r"^-?\d+(\.(\d+))?$")


def with_decimals(text: str | None, decimals: int | None) -> str | None:
    """A number's text written to the places the protocol declares for it (``decimals: 1``: ``4`` -> ``4.0``): the
    precision it was collected at (SDTMIG 3.4 --ORRES, "as originally received or collected"), which a stored
    float does not keep (4.0 reads back as 4). Only zeros are added: a number with more places (stored before the
    protocol declared its decimals) is written as it is, never rounded; text that is not a plain decimal number
    is left alone."""
    if text is None or decimals is None or not (match := _PLAIN_NUMBER.match(text)):
        return text
    places = len(match.group(2) or "")
    if places >= decimals:
        return text
    return f"{text}{'' if places else '.'}{'0' * (decimals - places)}"


def as_collected(f: FormField, entered: Any, unit: str | None, *, places: bool = True) -> str | None:
    """--ORRES: the number as typed, in the unit typed, its digits Latin (``۸٫۳`` typed on a Persian page is
    ``8.3``: the script of the digits is how it was shown, not what was collected; SAS transport is ASCII), with
    the field's declared decimals when typed in the field's own unit (the protocol's ``decimals`` are that unit's;
    a number typed in an alternative unit has no declared places and is written as typed)."""
    typed = isinstance(entered, str) and f.type in {FieldType.INTEGER, FieldType.DECIMAL}
    text = typed_number(entered) if typed else value_text(entered)
    return with_decimals(text, _places(f)) if places and unit in {None, f.unit} else text


def standard_text(f: FormField, value: Any) -> str | None:
    """--STRESC: the stored (canonical) number in the standard unit with the field's declared decimals: typed in
    that unit it is the number collected; converted from another unit the store rounds it to those places, so they
    are its precision. A field without ``decimals`` has the converted number as stored, no digits added."""
    return with_decimals(value_text(value), _places(f))


def _places(f: FormField) -> int | None:
    return f.decimals if f.type is FieldType.DECIMAL else None


def finding_record(prefix: str, test: SdtmTest, f: FormField, stored: StoredJson) -> dict[str, Any]:
    """One stored value as an LB or VS row (without the record's identifiers, visit and date)."""
    status = stored.get("status", "value")
    row: dict[str, Any] = {f"{prefix}TESTCD": test.testcd, f"{prefix}TEST": test.test, f"{prefix}CAT": test.category}
    if prefix == "LB":
        row["LBSPEC"] = test.specimen
    unit = test.units.get(f.unit, f.unit) if f.unit else None
    entered_unit = stored.get("unit") or f.unit
    if status in {"not_done", "not_applicable"}:
        row[f"{prefix}STAT"], row[f"{prefix}REASND"] = "NOT DONE", stored.get("reason")
        return row
    if status in {"below_lloq", "above_uloq"}:
        sign, limit = ("<" if status == "below_lloq" else ">"), stored.get("limit")
        entered = stored.get("entered", limit)
        # A limit of quantification is the assay's, not a result at the field's precision: written as given.
        row[f"{prefix}ORRES"] = f"{sign}{as_collected(f, entered, None, places=False)}"
        row[f"{prefix}STRESC"] = f"{sign}{value_text(limit)}"
        if prefix == "LB":
            row["LBLLOQ" if sign == "<" else "LBULOQ"] = limit
    else:
        value = stored.get("value")
        row[f"{prefix}ORRES"] = as_collected(f, stored.get("entered", value), entered_unit)
        row[f"{prefix}STRESC"] = standard_text(f, value)
        number = analysis_value(f, stored)
        row[f"{prefix}STRESN"] = number if isinstance(number, float) else None
    row[f"{prefix}ORRESU"] = test.units.get(entered_unit, entered_unit) if entered_unit else None
    row[f"{prefix}STRESU"] = unit
    if prefix == "LB" and f.normal_range is not None:
        row.update(normal_range_columns(f, f.normal_range, status, stored, entered_unit))
    return row


def normal_range_columns(
    f: FormField, normal: Range, status: str, stored: StoredJson, entered_unit: str | None
) -> dict[str, Any]:
    """LB's reference range: in standard units as the protocol declares it, in the unit the result was entered in
    (through the field's declared conversion: canonical = entered x factor + offset), and LBNRIND. A censored
    result is LOW or HIGH only when its limit says so (<1.5 with a lower limit of 2 is LOW; <1.5 with a lower
    limit of 1 cannot be told, so LBNRIND is empty)."""
    conversion = next((u for u in f.alternative_units if u.unit == entered_unit), None)

    def original(limit: float | None) -> str | None:
        if limit is None:
            return None
        return value_text(limit if conversion is None else (limit - conversion.offset) / conversion.factor)

    row: dict[str, Any] = {"LBSTNRLO": normal.min, "LBSTNRHI": normal.max,
                           "LBORNRLO": original(normal.min), "LBORNRHI": original(normal.max)}  # fmt: skip
    low, high = normal.min, normal.max
    if status == "below_lloq" and isinstance(limit := stored.get("limit"), int | float):
        row["LBNRIND"] = "LOW" if low is not None and limit <= low else None
    elif status == "above_uloq" and isinstance(limit := stored.get("limit"), int | float):
        row["LBNRIND"] = "HIGH" if high is not None and limit >= high else None
    elif isinstance(number := analysis_value(f, stored), float):
        row["LBNRIND"] = ("LOW" if low is not None and number < low else
                          "HIGH" if high is not None and number > high else "NORMAL")  # fmt: skip
    return row
