"""Decimal places, read as the specification: a number typed in the field's own unit is stored exactly as
typed, and one with more decimal places than the protocol's ``decimals`` is refused (never rounded behind
the typist's back); a number converted from another unit, or derived, is rounded half away from zero."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.spec.forms.conftest import TODAY
from tests.trialfixtures import FIRST_PROTOCOL, Trial, who
from trialwright.domain.forms import FormValueError, places_typed, round_half_up, validate_entries
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import forms as svc

P = load_protocol(FIRST_PROTOCOL).protocol


def entered(form: str, **values: object) -> dict[str, object]:
    result = validate_entries(P.form(form), values, today=dt.date(2021, 6, 10), timezone="Asia/Tehran")
    return {k: v.value for k, v in result.values.items()}


def refused(form: str, **values: object) -> tuple[str, ...]:
    with pytest.raises(FormValueError) as caught:
        validate_entries(P.form(form), values, today=dt.date(2021, 6, 10), timezone="Asia/Tehran")
    return caught.value.problems


def test_a_number_with_more_places_than_the_protocol_keeps_is_refused_not_rounded() -> None:
    # demographics.weight keeps 1 decimal place; Python's round would have stored 80.25 as 80.2.
    assert refused("demographics", weight=80.25) == (
        "weight: 80.25 has 2 decimal places; this field keeps 1 decimal place (the protocol's decimals), "
        "so give it to that precision",
    )
    assert refused("demographics", weight="80.25") == refused("demographics", weight=80.25)
    assert refused("demographics", height="172.5") == (
        "height: 172.5 has 1 decimal place; this field keeps a whole number (the protocol's decimals), "
        "so give it to that precision",
    )
    assert refused("blood_gas", ph={"value": 7.355}) == (
        "ph: 7.355 has 3 decimal places; this field keeps 2 decimal places (the protocol's decimals), "
        "so give it to that precision",
    )


@pytest.mark.parametrize(
    ("raw", "stored"),
    [(80.2, 80.2), ("80.2", 80.2), ("80.20", 80.2), (80, 80), ("80.000", 80.0), ("۸۰٫۲", 80.2), ("٨٠.٢", 80.2)],
)
def test_a_number_within_the_places_is_stored_as_typed(raw: object, stored: float) -> None:
    assert entered("demographics", weight=raw)["weight"] == stored


@pytest.mark.parametrize("raw", ["1,000", "80,2", "1,250.5", "۱٬۰۰۰"])
def test_a_comma_in_a_number_is_refused_never_read_as_a_point_or_a_thousands_separator(raw: str) -> None:
    # "1,000" was stored as 1 (read as a decimal comma): one thousand to an English typist.
    (problem,) = refused("demographics", weight=raw)
    assert problem == (
        "weight: must be a number written with a decimal point and no thousands separator (e.g. 1000 or 12.5), "
        f"not {raw!r}: a comma could mean either"
    )


def test_a_converted_number_is_rounded_half_away_from_zero() -> None:
    # FiO2 keeps 2 places as a fraction: 60.5 % is exactly 0.605, which rounds half up to 0.61
    # (in binary floating point 60.5 * 0.01 and Python's round would give 0.6).
    assert entered("vitals", fio2={"value": 60.5, "unit": "%"})["fio2"] == 0.61
    assert entered("vitals", fio2={"value": 60.25, "unit": "%"})["fio2"] == 0.6
    # PaO2 in kPa (1 kPa = 7.50062 mmHg) to 1 place: 10 kPa is 75.0062 mmHg.
    assert entered("blood_gas", pao2={"value": 10, "unit": "kPa"})["pao2"] == 75.0
    assert entered("blood_gas", pao2={"value": 12.02, "unit": "kPa"})["pao2"] == 90.2  # 90.1574524


@pytest.mark.parametrize(
    ("value", "places", "rounded"),
    [(80.25, 1, 80.3), (2.675, 2, 2.68), (-2.675, 2, -2.68), (0.125, 2, 0.13), (1.005, 2, 1.01), (7.5, 0, 8.0),
     (-0.5, 0, -1.0), (125.125, 2, 125.13), (80.24999, 1, 80.2)],
)
def test_rounding_half_away_from_zero_reads_the_number_as_it_prints(
    value: float, places: int, rounded: float
) -> None:
    assert round_half_up(value, places) == rounded


@given(st.integers(min_value=-(10**9), max_value=10**9), st.integers(min_value=0, max_value=4))
def test_rounding_agrees_with_schoolbook_integer_arithmetic(scaled: int, places: int) -> None:
    """A number with one place more than kept, as integer digits: drop the last digit, carry if it is >= 5."""
    whole, fraction = divmod(abs(scaled), 10 ** (places + 1))
    text = f"{'-' if scaled < 0 else ''}{whole}.{fraction:0{places + 1}d}"
    kept, last = divmod(abs(scaled), 10)
    expected = (kept + (last >= 5)) * (-1 if scaled < 0 else 1) / 10**places
    assert round_half_up(float(text), places) == pytest.approx(expected, abs=0, rel=1e-15)


@given(st.decimals(min_value=-1000, max_value=1000, allow_nan=False, allow_infinity=False, places=4))
def test_places_typed_counts_written_places_without_trailing_zeros(number: object) -> None:
    text = format(number, "f")
    digits = text.split(".")[1].rstrip("0") if "." in text else ""
    assert places_typed(text) == len(digits)


def test_a_derived_value_is_rounded_half_away_from_zero(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    # pf_ratio = PaO2 / FiO2, kept to the protocol's 1 place: 100.2 / 0.8 = 125.25 exactly, which is 125.3
    # half away from zero (Python's round, half to even, would give 125.2).
    assert round(125.25, 1) == 125.2
    view = svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", {
        "sampled_at": f"{TODAY.isoformat()}T00:00+03:30", "pao2": 100.2, "fio2": 0.8,
        "support_mode": "conventional_oxygen"})  # fmt: skip
    assert view.values["pf_ratio"].value == 125.3


def test_a_refused_place_through_the_service_stores_nothing(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", {"pao2": 80.5})
    with pytest.raises(FormValueError, match=r"pao2: 80\.55 has 2 decimal places"):
        svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", {"pao2": 80.55})
    view = svc.get_form(trial.engine, coordinator, pid, "baseline", "blood_gas")
    assert view is not None and view.values["pao2"].value == 80.5
