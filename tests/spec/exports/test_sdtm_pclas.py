"""TS PCLAS (Pharmacologic Class) from the protocol's optional fact ``trial.design.pharmacologic_class`` (both
databases): written as declared (TSVAL the class, TSVALCD and TSVCDREF its code and terminology) in the extract
with arms; withheld in a blinded extract, as TRT (the investigational product's class); listed as left out, with
why, in README.txt when not declared or withheld. A code without its terminology is refused when the protocol
loads.

| protocol                      | extract   | TS PCLAS                         | README.txt "Left out"      |
|-------------------------------|-----------|----------------------------------|----------------------------|
| pharmacologic_class declared  | with arms | Cell-based Therapy, C12345, NCI  | not PCLAS                  |
| pharmacologic_class declared  | blinded   | none                             | PCLAS: withheld            |
| not declared (the first trial)| with arms | none                             | PCLAS: does not declare it |
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyreadstat
import pytest
from ruamel.yaml import YAML

from tests.trialfixtures import FIRST_PROTOCOL, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.sdtm import SdtmExporter
from trialwright.protocol import ProtocolError
from trialwright.protocol.loader import load_protocol_text
from trialwright.services.exports import export_source

#: A fictional class and code (the engine takes whatever the protocol declares; nothing is looked up).
PCLAS = {"name": "Cell-based Therapy", "code": "C12345", "terminology": "NCI"}


def _text(pclas: dict[str, Any] | None) -> str:
    raw = YAML(typ="safe").load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    if pclas is not None:
        raw["trial"]["design"]["pharmacologic_class"] = pclas
    buffer = io.StringIO()
    YAML().dump(raw, buffer)
    return buffer.getvalue()


def _export(database_url: str, tmp_path: Path, pclas: dict[str, Any] | None, with_arms: bool) -> tuple[list, str]:
    trial = make_trial(database_url, load_protocol_text(_text(pclas)))
    try:
        role = Role.UNBLINDED_STATISTICIAN if with_arms else Role.DATA_MANAGER
        SdtmExporter().write(export_source(trial.engine, who(trial, role), with_arms=with_arms), tmp_path)
    finally:
        trial.engine.dispose()
    ts, _ = pyreadstat.read_xport(tmp_path / "sdtm" / "ts.xpt")
    rows = [(r.TSPARMCD, r.TSPARM, r.TSVAL, r.TSVALCD, r.TSVCDREF) for r in ts.itertuples() if r.TSPARMCD == "PCLAS"]
    left = next(line for line in (tmp_path / "README.txt").read_text(encoding="utf-8").splitlines()
                if "Left out (not declared" in line)  # fmt: skip
    return rows, left


@pytest.mark.parametrize(("pclas", "with_arms"), [(PCLAS, True), (PCLAS, False), (None, True)],
                         ids=["declared, with arms", "declared, blinded", "not declared"])  # fmt: skip
def test_ts_pclas_is_the_declared_class_with_arms_only(
    database_url: str, tmp_path: Path, pclas: dict[str, Any] | None, with_arms: bool
) -> None:
    rows, left = _export(database_url, tmp_path, pclas, with_arms)
    if pclas is not None and with_arms:
        assert rows == [("PCLAS", "Pharmacologic Class", "Cell-based Therapy", "C12345", "NCI")]
        assert "PCLAS" not in left
    elif pclas is not None:
        assert rows == []
        assert "PCLAS: withheld in a blinded extract (the investigational product's class, as TRT)" in left
    else:
        assert rows == []
        assert "PCLAS: Pharmacologic Class (the protocol does not declare trial.design.pharmacologic_class)" in left


def test_a_class_code_without_its_terminology_is_refused() -> None:
    with pytest.raises(ProtocolError, match="code and terminology go together"):
        load_protocol_text(_text({"name": "Cell-based Therapy", "code": "C12345"}))
