"""A partial bulk import (``all_or_nothing=False``) keeps nothing of a refused row, also when the row is not the
first of its batch: its visit, written with the batch's deferred inserts (``services/bulk_writes.py``), is inside
the row's savepoint and goes with its rollback (a review found such a visit stored with no audit entry). Both
databases."""

from __future__ import annotations

import datetime as dt

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.forms.test_bulk_import import CONSENTED_AT, TEHRAN, head, rows_for, stored
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc


def test_a_refused_row_after_a_good_one_leaves_no_visit_and_no_entry(trial: Trial) -> None:
    good = enrolled_ten_days_ago(trial)
    refused = enrolled_ten_days_ago(trial)
    since = head(trial)
    before_consent = (CONSENTED_AT - dt.timedelta(minutes=30)).astimezone(TEHRAN).isoformat(timespec="minutes")
    first = rows_for(refused)[0]
    rows = [rows_for(good)[0], {**first, "values": {**first["values"], "assessed_at": before_consent}}]
    report = svc.import_forms(trial.engine, who(trial, Role.STUDY_COORDINATOR), rows, all_or_nothing=False)
    assert len(report.rejected) == 1
    assert stored(trial, refused, since) == {"visits": [], "forms": [], "queries": [], "trail": []}
    kept = stored(trial, good, since)
    assert kept["visits"] and kept["trail"]  # the good row's visit and its entries are kept
    chain = audit.verify(trial.engine)
    assert chain.ok, chain.message
