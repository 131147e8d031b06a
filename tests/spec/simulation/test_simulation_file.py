"""Every setting of a simulation file is checked where the file is loaded, before any database is created or
written: a setting that would crash the run, silently do nothing, or draw only values a rule refuses is refused
naming the simulation file, the setting's path and the rule.

| setting (in the first trial's shipped file, changed)          | refused with                                    |
|---------------------------------------------------------------|-------------------------------------------------|
| an expected event's ``grades: [1]``, ``[1, 2, 3]``, ``[2, 1]`` | ``grades: ... [lowest, highest]``               |
| ``grades`` off the CTCAE scale of an event that recovers       | ``leaves the CTCAE v5.0 grades 1-4``            |
| a distribution for a derived field (``blood_gas.pf_ratio``)    | ``a derived field is computed ..., never drawn`` |
| a misspelt key (``visits.mised``, ``fields.X.rund``)           | ``unknown key ...``                             |
| a probability above 1, a distribution without its two numbers | the rule                                        |
| a form to sign that the protocol does not have                 | ``not a form of the protocol``                  |
| a distribution for a date or date-time field                   | what it stores there, what it can draw          |
| the death record's end of stay or admission date               | ``writes this date of the death record's form`` |
| the death record's status: not alive, or not a ``choice``      | ``drawn among ... alive_values``                |
| the consent field in ``eligible``, ``vary``, a failure's set   | ``set from the consent record, not typed in``   |
| ``eligible`` leaving a field a criterion needs unset           | ``leaves X unset``, incomplete                  |
| a recruitment start before the consent form version in use     | both dates, the version, ``start on or after``  |
| a recruitment window whose trial reaches the sites' today      | the last date, today, what to change |

The last two are dates the run would otherwise find wrong only mid-way (the first consent refused) or never (visits
and audit entries dated in the future): both are refused before any database is created or written.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.spec.forms.conftest import TODAY
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.cli.main import app as cli
from trialwright.protocol import load_protocol
from trialwright.services.simulation import SimulationError, simulate, simulation_file_for
from trialwright.services.trial import init_trial
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.screening_tables import screenings
from trialwright.store.tables import audit_entries

Change = Callable[[dict[str, Any]], Any]


def _expected(**spec: Any) -> Change:
    return lambda plan: plan["adverse_events"]["expected"]["infusion_related_reaction"].update(spec)


def _field(key: str, spec: Any) -> Change:
    return lambda plan: plan["fields"].update({key: spec})


def _window(start: dt.date, days: int) -> Change:
    return lambda plan: plan["recruitment"].update(start=start, days=days)


#: The first trial's shipped file: a stay of up to 60 days (length_of_stay's clip [2, 60]; its discharge visit is held
#: when the stay ends), then the site's weekly signing session (Friday) at most 7 days after the visit signed. Its
#: visits end on day 7 (+1 day of window, +1 late) and its adverse events by day 7: the stay and the signing set it.
REACH = 60 + 7
#: A window of 300 days starting 100 days ago: its last screening (start + 299 days) lies 199 days ahead.
FUTURE_START = TODAY - dt.timedelta(days=100)
FUTURE_LAST = FUTURE_START + dt.timedelta(days=299 + REACH)


GRADES = "adverse_events.expected.infusion_related_reaction.grades"
CASES: list[tuple[str, Change, str]] = [
    # 1. grades is [lowest, highest], inclusive, on the protocol's CTCAE scale (an event that recovers: 1-4)
    ("grades one number", _expected(grades=[1]), f"{GRADES}: [1] must be [lowest, highest]: two whole CTCAE grades"),
    ("grades three numbers", _expected(grades=[1, 2, 3]), f"{GRADES}: [1, 2, 3] must be [lowest, highest]"),
    ("grades reversed", _expected(grades=[2, 1]), f"{GRADES}: [2, 1]: [lowest, highest] with lowest <= highest"),
    (
        "grade 0",
        _expected(grades=[0, 2]),
        f"{GRADES}: [0, 2] leaves the CTCAE v5.0 grades 1-4 of an event that recovers",
    ),
    ("grade 5", _expected(grades=[1, 5]), f"{GRADES}: [1, 5] leaves the CTCAE v5.0 grades 1-4"),
    ("grades text", _expected(grades="1-2"), f"{GRADES}: '1-2' must be [lowest, highest]"),
    # 2. a derived field is computed, never drawn
    (
        "derived field",
        _field("blood_gas.pf_ratio", {"normal": [150, 40], "round": 0}),
        "fields.blood_gas.pf_ratio: a derived field is computed from its formula at every save, never drawn",
    ),
    # 3. what else would be silently ignored or crash
    (
        "misspelt visits key",
        lambda plan: plan["visits"].update(mised=0.5),
        "visits: unknown key mised (known: missed, out_of_window)",
    ),
    (
        "misspelt distribution key",
        _field("vitals.pulse", {"normal": [98, 14], "rund": 0}),
        "fields.vitals.pulse: unknown key rund",
    ),
    (
        "misspelt expected key",
        _expected(grade=[1, 2]),
        "adverse_events.expected.infusion_related_reaction: unknown key grade (known: rate, term, day, grades)",
    ),
    (
        "misspelt recruitment key",
        lambda plan: plan["recruitment"].update(site={"RAZ": 1}),
        "recruitment: unknown key site (known: start, days, sites)",
    ),
    (
        "probability above 1",
        lambda plan: plan.update(withdrawal=3),
        "withdrawal: 3 is not a probability (a number from 0 to 1)",
    ),
    (
        "a failure without p",
        lambda plan: plan["screening"]["failures"].append({"set": {"malignancy": True}}),
        "screening.failures[5]: needs both p (a probability) and set",
    ),
    (
        "normal with one number",
        _field("vitals.pulse", {"normal": [98]}),
        "fields.vitals.pulse.normal: [98] must be two numbers, [mean, sd]",
    ),
    (
        "two distributions",
        _field("vitals.pulse", {"normal": [98, 14], "uniform": [60, 120]}),
        "fields.vitals.pulse: names normal and uniform of normal, lognormal, uniform, choice, bernoulli: exactly one",
    ),
    ("no distribution", _field("vitals.pulse", {"round": 0}), "fields.vitals.pulse: names none of normal"),
    (
        "clip reversed",
        _field("vitals.pulse", {"normal": [98, 14], "clip": [150, 55]}),
        "fields.vitals.pulse.clip: [150, 55]: [low, high] with the first no greater than the second",
    ),
    (
        "correlation above 1",
        _field("vitals.spo2", {"normal": [89, 4], "round": 0, "follow_up": 5}),
        "fields.vitals.spo2.follow_up: 5 is not a correlation",
    ),
    (
        "unknown form to sign",
        lambda plan: plan["lifecycle"].update(sign_forms=["labs", "lab"]),
        "lifecycle.sign_forms.lab: not a form of the protocol: nothing would be signed",
    ),
    (
        "unknown screening field",
        lambda plan: plan["screening"]["vary"].update(agee={"normal": [52, 9]}),
        "screening.vary.agee: not a screening field of the protocol",
    ),
    (
        "copied from no screening field",
        _field("demographics.sex", {"from_screening": "gender"}),
        "fields.demographics.sex.from_screening: 'gender' is not a screening field of the protocol",
    ),
    (
        "a code the choice field does not offer",
        _field("vitals.consciousness", {"choice": {"alert": 0.9, "confused": 0.1}}),
        "fields.vitals.consciousness.choice: confused: not a choice of the field",
    ),
    (
        "no recruitment days",
        lambda plan: plan["recruitment"].update(days=0),
        "recruitment.days: 0 is not a whole number of days >= 1",
    ),
    # 4. a date or date-time field holds the visit's date or moment: a distribution there would be ignored
    (
        "a distribution for a date field",
        _field("chest_xray.taken_on", {"uniform": [3, 30]}),
        "fields.chest_xray.taken_on: a date field is not drawn from a distribution: the simulator would store the "
        "visit's date whatever it says; it draws for a date field only {years_before: FIELD}",
    ),
    (
        "a distribution for a date-time field",
        _field("labs.sampled_at", {"normal": [10, 2]}),
        "fields.labs.sampled_at: a datetime field is not drawn from a distribution: the simulator would store the "
        "visit's moment at the site whatever it says; it draws for a datetime field only {from_screening: FIELD}",
    ),
    (
        "a date of the death record's form",
        _field("hospital_course.admitted_on", {"years_before": "age"}),
        "fields.hospital_course.admitted_on: the simulator writes this date of the death record's form",
    ),
    (
        "the death record's status drawn as death",
        _field("hospital_course.status", {"choice": {"discharged": 0.8, "died": 0.2}}),
        "fields.hospital_course.status.choice: died: the status of a participant who lives is drawn among the death "
        "record's alive_values (discharged, transferred); a death is drawn by the death setting",
    ),
    (
        "the death record's status not a choice",
        _field("hospital_course.status", {"from_screening": "sex"}),
        "fields.hospital_course.status: the status of a participant who lives is drawn only as a choice",
    ),
    # 4a. the consent field is set from the consent record: a value typed in would stop the first screening
    (
        "the consent field in eligible",
        lambda plan: plan["screening"]["eligible"].update(informed_consent=True),
        "screening.eligible.informed_consent: is set from the consent record, not typed in",
    ),
    (
        "the consent field in vary",
        lambda plan: plan["screening"]["vary"].update(informed_consent={"bernoulli": 0.9}),
        "screening.vary.informed_consent: is set from the consent record, not typed in",
    ),
    (
        "the consent field in a failure",
        lambda plan: plan["screening"]["failures"].append({"p": 0.1, "set": {"informed_consent": False}}),
        "screening.failures[5].set.informed_consent: is set from the consent record, not typed in",
    ),
    (
        "a screening left incomplete",
        lambda plan: plan["screening"]["eligible"].pop("fio2"),
        "screening.eligible: leaves fio2 unset (no setting gives a value), so every screening would be incomplete",
    ),
    # 5. the consent form version the simulated patients sign is in use only from its effective_from (2021-03-17)
    (
        "recruitment before the consent form",
        lambda plan: plan["recruitment"].update(start=dt.date(2021, 3, 1)),
        "recruitment.start: 2021-03-01 is before 2021-03-17, the first day of the protocol's consent form version 1.0 "
        "(consent_versions: its newest, on which every simulated patient consents); a consent before it is refused: "
        "start on or after 2021-03-17",
    ),
    # 6. nothing is written on or after the sites' today (both sites of the first trial are in Tehran)
    (
        "a trial reaching past today",
        _window(FUTURE_START, 300),
        f"recruitment.start, recruitment.days: {FUTURE_START.isoformat()} and 300 days could reach "
        f"{FUTURE_LAST.isoformat()} (the last screening on {(FUTURE_START + dt.timedelta(days=299)).isoformat()}, "
        f"then {REACH} days: a stay of up to 60 days (length_of_stay), then the weekly signing session up to 7 days "
        f"later), but today is {TODAY.isoformat()} at GOL: a simulated trial is written only before the sites' today, "
        f"never into the future; start on or before {(TODAY - dt.timedelta(days=1 + REACH + 299)).isoformat()}",
    ),
    (
        "a trial ending today",
        _window(TODAY - dt.timedelta(days=REACH + 9), 10),
        f"could reach {TODAY.isoformat()} (the last screening on {(TODAY - dt.timedelta(days=REACH)).isoformat()}, "
        f"then {REACH} days",
    ),
]


def _protocol_with(tmp_path: Path, change: Change) -> Path:
    """The first trial's protocol beside its shipped simulation file with ``change`` made to it."""
    protocol = tmp_path / "WALK.yaml"
    shutil.copy(FIRST_PROTOCOL, protocol)
    plan = YAML(typ="safe").load(simulation_file_for(FIRST_PROTOCOL).read_text(encoding="utf-8"))
    change(plan)
    with simulation_file_for(protocol).open("w", encoding="utf-8") as out:
        YAML().dump(plan, out)
    return protocol


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_simulate_refuses_the_setting_before_creating_a_database(tmp_path: Path, change: Change, message: str) -> None:
    protocol = _protocol_with(tmp_path, change)
    database = tmp_path / "walk.db"
    done = CliRunner().invoke(cli, ["simulate", "--protocol", str(protocol), "--participants", "3",
                                    "--database", f"sqlite:///{database}"])  # fmt: skip
    said = " ".join(done.output.split())
    assert done.exit_code == 1, said
    assert message in said and "WALK.simulation.yaml" in said, said
    assert "Traceback" not in said
    assert not database.exists()


def test_the_shipped_grades_are_lowest_and_highest_inclusive(tmp_path: Path) -> None:
    """``grades: [1, 1]`` (lowest equal to highest) is a range of one grade, accepted."""
    protocol = _protocol_with(tmp_path, _expected(grades=[1, 1]))
    from trialwright.services.simulation import check_plan

    check_plan(protocol)


def test_a_trial_ending_yesterday_is_accepted_and_fewer_days_are_offered(tmp_path: Path) -> None:
    """The last date may be the sites' yesterday (a step dated today could still be later than now); the refusal of a
    window one day longer offers the days that would end yesterday."""
    from trialwright.services.simulation import check_plan

    check_plan(_protocol_with(tmp_path, _window(TODAY - dt.timedelta(days=REACH + 10), 10)))
    start = TODAY - dt.timedelta(days=REACH + 20)  # 20 days end yesterday, 21 today
    with pytest.raises(SimulationError, match=f"start on or before {(start - dt.timedelta(days=1)).isoformat()}, "
                       "or days: 20 or fewer$"):  # fmt: skip
        check_plan(_protocol_with(tmp_path, _window(start, 21)))


@pytest.mark.parametrize("participants", ["1", "1000"])
def test_the_window_is_the_same_whatever_the_number_of_participants(tmp_path: Path, participants: str) -> None:
    """Each patient is screened on a day drawn over ``start`` to ``start + days - 1`` however many there are, so the
    number screened (``--participants``) neither widens nor narrows the window: the same refusal either way."""
    protocol = _protocol_with(tmp_path, _window(FUTURE_START, 300))
    database = tmp_path / "walk.db"
    done = CliRunner().invoke(cli, ["simulate", "--protocol", str(protocol), "--participants", participants,
                                    "--database", f"sqlite:///{database}"])  # fmt: skip
    said = " ".join(done.output.split())
    assert done.exit_code == 1 and f"could reach {FUTURE_LAST.isoformat()}" in said, said
    assert not database.exists()


WRITTEN = {c[0]: c[1] for c in CASES}


@pytest.mark.parametrize(
    "case",
    ["grades one number", "derived field", "a distribution for a date field", "recruitment before the consent form",
     "a trial reaching past today"],
)  # fmt: skip
def test_a_trial_database_is_not_written_by_a_refused_simulation_file(
    database_url: str, tmp_path: Path, case: str
) -> None:
    """On SQLite and PostgreSQL: ``simulate`` into an existing trial refuses the file before its first write (no
    simulated account made, no audit entry, no screening)."""
    protocol = _protocol_with(tmp_path, WRITTEN[case])
    engine = make_engine(database_url)
    init_trial(engine, load_protocol(protocol))

    def entries() -> tuple[int, int]:
        with session_scope(engine) as session:
            return (int(session.execute(select(func.count()).select_from(audit_entries)).scalar_one()),
                    int(session.execute(select(func.count()).select_from(screenings)).scalar_one()))  # fmt: skip

    before = entries()
    with pytest.raises(SimulationError, match=r"WALK\.simulation\.yaml: "):
        simulate(engine, protocol, 3, seed=1)
    assert entries() == before
    engine.dispose()


EFFECTS = [
    ("labs.nope=3", "effect: 'labs.nope' is not a form.field of the protocol"),
    ("vitals.news2=2", "effect: 'vitals.news2' is a derived field, computed from its formula, never drawn"),
    ("vitals.consciousness=1", "effect: 'vitals.consciousness' is a choice field; an effect is added to a number"),
    ("blood_gas.paco2=5", "effect: 'blood_gas.paco2' has no distribution in the simulation file's fields"),
]


@pytest.mark.parametrize(("effect", "message"), EFFECTS, ids=[e[0] for e in EFFECTS])
def test_an_effect_that_would_do_nothing_is_refused_before_creating_a_database(
    tmp_path: Path, effect: str, message: str
) -> None:
    """``--effect`` is added to a number the simulation file draws at follow-up visits; one on a derived field, a
    field that is no number, or one the file draws nothing for would plant nothing, and is refused up front."""
    database = tmp_path / "effect.db"
    done = CliRunner().invoke(cli, ["simulate", "--protocol", str(FIRST_PROTOCOL), "--participants", "3",
                                    "--effect", effect, "--database", f"sqlite:///{database}"])  # fmt: skip
    said = " ".join(done.output.split())
    assert done.exit_code == 1 and message in said, said
    assert not database.exists()
