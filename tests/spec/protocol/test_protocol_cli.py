"""`trialwright protocol check|show`: exit codes, every problem listed, both calendars shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.spec.protocol.conftest import mutated_text
from trialwright.cli.main import app

runner = CliRunner()


def test_check_passes_on_the_first_protocol(first_protocol_path: Path) -> None:
    result = runner.invoke(app, ["protocol", "check", str(first_protocol_path)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "IRCT20190101042197N2" in result.output
    assert "9 outcomes" in result.output


def test_check_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    def broken(doc):  # type: ignore[no-untyped-def]
        doc["arms"][1]["ratio"] = 0
        doc["eligibility"]["inclusion"][0]["rule"]["field"] = "agee"

    bad = tmp_path / "bad.yaml"
    bad.write_text(mutated_text(broken), encoding="utf-8")
    result = runner.invoke(app, ["protocol", "check", str(bad)])
    assert result.exit_code == 1
    assert "arms[1].ratio: must be a whole number >= 1" in result.output
    assert "Traceback" not in result.output


def test_check_on_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["protocol", "check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 3 and "no such file" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("calendar", "present", "absent"),
    [
        (
            "both",
            [
                "2021-04-19, 1400/01/30",
                "2025-08-30, 1404/06/08",
                "2021-03-17, 1399/12/27",
                "2021-05-20, 1400/02/30",
                "2021-09-22, 1400/06/31",
            ],
            [],
        ),
        ("jalali", ["1400/01/30", "1399/12/27"], ["2021-04-19"]),
        ("gregorian", ["2021-04-19", "2021-03-17"], ["1400/01/30"]),
    ],
)
def test_show_prints_the_record_in_the_chosen_calendars(
    first_protocol_path: Path, calendar: str, present: list[str], absent: list[str]
) -> None:
    result = runner.invoke(app, ["protocol", "show", str(first_protocol_path), "--calendar", calendar])
    assert result.exit_code == 0, result.output
    for text in present:
        assert text in result.output
    for text in absent:
        assert text not in result.output


def test_show_prints_every_element_of_the_record(first_protocol_path: Path) -> None:
    out = runner.invoke(app, ["protocol", "show", str(first_protocol_path)], terminal_width=200).output
    for text in [
        "IRCT20190101042197N2",
        "IR.AJUMS.REC.1399.954",
        "Razi hospital",
        "Golestan Hospital",
        "Reza Khedri",
        "Mofid Husseinzadeh",
        "Mehrdad Dargahi",
        "Alireza Shoaee Hassani",
        "Mandana Pouladzadeh",
        "Tarmim Avaye Baran",
        "J80",
        "Baseline to day 7",
        "Changes on day 3",
        "Until discharge.",
        "All people",
        "A written request specifying the reasons",
        "Reason for update",
        "Pilot study",
        "participant, investigator, outcome_assessor",
        "Target sample size",
        "30",
    ]:
        assert text in out, text


def test_show_refuses_an_unknown_calendar(first_protocol_path: Path) -> None:
    result = runner.invoke(app, ["protocol", "show", str(first_protocol_path), "--calendar", "lunar"])
    assert result.exit_code == 2 and "--calendar" in result.output


def test_version() -> None:
    from trialwright import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"trialwright {__version__}"


def test_show_prints_a_condition_without_its_icd10_description_without_an_empty_one(tmp_path: Path) -> None:
    """Walk 5: a condition declared without ``icd10_description`` was shown as "(ICD-10 S72.0: )"."""

    def bare(doc: dict) -> None:  # type: ignore[type-arg]
        doc["trial"]["conditions"][0].pop("icd10_description")

    path = tmp_path / "bare.yaml"
    path.write_text(mutated_text(bare), encoding="utf-8")
    out = runner.invoke(app, ["protocol", "show", str(path)], terminal_width=200).output
    assert "(ICD-10 J80)" in out and "(ICD-10 J80: )" not in out, out
