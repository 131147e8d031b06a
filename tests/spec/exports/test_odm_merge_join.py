"""The ODM export reads the audit trail beside the participant stream (issue 23 item 4), as the specification.

The writer goes participant by participant; the audit trail used to be indexed whole into a temporary SQLite file
first (``AuditIndex``: kept as ``OdmExporter(whole_index=True)``, the reference here). Now (``audit_merge``) the
entries naming a participant come joined to the participants, in the participant stream's order, and are taken a
participant at a time as the writer reaches it (a merge join); the users ``AdminData`` lists come from the distinct
values of the columns that decide them, grouped by the database; only the entries naming no participant (a
screening's, a consent's before enrolment) still go into the temporary file.

| trial                                                     | exported by                    | file                  |
|-----------------------------------------------------------|--------------------------------|-----------------------|
| every kind of record: values entered, changed and removed,| data manager (blinded)         | byte for byte the     |
| a missed visit, a signed form, log entries (one removed), | unblinded statistician (arms)  | reference's           |
| a coded and recoded adverse event, queries on the form    |                                |                       |
| and the participant, a withdrawal, randomized, prepared   |                                |                       |
| and unblinded in an emergency; then a screening never     |                                |                       |
| enrolled                                                  |                                |                       |
| that file imported into a fresh trial (import.odm entries | data manager                   | byte for byte the     |
| keeping the file's AuditRecords, a screening's records)   |                                | reference's           |
| 14 patients screened by the simulator                     | data manager, statistician     | byte for byte         |

The source's reads, against the rows read the plain way in the test: ``part="named"`` is every row of the trail
(``part="all"``) naming an exported participant, grouped in the participant stream's order, each participant's oldest
first; ``part="unnamed"`` the rows naming none; ``audit_distinct`` each distinct row of the chosen columns with the
newest seq of the rows that read so. If the two streams disagree on the order, the export is refused naming the
participant whose entries were left unread (never written without them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.spec.exports.test_odm_history_elements import _everything
from tests.spec.exports.test_odm_queries import _taken
from tests.spec.forms.conftest import TODAY, pid, trial
from tests.spec.logs.test_log_odm import target
from tests.spec.randomization.test_randomize_service import TYPED
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import OdmExporter
from trialwright.exports.odm.audit_index import (
    AUDIT_ACTIONS,
    AUDIT_COLUMNS,
    AUDIT_ONLY,
    AUDIT_PREFIXES,
    AUDIT_UNNAMED,
    USER_COLUMNS,
    USER_ONLY,
    USER_PRESENT,
)
from trialwright.services import forms as svc
from trialwright.services.exports import DatabaseSource, export_source
from trialwright.services.odm_import import import_odm
from trialwright.services.screening import screen
from trialwright.services.simulation import simulate

__all__ = ["pid", "target", "trial"]

TAKEN_AT = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
READ = (AUDIT_COLUMNS, AUDIT_ACTIONS, AUDIT_PREFIXES, AUDIT_ONLY, AUDIT_UNNAMED)


def _source(trial: Trial, role: Role, taken_at: dt.datetime = TAKEN_AT) -> DatabaseSource:
    made = export_source(trial.engine, who(trial, role), with_arms=role is Role.UNBLINDED_STATISTICIAN)
    return dataclasses.replace(made, taken_at=taken_at, batch=7)  # small batches: many fetches and flushes


def _both(source: DatabaseSource, folder: Path) -> tuple[bytes, bytes]:
    """The file written by the merge join and by the whole index (the reference), from the same source."""
    written = []
    for name, exporter in (("merge", OdmExporter(16)), ("whole", OdmExporter(16, whole_index=True))):
        (folder / name).mkdir(parents=True)
        with source.snapshot():
            written.append(exporter.write(source, folder / name)[0].read_bytes())
    return written[0], written[1]


def test_every_kind_of_record_is_written_as_the_whole_index_wrote_it_blinded_with_arms_and_imported(
    trial: Trial, pid: str, tmp_path: Path, target: Trial
) -> None:
    _everything(trial, pid, tmp_path)
    e = trial.engine
    coordinator, monitor, manager = (who(trial, r) for r in (Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER))
    asked = svc.raise_query(e, monitor, pid, "Which sample?", visit_id="baseline", form_id="labs")
    svc.answer_query(e, coordinator, asked.id, "The second")
    svc.raise_query(e, manager, pid, "Date of consent?")
    screen(e, coordinator, site="RAZ", screened_on=TODAY, values={**TYPED, "age": 10})  # never enrolled: too young

    for role in (Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN):
        merged, whole = _both(_source(trial, role), tmp_path / role.value)
        assert merged == whole, role
        assert b"<tw:Screening " in merged and b"<tw:Query " in merged and b"<tw:Earlier" in merged
    blinded = tmp_path / Role.DATA_MANAGER.value / "merge"
    (path,) = blinded.glob("*.odm.xml")

    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    merged, whole = _both(_source(target, Role.DATA_MANAGER, _taken(path)), tmp_path / "imported")
    assert merged == whole == path.read_bytes()


@pytest.fixture(scope="module")
def simulated(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 14, seed=5)
    yield t
    t.engine.dispose()


def test_a_simulated_trial_is_written_as_the_whole_index_wrote_it(simulated: Trial, tmp_path: Path) -> None:
    for role in (Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN):
        merged, whole = _both(_source(simulated, role), tmp_path / role.value)
        assert merged == whole, role
        assert merged.count(b"<SubjectData ") >= 5


def test_the_named_rows_come_in_the_participant_streams_order_and_the_distinct_rows_with_their_newest_seq(
    simulated: Trial,
) -> None:
    for role in (Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN):
        source = _source(simulated, role)
        with source.snapshot():
            every = list(source.audit_columns(*READ))
            named = list(source.audit_columns(*READ, part="named"))
            unnamed = list(source.audit_columns(*READ, part="unnamed"))
            order = [p.participant_id for p in source.participants()]
            distinct = list(source.audit_distinct(USER_COLUMNS, AUDIT_ACTIONS, AUDIT_PREFIXES, USER_ONLY,
                                                  AUDIT_UNNAMED, USER_PRESENT))  # fmt: skip
            seqs = list(source.audit_columns(("seq", *USER_COLUMNS), AUDIT_ACTIONS, AUDIT_PREFIXES, USER_ONLY,
                                             AUDIT_UNNAMED))  # fmt: skip
        who_at = AUDIT_COLUMNS.index("participant")
        rank = {p: n for n, p in enumerate(order)}
        assert len(rank) >= 5
        expected = sorted((r for r in every if r[who_at] in rank), key=lambda r: rank[r[who_at]])  # stable: seq order
        assert named == expected and len(named) > 1000
        assert unnamed == [r for r in every if r[who_at] is None] and unnamed

        newest: dict[tuple[Any, ...], int] = {}
        for seq, *values in seqs:  # each row read plainly, the present columns as True or None
            row = tuple((True if v is not None else None) if c in USER_PRESENT else v
                        for c, v in zip(USER_COLUMNS, values, strict=True))  # fmt: skip
            newest[row] = max(seq, newest.get(row, seq))
        assert {(s, *row) for row, s in newest.items()} == set(distinct)
        assert [s for s, *_ in distinct] == sorted(s for s, *_ in distinct) and len(distinct) < len(seqs) // 5


@dataclasses.dataclass(frozen=True)
class _Reversed(DatabaseSource):
    """A source whose entries naming a participant come in the reverse of the participant stream's order."""

    def audit_columns(self, *args: Any, part: Any = "all", **kwargs: Any) -> Iterator[tuple[Any, ...]]:
        rows = list(super().audit_columns(*args, part=part, **kwargs))
        if part == "named":
            who_at = AUDIT_COLUMNS.index("participant")
            rows.sort(key=lambda r: r[who_at], reverse=True)
        return iter(rows)


def test_entries_the_participant_stream_passed_by_stop_the_export_naming_the_participant(
    simulated: Trial, tmp_path: Path
) -> None:
    made = _source(simulated, Role.DATA_MANAGER)
    source = _Reversed(**{f.name: getattr(made, f.name) for f in dataclasses.fields(made)})
    order = [p.participant_id for p in source.participants()]
    with pytest.raises(ValueError, match=r"audit: the entries about participant (\S+) were not read beside") as refused:
        OdmExporter().write(source, tmp_path)
    named = refused.value.args[0].split()[5]
    assert named in order and named != order[-1]  # the last is read first, then every other's entries are left
