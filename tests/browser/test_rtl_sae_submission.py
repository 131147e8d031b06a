"""The SAE's submission row (an event's "Reports due" and the form recording a report sent) in a real browser,
right to left (issue 24, a new user's walk): every label, box and the button keep space between them and the
form wraps within its card instead of squeezing its parts together. Screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import SHOTS
from tests.browser.test_randomization import _as, _enrolled
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.safety import report_event
from trialwright.services.users import set_preferences

pytestmark = pytest.mark.browser


def test_the_sae_submission_form_has_room_right_to_left(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    generate_list(live_trial.engine, who(live_trial, Role.UNBLINDED_STATISTICIAN), seed=9)
    pid = _enrolled(live_trial)
    randomize(live_trial.engine, who(live_trial, Role.INVESTIGATOR), pid)
    aware = dt.datetime.now(ZoneInfo("Asia/Tehran")) - dt.timedelta(hours=2)
    event = report_event(live_trial.engine, who(live_trial, Role.INVESTIGATOR), pid, {
        "term": "Pneumothorax", "onset": aware.date().isoformat(), "grade": 3, "serious": True,
        "seriousness_criteria": ["hospitalisation"], "causality": "unlikely", "action_taken": "not_applicable",
        "outcome": "recovering", "aware_at": aware.isoformat(),
    })  # fmt: skip
    set_preferences(live_trial.engine, who(live_trial, Role.INVESTIGATOR).username, language="fa")
    page.set_viewport_size({"width": 1024, "height": 900})
    _as(page, live_server, Role.INVESTIGATOR)
    page.goto(f"{live_server}/adverse-events/{event.ae_number}")
    form = page.locator(f'form[action="/adverse-events/{event.ae_number}/submissions"]')
    form.scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    form.locator("xpath=ancestor::section[1]").screenshot(path=str(SHOTS / "sae-submission-fa.png"))
    card = form.locator("xpath=ancestor::section[1]").bounding_box()
    assert card is not None
    parts = form.locator("label, select, input:not([type=hidden]), button")
    boxes = [b for b in (parts.nth(i).bounding_box() for i in range(parts.count())) if b and b["width"] > 0]
    assert len(boxes) >= 7
    # each label on the line of its own box
    for name in ("kind", "submitted_at", "note"):
        label, box = form.locator(f'label[for="{name}"]').bounding_box(), form.locator(f"#{name}").bounding_box()
        assert label and box
        assert abs((label["y"] + label["height"] / 2) - (box["y"] + box["height"] / 2)) < box["height"]
    # every part within the card, and no two parts on one line closer than 4 px (nor overlapping)
    for b in boxes:
        assert card["x"] - 1 <= b["x"] and b["x"] + b["width"] <= card["x"] + card["width"] + 1, b
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            same_line = abs(a["y"] - b["y"]) < min(a["height"], b["height"]) / 2
            if same_line:
                gap = max(b["x"] - (a["x"] + a["width"]), a["x"] - (b["x"] + b["width"]))
                assert gap >= 4, (a, b, gap)
