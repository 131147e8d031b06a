"""The SPSS export as it was before the project's own writer: pyreadstat's ``write_sav`` of a whole table.

Kept as the memory specs' control (test_sav.py, test_dta.py, test_xport.py): it reads a table's spool back whole as
Arrow columns, converts each as a column and hands pyreadstat one pandas DataFrame (text kept in Arrow buffers,
numbers in float64 arrays), so its peak grows with the table, and a spec that sees it grow can see a table held
whole. Not used by the exports.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trialwright.exports.readstat import cut_text
from trialwright.exports.spss import SpssExporter
from trialwright.exports.tabular import Column, Table, _Run

__all__ = ["WholeFrameSpss"]


def frame(columns: Mapping[str, pa.ChunkedArray | np.ndarray], slice_rows: int) -> pd.DataFrame:
    """A DataFrame over the columns as given: Arrow columns stay Arrow (``ArrowDtype``), arrays are not copied."""
    cells = _arrow_cells(slice_rows)
    data = {name: cells(c) if isinstance(c, pa.ChunkedArray) else c for name, c in columns.items()}
    return pd.DataFrame(data, copy=False)


@functools.cache
def _arrow_cells(slice_rows: int) -> type[pd.api.extensions.ExtensionArray]:
    """pandas' Arrow-backed array, walked ``slice_rows`` cells at a time (as pyreadstat walks it)."""

    class ArrowCells(pd.arrays.ArrowExtensionArray):  # type: ignore[misc]
        def __iter__(self) -> Iterator[Any]:
            missing = self.dtype.na_value
            for chunk in self.__arrow_array__().iterchunks():
                for start in range(0, len(chunk), slice_rows):
                    part = chunk.slice(start, slice_rows)
                    values = part.to_pylist()
                    yield from ((missing if v is None else v) for v in values) if part.null_count else values

    return ArrowCells


class WholeFrameSpss(SpssExporter):
    """SPSS files written by pyreadstat from the whole table (the exporter before ``trialwright.exports.sav``)."""

    name = "spss-whole-frame"

    def _convert(self, folder: Path, table: Table, spool: Path, run: _Run) -> list[Path]:
        import pyreadstat

        data = pq.read_table(spool)
        names, _ = self._variable_names(table)
        columns: dict[str, pa.ChunkedArray | np.ndarray] = {}
        labels: dict[str, str | None] = {}
        value_labels: dict[str, dict[Any, str]] = {}
        formats: dict[str, str] = {}
        for c in table.columns:
            name = names[c.name]
            columns[name], labelled, display = self._column(c, data.column(c.name))
            if labelled is not None:
                value_labels[name] = labelled
            if display is not None:
                formats[name] = display
            labels[name] = c.label
        path = folder / f"{table.name}.{self.extension}"
        path.parent.mkdir(parents=True, exist_ok=True)
        pyreadstat.write_sav(frame(columns, self.batch_rows), path, file_label=table.label, column_labels=labels,
                             variable_value_labels=value_labels, variable_format=formats)  # fmt: skip
        return [path]

    def _column(self, c: Column, column: pa.ChunkedArray) -> tuple[Any, dict[Any, str] | None, str | None]:
        if c.kind == "datetime":
            return np.asarray(column.cast(pa.timestamp("us")).to_numpy(), dtype="datetime64[us]"), None, None
        if c.kind == "date":
            if column.null_count == len(column):
                return pa.chunked_array([pa.nulls(len(column), pa.string())]), None, None
            days = column.cast(pa.int32()).cast(pa.float64()).to_numpy()
            return (days + 141428.0) * 86400.0, None, "DATE"
        if c.kind == "yesno":
            return column.cast(pa.float64()).to_numpy(), {0.0: "No", 1.0: "Yes"}, None
        if c.kind == "number":
            return column.to_numpy(), None, None
        return cut_text(column, self.text_limit)[0], (dict(c.choices) if c.choices else None), None
