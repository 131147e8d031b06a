"""One reader of a participant's screening values as ``screening.<field>`` sources name them
(``domain.eligibility.values_at_screening``): Table 1's screening rows (``services.analysis``) and the IPD's screening
quasi-identifiers and age (``exports.ipd``) read through it, so the two can never read one record differently.

From the screening record's stored values (JSON: a date as text) it gives, per participant, every named field:

| stored (first trial)                      | named                   | read                                 |
|-------------------------------------------|-------------------------|--------------------------------------|
| pcr_date "2021-05-08", pao2 67, fio2 0.45 | pcr_date, pf_ratio, sex | a date, 67 / 0.45 at 1 place, None   |
| sex female, age 70 (no PaO2)              | pcr_date, pf_ratio, sex | None, None, female                   |

The P/F ratio is computed here by hand and rounded half away from zero to the protocol's one decimal place.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from tests.trialfixtures import first_protocol
from trialwright.domain import eligibility
from trialwright.exports import ipd
from trialwright.services import analysis

STORED = {
    "S-1": {"pcr_date": "2021-05-08", "pao2_mmhg": 67, "fio2": 0.45},
    "S-2": {"sex": "female", "age": 70},
}
NAMES = {"pcr_date", "pf_ratio", "sex"}


def test_the_named_screening_values_typed_and_derived_every_name_present() -> None:
    read = eligibility.values_at_screening(first_protocol().protocol, STORED.items(), NAMES)
    ratio = float(Decimal(67 / 0.45).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))  # 148.9
    assert read == {
        "S-1": {"pcr_date": dt.date(2021, 5, 8), "pf_ratio": ratio, "sex": None},
        "S-2": {"pcr_date": None, "pf_ratio": None, "sex": "female"},
    }


def test_table_one_and_the_ipd_read_through_the_one_reader() -> None:
    assert analysis.values_at_screening is eligibility.values_at_screening
    assert ipd.values_at_screening is eligibility.values_at_screening
    assert not hasattr(analysis, "recorded_values") and not hasattr(ipd, "recorded_values")  # no reader of their own
