"""The SDTM export's XPT files hold ASCII only (SAS transport v5 declares no encoding), as the SAS export's do.

| text in the trial                             | XPT and CSV of the SDTM export                  | listed        |
|-----------------------------------------------|-------------------------------------------------|---------------|
| the protocol's outcome "TNF- α" (TS OUTMSPRI) | "TNF- alpha": the declared spelling (xpt_ascii) | -             |
| an AE term in Persian, "تنگی نفس"              | AETERM empty                                    | not_ascii.csv |
| anything else                                 | as stored                                       | -             |

Dataset-JSON, which is UTF-8, keeps both as stored. Checked on the bytes of every text value read back with
pyreadstat and on the protocol file read as plain YAML; the first trial simulated (10 screened) on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pyreadstat
import pytest

from tests.spec.exports.test_sdtmig import RAW
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.codebook import CodebookExporter
from trialwright.exports.sdtm import SdtmExporter
from trialwright.services.exports import export_source
from trialwright.services.safety import report_event
from trialwright.services.simulation import simulate

PERSIAN_TERM = "تنگی نفس"


@pytest.fixture(scope="module")
def exported(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Trial, Path, str]]:
    trial = make_trial(module_database_url)
    simulate(trial.engine, FIRST_PROTOCOL, 10, seed=3)
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    first = min((p for p in source.participants() if p.site == "RAZ" and p.randomized_at is not None),
                key=lambda p: p.participant_id)  # fmt: skip
    pid, onset = first.participant_id, (first.randomized_at or first.enrolled_at).date() + dt.timedelta(days=2)
    unrelated = next(c["code"] for c in RAW["safety"]["causality"] if not c["related"])
    event = report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, {
        "term": PERSIAN_TERM, "onset": onset.isoformat(), "grade": 1, "serious": False, "causality": unrelated,
        "action_taken": "not_applicable", "outcome": "recovered",
        "aware_at": dt.datetime.combine(onset, dt.time(12), ZoneInfo("Asia/Tehran")).isoformat()})  # fmt: skip
    folder = tmp_path_factory.mktemp("sdtm-ascii")
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), folder)
    (folder / "codebook").mkdir()
    CodebookExporter().write(source, folder / "codebook")
    yield trial, folder, event.ae_number
    trial.engine.dispose()


def test_every_text_value_of_every_sdtm_xpt_file_is_ascii(exported: tuple[Trial, Path, str]) -> None:
    _, folder, _ = exported
    files = sorted((folder / "sdtm").glob("*.xpt"))
    assert files
    for path in files:
        frame, meta = pyreadstat.read_xport(path, encoding="utf-8")
        for name in frame.columns:
            if meta.readstat_variable_types[name] == "string":
                foreign = [v for v in frame[name] if not v.isascii()]
                assert foreign == [], (path.name, name, foreign[:3])


def test_a_greek_letter_of_the_protocol_is_spelt_as_the_codebook_declares(exported: tuple[Trial, Path, str]) -> None:
    """The first trial's primary outcome names TNF-α; TS OUTMSPRI spells α as xpt_ascii.csv says (alpha)."""
    _, folder, _ = exported
    with (folder / "codebook" / "xpt_ascii.csv").open(encoding="utf-8", newline="") as f:
        spelling = {row["character"]: row["ascii"] for row in csv.DictReader(f)}
    greek = "Tumor necrosis factor alpha (TNF- α)"  # the primary outcome's registered description
    assert greek in set(_texts(RAW))
    ts, _ = pyreadstat.read_xport(folder / "sdtm" / "ts.xpt")
    values = set(ts[ts.TSPARMCD == "OUTMSPRI"].TSVAL)
    assert greek.replace("α", spelling["α"]) in values, (greek, values)
    with (folder / "sdtm" / "ts.csv").open(encoding="utf-8", newline="") as f:
        assert {r["TSVAL"] for r in csv.DictReader(f) if r["TSPARMCD"] == "OUTMSPRI"} == values


def test_text_no_declared_spelling_covers_is_left_empty_and_listed(exported: tuple[Trial, Path, str]) -> None:
    """A Persian AE term is never guessed: AETERM is empty in ae.xpt and ae.csv, and not_ascii.csv names the file,
    variable, row and the term as stored; README.txt says so."""
    _, folder, number = exported
    ae, _ = pyreadstat.read_xport(folder / "sdtm" / "ae.xpt")
    row = ae.index[number == ae.AESPID][0]
    assert ae.AETERM[row] == ""
    with (folder / "sdtm" / "not_ascii.csv").open(encoding="utf-8", newline="") as f:
        listed = list(csv.DictReader(f))
    assert {"file": "ae.xpt", "variable": "AETERM", "row": str(row + 1), "text": PERSIAN_TERM} in listed
    assert "not_ascii.csv:" in (folder / "README.txt").read_text(encoding="utf-8")


def _texts(node: object) -> Iterator[str]:
    """Every string of the protocol file read as plain YAML."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _texts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _texts(v)
