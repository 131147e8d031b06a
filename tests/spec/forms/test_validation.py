"""What a person may enter on a form, read as the specification: types, units, limits, reasons,
censored values and dates, each refusal naming the field, the rule and what is accepted (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.forms import FormValueError, StoredValue, missing_required, validate_entries
from trialwright.protocol import load_protocol

P = load_protocol(FIRST_PROTOCOL).protocol
TODAY = dt.date(2021, 6, 10)
ENROLLED = dt.date(2021, 6, 1)


def entered(form: str, **values: object) -> dict[str, StoredValue]:
    return dict(
        validate_entries(P.form(form), values, today=TODAY, enrolled_on=ENROLLED, timezone="Asia/Tehran").values
    )


def refused(form: str, **values: object) -> tuple[str, ...]:
    with pytest.raises(FormValueError) as caught:
        validate_entries(P.form(form), values, today=TODAY, enrolled_on=ENROLLED, timezone="Asia/Tehran")
    return caught.value.problems


@pytest.mark.parametrize(
    ("field", "raw", "canonical"),
    [
        ("crp", {"value": 4.2, "unit": "mg/dL"}, 42.0),  # 1 mg/dL = 10 mg/L
        ("crp", 42, 42.0),
        ("ddimer", {"value": 800, "unit": "ng/mL FEU"}, 0.8),  # 1 ug/mL = 1000 ng/mL
        ("ddimer", {"value": 0.4, "unit": "ug/mL DDU"}, 0.8),  # FEU ~ 2 x DDU
        ("ddimer", {"value": 1.5, "unit": "mg/L FEU"}, 1.5),
        ("lymphocytes", {"value": 0.9, "unit": "10^9/L"}, 900.0),
        ("il6", {"value": 35, "unit": "ng/L"}, 35.0),
    ],
)
def test_units_are_converted_and_the_entry_kept(field: str, raw: object, canonical: float) -> None:
    stored = entered("labs", **{field: raw})[field]
    assert stored.value == pytest.approx(canonical) and stored.status == "value"
    assert stored.entered == (raw["value"] if isinstance(raw, dict) else raw)


def test_temperature_in_fahrenheit_and_fio2_in_percent() -> None:
    values = entered("vitals", temperature={"value": 100.4, "unit": "°F"}, fio2={"value": 60, "unit": "%"})
    assert values["temperature"].value == 38.0 and values["fio2"].value == 0.6


def test_hard_limits_refuse_naming_field_range_and_unit() -> None:
    assert refused("labs", crp=700) == ("crp: 700 mg/L is outside the accepted range 0-600 mg/L",)
    # Typed in another unit: what was typed, then what it is in the field's unit (61 mg/dL x 10 = 610 mg/L)
    assert refused("labs", crp={"value": 61, "unit": "mg/dL"}) == (
        "crp: 61 mg/dL (610 mg/L) is outside the accepted range 0-600 mg/L",
    )
    assert refused("vitals", spo2=49) == ("spo2: 49 % is outside the accepted range 50-100 %",)
    assert entered("vitals", spo2=50)["spo2"].value == 50 and entered("vitals", spo2=100)["spo2"].value == 100


def test_soft_limits_save_and_report_a_breach() -> None:
    result = validate_entries(P.form("labs"), {"crp": 450}, today=TODAY, enrolled_on=ENROLLED)
    assert result.values["crp"].value == 450
    (breach,) = result.soft
    assert (breach.field, breach.value, breach.limits) == ("crp", 450, "0-400 mg/L")
    assert not validate_entries(P.form("labs"), {"crp": 400}, today=TODAY).soft  # the edge is inside


def test_every_problem_is_reported_at_once() -> None:
    problems = refused(
        "vitals",
        resp_rate="fast",
        spo2=97.5,
        temperature={"value": 38, "unit": "K"},
        consciousness="sleepy",
        on_oxygen="maybe",
        news2=5,
        colour="blue",
    )
    assert problems == (
        "resp_rate: must be a number, not 'fast'",
        "spo2: must be a whole number, not 97.5",
        "temperature: unknown unit 'K'; accepted: °C, °F",
        "consciousness: 'sleepy' is not one of the choices alert, new_confusion, voice, pain, unresponsive",
        "on_oxygen: must be yes or no, not 'maybe'",
        "news2: is computed by trialwright (news2), never entered",
        "colour: form 'vitals' has no such field (fields: " + ", ".join(f.id for f in P.form("vitals").fields) + ")",
    )


def test_not_done_and_not_applicable_need_a_reason() -> None:
    assert entered("blood_gas", paco2={"not_done": "sample clotted"})["paco2"].as_json() == {
        "status": "not_done",
        "reason": "sample clotted",
    }
    assert refused("blood_gas", paco2={"not_done": " "}) == ("paco2: not done needs a reason",)
    assert refused("blood_gas", paco2={"not_applicable": "on room air"}) == (
        "paco2: may not be recorded as not applicable",
    )


def test_values_below_the_lloq_are_censored_never_zero() -> None:
    stored = entered("labs", il6={"below_lloq": 1.5})["il6"]
    assert (stored.value, stored.status, stored.limit, stored.shown()) == (None, "below_lloq", 1.5, "< 1.5")
    above = entered("labs", crp={"above_uloq": 32, "unit": "mg/dL"})["crp"]
    assert (above.status, above.limit, above.shown()) == ("above_uloq", 320, "> 320")
    assert refused("labs", lymphocytes={"below_lloq": 10}) == (
        "lymphocytes: has no limits of quantification; enter the value",
    )


def test_dates_in_the_future_or_before_enrolment_are_refused() -> None:
    assert refused("chest_xray", taken_on="2021-06-11") == ("taken_on: 2021-06-11 is in the future",)
    assert refused("chest_xray", taken_on="2021-05-31") == ("taken_on: 2021-05-31 is before enrolment on 2021-06-01",)
    assert entered("chest_xray", taken_on="2021-06-01")["taken_on"].value == "2021-06-01"
    assert entered("demographics", birth_date="1970-02-03")["birth_date"].value == "1970-02-03"  # may precede
    assert refused("chest_xray", taken_on="10/06/2021") == (
        "taken_on: must be a date written YYYY-MM-DD, not '10/06/2021'",
    )


def test_a_date_and_time_after_now_is_refused_to_the_minute_even_on_todays_date() -> None:
    now = dt.datetime(2021, 6, 10, 5, 0, tzinfo=dt.UTC)  # 09:30 in Tehran (UTC+4:30 in June 2021)

    def at(moment: str) -> tuple[str, ...]:
        try:
            validate_entries(P.form("labs"), {"sampled_at": moment}, today=TODAY, enrolled_on=ENROLLED,
                             timezone="Asia/Tehran", now=now)  # fmt: skip
        except FormValueError as exc:
            return exc.problems
        return ()

    assert at("2021-06-10T23:50+04:30") == (
        "sampled_at: 2021-06-10 23:50 is in the future (it is 2021-06-10 09:30 at the site)",
    )
    assert at("2021-06-10T09:31+04:30") == (
        "sampled_at: 2021-06-10 09:31 is in the future (it is 2021-06-10 09:30 at the site)",
    )
    assert at("2021-06-10T09:30+04:30") == ()  # this minute is not the future
    assert at("2021-06-10T05:00+00:00") == ()  # the same moment written in UTC


def test_a_time_is_stored_in_utc_and_one_without_an_offset_only_from_a_page_that_says_site_time() -> None:
    stored = entered("labs", sampled_at="2021-06-10T08:30+04:30")["sampled_at"]
    assert stored.value == "2021-06-10T04:00+00:00"  # Tehran is UTC+4:30 in June 2021 (summer time)
    assert refused("labs", sampled_at="2021-06-10T08:30") == (
        "sampled_at: 2021-06-10T08:30 has no UTC offset; give the time with its offset, e.g. 2024-05-01T09:30+03:30",
    )
    typed = validate_entries(P.form("labs"), {"sampled_at": "2021-06-10T08:30"}, today=TODAY, enrolled_on=ENROLLED,
                             timezone="Asia/Tehran", typed_on_site_clock=True)  # fmt: skip
    assert typed.values["sampled_at"].value == "2021-06-10T04:00+00:00"


def test_required_fields_are_those_without_a_value_or_reason() -> None:
    values = entered("blood_gas", sampled_at="2021-06-10T08:30+04:30", pao2=80, fio2=0.5, support_mode="room_air")
    assert missing_required(P.form("blood_gas"), values) == []
    assert missing_required(P.form("blood_gas"), {}) == ["sampled_at", "pao2", "fio2", "support_mode"]
