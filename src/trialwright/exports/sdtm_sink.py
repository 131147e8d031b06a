"""One SDTM domain's rows on their way to its files: ``DomainSink`` spools them to Parquet in record batches, then reads
them back as Arrow columns, sorted by USUBJID, with what is derived from other records (study days, baseline flags),
numbered (--SEQ), every text value spelt in ASCII (or left empty and listed in not_ascii.csv), text past 200 bytes
continued in SUPP-- records, and writes them a batch at a time as XPT (``trialwright.exports.xport``) and CSV.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trialwright.exports.columnar import BATCH_ROWS, csv_cells, csv_lines
from trialwright.exports.readstat import ascii_cells, ascii_text, cut_text, string_column
from trialwright.exports.sdtm_build import SdtmExportError
from trialwright.exports.sdtm_design import split_text
from trialwright.exports.sdtm_domains import Domain
from trialwright.exports.sdtm_findings import (
    AT_COLUMN,
    FINDINGS,
    SubjectReference,
    baseline_flags,
    sequence_numbers,
    study_days,
)
from trialwright.exports.tabular import Column, ParquetSink, Table
from trialwright.exports.xport import XportVariable, XportWriter, short_reading_note

__all__ = ["DomainSink"]


class DomainSink:
    """One domain's rows, spooled to Parquet in record batches; then read back as Arrow columns, sorted by
    USUBJID, numbered (--SEQ) and written a batch at a time as XPT (``trialwright.exports.xport``) and CSV."""

    def __init__(self, folder: Path, domain: Domain, batch: int = BATCH_ROWS) -> None:
        self.domain, self.folder, self._batch = domain, folder, batch
        columns = tuple(Column(v.name, "number" if v.type == "Num" else "text", v.label) for v in domain.variables)
        if domain.code in FINDINGS:  # when the result was taken, in UTC (or a local date): for --LOBXFL
            columns += (Column(AT_COLUMN, "text", "moment taken (UTC) or local date"),)
        self._spool = ParquetSink(folder / ".spool" / f"{domain.code}.parquet", Table(domain.code, domain.label,
                                                                                    columns), batch)  # fmt: skip
        self.lengths: dict[str, int] = {}
        self.rows = 0
        self.supp: list[dict[str, Any]] = []  # SUPP-- records continuing text past 200 bytes (``_overflow``)
        self.not_ascii: list[tuple[str, str, int, str]] = []  # (file, variable, row, text) left empty (``_ascii``)

    def add(self, row: Mapping[str, Any]) -> None:
        self._spool.add(row)
        self.rows += 1

    def table(self, notes: list[str], reference: Mapping[str, SubjectReference]) -> pa.Table:
        """The domain's rows as Arrow columns, in the order of its variables: sorted by USUBJID (a stable sort; a
        trial design domain keeps the protocol's order), with what is derived from other records (study days,
        baseline flags), numbered (--SEQ, float64) and DOMAIN filled; text as stored (missing is null, nothing
        cut)."""
        (spool,) = self._spool.close()
        data = pq.read_table(spool)
        spool.unlink()
        if "USUBJID" in data.column_names:  # a trial design domain keeps the protocol's order
            data = data.take(pc.sort_indices(data, sort_keys=[("USUBJID", "ascending")]))  # a stable sort
        names = {v.name for v in self.domain.variables}
        for v in self.domain.variables:  # what is derived from other records: study days, baseline flags
            derived: pa.Array | None = None
            if v.type == "Num" and v.name.endswith("DY") and f"{v.name[:-2]}DTC" in names:
                derived = pa.array(study_days(data.column(f"{v.name[:-2]}DTC"), data.column("USUBJID"), reference),
                                   pa.float64(), from_pandas=True)  # fmt: skip
            elif v.name.endswith("LOBXFL") and self.domain.code in FINDINGS:
                derived = baseline_flags(data, self.domain.code, reference, notes)
            if derived is not None:
                data = data.set_column(data.column_names.index(v.name), v.name, derived)
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for v in self.domain.variables:
            if v.name == self.domain.seq:
                columns[v.name] = pa.array(sequence_numbers(data.column("USUBJID")), pa.float64())
            elif v.name == "DOMAIN":
                columns[v.name] = string_column(self.domain.code, data.num_rows)
            else:
                columns[v.name] = data.column(v.name)
        return pa.table(columns)

    def close(self, notes: list[str], reference: Mapping[str, SubjectReference]) -> list[Path]:
        data = self._ascii(self.table(notes, reference))
        if "USUBJID" in data.column_names and not self.domain.code.startswith("SUPP"):
            data = self._overflow(data)
        columns: dict[str, pa.ChunkedArray | np.ndarray] = {}
        for v in self.domain.variables:
            if v.type == "Num":
                columns[v.name] = data.column(v.name).to_numpy()
            else:
                text, cut = cut_text(pc.fill_null(data.column(v.name), ""), 200)
                note = f"{self.domain.code}.{v.name}: text longer than 200 bytes was cut to fit SAS transport v5."
                if cut and note not in notes:
                    notes.append(note)
                columns[v.name] = text
            longest = pc.max(pc.binary_length(columns[v.name])).as_py() if v.type == "Char" else None
            self.lengths[v.name] = max(1, longest or 0) if v.type == "Char" else 8
        stem = self.domain.code.lower()
        xpt, text_path = self.folder / f"{stem}.xpt", self.folder / f"{stem}.csv"
        variables = [XportVariable(v.name, ascii_text(v.label)[:40], "num" if v.type == "Num" else "char",
                                   self.lengths[v.name]) for v in self.domain.variables]  # fmt: skip
        table = pa.table({name: pa.array(c) if isinstance(c, np.ndarray) else c for name, c in columns.items()})
        with XportWriter(xpt, self.domain.code, self.domain.label, variables) as writer:
            for batch in table.to_batches(max_chunksize=self._batch):
                writer.write(batch.columns)
        if writer.read_short is not None:
            notes.append(short_reading_note(f"{stem}.xpt", writer.read_short, writer.rows))
        self._csv(text_path, columns)
        return [xpt, text_path]

    def _ascii(self, data: pa.Table) -> pa.Table:
        """Every text value spelt in ASCII, as SAS transport v5 holds ASCII only: the characters of the one declared
        mapping (``readstat.ASCII_SPELLINGS``, listed in the codebook's xpt_ascii.csv) spelt by it, before the text
        is cut into SUPP-- pieces; a value with any other character (Persian text, say) is never guessed: left empty
        and listed in not_ascii.csv (file, variable, row, the text as stored), as the SAS export does. The domain's
        CSV holds what its XPT holds; Dataset-JSON keeps the text as stored."""
        for v in self.domain.variables:
            if v.type != "Char":
                continue
            spelt, refused = ascii_cells(data.column(v.name))
            data = data.set_column(data.column_names.index(v.name), v.name, spelt)
            self.not_ascii += [(f"{self.domain.code.lower()}.xpt", v.name, row + 1, text) for row, text in refused]
        return data

    def _overflow(self, data: pa.Table) -> pa.Table:
        """A subject record's text longer than the 200 bytes an XPT v5 variable holds: the first piece (cut before
        a space) stays, the rest continues in SUPP-- records (QNAM the variable's name and 1, 2, ...; SDTMIG 3.4
        4.5.3.2), so nothing is cut. Dataset-JSON, which has no such limit, keeps the whole text."""
        for v in self.domain.variables:
            if v.type != "Char" or not pc.any(pc.greater(pc.binary_length(data.column(v.name)), 200)).as_py():
                continue
            values = data.column(v.name).to_pylist()
            subjects = data.column("USUBJID").to_pylist()
            seq = data.column(self.domain.seq).to_pylist() if self.domain.seq else None
            for i, text in enumerate(values):
                if text is None or len(text.encode()) <= 200:
                    continue
                try:
                    values[i], *rest = split_text(text)
                except ValueError as exc:
                    raise SdtmExportError(f"{self.domain.code}.{v.name}: {exc}") from exc
                for n, piece in enumerate(rest, start=1):
                    self.supp.append({
                        "STUDYID": data.column("STUDYID")[i].as_py(), "RDOMAIN": self.domain.code,
                        "USUBJID": subjects[i], "IDVAR": self.domain.seq,
                        "IDVARVAL": str(int(seq[i])) if seq else None, "QNAM": f"{v.name[:7]}{n}",
                        "QLABEL": v.label, "QVAL": piece, "QORIG": v.origin.split(":")[0].split()[0],
                        "QEVAL": None,
                    })  # fmt: skip
            data = data.set_column(data.column_names.index(v.name), v.name, pa.array(values, pa.string()))
        return data

    def _csv(self, path: Path, columns: Mapping[str, pa.ChunkedArray | np.ndarray]) -> None:
        """The domain as CSV, a batch of rows at a time: numbers as the shortest exact text (1, not 1.0), text
        cells a spreadsheet would run as a formula with a leading apostrophe; the csv module's minimal quoting,
        lines ending in LF."""
        table = pa.table({name: pa.array(c) if isinstance(c, np.ndarray) else c for name, c in columns.items()})
        numeric = [v.type == "Num" for v in self.domain.variables]
        with path.open("w", newline="", encoding="utf-8") as f:
            f.write(",".join(table.column_names) + "\n")
            for batch in table.to_batches(max_chunksize=self._batch):
                cells = [
                    csv_cells(pc.if_else(pc.is_nan(c), None, c), line_end="\n", neutralise=False) if number
                    else csv_cells(c, line_end="\n")
                    for c, number in zip(batch.columns, numeric, strict=True)
                ]  # fmt: skip
                f.write(csv_lines(cells, "\n"))
