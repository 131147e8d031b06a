"""One Dataset-JSON dataset written as it comes: its columns (``Variable``) and its writer (``DatasetJsonWriter``).

Rows go to a spool (one JSON array per line, UTF-8) as they come, a row at a time (``add``: each value by
``cell``, the line by ``json.dumps``) or a batch of columns at a time (``extend``: each column's JSON by
``column_json`` or ``arrow_json``, the lines joined by Arrow); both write the same bytes. ``close`` writes the
metadata (which needs the record count and lengths) and copies the spool after it into ``<stem>.json`` (the lines
joined by commas) and ``<stem>.ndjson`` (the lines as they are), a block at a time: a dataset of any size is written
in constant memory.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from trialwright.exports.dataset_json_cells import DataType, arrow_json, cell, column_json

__all__ = ["DatasetJsonWriter", "Variable"]


@dataclass(frozen=True, slots=True)
class Variable:
    """One column of a dataset as Dataset-JSON describes it (``length`` is filled in from the values written)."""

    item_oid: str
    name: str
    label: str
    data_type: DataType
    key_sequence: int | None = None
    length: int | None = None

    def metadata(self) -> dict[str, Any]:
        """The column object, attributes in the specification's order."""
        column: dict[str, Any] = {"itemOID": self.item_oid, "name": self.name, "label": self.label,
                                  "dataType": self.data_type}  # fmt: skip
        if self.data_type == "decimal":
            column["targetDataType"] = "decimal"
        if self.length is not None:
            column["length"] = self.length
        if self.key_sequence is not None:
            column["keySequence"] = self.key_sequence
        return column


class DatasetJsonWriter:
    """One dataset: rows added to a spool (one JSON array per line, UTF-8), a row at a time (``add``) or a batch of
    columns at a time (``extend``), then ``close`` writes ``<stem>.json`` and ``<stem>.ndjson`` with the metadata
    (record count, lengths) and the rows."""

    def __init__(self, stem: Path, header: Mapping[str, Any], variables: Sequence[Variable]) -> None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        self.stem, self.header, self.variables = stem, dict(header), list(variables)
        self.rows = 0
        self._lengths = [0] * len(self.variables)
        self._measured = [v.data_type in {"string", "decimal"} for v in self.variables]
        # Closed by ``close`` (an anonymous file: nothing is left behind if the export fails).
        self._spool = tempfile.TemporaryFile("w+b", dir=stem.parent)  # noqa: SIM115

    def add(self, values: Sequence[Any]) -> None:
        """One row, its values in column order."""
        where = f"{self.header['name']} row {self.rows + 1}"
        cells = [cell(v.data_type, x, f"{where} {v.name}") for v, x in zip(self.variables, values, strict=True)]
        for i, value in enumerate(cells):
            if value is not None and not isinstance(value, bool) and len(text := str(value)) > self._lengths[i]:
                self._lengths[i] = len(text)
        self._spool.write((json.dumps(cells, ensure_ascii=False, allow_nan=False) + "\n").encode())
        self.rows += 1

    def extend(self, columns: Sequence[Sequence[Any] | pa.Array | pa.ChunkedArray], count: int) -> None:
        """``count`` rows given as columns (one Python sequence or Arrow array of values per variable, in column
        order): the same lines ``add`` writes row by row, each column's JSON made at once (``column_json``,
        ``arrow_json``) and the lines joined by Arrow; a batch one of whose columns that cannot decide goes row by
        row through ``add``, which refuses the first wrong value by row and name."""
        columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]
        if len(columns) != len(self.variables) or any(len(c) != count for c in columns):
            raise ValueError(f"{self.header['name']}: {len(columns)} columns of {[len(c) for c in columns]} values "
                             f"given for {len(self.variables)} columns of {count} rows")  # fmt: skip
        made: list[tuple[list[str] | pa.Array, int]] = []
        for v, values in zip(self.variables, columns, strict=True):
            found = (arrow_json(v.data_type, values) if isinstance(values, pa.Array)
                     else column_json(v.data_type, values))  # fmt: skip
            if found is None:
                lists = [c.to_pylist() if isinstance(c, pa.Array) else c for c in columns]
                for row in zip(*lists, strict=True):
                    self.add(row)
                return
            made.append(found)
        for i, (_, longest) in enumerate(made):
            self._lengths[i] = max(self._lengths[i], longest)
        self._spool.write(_lines([texts for texts, _ in made], count))
        self.rows += count

    def lengths(self) -> dict[str, int]:
        """The longest value written of each column, in characters as JSON holds it (at least 1; yes/no: 1)."""
        return {v.name: max(1, n) for v, n in zip(self.variables, self._lengths, strict=True)}

    def metadata(self) -> dict[str, Any]:
        """The dataset's attributes and columns (everything but the rows), in the specification's order."""
        columns = [
            replace(v, length=max(1, n) if measured else None).metadata()
            for v, n, measured in zip(self.variables, self._lengths, self._measured, strict=True)
        ]
        head = {k: v for k, v in self.header.items() if k not in {"name", "label"}}
        return {**head, "records": self.rows, "name": self.header["name"], "label": self.header["label"],
                "columns": columns}  # fmt: skip

    def close(self) -> list[Path]:
        """Both files: the NDJSON the spool's lines as they are, the JSON the same lines joined by commas (a row's
        JSON never holds a line break, so the spool is copied a block at a time)."""
        meta = json.dumps(self.metadata(), ensure_ascii=False, allow_nan=False)
        json_path, ndjson_path = self.stem.with_suffix(".json"), self.stem.with_suffix(".ndjson")
        with (
            self._spool,
            json_path.open("wb") as whole,
            ndjson_path.open("wb") as lines,
        ):
            whole.write((meta[:-1] + ', "rows": [').encode())
            lines.write((meta + "\n").encode())
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, lines, _BLOCK)
            self._spool.seek(0)
            block = self._spool.read(_BLOCK)
            if block:
                whole.write(b"\n")
            while block:
                after = self._spool.read(_BLOCK)
                # The last line's break closes the rows: no comma after it.
                whole.write((block if after else block[:-1]).replace(b"\n", b",\n"))
                block = after
            whole.write(b"\n]}\n" if self.rows else b"]}\n")
        return [json_path, ndjson_path]


#: Bytes of the spool copied at a time.
_BLOCK = 1 << 16


def _lines(texts: Sequence[list[str] | pa.Array], count: int) -> bytes | pa.Buffer:
    """The rows' lines, UTF-8, from each column's JSON texts, as ``json.dumps`` lays out a list: ``[a, b, c]``."""
    if not texts or not count:
        return b"[]\n" * count
    if all(isinstance(t, list) for t in texts):
        return "".join(map("[{}]\n".format, map(", ".join, zip(*texts, strict=True)))).encode()
    arrays = [t if isinstance(t, pa.Array) else pa.array(t, pa.string()) for t in texts]
    joined = pc.binary_join_element_wise(*arrays, ", ") if len(arrays) > 1 else arrays[0]
    lines = pc.binary_join_element_wise("[", joined, "]\n", "")
    # The lines' text, one after the other, in the array's data buffer, between its first and last offsets.
    _, offsets, data = lines.buffers()
    first, last = struct.unpack_from("=i", offsets, 4 * lines.offset)[0], struct.unpack_from(
        "=i", offsets, 4 * (lines.offset + len(lines)))[0]  # fmt: skip
    return data[first:last]
