"""The analysis in a real browser: the blinded statistician opens the analysis page from the navigation,
sees the CONSORT diagram and every outcome with no arm named, and opens the full report."""

from __future__ import annotations

import pytest

from tests.browser.test_randomization import ARM_NAMES, _as, _enrolled
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, list_exists, randomize

pytestmark = pytest.mark.browser


def test_the_blinded_statistician_reads_the_report_page(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    if not list_exists(live_trial.engine):
        generate_list(live_trial.engine, who(live_trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    randomize(live_trial.engine, who(live_trial, Role.INVESTIGATOR), _enrolled(live_trial))

    _as(page, live_server, Role.BLINDED_STATISTICIAN)
    page.get_by_role("link", name="Analysis", exact=True).click()
    mode = page.get_by_test_id("analysis-mode").inner_text()
    assert mode.startswith("Blinded analysis (double-blind trial): no arm is named.")
    main = page.inner_text("main")
    assert "Assessed for eligibility" in page.content()  # the CONSORT diagram, drawn inline as SVG
    for heading in ("Participant flow (CONSORT)", "Table 1. Baseline characteristics", "Serious Adverse Event",
                    "Length of hospital stay", "PRIEST score"):  # fmt: skip
        assert heading in main
    assert not any(name in page.content() for name in ARM_NAMES)
    page.shot("analysis-page")
    page.get_by_role("link", name="Report (HTML)").click()
    assert page.title().endswith("statistical report (blinded)")
    assert not any(name in page.content() for name in ARM_NAMES)
    page.shot("analysis-report")
