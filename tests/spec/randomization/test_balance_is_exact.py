"""The balance report's imbalance is the range of ratio-adjusted counts (count / ratio), shown exactly: a walk found
`randomization balance --json` rounding it half-to-even to a whole number at 2:1 ({DXZ 1, PBO 2} showed 2, true
1.5; {3, 2} and {5, 2} showed 0, true 0.5), so a stratum half a ratio unit off read as balanced. Both databases.

| counts (arm: n)     | ratio    | imbalance (worked out by hand: max - min of n / ratio) |
|---------------------|----------|--------------------------------------------------------|
| DXZ 1, PBO 2        | 2:1      | 1.5   (0.5 vs 2)                                       |
| DXZ 3, PBO 2        | 2:1      | 0.5   (1.5 vs 2)                                       |
| DXZ 5, PBO 2        | 2:1      | 0.5   (2.5 vs 2)                                       |
| DXZ 1, PBO 0        | 2:1      | 0.5                                                    |
| DXZ 3, PBO 3        | 2:1      | 1.5                                                    |
| DXZ 4, PBO 2        | 2:1      | 0                                                      |
| A 3, B 3            | 1:1      | 0                                                      |
| A 1, B 0, C 0       | 3:2:1    | 1/3   (1/3, 0, 0)                                      |
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from tests.spec.randomization.test_designs_in_the_service import EXAMPLE_ELIGIBLE, enrolled, example_trial, user
from tests.trialfixtures import username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services.randomization import balance, export_list, generate_list, randomize
from trialwright.services.randomization.lists import ratio_adjusted_range

TWO_TO_ONE = {"DXZ": 2, "PBO": 1}
TABLE = [
    ({"DXZ": 1, "PBO": 2}, TWO_TO_ONE, 1.5),
    ({"DXZ": 3, "PBO": 2}, TWO_TO_ONE, 0.5),
    ({"DXZ": 5, "PBO": 2}, TWO_TO_ONE, 0.5),
    ({"DXZ": 1, "PBO": 0}, TWO_TO_ONE, 0.5),
    ({"DXZ": 3, "PBO": 3}, TWO_TO_ONE, 1.5),
    ({"DXZ": 4, "PBO": 2}, TWO_TO_ONE, 0.0),
    ({"A": 3, "B": 3}, {"A": 1, "B": 1}, 0.0),
    ({"A": 1, "B": 0, "C": 0}, {"A": 3, "B": 2, "C": 1}, 1 / 3),
]


@pytest.mark.parametrize(("counts", "ratio", "expected"), TABLE)
def test_the_ratio_adjusted_range_is_not_rounded(counts: dict[str, int], ratio: dict[str, int],
                                                 expected: float) -> None:  # fmt: skip
    assert ratio_adjusted_range(counts, ratio) == pytest.approx(expected, abs=1e-12)


def test_the_report_the_json_and_the_table_show_the_half(database_url: str) -> None:
    trial = example_trial(database_url, {"LOW": 2, "PBO": 1}, {"method": "simple", "list_length": 30}, sites=1,
                         target=30)
    statistician, investigator = user(trial, Role.UNBLINDED_STATISTICIAN), user(trial, Role.INVESTIGATOR)
    generate_list(trial.engine, statistician, seed=31)
    seen: set[float] = set()
    for _ in range(8):
        randomize(trial.engine, investigator, enrolled(trial, "NTH", EXAMPLE_ELIGIBLE))
        counts = Counter(str(r["arm"]) for r in export_list(trial.engine, statistician) if r["participant_id"])
        truth = abs(counts["LOW"] / 2 - counts["PBO"] / 1)  # worked out here, independently of the service
        (row,) = balance(trial.engine, statistician)
        assert row.imbalance == truth, (dict(counts), row.imbalance)
        seen.add(truth)
        shown = CliRunner().invoke(cli, ["randomization", "balance", "--json", "--database", trial.url,
                                         "--as", username(Role.UNBLINDED_STATISTICIAN)])  # fmt: skip
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)[0]["imbalance"] == truth
        if truth % 1:  # a half: the table's imbalance cell says it, not a rounded whole number
            argv = ["randomization", "balance", "--database", trial.url, "--as", username(Role.UNBLINDED_STATISTICIAN)]
            table = CliRunner().invoke(cli, argv, env={"COLUMNS": "200"})
            line = next(line for line in table.output.splitlines() if " all " in line)
            cells = [c.strip() for c in line.replace("│", "|").split("|") if c.strip()]
            assert cells[:4] == ["all", str(counts["LOW"]), str(counts["PBO"]), f"{truth:g}"], table.output
    assert seen & {0.5, 1.5}, seen  # the sequence reached a half, the case the rounding hid
    trial.engine.dispose()
