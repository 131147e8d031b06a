"""Randomization numbers: taken only by a randomization that goes through (issue 22 item 5).

On PostgreSQL a list's randomization takes its number from the ``randomization_numbers`` sequence in the same
statement that reads whether the participant may be randomized and takes their list entry, only when none of what
it read refuses (a sequence never gives a number back). So a refused request leaves no gap: the next participant
randomized has the next number. On SQLite the number is one more than the largest, under its single writer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import RandomizationError, generate_list, randomize


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def test_a_refused_randomization_takes_no_number(trial: Trial) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    investigator = who(trial, Role.INVESTIGATOR)
    first, second = enrolled(trial), enrolled(trial)
    number = randomize(trial.engine, investigator, first).number
    for _ in range(3):
        with pytest.raises(RandomizationError, match="randomized already"):
            randomize(trial.engine, investigator, first)
    assert randomize(trial.engine, investigator, second).number == number + 1
