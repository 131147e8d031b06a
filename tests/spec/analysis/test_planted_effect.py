"""The analysis finds an effect the simulation plants at the rate its interval promises, and finds none at
the nominal rate when none is planted.

Each replicate draws a pilot-sized trial (15 per arm) of one outcome from the first trial's simulation file,
exactly as ``trialwright simulate`` draws it (the same distribution, baseline-to-follow-up correlation and
additive effect in the experimental arm), and runs the protocol's planned analysis on it (ANCOVA of the
follow-up on baseline and arm). Over many replicates the 95% interval must hold the planted effect about
95% of the time, and with no effect the test must reject about 5% of the time. The bounds are three
binomial standard errors wide. End to end through the services, ``test_analysis_service`` finds a planted
effect in a simulated trial's stored data.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.analysis.dataset import AnalysisData, Grouping, Screened, Subject
from trialwright.analysis.engine import analyse
from trialwright.protocol import load_protocol
from trialwright.services.simulation import _from_z, _shape, load_plan, simulation_file_for

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
PLAN = load_plan(simulation_file_for(FIRST_PROTOCOL))
VARIABLE = "labs.cd4_abs"
SPEC = PLAN["fields"][VARIABLE]
GROUPS = ("Placebo", "Exosomes")
REPLICATES = 300
PER_ARM = 15


def _trial(rng: np.random.Generator, effect: float) -> AnalysisData:
    rho = float(SPEC["follow_up"])
    subjects = []
    for i in range(2 * PER_ARM):
        experimental = i % 2 == 1
        zb = float(rng.standard_normal())
        zf = rho * zb + math.sqrt(1 - rho * rho) * float(rng.standard_normal())
        baseline = _from_z(SPEC, zb, rng)
        follow = _from_z(SPEC, zf, rng)
        if experimental:
            follow = _shape(float(follow) + effect, {"round": SPEC.get("round", 0)})
        subjects.append(
            Subject(
                participant_id=f"P-{i:03d}", site="RAZ", stratum="site=RAZ", group=GROUPS[experimental],
                treated=True, treated_group=GROUPS[experimental], per_protocol=True, not_per_protocol=(),
                withdrawn=(), emergency_unblinded=False,
                values={"baseline": {VARIABLE: float(baseline)}, "day7": {VARIABLE: float(follow)}},
            )
        )  # fmt: skip
    return AnalysisData(
        trial_id="T", protocol_version="1", grouping=Grouping.BY_ARM, groups=GROUPS, subjects=tuple(subjects),
        screened=Screened(2 * PER_ARM, 2 * PER_ARM, 0, 0, {}, 2 * PER_ARM, 0, 2 * PER_ARM, 1.0),
        taken_at=dt.datetime(2021, 10, 1, tzinfo=dt.UTC), audit_seq=0, below_limit_rule="limit_over_sqrt2",
    )  # fmt: skip


def _primary(data: AnalysisData) -> tuple[float, float]:
    report = analyse(PROTOCOL, data, software_version="test", unblinded=True)
    outcome = next(o for o in report.outcomes if o.variable == VARIABLE)
    c = next(c for c in outcome.comparisons if c.primary)
    assert c.lower is not None and c.upper is not None
    return c.lower, c.upper


@pytest.mark.parametrize("effect", [150.0, 0.0], ids=["planted", "none"])
def test_the_95_percent_interval_holds_the_planted_effect_95_percent_of_the_time(effect: float) -> None:
    rng = np.random.default_rng(20210520)
    covered = rejected = 0
    for _ in range(REPLICATES):
        lower, upper = _primary(_trial(rng, effect))
        covered += lower <= effect <= upper
        rejected += not lower <= 0 <= upper
    se = math.sqrt(0.95 * 0.05 / REPLICATES)
    assert abs(covered / REPLICATES - 0.95) < 3 * se, (covered, REPLICATES)
    if effect == 0:  # no effect: "found" at the nominal 5%
        assert abs(rejected / REPLICATES - 0.05) < 3 * se, (rejected, REPLICATES)
    else:  # a planted effect of about 1.3 residual SDs is found most of the time at 15 per arm
        assert rejected / REPLICATES > 0.5
