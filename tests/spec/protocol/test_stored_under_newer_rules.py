"""A trial database keeps the protocol text it runs under. A rule added to ``protocol check`` after that text was
stored (here: CM's coded variables checked against declared CDISC CT terms) must not stop the running trial's
pages, forms and API, which read the text back every time; it refuses what it guards instead (every export), naming
the rule and the stored version, until an amendment declares what it asks. Nothing is exported unchecked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol.loader import ProtocolError, load_protocol_text
from trialwright.services.exports import ExportError, run_export
from trialwright.services.trial import current_protocol


def _before_ct_terms(doc: Any) -> None:
    """The first trial's logs as stored before CM's CT terms were declared (and checked)."""
    conmeds = next(log for log in doc["logs"] if log["id"] == "conmeds")
    del conmeds["sdtm"]["terminology"]


def test_a_text_stored_before_a_rule_runs_the_trial_but_no_export_is_written_from_it(
    database_url: str, tmp_path: Path
) -> None:
    text = mutated_text(_before_ct_terms)
    with pytest.raises(ProtocolError, match="CMDOSU is written but its CDISC CT codelist is not declared"):
        load_protocol_text(text)  # a new file is refused at protocol check
    stored = load_protocol_text(text, stored=True)  # a stored one is read as it was stored
    trial = make_trial(database_url, stored)
    try:
        assert current_protocol(trial.engine).protocol.log("conmeds").sdtm.terminology == {}  # type: ignore[union-attr]
        with pytest.raises(ExportError) as refused:
            run_export(trial.engine, who(trial, Role.DATA_MANAGER), "csv", tmp_path / "csv")
        said = str(refused.value)
        assert said.startswith("protocol: the stored protocol version ")
        assert "CMDOSU is written but its CDISC CT codelist is not declared" in said
        assert "amend the protocol" in said
        assert not (tmp_path / "csv").exists() and not (tmp_path / "csv.partial").exists()
    finally:
        trial.engine.dispose()
