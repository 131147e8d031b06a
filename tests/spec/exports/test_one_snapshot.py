"""An export reads the whole trial in one snapshot (issue 23): a row written while it runs is in none of its files.

Every format reads its tables through the export's source, and ``run_export`` holds one read transaction while the
format writes (PostgreSQL: REPEATABLE READ, READ ONLY; SQLite: one deferred transaction). A simulated trial of 8
patients; as soon as the format has read its first rows, another connection enrols a new participant (screening,
consent, enrolment and their audit entries). The export completes, and the new participant is in none of its files,
whatever the format; the next export has them. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports import registry
from trialwright.services.exports import run_export
from trialwright.services.simulation import simulate

#: The formats whose files hold participant ids as text (the binary ones are read back by their own specs; the
#: codebook reads no data).
TEXT_FORMATS = ("csv", "odm", "fhir", "sdtm", "dataset-json")
BINARY_FORMATS = ("parquet", "stata", "spss", "sas")


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 8, seed=5)
    yield t
    t.engine.dispose()


def _export_while_someone_enrols(trial: Trial, fmt: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Export ``fmt`` while a participant is enrolled by another connection right after the format's first read;
    the new participant's id."""
    made: list[str] = []
    real = registry.FORMATS[fmt]

    def write_after_first_read(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if made or not statement.lstrip().upper().startswith("SELECT"):
            return
        made.append("")  # before enrolling: its own statements pass by here too
        made[0] = enrolled(trial)

    class Watched(real):  # type: ignore[misc, valid-type]
        def write(self, *args: Any, **kwargs: Any) -> Any:
            event.listen(trial.engine, "after_cursor_execute", write_after_first_read)
            try:
                return super().write(*args, **kwargs)
            finally:
                event.remove(trial.engine, "after_cursor_execute", write_after_first_read)

    monkeypatch.setitem(registry.FORMATS, fmt, Watched)
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), fmt, out)
    assert made and made[0], "no participant was enrolled during the export"
    return made[0]


def _text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(folder.rglob("*")) if p.is_file())


def _patients(folder: Path) -> int:
    """FHIR names participants by pseudonym: its Patient resources are counted instead."""
    return _text(folder).count('"resourceType":"Patient"')


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_a_participant_enrolled_during_the_export_is_in_none_of_its_files(
    trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    before = tmp_path / "before"
    if fmt == "fhir":
        run_export(trial.engine, who(trial, Role.DATA_MANAGER), fmt, before)
    newcomer = _export_while_someone_enrols(trial, fmt, tmp_path / fmt, monkeypatch)
    monkeypatch.undo()
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), fmt, tmp_path / "next")
    if fmt == "fhir":
        assert _patients(tmp_path / fmt) == _patients(before) == _patients(tmp_path / "next") - 1
    else:
        assert newcomer not in _text(tmp_path / fmt)
        assert newcomer in _text(tmp_path / "next")  # the measure can see them


@pytest.mark.parametrize("fmt", BINARY_FORMATS)
def test_every_other_format_completes_with_a_row_written_during_it(
    trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    _export_while_someone_enrols(trial, fmt, tmp_path / fmt, monkeypatch)
    assert any(p.is_file() for p in (tmp_path / fmt).rglob("*"))
