"""Loading a MedDRA release (both databases): the files are read in MedDRA's ASCII layout, every hierarchy link is
checked, a broken one refuses the whole release naming the file, the line and the rule, and a load is audited with
its version and each file's SHA-256. Tested with a fictional release (tests/spec/coding/fictional_meddra.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.spec.coding.fictional_meddra import FILES, write_release
from tests.trialfixtures import Trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.coding import CodingError, active_release, load_meddra, search_llts
from trialwright.store.coding_tables import meddra_releases, meddra_terms
from trialwright.store.engine import read_scope

runner = CliRunner()


def test_a_release_is_loaded_with_its_version_counted_and_audited(trial: Trial, tmp_path: Path) -> None:
    folder = write_release(tmp_path / "MedAscii")
    release = load_meddra(trial.engine, who(trial, Role.CODER), folder, "27.1")
    assert release.counts == {"soc": 2, "hlgt": 2, "hlt": 2, "pt": 2, "llt": 5, "paths": 3}
    assert active_release(trial.engine).version == "27.1"  # type: ignore[union-attr]
    (entry,) = audit.entries(trial.engine, action_prefix="coding.dictionary_loaded")
    assert entry.actor == username(Role.CODER)
    loaded = entry.new_value
    assert '"version":"27.1"' in loaded  # type: ignore[operator]
    sha = hashlib.sha256((folder / "mdhier.asc").read_bytes()).hexdigest()
    assert sha in loaded  # type: ignore[operator]


def test_the_same_version_is_not_loaded_twice(trial: Trial, tmp_path: Path) -> None:
    folder = write_release(tmp_path / "MedAscii")
    load_meddra(trial.engine, who(trial, Role.DATA_MANAGER), folder, "27.1")
    with pytest.raises(CodingError, match=r"--version: MedDRA 27.1 is loaded already"):
        load_meddra(trial.engine, who(trial, Role.CODER), folder, "27.1")


def test_only_the_coder_and_the_data_manager_load(trial: Trial, tmp_path: Path) -> None:
    folder = write_release(tmp_path / "MedAscii")
    with pytest.raises(CodingError, match="role: an investigator may not load a dictionary"):
        load_meddra(trial.engine, who(trial, Role.INVESTIGATOR), folder, "27.1")


BROKEN = [
    pytest.param({"hlt_pt.asc": [*FILES["hlt_pt.asc"], "90300001$90000099$"]},
                 "hlt_pt.asc line 4: PT 90000099 is not in pt.asc", id="link-to-a-missing-pt"),
    pytest.param({"llt.asc": [*FILES["llt.asc"][:2], "90000012$Zorbic renal lesion$90000077$$$$$$$N$$"]},
                 "llt.asc line 3: PT 90000077 is not in pt.asc", id="llt-under-a-missing-pt"),
    pytest.param({"soc_hlgt.asc": FILES["soc_hlgt.asc"][:1]},
                 "hlgt.asc line 2: HLGT 90200002 is under no SOC in soc_hlgt.asc", id="hlgt-under-no-soc"),
    pytest.param({"mdhier.asc": [FILES["mdhier.asc"][0], FILES["mdhier.asc"][1].replace("$Y$", "$N$"),
                                 FILES["mdhier.asc"][2]]},
                 "pt.asc line 1: PT 90000001 has no primary path in mdhier.asc", id="pt-without-primary-path"),
    pytest.param({"mdhier.asc": [FILES["mdhier.asc"][0].replace("$N$", "$Y$"), *FILES["mdhier.asc"][1:]]},
                 "mdhier.asc line 1: the primary path of PT 90000001 ends in SOC 90100002, but pt.asc gives its "
                 "primary SOC as 90100001", id="primary-path-to-another-soc"),
    pytest.param({"mdhier.asc": [*FILES["mdhier.asc"], "90000002$90300001$90200001$90100001$Blorp creatinine "
                                 "raised$x$y$z$Fict-Kid$$90100002$N$"]},
                 "mdhier.asc line 4: the link 90300001 -> 90000002 is not in hlt_pt.asc", id="path-not-in-links"),
    pytest.param({"pt.asc": [FILES["pt.asc"][0], "90000002$Blorp creatinine raised$$90100002$$$$$$$"]},
                 "pt.asc line 2: 11 fields expected, found 10", id="short-line"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "message"), BROKEN)
def test_a_broken_hierarchy_is_refused_naming_file_line_and_rule(
    trial: Trial, tmp_path: Path, changes: dict[str, list[str]], message: str
) -> None:
    folder = write_release(tmp_path / "MedAscii", changes)
    with pytest.raises(CodingError) as refused:
        load_meddra(trial.engine, who(trial, Role.CODER), folder, "27.1")
    assert str(refused.value).startswith(message)
    with read_scope(trial.engine) as session:  # nothing of it was stored
        assert session.scalar(select(func.count()).select_from(meddra_releases)) == 0
        assert session.scalar(select(func.count()).select_from(meddra_terms)) == 0
    assert audit.entries(trial.engine, action_prefix="coding.dictionary_loaded") == []


def test_search_finds_current_llts_only_with_their_pt_and_primary_soc(trial: Trial, tmp_path: Path) -> None:
    coder = who(trial, Role.CODER)
    with pytest.raises(CodingError, match="dictionary: no MedDRA release is loaded"):
        search_llts(trial.engine, coder, "zorbic")
    load_meddra(trial.engine, coder, write_release(tmp_path / "MedAscii"), "27.1")
    found = search_llts(trial.engine, coder, "ZORBIC")
    assert (found.total, found.cut) == (2, False)
    assert [(m.llt_code, m.llt_name, m.pt_name, m.soc_name) for m in found.matches] == [
        (90000011, "Acute zorbic kidney", "Zorbic kidney injury", "Fictional kidney disorders"),
        (90000001, "Zorbic kidney injury", "Zorbic kidney injury", "Fictional kidney disorders"),
    ]  # 90000012 "Zorbic renal lesion" is not current
    assert [m.llt_code for m in search_llts(trial.engine, coder, "blorp creatinine raised").matches] == [90000002]
    assert search_llts(trial.engine, coder, "renal lesion").matches == ()
    assert search_llts(trial.engine, coder, "100%").matches == ()  # a wildcard is a character, not a pattern


def test_a_search_cut_at_its_limit_says_how_many_matched(trial: Trial, tmp_path: Path) -> None:
    coder = who(trial, Role.CODER)
    load_meddra(trial.engine, coder, write_release(tmp_path / "MedAscii"), "27.1")
    everything = search_llts(trial.engine, coder, "zorbic")
    first = search_llts(trial.engine, coder, "zorbic", limit=1)
    assert (first.total, first.cut) == (everything.total, True)
    assert first.matches == everything.matches[:1]  # the best match, not an arbitrary one


def test_the_command_line_loads_a_release_and_refuses_a_broken_one(trial: Trial, tmp_path: Path) -> None:
    db = ["--database", trial.url, "--as", username(Role.DATA_MANAGER)]
    broken = write_release(tmp_path / "broken", {"hlgt_hlt.asc": ["90200001$90300001$", "90200009$90300002$"]})
    refused = runner.invoke(cli, ["coding", "load", "meddra", str(broken), "--version", "27.1", *db])
    assert refused.exit_code == 1
    assert "hlgt_hlt.asc line 2: HLGT 90200009 is not in hlgt.asc" in refused.output
    good = write_release(tmp_path / "good")
    loaded = runner.invoke(cli, ["coding", "load", "meddra", str(good), "--version", "27.1", *db])
    assert loaded.exit_code == 0, loaded.output
    assert "Loaded MedDRA 27.1: 2 SOC, 2 HLGT, 2 HLT, 2 PT, 5 LLT." in loaded.output
    bad_version = runner.invoke(cli, ["coding", "load", "meddra", str(good), "--version", "latest", *db])
    assert bad_version.exit_code == 1 and "is not a MedDRA version such as 27.1" in bad_version.output
