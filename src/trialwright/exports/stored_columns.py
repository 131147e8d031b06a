"""Form records' stored JSON read as Arrow columns, with no Python object per record or per value.

The tabular tables read every form record's stored values (``{field: {"value", "status", "reason", "limit",
"entered", "unit"}}``). ``read_stored`` hands the stored texts of a chunk of records to Arrow's JSON reader in one
call (newline-delimited, with a schema built from the form's fields: numbers float64, yes/no booleans, choices of a
multiple-choice field a list of strings, every other value a string), so each field arrives as one struct array.

Arrow gives ``json.loads``'s values only for some texts, so the reader refuses a chunk (returns None; the caller
parses it with ``services.stored_json.loads`` as before) unless every one of these holds:

- no backslash and no control character in any text (no escape, no string Arrow and Python could decode apart,
  no record spread over lines), and a line per record;
- Arrow takes the texts with that schema: a value of another JSON type than its field's (a number in a text field,
  ``true`` in a number field, NaN, a number too large for a double, a lone surrogate) and a repeated field or part
  of a stored value are refused by Arrow itself (an undeclared key inside a stored value, such as a derived value's
  ``components``, is skipped unread, as the tables skip it);
- no ``"status": null`` (Python reads a status that is null, Arrow one that is absent, which means ``value``);
- no number (a value, an entered value or a limit) that is NaN or infinite (Arrow reads ``NaN`` once a column is
  numeric; its bits are not held to Python's), -0.0 or of magnitude 2**53 or more: below that, a whole number and
  the float Arrow reads for it have the same text and the same float, but Arrow cannot tell ``-0`` (Python: the
  integer 0) from ``-0.0``, nor ``1E16`` from ``10000000000000000``;
- each record's keys exactly the fields Arrow read for it, in the order of the form's fields sorted (as
  ``json.dumps(sort_keys=True)`` writes them, which the long table's order of rows depends on): found from the bytes,
  where every string at brace depth one must be a key written ``"key": {`` (a field the form does not declare, a
  field holding ``null`` or anything but an object, is refused there).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

__all__ = ["StoredColumns", "read_stored", "stored_schema"]

#: Arrow's type of a stored value of each column kind (a multiple choice: ``list``).
_VALUE_TYPES: dict[str, pa.DataType] = {
    "number": pa.float64(),
    "yesno": pa.bool_(),
    "list": pa.list_(pa.string()),
    "text": pa.string(),
}
_NULL_STATUS = re.compile(rb'"status"\s*:\s*null')
_HUGE = 2.0**53


@dataclass(frozen=True, slots=True)
class StoredColumns:
    """A chunk's stored values: ``fields[field_id]`` is one struct array (null where a record has no value), and
    ``record`` / ``field`` give the long table's rows (record index, index into ``ids``), in each record's key
    order."""

    ids: tuple[str, ...]  # the form's field ids, sorted
    fields: Mapping[str, pa.StructArray]
    record: np.ndarray
    field: np.ndarray


def _stored_type(kind: str) -> pa.DataType:
    value = _VALUE_TYPES[kind]
    return pa.struct([
        pa.field("value", value), pa.field("status", pa.string()), pa.field("reason", pa.string()),
        pa.field("limit", pa.float64()), pa.field("entered", value), pa.field("unit", pa.string()),
    ])  # fmt: skip


def stored_schema(kinds: Mapping[str, str]) -> pa.Schema:
    """The schema of a form's stored values, its fields sorted; ``kinds``: field id -> ``number``, ``yesno``,
    ``list`` or ``text``."""
    return pa.schema([pa.field(f, _stored_type(k)) for f, k in sorted(kinds.items())])


def read_stored(texts: Sequence[str], schema: pa.Schema) -> StoredColumns | None:
    """The stored texts of a chunk of records as Arrow columns, or None when Arrow might read them otherwise than
    ``json.loads`` (see the module's docstring)."""
    count = len(texts)
    if count == 0:
        return None
    try:
        data = "\n".join(texts).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None
    b = np.frombuffer(data, dtype=np.uint8)
    controls = b < 32  # a control character (the lines' ends among them: one between two records, no other)
    if np.count_nonzero(controls) != count - 1 or np.count_nonzero(b == 10) != count - 1 or (b == 92).any():
        return None
    # Every record an object: a line of ``null`` with an explicit schema crashes Arrow's reader (the process, not
    # an exception), and anything else than an object is not a stored record.
    if b[0] != 123 or (b[1:][b[:-1] == 10] != 123).any():
        return None
    if b"null" in data and _NULL_STATUS.search(data) is not None:
        return None
    try:
        table = pj.read_json(
            io.BytesIO(data),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
            # "ignore": an undeclared key inside a stored value is skipped (a derived value's "components"), and so
            # is an undeclared field, which ``_key_order`` finds among the record's keys and refuses
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != count or table.schema.names != schema.names:
        return None
    ids = tuple(schema.names)
    fields: dict[str, pa.StructArray] = {}
    for name in ids:
        column = table.column(name).combine_chunks()
        if not isinstance(column, pa.StructArray) or not _plain_numbers(column):
            return None
        fields[name] = column
    order = _key_order(data, count, ids, fields)
    if order is None:
        return None
    return StoredColumns(ids, fields, *order)


def _plain_numbers(column: pa.StructArray) -> bool:
    """Whether every number of a stored value (value, entered, limit) is one whose float Arrow read has the text and
    float Python has: finite, not -0.0, magnitude below 2**53; and no list of choices holds a null (Arrow would
    join it into a null cell where the old path writes ``None`` among the codes)."""
    for part in ("value", "entered"):
        items = column.field(part)
        if pa.types.is_list(items.type) and pc.list_flatten(items).null_count:
            return False
    for part in ("value", "entered", "limit"):
        numbers = column.field(part)
        if not pa.types.is_floating(numbers.type) or numbers.null_count == len(numbers):
            continue
        values = numbers.to_numpy(zero_copy_only=False)  # a null reads as NaN: kept out by ``given``
        given = np.asarray(numbers.is_valid())
        with np.errstate(invalid="ignore"):
            odd = ~np.isfinite(values) | (np.abs(values) >= _HUGE) | ((values == 0.0) & np.signbit(values))
        if (odd & given).any():
            return False
    return True


def _key_order(
    data: bytes, count: int, ids: tuple[str, ...], fields: Mapping[str, pa.StructArray]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The long table's rows (record, field) in each record's key order, when every string at brace depth one (a
    record's own keys and values) is a key written ``"key": {`` and those keys are, record by record, the fields
    Arrow read, in sorted order; else None.

    The text has no backslash, so every quote opens or closes a string and a brace outside the strings is the
    object's own. Only the quotes, braces and line ends matter, so they are picked out first (one pass over the
    bytes); the strings' parity, the braces' depth and each one's record are running sums over those few."""
    valid = np.stack([np.asarray(fields[f].is_valid()) for f in ids]) if ids else np.zeros((0, count), bool)
    record, field = np.nonzero(valid.T)  # record by record, fields in sorted order: what the keys must be
    b = np.frombuffer(data, dtype=np.uint8)
    at = np.flatnonzero((b == 34) | (b == 123) | (b == 125) | (b == 10))  # quotes, braces, line ends
    kind = b[at]
    quote = kind == 34
    quotes = np.cumsum(quote, dtype=np.int64)  # quotes up to each mark
    if len(at) == 0 or quotes[-1] % 2:
        return None
    outside = (quotes & 1) == 0  # a brace after an even number of quotes is outside the strings
    step = np.zeros(len(at), dtype=np.int64)
    step[outside & (kind == 123)] = 1
    step[outside & (kind == 125)] = -1
    depth = np.cumsum(step)
    q = np.flatnonzero(quote)
    opens, closes = q[0::2], q[1::2]
    top = depth[opens] == 1
    stops = at[closes[top]]
    if len(stops) != len(record) or (len(stops) and stops[-1] + 3 >= len(b)):
        return None
    if not ((b[stops + 1] == 58) & (b[stops + 2] == 32) & (b[stops + 3] == 123)).all():  # '": {'
        return None
    starts = at[opens[top]] + 1
    lines = np.cumsum(kind == 10, dtype=np.int64)  # the record of each mark: the line ends before it
    if not np.array_equal(lines[opens[top]], record):
        return None
    names = [f.encode("utf-8") for f in ids]
    lengths = np.fromiter(map(len, names), dtype=np.int64, count=len(names))[field]
    if not np.array_equal(stops - starts, lengths):
        return None
    if len(starts):  # the keys' bytes against the names' bytes, gathered without a Python step per key
        offsets = np.cumsum(lengths) - lengths
        steps = np.arange(int(lengths.sum())) - np.repeat(offsets, lengths)
        name_bytes = np.frombuffer(b"".join(names), dtype=np.uint8)
        name_starts = np.concatenate([[0], np.cumsum([len(n) for n in names])[:-1]]).astype(np.int64)
        written = b[np.repeat(starts, lengths) + steps]
        if not np.array_equal(written, name_bytes[np.repeat(name_starts[field], lengths) + steps]):
            return None
    return record.astype(np.int64), field.astype(np.int64)
