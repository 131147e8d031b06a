"""The analysis says its mode with the blinding the protocol declares (``masking.blinding``), in English and Persian,
in the report (``trialwright analyse``, report.html and .pdf) and on the /analysis page.

| declared blinding | blinded statistician's analysis, before the lock                                       |
|-------------------|-----------------------------------------------------------------------------------------|
| open              | Analysis by arm (open label)                                                            |
| single            | Analysis by arm (single-blind: the participants are masked, the arms are open to staff)   |
| double            | Blinded analysis (double-blind trial)                                                   |
| triple            | Blinded analysis (triple-blind trial)                                                   |
| custom            | Blinded analysis (custom blinding: the roles the protocol lists are masked)             |

A single-blind trial masks the participant only: no one using the system is kept from the arms, so its analysis is
by arm, but it is not open label (walk 4, F2: it was called so).
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.spec.masking.test_blinding_as_declared import (
    Mutation,
    _assessors_only,
    _enrolled,
    _masking,
    _open_label,
    _trial,
)
from tests.trialfixtures import who
from trialwright.analysis.report import render_html
from trialwright.domain.roles import Role
from trialwright.services import analysis
from trialwright.services.randomization import randomize
from trialwright.web.i18n import translations

CASES = [
    ("open", _open_label, "by_arm", "Analysis by arm (open label)", "no one is kept from the arms."),
    ("single", _masking(blinding="single"), "by_arm",
     "Analysis by arm (single-blind: the participants are masked, the arms are open to staff)",
     "only the participants are kept from their arms; no one using the system is."),
    ("double", _masking(blinding="double"), "unnamed_groups", "Blinded analysis (double-blind trial)",
     "no arm is named."),
    ("triple", _masking(blinding="triple"), "unnamed_groups", "Blinded analysis (triple-blind trial)",
     "no arm is named."),
    ("custom", _assessors_only, "unnamed_groups",
     "Blinded analysis (custom blinding: the roles the protocol lists are masked)", "no arm is named."),
]  # fmt: skip
UNBLINDED = {
    "double": "Unblinded analysis (double-blind trial)",
    "triple": "Unblinded analysis (triple-blind trial)",
    "custom": "Unblinded analysis (custom blinding: the roles the protocol lists are masked)",
}


@pytest.mark.parametrize(("level", "mutate", "grouping", "mode", "meaning"), CASES, ids=[c[0] for c in CASES])
def test_the_analysis_mode_names_the_declared_blinding(
    database_url: str, level: str, mutate: Mutation, grouping: str, mode: str, meaning: str
) -> None:
    trial = _trial(database_url, mutate)
    try:
        pid = _enrolled(trial)
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
        report = analysis.run_analysis(trial.engine, who(trial, Role.BLINDED_STATISTICIAN)).report
        assert report.mode == mode
        assert report.grouping in (grouping, "pooled") and report.blinding == level
        assert report.mode_meaning == meaning
        assert f"{mode}:" in report.summary()
        assert mode in render_html(report, {})
        fa = translations("fa").gettext
        assert fa(mode) != mode and fa(meaning) != meaning  # said in Persian too
        if level == "single":
            assert "open label" not in render_html(report, {}) + report.summary()
        if level in UNBLINDED:  # the same trial's unblinded analysis (after the lock) says its level too
            opened = dataclasses.replace(report, unblinded=True, grouping="by_arm")
            assert opened.mode == UNBLINDED[level] and opened.mode_meaning == "arms are named."
            assert fa(opened.mode) != opened.mode
    finally:
        trial.engine.dispose()
