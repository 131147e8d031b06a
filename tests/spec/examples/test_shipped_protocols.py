"""Every protocol shipped under protocols/ is another trial with no code of its own: each file found there (with its
``.simulation.yaml``) passes ``protocol check``, is simulated through the services on SQLite and PostgreSQL,
analysed as it declares, and exported in every format. A new example dropped into protocols/ joins these specs.

| spec                                   | trials                                                            |
|----------------------------------------|-------------------------------------------------------------------|
| protocol check, simulation, analysis   | every shipped protocol: each estimand has a result or a refusal   |
| every export format                    | every shipped protocol: arms exactly where the masking allows     |
| visit dates                            | every shipped protocol: each visit's target is the site's date    |
| no masking anywhere                    | open label (``masking.blinding: open``)                           |
| arms kept from blinded roles           | every other trial                                                 |
| the actual arm without a treatment record | trials whose analysis plan records no treatment (SDTM DM)      |
| the date line                          | trials with sites east of UTC+12 and west of UTC-10               |
| a binary primary counted by hand       | trials whose primary reads a yes/no or choice field at a visit    |

Expected values are worked out here from the exported files or the stored rows with zoneinfo, statsmodels and
scipy, never with the code under test. Each trial is simulated once per database (12 enrolled) and shared.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from scipy.stats import fisher_exact
from sqlalchemy import Engine, select
from statsmodels.stats.proportion import confint_proportions_2indep
from typer.testing import CliRunner

from tests.conftest import ROOT, fresh_database
from tests.trialfixtures import PASSWORD
from trialwright.analysis.engine import AnalysisReport
from trialwright.analysis.report import write_report
from trialwright.cli.main import app as cli
from trialwright.domain.masking import masked_roles, sees_arms
from trialwright.domain.roles import Role
from trialwright.exports.registry import FORMATS
from trialwright.protocol import Protocol, load_protocol
from trialwright.services.analysis import run_analysis
from trialwright.services.exports import ExportError, run_export
from trialwright.services.forms import lock_trial, participant_schedule
from trialwright.services.randomization import RandomizationError, preparation_queue, prepare
from trialwright.services.simulation import SimulationSummary, simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import UserView, get_user, reset_password
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.randomization_tables import allocation_entries, preparations
from trialwright.store.safety_tables import ae_reports
from trialwright.store.screening_tables import consents, participants, screenings

PROTOCOLS = sorted(p for p in (ROOT / "protocols").glob("*.yaml") if not p.name.endswith(".simulation.yaml"))
DECLARED = {p.name: load_protocol(p).protocol for p in PROTOCOLS}
BACKENDS = ("sqlite", "postgresql")
ENROLLED = 12
SEED = 19


def _offsets(protocol: Protocol) -> list[float]:
    """Each site's UTC offset in hours, in January and in July (daylight saving both ways)."""
    moments = (dt.datetime(2025, 1, 15, 12, tzinfo=dt.UTC), dt.datetime(2025, 7, 15, 12, tzinfo=dt.UTC))
    return [
        m.astimezone(ZoneInfo(s.timezone)).utcoffset().total_seconds() / 3600  # type: ignore[union-attr]
        for s in protocol.sites
        for m in moments
    ]


def _binary_primary(protocol: Protocol) -> bool:
    return any(
        o.kind == "primary" and o.estimand.variable.kind == "binary" and o.estimand.variable.fields
        for o in protocol.outcomes
    )


OPEN_LABEL = [p for p in PROTOCOLS if not masked_roles(DECLARED[p.name])]
MASKED = [p for p in PROTOCOLS if masked_roles(DECLARED[p.name])]
NO_TREATMENT_RECORD = [
    p for p in PROTOCOLS if DECLARED[p.name].analysis_plan is None or DECLARED[p.name].analysis_plan.treatment is None
]
DATE_LINE = [p for p in PROTOCOLS if max(_offsets(DECLARED[p.name])) >= 12 and min(_offsets(DECLARED[p.name])) <= -10]
BINARY_PRIMARY = [p for p in PROTOCOLS if _binary_primary(DECLARED[p.name])]


def _cases(paths: list[Path]) -> list[Any]:
    return [pytest.param(p, kind, id=f"{p.stem}-{kind}") for p in paths for kind in BACKENDS]


@dataclass(frozen=True)
class Shipped:
    """A shipped protocol simulated in one database: blinded analysis before the lock, unblinded after it."""

    path: Path
    protocol: Protocol
    engine: Engine
    summary: SimulationSummary
    blinded: AnalysisReport
    final: AnalysisReport

    def user(self, role: Role) -> UserView:
        found = get_user(self.engine, "sim-" + role.value.replace("_", "-"))
        assert found is not None
        return found


@pytest.fixture(scope="module")
def shipped(
    tmp_path_factory: pytest.TempPathFactory, postgres_available: str | None
) -> Iterator[Callable[[Path, str], Shipped]]:
    """Each (protocol, database) simulated once, on first use, for every spec of this module."""
    made: dict[tuple[str, str], Shipped] = {}
    with ExitStack() as stack:

        def get(path: Path, kind: str) -> Shipped:
            if (path.name, kind) not in made:
                reason = postgres_available if kind == "postgresql" else None
                url = stack.enter_context(fresh_database(kind, tmp_path_factory.mktemp(path.stem), reason))
                engine = make_engine(url)
                stack.callback(engine.dispose)
                loaded = load_protocol(path)
                init_trial(engine, loaded)
                summary = simulate(engine, path, None, SEED, enrolled=ENROLLED)
                partial = Shipped(path, loaded.protocol, engine, summary, None, None)  # type: ignore[arg-type]
                blinded = run_analysis(engine, partial.user(Role.BLINDED_STATISTICIAN)).report
                manager = partial.user(Role.DATA_MANAGER)  # a rehearsal leaves blockers: the lock is overridden
                reset_password(engine, manager.username, PASSWORD, actor="test")
                lock_trial(engine, manager, "final analysis", password=PASSWORD)
                final = run_analysis(engine, partial.user(Role.UNBLINDED_STATISTICIAN), unblinded=True).report
                made[(path.name, kind)] = Shipped(path, loaded.protocol, engine, summary, blinded, final)
            return made[(path.name, kind)]

        yield get


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _allocations(trial: Shipped) -> dict[str, Any]:
    with session_scope(trial.engine) as session:
        rows = session.execute(select(allocation_entries).where(allocation_entries.c.participant_id.is_not(None)))
        return {r.participant_id: r for r in rows}


# --- every shipped protocol ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PROTOCOLS, ids=[p.stem for p in PROTOCOLS])
def test_every_shipped_protocol_passes_protocol_check_and_has_a_simulation_file(path: Path) -> None:
    result = CliRunner().invoke(cli, ["protocol", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK {path}")
    assert path.with_name(path.stem + ".simulation.yaml").exists()


@pytest.mark.parametrize(("path", "kind"), _cases(PROTOCOLS))
def test_each_trial_simulates_through_the_services_with_nothing_refused(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str
) -> None:
    trial = shipped(path, kind)
    assert trial.summary.enrolled == trial.summary.randomized == ENROLLED
    assert trial.summary.forms_saved > ENROLLED * 5
    # No value a service turned down: no visit is attempted after a participant's withdrawal.
    assert trial.summary.refusals == {}, trial.summary.refusals


@pytest.mark.parametrize(("path", "kind"), _cases(PROTOCOLS))
def test_a_simulated_death_gives_the_cause_the_simulation_file_names(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str
) -> None:
    """The cause of death is the fatal event's term, or the file's own ``cause`` for it; never a placeholder."""
    trial = shipped(path, kind)
    death = yaml.safe_load(path.with_name(path.stem + ".simulation.yaml").read_text(encoding="utf-8"))["death"]
    with trial.engine.connect() as c:
        fatal = [json.loads(a) for (a,) in c.execute(select(ae_reports.c.assessment))]
    causes = {a["death_cause"] for a in fatal if a.get("outcome") == "fatal"}
    assert bool(causes) == (trial.summary.deaths > 0)
    assert causes <= {death.get("cause", death["term"])}, causes


def _local_day(value: str, tz: ZoneInfo) -> dt.date:
    """A stored date (ISO) or date-time (ISO with offset) as the site's local date."""
    return dt.datetime.fromisoformat(value).astimezone(tz).date() if "T" in value else dt.date.fromisoformat(value)


@pytest.mark.parametrize(("path", "kind"), _cases(PROTOCOLS))
def test_simulated_data_obey_every_built_in_rule(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str
) -> None:
    """Read from the stored rows, not through the rules' code: screening <= consent <= randomization <= the dose
    prepared (each dose of an arm with something to prepare) <= the treatment record; no date on
    a form before the consent (but for a date that may precede enrolment); no date on the treatment record before
    the randomization; every declared not_before holds; and no visit is held after the participant's death but
    the one that records it."""
    trial = shipped(path, kind)
    protocol = trial.protocol
    treatment = protocol.analysis_plan.treatment if protocol.analysis_plan else None
    record = protocol.safety.death_record
    with session_scope(trial.engine) as session:
        people = {r.participant_id: r for r in session.execute(select(participants))}
        screened = {r.id: r.screened_on for r in session.execute(select(screenings))}
        consented: dict[int, dt.datetime] = {}
        for r in session.execute(select(consents).where(consents.c.decision == "consent")):
            consented[r.screening_id] = min(r.obtained_at, consented.get(r.screening_id, r.obtained_at))
        randomized = {r.participant_id: r.randomized_at for r in session.execute(
            select(allocation_entries).where(allocation_entries.c.participant_id.is_not(None)))}  # fmt: skip
        prepared = {r.participant_id: r.prepared_at for r in session.execute(
            select(allocation_entries.c.participant_id, preparations.c.prepared_at).join(
                preparations, preparations.c.preparation_code == allocation_entries.c.preparation_code))}  # fmt: skip
        stored = session.execute(
            select(form_records.c.participant_id, visit_records.c.visit_id, visit_records.c.visit_date,
                   form_records.c.form_id, form_records.c.form_values)
            .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
        ).all()  # fmt: skip
    checked = 0
    for pid, person in people.items():
        consent = consented[person.screening_id]
        assert screened[person.screening_id] <= consent.astimezone(ZoneInfo(protocol.site(person.site).timezone)).date()
        assert pid not in randomized or consent <= randomized[pid]
        assert pid not in prepared or randomized[pid] <= prepared[pid]
    arms_prepared = {a.code for a in protocol.arms if a.preparation() is not None}
    allocated = {pid: r.arm for pid, r in _allocations(trial).items()}
    assert {pid for pid, arm in allocated.items() if arm in arms_prepared} == set(prepared), "each dose is prepared"
    died: dict[str, dt.date] = {}
    if record is not None:
        for pid, visit, _, form_id, values in stored:
            found = json.loads(values)
            if visit == record.visit and form_id == record.form and \
                    found.get(record.status_field, {}).get("value") == record.status_value:  # fmt: skip
                died[pid] = dt.date.fromisoformat(found[record.date_field]["value"])
    for pid, visit, visit_date, form_id, values in stored:
        person = people[pid]
        tz = ZoneInfo(protocol.site(person.site).timezone)
        consent = consented[person.screening_id]
        found = json.loads(values)
        if pid in died and visit_date is not None and (record is None or visit != record.visit):
            assert visit_date <= died[pid], (pid, visit, "held after the death")
        for f in protocol.form(form_id).fields:
            value = found.get(f.id, {}).get("value")
            if f.type.value not in {"date", "datetime"} or not isinstance(value, str):
                continue
            checked += 1
            if f.type.value == "datetime":
                moment = dt.datetime.fromisoformat(value)
                assert moment >= consent or f.may_precede_enrolment, (pid, form_id, f.id, "before consent")
                if treatment is not None and form_id == treatment.form and pid in randomized:
                    assert moment >= randomized[pid], (pid, form_id, f.id, "treated before randomization")
                    assert pid not in prepared or moment >= prepared[pid], (pid, form_id, f.id, "before preparation")
            elif not f.may_precede_enrolment:
                assert _local_day(value, tz) >= consent.astimezone(tz).date(), (pid, form_id, f.id, "before consent")
            for ref in f.not_before:
                if ref.startswith("participant."):
                    continue
                other_form, other = ref.split(".", 1) if "." in ref else (form_id, ref)
                earlier = next((json.loads(v).get(other, {}).get("value") for p, vi, _, fo, v in stored
                                if p == pid and vi == visit and fo == other_form), None)  # fmt: skip
                if isinstance(earlier, str):
                    assert _local_day(earlier, tz) <= _local_day(value, tz), (pid, form_id, f.id, ref)
    assert checked > ENROLLED, "the simulated trial stores dates to check"


@pytest.mark.parametrize(("path", "kind"), _cases(PROTOCOLS))
def test_every_declared_estimand_has_a_result_or_a_refusal_that_says_why(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str
) -> None:
    trial = shipped(path, kind)
    report, protocol = trial.final, trial.protocol
    pairs = len(protocol.arms) - 1
    assert report.outcome_ids == tuple(o.id for o in protocol.outcomes)
    assert set(report.groups) == {a.name for a in protocol.arms}
    for outcome in protocol.outcomes:
        estimand = outcome.estimand
        results = [r for r in report.outcomes if r.outcome_id == outcome.id]
        assert len(results) == max(1, len(estimand.variable.fields) if estimand.variable.kind == "continuous" else 1)
        for result in results:
            assert len(result.comparisons) == (1 + len(estimand.sensitivity)) * pairs, outcome.id
            assert sum(c.primary for c in result.comparisons) == pairs, outcome.id
            for c in result.comparisons:
                if c.estimate is None:
                    assert c.note, f"{outcome.id}: {c.method} gives no estimate and does not say why"
                elif c.lower is not None and c.upper is not None:
                    assert c.lower <= c.estimate <= c.upper, (outcome.id, c.method)
            assert all(x.reason for x in result.excluded)
            assert sum(result.analysed.values()) + len(result.excluded) == sum(result.in_set.values())
    report.consort.validate()
    # Feasibility rates and the CONSORT pilot lines belong to a pilot trial only.
    assert bool(report.pilot) == bool(report.consort.pilot) == protocol.trial.design.pilot


@pytest.mark.parametrize(("path", "kind"), _cases(PROTOCOLS))
def test_every_export_format_is_written_with_arms_exactly_where_the_masking_allows(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str, tmp_path: Path
) -> None:
    trial = shipped(path, kind)
    manager = trial.user(Role.DATA_MANAGER)
    with_arms = sees_arms(trial.protocol, Role.DATA_MANAGER)
    allocated = {pid: row.arm for pid, row in _allocations(trial).items()}
    for fmt in sorted(FORMATS):
        result = run_export(trial.engine, manager, fmt, tmp_path / fmt, with_arms=with_arms)
        assert result.files and all(f.stat().st_size > 0 for f in result.files), fmt
    people = {r["participant_id"]: r for r in _rows(tmp_path / "csv" / "participants.csv")}
    assert set(allocated) <= set(people)
    assert {pid: people[pid].get("arm") for pid in allocated} == (allocated if with_arms else dict.fromkeys(allocated))
    dm = {r["SUBJID"]: r for r in _rows(tmp_path / "sdtm" / "sdtm" / "dm.csv")}
    # A blinded extract writes the same word for every assigned arm (SDTMIG: null arms are for ARMNRS's reasons).
    assert {pid: dm[pid]["ARMCD"] for pid in allocated} == (allocated if with_arms else
                                                             dict.fromkeys(allocated, "BLINDED"))  # fmt: skip
    for pid, arm in allocated.items():
        bundle = json.loads((tmp_path / "fhir" / "participants" / f"{pid}.json").read_text(encoding="utf-8"))
        subject = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ResearchSubject")
        assert subject.get("assignedArm") == (arm if with_arms else None)
    codebook = _rows(tmp_path / "codebook" / "codebook.csv")
    fields = {(f.id, g.id) for f in trial.protocol.forms for g in f.fields}
    assert len(codebook) >= len(fields)


@pytest.mark.parametrize(("path", "kind"), _cases(PROTOCOLS))
def test_each_visit_falls_on_the_sites_own_calendar(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str
) -> None:
    """Each scheduled visit's target is its reference event's date at the site plus the visit's day (the
    randomization's date in the site's zone, or the date the event visit dating it was held), and a visit held on
    a date is in or out of its window as those dates say."""
    trial = shipped(path, kind)
    protocol = trial.protocol
    zones = {s.code: ZoneInfo(s.timezone) for s in protocol.sites}
    allocated = _allocations(trial)
    with session_scope(trial.engine) as session:
        site = dict(session.execute(select(participants.c.participant_id, participants.c.site)).all())
        held = {(r.participant_id, r.visit_id): r.visit_date for r in session.execute(select(visit_records))}
    manager = trial.user(Role.DATA_MANAGER)
    checked = 0
    for pid, allocation in allocated.items():
        dates = {"randomization": allocation.randomized_at.astimezone(zones[site[pid]]).date()}
        for visit in protocol.visits:
            if visit.kind == "event" and visit.reference == visit.id and held.get((pid, visit.id)):
                dates[visit.id] = held[(pid, visit.id)]
        for planned in participant_schedule(trial.engine, manager, pid).visits:
            visit = protocol.visit(planned.visit_id)
            if visit.kind != "scheduled" or visit.reference not in dates:
                continue
            target = dates[visit.reference] + dt.timedelta(days=visit.day)
            assert planned.target == target, (pid, visit.id)
            if planned.visit_date is not None:
                inside = (
                    target - dt.timedelta(days=visit.window.before)
                    <= planned.visit_date
                    <= target + dt.timedelta(days=visit.window.after)
                )
                assert (planned.status.value == "done") == inside, (pid, visit.id, planned.status)
                assert planned.visit_date == held[(pid, visit.id)]
                checked += 1
    assert checked >= ENROLLED * 2


# --- open label and masked trials ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "kind"), _cases(OPEN_LABEL))
def test_an_open_label_trial_shows_the_arms_to_every_role_and_has_nothing_to_prepare_blind(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str, tmp_path: Path
) -> None:
    trial = shipped(path, kind)
    names = {a.name for a in trial.protocol.arms}
    assert not masked_roles(trial.protocol)
    # The blinded statistician's analysis, before the lock: by arm, said to be open label, in every file.
    report = trial.blinded
    assert report.mode == "Analysis by arm (open label)" and not report.unblinded
    assert set(report.groups) == names
    assert all(c.estimate is not None or c.note for o in report.outcomes for c in o.comparisons)
    assert any(o.comparisons for o in report.outcomes)
    write_report(report, tmp_path / "report")
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "Analysis by arm (open label)" in html and all(name in html for name in names)
    assert set(json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))["groups"]) == names
    # Both blinded-by-default exporters export the arms.
    for role in (Role.DATA_MANAGER, Role.BLINDED_STATISTICIAN):
        done = run_export(trial.engine, trial.user(role), "csv", tmp_path / role.value, with_arms=True)
        assert done.with_arms
        arms = {r["arm"] for r in _rows(tmp_path / role.value / "participants.csv") if r["randomization_number"]}
        assert arms <= {a.code for a in trial.protocol.arms} and len(arms) == len(names)
    # An arm the protocol gives nothing to prepare is never queued for the pharmacist, who cannot record one.
    pharmacist = trial.user(Role.UNBLINDED_PHARMACIST)
    nothing = {a.code for a in trial.protocol.arms if a.preparation() is None}
    allocated = _allocations(trial)
    queue = {item.participant_id: item for item in preparation_queue(trial.engine, pharmacist)}
    for pid, allocation in allocated.items():
        assert queue[pid].to_prepare is (allocation.arm not in nothing)
        if allocation.arm in nothing:
            with pytest.raises((RandomizationError, ValueError), match="nothing to prepare"):
                prepare(trial.engine, pharmacist, allocation.preparation_code, {})


@pytest.mark.parametrize(("path", "kind"), _cases(MASKED))
def test_a_masked_trial_keeps_the_arms_from_the_blinded_statistician_and_the_data_manager(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str, tmp_path: Path
) -> None:
    trial = shipped(path, kind)
    report = trial.blinded
    assert report.mode == f"Blinded analysis ({trial.protocol.masking.blinding}-blind trial)"  # each is double-blind
    assert not {a.name for a in trial.protocol.arms} & set(report.groups)
    efficacy = {o.id for o in trial.protocol.outcomes if o.estimand.variable.adverse_event is None}
    assert not [c for o in report.outcomes if o.outcome_id in efficacy for c in o.comparisons], (
        "a blinded analysis compares no efficacy outcome between groups"
    )
    write_report(report, tmp_path / "report")
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert not any(a.name in html for a in trial.protocol.arms)
    masked = r"with_arms: a data manager is masked in this trial \(masking.blinding: double\) and may not see the arms"
    with pytest.raises(ExportError, match=masked):
        run_export(trial.engine, trial.user(Role.DATA_MANAGER), "csv", tmp_path / "csv", with_arms=True)


@pytest.mark.parametrize(("path", "kind"), _cases(NO_TREATMENT_RECORD))
def test_without_a_treatment_record_sdtm_takes_the_allocated_arm_as_the_arm_received(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str, tmp_path: Path
) -> None:
    """As the analysis does: nothing records who went untreated, so no one is written 'ASSIGNED, NOT TREATED'."""
    trial = shipped(path, kind)
    run_export(trial.engine, trial.user(Role.UNBLINDED_STATISTICIAN), "sdtm", tmp_path / "sdtm", with_arms=True)
    dm = {r["SUBJID"]: r for r in _rows(tmp_path / "sdtm" / "sdtm" / "dm.csv")}
    for pid, allocation in _allocations(trial).items():
        assert (dm[pid]["ARMCD"], dm[pid]["ACTARMCD"], dm[pid]["ARMNRS"]) == (allocation.arm, allocation.arm, "")


# --- across the date line --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "kind"), _cases(DATE_LINE))
def test_across_the_date_line_one_instant_is_two_dates_and_each_site_keeps_its_own(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str
) -> None:
    """At a site east of UTC+12 or west of UTC-10 most working hours fall on another UTC date; every stored date
    (screening, visits) is the site's, so a visit dated from UTC would be a day off."""
    trial = shipped(path, kind)
    zones = {s.code: ZoneInfo(s.timezone) for s in trial.protocol.sites}
    allocated = _allocations(trial)
    with session_scope(trial.engine) as session:
        people = {r.participant_id: r for r in session.execute(select(participants))}
        held = {(r.participant_id, r.visit_id): r.visit_date for r in session.execute(select(visit_records))}
    moved = 0
    for pid, allocation in allocated.items():
        local = allocation.randomized_at.astimezone(zones[people[pid].site]).date()
        utc = allocation.randomized_at.astimezone(dt.UTC).date()
        assert people[pid].enrolled_at.astimezone(zones[people[pid].site]).date() <= local
        baseline = next(v for v in trial.protocol.visits if v.reference == "randomization" and v.day == 0)
        assert held[(pid, baseline.id)] == local, pid
        moved += utc != local
    assert moved > 0, "no randomization fell on another UTC date: this trial does not test the date line"
    assert {p.site for p in people.values()} == set(zones), "every site enrolled"


# --- a binary primary, counted by hand ---------------------------------------------------------------------------


def _is_event(raw: str, kind: str, event_values: list[str]) -> bool:
    if kind == "boolean":
        return ("True" if raw in {"1", "True", "true"} else "False") in event_values
    return raw in event_values


@pytest.mark.parametrize(("path", "kind"), _cases(BINARY_PRIMARY))
def test_a_binary_primary_is_the_two_by_two_table_of_the_exported_csv(
    shipped: Callable[[Path, str], Shipped], path: Path, kind: str, tmp_path: Path
) -> None:
    """Per arm, participants with the event at the visit from the exported forms (a death by the visit's planned
    day counted as the strategy says; no value, not analysed); the risk difference, Newcombe's interval, Fisher's
    p and the risk ratio are statsmodels' and scipy's on that table."""
    trial = shipped(path, kind)
    protocol = trial.protocol
    run_export(trial.engine, trial.user(Role.UNBLINDED_STATISTICIAN), "csv", tmp_path / "csv", with_arms=True)
    people = {r["participant_id"]: r for r in _rows(tmp_path / "csv" / "participants.csv") if r["arm"]}
    zones = {s.code: ZoneInfo(s.timezone) for s in protocol.sites}
    record = protocol.safety.death_record
    died: dict[str, dt.date] = {}
    if record is not None:
        for row in _rows(tmp_path / "csv" / "forms" / f"{record.form}.csv"):
            if row[record.status_field] == record.status_value and row[record.date_field]:
                died[row["participant_id"]] = dt.date.fromisoformat(row[record.date_field])
    names = {a.code: a.name for a in protocol.arms}
    for outcome in (o for o in protocol.outcomes if o.kind == "primary" and o.estimand.variable.kind == "binary"):
        variable = outcome.estimand.variable
        form_id, _, field_id = variable.fields[0].partition(".")
        field = protocol.form(form_id).field(field_id)
        death = next((e for e in outcome.estimand.intercurrent_events if e.event == "death"), None)
        visit = protocol.visit(str(variable.at))
        values = {r["participant_id"]: r[field_id] for r in _rows(tmp_path / "csv" / "forms" / f"{form_id}.csv")
                  if r["visit_id"] == visit.id and r[field_id] != ""}  # fmt: skip
        table = {name: [0, 0] for name in names.values()}
        for pid, person in people.items():
            randomized = dt.datetime.fromisoformat(person["randomized_at"]).astimezone(zones[person["site"]]).date()
            dead = pid in died and (died[pid] - randomized).days <= visit.day  # by the visit's planned day
            if death is not None and death.strategy == "composite" and dead:
                table[names[person["arm"]]][0] += death.value == "event"
                table[names[person["arm"]]][1] += 1
                continue
            if pid not in values:
                continue  # no value at the visit: listed as not analysed
            table[names[person["arm"]]][0] += _is_event(values[pid], field.type.value, variable.event_values)
            table[names[person["arm"]]][1] += 1
        result = next(r for r in trial.final.outcomes if r.outcome_id == outcome.id)
        assert {g: [v["k"], v["n"]] for g, v in result.extra["participants_with_event"].items()} == table
        assert len(result.excluded) == len(people) - sum(n for _, n in table.values())
        reference = trial.final.groups[0]
        (k0, n0) = table[reference]
        for c in result.comparisons:
            (k1, n1) = table[c.label.split(" vs ")[0]]
            if c.primary:  # newcombe: the risk difference
                lower, upper = confint_proportions_2indep(k1, n1, k0, n0, method="newcomb", compare="diff")
                assert c.estimate == pytest.approx(k1 / n1 - k0 / n0, abs=1e-12)
                assert (c.lower, c.upper) == (pytest.approx(lower, abs=1e-9), pytest.approx(upper, abs=1e-9))
                expected_p = fisher_exact([[k1, n1 - k1], [k0, n0 - k0]]).pvalue
                assert c.p_value == pytest.approx(expected_p, rel=1e-9)
            elif "Katz" in c.method and c.estimate is not None:
                assert c.estimate == pytest.approx((k1 / n1) / (k0 / n0), rel=1e-12)
