"""A protocol version stored before a rule existed is read as it was written (``load_protocol_text(stored=True)``),
and what the rule guards refuses it instead, with the field and the rule; never a crash, never a carried value the
current rules would refuse. Both databases.

- Table 1 shows a number's mean at the field's declared decimals plus one: a decimal field in ``baseline_table``
  without ``decimals`` (``protocol check`` refuses it in a new file) is shown by the report's general rule for
  numbers, 3 significant digits, so the trial still analyses (it crashed the analysis with a ValueError).
- A ``normal_range`` outside the field's hard limits (no value could be normal at that end) is refused by the
  exports that carry it, SDTM LB (LBSTNRLO/HI) and FHIR's referenceRange: every export re-reads the stored version
  under today's rules first (``services.exports``) and names the line and the rule.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy import text as text_

from tests.significant import three_significant
from tests.spec.web.conftest import sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.protocol.loader import ProtocolError
from trialwright.services.analysis import run_analysis
from trialwright.services.exports import ExportError, run_export
from trialwright.services.simulation import simulate
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.store.tables import protocol_versions
from trialwright.web.app import create_app

WEIGHT = "        unit: kg\n        hard_limits: {min: 20, max: 300}\n        decimals: 1\n"
CRP = "        hard_limits: {min: 0, max: 600}\n        soft_limits: {min: 0, max: 400} # ASSUMPTION\n"


def _stored_as(trial: Trial, text: str) -> None:
    """The trial's stored version as if an older engine had stored ``text`` (its SHA-256 with it, as stored)."""
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with session_scope(trial.engine) as session:
        row = session.execute(select(protocol_versions.c.id)).scalars().first()
        session.execute(update(protocol_versions).where(protocol_versions.c.id == row).values(source_text=text,
                                                                                              sha256=sha))  # fmt: skip


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 14, seed=3)
    yield t
    t.engine.dispose()


def test_a_decimal_field_of_table_1_without_decimals_is_shown_by_the_reports_general_rule(trial: Trial) -> None:
    """A new file is refused by ``protocol check``; a version stored before the rule still analyses (a trial that
    analysed yesterday analyses today), its Table 1 row at the report's general rule for numbers, 3 significant
    digits (``fmt_number``), never at places made up for it."""
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    assert text.count(WEIGHT) == 1
    older = text.replace(WEIGHT, WEIGHT.replace("        decimals: 1\n", ""))
    load_protocol_text(older)  # accepted (a REDCap data dictionary carries no decimals for a number field)
    _stored_as(trial, older)
    try:
        report = run_analysis(trial.engine, who(trial, Role.BLINDED_STATISTICIAN)).report
        with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
            sign_in(client, Role.BLINDED_STATISTICIAN)
            assert client.get("/analysis").status_code == 200
    finally:
        _stored_as(trial, text)
    (group,) = report.groups
    cell = next(row.cells[group] for row in report.table_one if row.variable == "demographics.weight")
    with trial.engine.connect() as c:
        weights = [json.loads(v)["weight"]["value"] for (v,) in c.execute(text_(
            "SELECT f.form_values FROM form_records f JOIN visit_records v ON v.id = f.visit_record_id "
            "JOIN allocation_entries a ON a.participant_id = f.participant_id "
            "WHERE f.form_id = 'demographics'"))]  # fmt: skip
    weights = [float(w) for w in weights if w is not None]
    assert weights
    mean, sd = statistics.fmean(weights), statistics.stdev(weights)
    shown = [three_significant(x) for x in (mean, sd, statistics.median(weights))]
    assert cell.startswith(f"{shown[0]} ({shown[1]}); median {shown[2]} ["), cell  # trailing zeros kept (walk 7 F6)
    assert cell.endswith(f"n={len(weights)}")


@pytest.mark.parametrize("fmt", ["sdtm", "fhir"])
def test_a_normal_range_beyond_the_hard_limits_refuses_the_exports_that_carry_it(
    trial: Trial, fmt: str, tmp_path: Path
) -> None:
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    assert text.count(CRP) == 1
    older = text.replace(CRP, CRP + "        normal_range: {min: 700, max: 900}\n")
    with pytest.raises(ProtocolError, match="normal_range must lie within hard_limits"):
        load_protocol_text(older)  # a new file: protocol check refuses it
    _stored_as(trial, older)
    try:
        refused = (r"^protocol: the stored protocol version 2\.0:\d+: forms\[3\]\.fields\[5\]: normal_range must lie "
                   r"within hard_limits \(min 0, max 600\): its min \(700\) and max \(900\) are values the field "
                   r"refuses; these rules were added after this version was stored")  # fmt: skip
        with pytest.raises(ExportError, match=refused):
            run_export(trial.engine, who(trial, Role.DATA_MANAGER), fmt, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    finally:
        _stored_as(trial, text)
