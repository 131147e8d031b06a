"""CSV cells a spreadsheet could run, read as the specification (issue 20 item 6; OWASP "CSV injection").

A text value such as ``=HYPERLINK("http://x","y")`` is legal text and is stored as typed. In every CSV file
an export writes for people to open in Excel or LibreOffice, a text cell starting with ``=``, ``+``, ``-``,
``@``, TAB or CR gets a leading apostrophe; numbers stay numbers:

| stored                                 | column    | CSV cell                                |
|----------------------------------------|-----------|-----------------------------------------|
| text ``=HYPERLINK("http://x","y")``    | text      | ``'=HYPERLINK("http://x","y")``         |
| text ``@SUM(A1)``, ``+1+1``, ``-2+3``  | text      | ``'@SUM(A1)``, ``'+1+1``, ``'-2+3``     |
| decimal -350.5                         | number    | ``-350.5`` (pandas reads the float)     |
| text ``-3.5`` (wholly a number)        | text      | ``-3.5``                                |

The binary formats (Parquet, Stata, SPSS, SAS) hold the data as stored. The trial here is the first
protocol with one decimal field added that may be negative (a fluid balance), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from tests.spec.protocol.conftest import mutated_text
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import make_trial, who
from trialwright.domain.roles import Role
from trialwright.domain.text import spreadsheet_cell
from trialwright.exports.codebook import SPREADSHEET_NOTE, CodebookExporter
from trialwright.exports.tabular import CsvExporter, ParquetExporter
from trialwright.protocol import load_protocol_text
from trialwright.services.exports import export_source
from trialwright.services.forms import get_form, save_form

FORMULA = '=HYPERLINK("http://x","y")'


def _with_fluid_balance(doc: Any) -> None:
    doc.pop("languages", None)  # English only: the texts added here carry no Persian
    form = next(f for f in doc["forms"] if f["id"] == "soc_therapy")
    form["fields"].append({"id": "fluid_balance", "label": "Fluid balance", "type": "decimal", "unit": "mL",
                           "decimals": 1, "required": False})  # fmt: skip


def test_a_formula_is_stored_as_typed_and_written_to_csv_as_text(database_url: str, tmp_path: Path) -> None:
    trial = make_trial(database_url, load_protocol_text(mutated_text(_with_fluid_balance)))
    try:
        pid = enrolled(trial)
        coordinator = who(trial, Role.STUDY_COORDINATOR)
        save_form(trial.engine, coordinator, pid, "baseline", "soc_therapy",
                  {"details": FORMULA, "fluid_balance": -350.5})  # fmt: skip
        stored = get_form(trial.engine, coordinator, pid, "baseline", "soc_therapy")
        assert stored is not None and stored.values["details"].value == FORMULA  # legal text, kept as typed

        source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
        CsvExporter().write(source, tmp_path / "csv")
        ParquetExporter().write(source, tmp_path / "parquet")
        (tmp_path / "codebook").mkdir()
        CodebookExporter().write(source, tmp_path / "codebook")
    finally:
        trial.engine.dispose()

    with (tmp_path / "csv" / "forms" / "soc_therapy.csv").open(encoding="utf-8", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["details"] == "'" + FORMULA and row["fluid_balance"] == "-350.5"
    frame = pd.read_csv(tmp_path / "csv" / "forms" / "soc_therapy.csv")
    assert frame.loc[0, "details"] == "'" + FORMULA and frame.loc[0, "fluid_balance"] == -350.5
    with (tmp_path / "csv" / "values_long.csv").open(encoding="utf-8", newline="") as f:
        long = {r["field_id"]: r for r in csv.DictReader(f) if r["form_id"] == "soc_therapy"}
    assert long["details"]["value"] == "'" + FORMULA
    assert long["fluid_balance"]["value"] == "-350.5" and long["fluid_balance"]["value_num"] == "-350.5"
    # The binary formats hold the data as stored.
    parquet = pq.read_table(tmp_path / "parquet" / "forms" / "soc_therapy.parquet").to_pylist()
    assert parquet[0]["details"] == FORMULA and parquet[0]["fluid_balance"] == -350.5
    # The codebook says so, and gives each text field's limit.
    assert html.escape(SPREADSHEET_NOTE) in (tmp_path / "codebook" / "codebook.html").read_text(encoding="utf-8")
    with (tmp_path / "codebook" / "codebook.csv").open(encoding="utf-8", newline="") as f:
        limits = {(r["form"], r["field"]): r["text_limit"] for r in csv.DictReader(f)}
    assert limits["soc_therapy", "details"] == "2000 characters, multi-line"
    assert limits["administration", "preparation_code"] == "16 characters, one line"
    assert limits["soc_therapy", "fluid_balance"] == ""
    assert "leading apostrophe" in (tmp_path / "csv" / "README.txt").read_text(encoding="utf-8")


def test_which_text_cells_are_neutralised() -> None:
    cases = {
        "@SUM(A1)": "'@SUM(A1)", "+1+1": "'+1+1", "-2+3": "'-2+3", "\tx": "'\tx", "\rx": "'\rx", "-inf": "'-inf",
        "-3.5": "-3.5", "+12": "+12", "-1e-3": "-1e-3", "3-4": "3-4", "a=b": "a=b", "": "", "'=x": "'=x",
    }  # fmt: skip
    assert {text: spreadsheet_cell(text) for text in cases} == cases
