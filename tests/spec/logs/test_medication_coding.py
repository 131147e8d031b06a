"""Coding medications to ATC (both databases): the coder or the data manager loads a WHO ATC index (a fictional one
here), checked whole and audited with its SHA-256; the coder codes a medication entry to a level-5 code, its levels
1-4 read from the index; recoding needs a reason; renaming the medication voids the coding; SDTM CM takes CMDECOD
from the level-5 name and CMCLAS/CMCLASCD from the level the protocol declares (atc_class_level: 4).

| index broken by                  | refused with                                  |
|----------------------------------|-----------------------------------------------|
| a code whose parent is missing   | line, code and the missing parent             |
| a level other than the code's    | line, the code's level                        |
| a code listed twice              | line, and the line it was listed on           |
| another header                   | line 1, the header it needs                   |
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyreadstat
import pytest
from typer.testing import CliRunner

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.logs.fictional_atc import LINES, write_index
from tests.spec.logs.test_log_entries import HEPARIN
from tests.trialfixtures import Trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.coding import CodingError, load_meddra
from trialwright.services.exports import run_export
from trialwright.services.logs import add_entry, amend_entry, list_entries
from trialwright.services.medication_coding import code_history, code_medication, load_atc, medications_to_code

ZORBAPARIN_PATH = [
    {"level": 1, "code": "Z", "name": "Fictional blood and pain"},
    {"level": 2, "code": "Z01", "name": "Fictional antithrombotics"},
    {"level": 3, "code": "Z01A", "name": "Fictional antithrombotic agents"},
    {"level": 4, "code": "Z01AB", "name": "Fictional heparin group"},
    {"level": 5, "code": "Z01AB05", "name": "Zorbaparin"},
]


@pytest.fixture
def loaded(trial: Trial, pid: str, tmp_path: Path) -> str:
    """The fictional index loaded, and the participant's heparin entered (entry 1)."""
    load_atc(trial.engine, who(trial, Role.CODER), write_index(tmp_path / "atc.csv"), "2026")
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    return pid


def test_an_index_is_loaded_whole_and_audited_with_its_sha256(trial: Trial, tmp_path: Path) -> None:
    path = write_index(tmp_path / "atc.csv")
    release = load_atc(trial.engine, who(trial, Role.DATA_MANAGER), path, "2026")
    assert dict(release.counts) == {"level1": 1, "level2": 2, "level3": 2, "level4": 2, "level5": 2}
    (entry,) = audit.entries(trial.engine, action_prefix="coding.dictionary_loaded")
    loaded = json.loads(entry.new_value or "")
    assert loaded["files"] == {"atc.csv": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert (loaded["dictionary"], loaded["version"]) == ("ATC", "2026")
    with pytest.raises(CodingError, match=r"^--version: ATC 2026 is loaded already$"):
        load_atc(trial.engine, who(trial, Role.DATA_MANAGER), path, "2026")
    with pytest.raises(CodingError, match=r"^role: "):
        load_atc(trial.engine, who(trial, Role.INVESTIGATOR), path, "2027")


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ([*LINES, "Z03AA01,5,Orphan"], "atc.csv line 11: Z03AA01's parent Z03AA (level 4) is not in the file"),
        ([*LINES[:5], "Z01AB06,4,Wrong level"], "atc.csv line 6: Z01AB06 is a level 5 code, not level '4'"),
        ([*LINES, "Z02BE01,5,Again"], "atc.csv line 11: Z02BE01 is listed already (line 10)"),
        (["code,level,name", *LINES[1:]], "atc.csv line 1: the header must be atc_code,level,name"),
    ],
)
def test_a_broken_index_is_refused_naming_the_line(trial: Trial, tmp_path: Path, lines: list[str], words: str) -> None:
    with pytest.raises(CodingError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_atc(trial.engine, who(trial, Role.CODER), write_index(tmp_path / "atc.csv", lines), "2026")
    assert audit.entries(trial.engine, action_prefix="coding.dictionary_loaded") == []


def test_a_medication_is_coded_with_its_whole_path(trial: Trial, loaded: str) -> None:
    coder = who(trial, Role.CODER)
    (todo,) = medications_to_code(trial.engine, coder)
    assert (todo.participant_id, todo.log_id, todo.sequence, todo.verbatim) == (loaded, "conmeds", 1, "Enoxaparin")
    coding = code_medication(trial.engine, coder, loaded, "conmeds", 1, "Z01AB05")
    assert coding["path"] == ZORBAPARIN_PATH and coding["verbatim"] == "Enoxaparin"
    assert medications_to_code(trial.engine, coder) == ()
    (entry,) = list_entries(trial.engine, who(trial, Role.MONITOR), loaded, "conmeds")
    assert entry.coding is not None and (entry.coding.code, entry.coding.version) == ("Z01AB05", "2026")
    (coded,) = audit.entries(trial.engine, action_prefix="log.coded")
    assert coded.actor == username(Role.CODER) and json.loads(coded.new_value or "")["code"] == "Z01AB05"
    with pytest.raises(CodingError, match=r"^reason: entry 1 of conmeds is coded already \(to Z01AB05 Zorbaparin\)"):
        code_medication(trial.engine, coder, loaded, "conmeds", 1, "Z02BE01")
    code_medication(trial.engine, coder, loaded, "conmeds", 1, "Z02BE01", reason="site: it was the analgesic")
    (recoded,) = audit.entries(trial.engine, action_prefix="log.recoded")
    assert (json.loads(recoded.old_value or "")["code"], json.loads(recoded.new_value or "")["code"]) == (
        "Z01AB05", "Z02BE01")
    assert recoded.reason == "site: it was the analgesic"


@pytest.mark.parametrize(
    ("log", "code", "words"),
    [
        ("conmeds", "Z01AB", r"^atc: Z01AB is a level 4 code; code to a level 5 substance$"),
        ("conmeds", "Z09XX99", r"^atc: Z09XX99 is not a code of ATC 2026$"),
        ("medical_history", "Z01AB05", r"^log: 'medical_history' is not written to SDTM CM"),
    ],
)
def test_only_a_level_5_code_of_the_index_codes_a_medication(
    trial: Trial, loaded: str, log: str, code: str, words: str
) -> None:
    with pytest.raises(CodingError, match=words):
        code_medication(trial.engine, who(trial, Role.CODER), loaded, log, 1, code)


def test_renaming_the_medication_voids_its_coding(trial: Trial, loaded: str) -> None:
    code_medication(trial.engine, who(trial, Role.CODER), loaded, "conmeds", 1, "Z01AB05")
    amend_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), loaded, "conmeds", 1, {"medication": "Dalteparin"},
                reason="chart: dalteparin")  # fmt: skip
    (entry,) = list_entries(trial.engine, who(trial, Role.MONITOR), loaded, "conmeds")
    assert entry.coding is None
    (voided,) = audit.entries(trial.engine, action_prefix="log.coding_voided")
    assert json.loads(voided.old_value or "")["verbatim"] == "Enoxaparin" and voided.reason == "chart: dalteparin"
    assert [m.verbatim for m in medications_to_code(trial.engine, who(trial, Role.CODER))] == ["Dalteparin"]


def test_sdtm_cm_takes_the_decoded_name_and_the_declared_class_level(
    trial: Trial, loaded: str, tmp_path: Path
) -> None:
    code_medication(trial.engine, who(trial, Role.CODER), loaded, "conmeds", 1, "Z01AB05")
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "sdtm", tmp_path / "out")
    cm, _ = pyreadstat.read_xport(tmp_path / "out" / "sdtm" / "cm.xpt")
    (row,) = cm.to_dict("records")
    assert (row["CMTRT"], row["CMDECOD"], row["CMCLAS"], row["CMCLASCD"]) == (
        "Enoxaparin", "Zorbaparin", "Fictional heparin group", "Z01AB")
    assert "CM coded with WHO ATC 2026" in (tmp_path / "out" / "README.txt").read_text(encoding="utf-8")
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "csv", tmp_path / "csv")
    text = (tmp_path / "csv" / "logs" / "conmeds.csv").read_text(encoding="utf-8")
    assert "2026,Z01AB05,Zorbaparin" in text


def test_the_coder_loads_and_codes_from_the_command_line(trial: Trial, pid: str, tmp_path: Path) -> None:
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    runner = CliRunner()
    db = ["--database", trial.url, "--as", username(Role.CODER)]
    path = write_index(tmp_path / "atc.csv")
    loaded = runner.invoke(cli, ["coding", "load", "atc", str(path), "--version", "2026", *db])
    assert loaded.exit_code == 0, loaded.output
    assert "Loaded ATC 2026: 1 at level 1, 2 at level 2, 2 at level 3, 2 at level 4, 2 at level 5." in loaded.output
    listed = runner.invoke(cli, ["coding", "medications", *db])
    assert f"{pid}  conmeds #1  Enoxaparin" in listed.output
    coded = runner.invoke(cli, ["coding", "code-medication", pid, "conmeds", "1", "--atc", "Z01AB05", *db])
    assert coded.exit_code == 0, coded.output
    assert "Z Fictional blood and pain > Z01 Fictional antithrombotics" in coded.output
    refused = runner.invoke(cli, ["coding", "code-medication", pid, "conmeds", "1", "--atc", "Z02BE01", *db])
    assert refused.exit_code == 1 and "recoding needs a reason" in refused.output


def test_medical_history_is_coded_to_meddra_and_reaches_mh(trial: Trial, pid: str, tmp_path: Path) -> None:
    """The adverse events' MedDRA machinery codes a history term: MHDECOD the PT, MHBODSYS the primary SOC (the
    fictional release lists PT 90000001's secondary path first)."""
    coder = who(trial, Role.CODER)
    load_meddra(trial.engine, coder, write_release(tmp_path / "MedAscii"), "27.1")
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "medical_history",
              {"condition": "Chronic kidney disease", "ongoing": True})  # fmt: skip
    with pytest.raises(CodingError, match=r"^log: 'conmeds' is not written to SDTM MH"):
        code_history(trial.engine, coder, pid, "conmeds", 1, 90000011)
    with pytest.raises(CodingError, match=r"^llt: 90000012 \(Zorbic renal lesion\) is not current"):
        code_history(trial.engine, coder, pid, "medical_history", 1, 90000012)
    runner = CliRunner()
    coded = runner.invoke(cli, ["coding", "code-history", pid, "medical_history", "1", "--llt", "90000011",
                                "--database", trial.url, "--as", username(Role.CODER)])  # fmt: skip
    assert coded.exit_code == 0, coded.output
    assert "Acute zorbic kidney -> PT Zorbic kidney injury -> SOC Fictional kidney disorders (MedDRA 27.1)" in (
        coded.output)
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "sdtm", tmp_path / "out")
    mh, _ = pyreadstat.read_xport(tmp_path / "out" / "sdtm" / "mh.xpt")
    (row,) = mh.to_dict("records")
    assert (row["MHTERM"], row["MHDECOD"], row["MHBODSYS"]) == (
        "Chronic kidney disease", "Zorbic kidney injury", "Fictional kidney disorders")
    assert "MH coded with MedDRA 27.1" in (tmp_path / "out" / "README.txt").read_text(encoding="utf-8")
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "csv", tmp_path / "csv")
    text = (tmp_path / "csv" / "logs" / "medical_history.csv").read_text(encoding="utf-8")
    assert "27.1,90000011,Acute zorbic kidney,90000001,Zorbic kidney injury,90100001,Fictional kidney disorders" in text
