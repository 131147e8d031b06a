"""A simulated trial records withdrawals and baselines as a site would: a withdrawal falls within the participant's
follow-up, before the visit it prevents, and no visit is held after it; the baseline is measured before the first
dose, so the SDTM export flags it (--LOBXFL, the last non-missing result before RFXSTDTC).

| spec                                                        | trial                                                 |
|-------------------------------------------------------------|-------------------------------------------------------|
| a withdrawal prevents a follow-up visit; none held after it | the first trial, simulation file's withdrawal 0.5     |
| every baseline measurement is stamped before the first dose | the first trial; cellulitis (its dose at the baseline) |
| SDTM LB and VS flag a baseline for each dosed participant   | both, read back from the XPT files with pyreadstat    |

Before this was so, a withdrawal fell at 20:00 on the day of a random follow-up visit, after the last one as often as
not (it prevented nothing a visit records), and the visits after it were attempted and refused; the baseline visit
was stamped a minute after the dose (or at its very moment), so no result was before the first dose and LOBXFL was
never set. Expected values are read from the stored rows and the exported files, never from the simulator's code.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pyreadstat
import pytest
from sqlalchemy import Engine, select

from tests.conftest import ROOT, fresh_database
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol, load_protocol
from trialwright.services.exports import run_export
from trialwright.services.simulation import SimulationSummary, simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import participants, withdrawals

CELLULITIS = ROOT / "protocols" / "EXAMPLE-PACIFIC-CELLULITIS.yaml"
BACKENDS = ("sqlite", "postgresql")


def _with_withdrawals(folder: Path) -> Path:
    """The first trial with its own simulation file, but one participant in two drawn to withdraw."""
    path = folder / "WITHDRAWALS.yaml"
    path.write_text(FIRST_PROTOCOL.read_text(encoding="utf-8"), encoding="utf-8")
    plan = FIRST_PROTOCOL.with_name(FIRST_PROTOCOL.stem + ".simulation.yaml").read_text(encoding="utf-8")
    assert "\nwithdrawal: 0.03" in plan
    path.with_name("WITHDRAWALS.simulation.yaml").write_text(plan.replace("\nwithdrawal: 0.03", "\nwithdrawal: 0.5"),
                                                             encoding="utf-8")  # fmt: skip
    return path


@dataclass(frozen=True)
class Simulated:
    protocol: Protocol
    engine: Engine
    summary: SimulationSummary


@pytest.fixture(scope="module")
def simulated(
    tmp_path_factory: pytest.TempPathFactory, postgres_available: str | None
) -> Iterator[Callable[[str, str], Simulated]]:
    """Each (trial, database) simulated once, on first use: ``first`` (withdrawals raised) or ``cellulitis``."""
    made: dict[tuple[str, str], Simulated] = {}
    with ExitStack() as stack:

        def get(which: str, kind: str) -> Simulated:
            if (which, kind) not in made:
                folder = tmp_path_factory.mktemp(which)
                path = _with_withdrawals(folder) if which == "first" else CELLULITIS
                reason = postgres_available if kind == "postgresql" else None
                url = stack.enter_context(fresh_database(kind, folder, reason))
                engine = make_engine(url)
                stack.callback(engine.dispose)
                loaded = load_protocol(path)
                init_trial(engine, loaded)
                summary = simulate(engine, path, None, seed=5, enrolled=12)
                made[(which, kind)] = Simulated(loaded.protocol, engine, summary)
            return made[(which, kind)]

        yield get


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_withdrawal_falls_before_the_visit_it_prevents_and_no_visit_after_it_is_held(
    simulated: Callable[[str, str], Simulated], kind: str
) -> None:
    trial = simulated("first", kind)
    protocol = trial.protocol
    follow_ups = {v.id: v for v in protocol.visits if v.day > 0}
    with session_scope(trial.engine) as session:
        left = {r.participant_id: r for r in session.execute(select(withdrawals))}
        site = dict(session.execute(select(participants.c.participant_id, participants.c.site)).all())
        allocated = allocation_entries.c.participant_id
        randomized = dict(session.execute(select(allocated, allocation_entries.c.randomized_at)
                                          .where(allocated.is_not(None))).all())  # fmt: skip
        visits = session.execute(select(visit_records)).all()
    assert len(left) >= 3 and trial.summary.withdrawn == len(left)
    # Nothing is attempted after a withdrawal, so nothing is refused for it (or for anything else).
    assert trial.summary.refusals == {}, trial.summary.refusals
    for pid, withdrawal in left.items():
        tz = ZoneInfo(protocol.site(site[pid]).timezone)
        mine = {v.visit_id: v for v in visits if v.participant_id == pid}
        # Within follow-up: after the randomization and the dose, recorded on the day it happened at the site.
        assert randomized[pid] < withdrawal.recorded_at
        assert withdrawal.withdrawn_on == withdrawal.recorded_at.astimezone(tz).date()
        assert "infusion" in mine and mine["infusion"].created_at < withdrawal.recorded_at
        # No visit held (or marked missed) after it.
        assert all(v.created_at <= withdrawal.recorded_at for v in mine.values()), (pid, sorted(mine))
        # Before the last scheduled follow-up visit (the infusion's date plus the visit's day), which it prevents:
        # at least one follow-up visit is neither held nor marked missed.
        last = max(mine["infusion"].visit_date + dt.timedelta(days=v.day) for v in follow_ups.values())
        assert withdrawal.withdrawn_on <= last, pid
        assert set(follow_ups) - set(mine), (pid, "the withdrawal prevented no visit")


def _baseline_stamps(trial: Simulated) -> tuple[dict[str, dt.datetime], list[tuple[str, str, str, dt.datetime]]]:
    """Each participant's dose moment (the treatment record's given field) and every date-time measured at a
    baseline visit (a scheduled visit on day 0 or before), but for the treatment record itself."""
    protocol = trial.protocol
    assert protocol.analysis_plan is not None and protocol.analysis_plan.treatment is not None
    treatment = protocol.analysis_plan.treatment
    baselines = {v.id for v in protocol.visits if v.kind == "scheduled" and v.day <= 0}
    with session_scope(trial.engine) as session:
        stored = session.execute(
            select(form_records.c.participant_id, visit_records.c.visit_id, form_records.c.form_id,
                   form_records.c.form_values)
            .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
        ).all()  # fmt: skip
    doses: dict[str, dt.datetime] = {}
    measured: list[tuple[str, str, str, dt.datetime]] = []
    for pid, visit, form_id, raw in stored:
        values = json.loads(raw)
        if visit == treatment.visit and form_id == treatment.form:
            doses[pid] = dt.datetime.fromisoformat(values[treatment.given_field]["value"])
            continue
        if visit not in baselines:
            continue
        for f in protocol.form(form_id).fields:
            value = (values.get(f.id) or {}).get("value")
            if f.type.value == "datetime" and isinstance(value, str):
                measured.append((pid, visit, f"{form_id}.{f.id}", dt.datetime.fromisoformat(value)))
    return doses, measured


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("which", ["first", "cellulitis"])
def test_every_baseline_measurement_is_stamped_before_the_first_dose(
    simulated: Callable[[str, str], Simulated], which: str, kind: str
) -> None:
    doses, measured = _baseline_stamps(simulated(which, kind))
    assert len(doses) >= 10 and len({pid for pid, *_ in measured}) >= 10
    late = [(pid, visit, field) for pid, visit, field, at in measured if pid in doses and not at < doses[pid]]
    assert late == [], late


def _xpt(folder: Path, code: str) -> list[dict[str, str]]:
    frame, _ = pyreadstat.read_xport(folder / "sdtm" / f"{code}.xpt")
    return [{k: ("" if v is None else str(v)) for k, v in row.items()} for row in frame.to_dict("records")]


def _moment(dtc: str) -> dt.datetime | None:
    """An ISO 8601 --DTC with a time, as a naive local moment (the site's clock); None for a date alone."""
    return dt.datetime.fromisoformat(dtc[:16]) if "T" in dtc else None


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("which", ["first", "cellulitis"])
def test_the_sdtm_findings_flag_each_dosed_participants_baseline(
    simulated: Callable[[str, str], Simulated], which: str, kind: str, tmp_path: Path
) -> None:
    """From the XPT files alone: each subject's tests measured with a time before RFXSTDTC have exactly one
    LOBXFL = Y, on the latest such result; every dosed subject with a baseline-visit result has one in LB and VS."""
    trial = simulated(which, kind)
    manager = get_user(trial.engine, "sim-data-manager")
    assert manager is not None and manager.role is Role.DATA_MANAGER
    run_export(trial.engine, manager, "sdtm", tmp_path, with_arms=False)
    dosed = {r["USUBJID"]: _moment(r["RFXSTDTC"]) for r in _xpt(tmp_path, "dm") if r["RFXSTDTC"]}
    assert len(dosed) >= 10 and all(dosed.values())
    baseline = next(v for v in trial.protocol.visits if v.kind == "scheduled" and v.day <= 0)
    for domain in ("lb", "vs"):
        prefix = domain.upper()
        rows = _xpt(tmp_path, domain)
        before: dict[tuple[str, str], list[tuple[dt.datetime, int]]] = {}
        for i, r in enumerate(rows):
            at, dose = _moment(r[f"{prefix}DTC"]), dosed.get(r["USUBJID"])
            if r[f"{prefix}ORRES"] and at is not None and dose is not None and at < dose:
                before.setdefault((r["USUBJID"], r[f"{prefix}TESTCD"]), []).append((at, i))
        assert before, f"{prefix}: no result before the first dose"
        flagged = {(r["USUBJID"], r[f"{prefix}TESTCD"]): i for i, r in enumerate(rows) if r[f"{prefix}LOBXFL"] == "Y"}
        assert flagged == {key: max(found)[1] for key, found in before.items()}, prefix
        with_baseline = {r["USUBJID"] for r in rows if r["VISIT"] == baseline.name and r[f"{prefix}ORRES"]}
        assert with_baseline and with_baseline <= set(dosed)
        assert with_baseline <= {subject for subject, _ in flagged}, (prefix, with_baseline - set(flagged))
