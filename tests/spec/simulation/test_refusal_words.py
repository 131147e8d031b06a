"""The simulation's summary counts refusals by their rule, said in words: a participant, a date, a time or a
value becomes "…", a field's name stays as written (a walk found "BGO# withdrew from follow-up on ###")."""

from trialwright.services.simulation import _rule_of


def test_refusals_of_one_rule_count_together_and_read_as_words() -> None:
    one = _rule_of(ValueError("participant: BGO-015 withdrew from follow-up on 2026-03-04 12:00; the form"))
    other = _rule_of(ValueError("participant: LIS-107 withdrew from follow-up on 2026-11-30 08:15"))
    assert one == other == "participant: … withdrew from follow-up on … …"


def test_a_fields_name_keeps_its_digits_and_values_are_hidden() -> None:
    rule = _rule_of(ValueError("vitals.spo2: 140 is outside the accepted range 50-100 % (-3.5 below)"))
    assert rule == "vitals.spo2: … is outside the accepted range … % (… below)"


def test_a_number_in_e_notation_is_one_value() -> None:
    one = _rule_of(ValueError("il6: 1.00002e+06 pg/mL is outside the accepted range 0-200000 pg/mL"))
    other = _rule_of(ValueError("il6: 1.00008e+06 pg/mL is outside the accepted range 0-200000 pg/mL"))
    assert one == other == "il6: … pg/mL is outside the accepted range … pg/mL"
