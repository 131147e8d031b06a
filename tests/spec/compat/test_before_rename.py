"""What was made before the rename (version 0.1.0, under the old name) still works under trialwright.

The files in ``before_rename/`` were written by version 0.1.0 (the commit before the rename): a simulated
trial of the first protocol as a SQLite file and as a PostgreSQL dump (schema ``prerename``), and that trial's
ODM export, whose vendor extension has the old namespace. The old name itself is spelled in one place only,
``trialwright.legacy``, and these specs read it from there.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select
from typer.testing import CliRunner

from tests.conftest import POSTGRES_URL, ROOT, _plain_postgres_dsn, fresh_database, must_have
from trialwright import __version__, legacy
from trialwright.cli.main import app
from trialwright.domain.roles import SYSTEM_ACTOR, SYSTEM_ACTORS, Role
from trialwright.protocol import load_protocol_text
from trialwright.protocol.estimands import Population
from trialwright.services import audit
from trialwright.services.forms import close_query, list_queries
from trialwright.services.odm_import import import_odm
from trialwright.services.trial import current_protocol, init_trial
from trialwright.services.users import UserError, create_user, get_user
from trialwright.settings import DEFAULT_DATABASE_FILE, Settings
from trialwright.store.engine import make_engine
from trialwright.store.migrate import current_revision, head_revision, upgrade
from trialwright.store.screening_tables import participants

HERE = Path(__file__).parent / "before_rename"
OLD_SQLITE = HERE / "trial-0.1.0.sqlite.gz"
OLD_POSTGRES = HERE / "trial-0.1.0.postgresql.sql.gz"
OLD_ODM = HERE / "IRCT20190101042197N2-0.1.0.odm.xml.gz"
OLD_VARIABLE = legacy.LEGACY_ENV_PREFIX + "DATABASE_URL"
NEW_VARIABLE = legacy.ENV_PREFIX + "DATABASE_URL"
runner = CliRunner()


# --- environment variables ---------------------------------------------------------------------


@pytest.fixture
def no_database_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith((legacy.ENV_PREFIX, legacy.LEGACY_ENV_PREFIX)) and "TEST" not in name:
            monkeypatch.delenv(name)
    return monkeypatch


def test_an_old_variable_is_read_when_the_new_one_is_not_set_with_a_warning_naming_the_new_one(
    no_database_variables: pytest.MonkeyPatch,
) -> None:
    no_database_variables.setenv(OLD_VARIABLE, "sqlite:///old-name.db")
    with pytest.warns(legacy.DeprecatedNameWarning, match=rf"{OLD_VARIABLE} is deprecated: set {NEW_VARIABLE}"):
        settings = Settings()
    assert settings.database_url == "sqlite:///old-name.db"


def test_the_new_variable_wins_over_the_old_one_and_the_warning_says_the_old_one_is_ignored(
    no_database_variables: pytest.MonkeyPatch,
) -> None:
    no_database_variables.setenv(OLD_VARIABLE, "sqlite:///old-name.db")
    no_database_variables.setenv(NEW_VARIABLE, "sqlite:///new-name.db")
    with pytest.warns(legacy.DeprecatedNameWarning, match=rf"{OLD_VARIABLE} is ignored: {NEW_VARIABLE} is set"):
        settings = Settings()
    assert settings.database_url == "sqlite:///new-name.db"


def test_every_setting_is_read_under_its_old_name(no_database_variables: pytest.MonkeyPatch) -> None:
    no_database_variables.setenv(legacy.LEGACY_ENV_PREFIX + "LOCKOUT_THRESHOLD", "9")
    no_database_variables.setenv(legacy.LEGACY_ENV_PREFIX + "SECURE_COOKIES", "true")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        settings = Settings()
    assert (settings.lockout_threshold, settings.secure_cookies) == (9, True)
    named = sorted(str(w.message).split()[0] for w in said if w.category is legacy.DeprecatedNameWarning)
    assert named == [legacy.LEGACY_ENV_PREFIX + "LOCKOUT_THRESHOLD", legacy.LEGACY_ENV_PREFIX + "SECURE_COOKIES"]


def test_nothing_is_said_when_only_the_new_names_are_set(no_database_variables: pytest.MonkeyPatch) -> None:
    no_database_variables.setenv(NEW_VARIABLE, "sqlite:///new-name.db")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings().database_url == "sqlite:///new-name.db"
        assert legacy.getenv("DATABASE_URL") == "sqlite:///new-name.db"


def test_getenv_reads_the_old_name_for_tools_and_tests_too() -> None:
    old = {legacy.LEGACY_ENV_PREFIX + "CHROMIUM": "/opt/old/chromium"}
    with pytest.warns(legacy.DeprecatedNameWarning, match=legacy.ENV_PREFIX + "CHROMIUM"):
        assert legacy.getenv("CHROMIUM", "/usr/bin/chromium", environ=old) == "/opt/old/chromium"
    assert legacy.getenv("CHROMIUM", "/usr/bin/chromium", environ={}) == "/usr/bin/chromium"


def test_the_command_line_prints_the_warning_for_the_person_running_it(
    no_database_variables: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_database_variables.setenv(OLD_VARIABLE, f"sqlite:///{tmp_path / 'made-by-old-variable.db'}")
    result = runner.invoke(app, ["init", "--protocol", str(ROOT / "protocols" / "IRCT20190101042197N2.yaml")])
    assert result.exit_code == 0, result.output
    assert f"warning: {OLD_VARIABLE} is deprecated: set {NEW_VARIABLE} instead" in result.output
    assert (tmp_path / "made-by-old-variable.db").exists()


# --- the old default database file -----------------------------------------------------------------


@pytest.fixture
def folder_with_old_default_database(tmp_path: Path, no_database_variables: pytest.MonkeyPatch) -> Iterator[Path]:
    old = tmp_path / legacy.LEGACY_DATABASE_FILE
    old.write_bytes(gzip.decompress(OLD_SQLITE.read_bytes()))
    no_database_variables.chdir(tmp_path)
    yield tmp_path


@pytest.mark.parametrize(
    "command",
    [
        ["init", "--protocol", str(ROOT / "protocols" / "IRCT20190101042197N2.yaml")],
        ["start", "--protocol", str(ROOT / "protocols" / "IRCT20190101042197N2.yaml"), "--port", "1"],
        ["serve", "--port", "1"],
        ["audit", "verify"],
    ],
    ids=["init", "start", "serve", "audit verify"],
)
def test_a_command_on_the_default_database_refuses_when_only_the_old_file_is_here_and_says_how_to_rename_it(
    folder_with_old_default_database: Path, command: list[str]
) -> None:
    before = (folder_with_old_default_database / legacy.LEGACY_DATABASE_FILE).read_bytes()
    result = runner.invoke(app, command)
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert f"{legacy.LEGACY_DATABASE_FILE} is in this folder" in said
    assert f"mv {legacy.LEGACY_DATABASE_FILE} {DEFAULT_DATABASE_FILE}" in said
    assert f"--database sqlite:///{legacy.LEGACY_DATABASE_FILE}" in said
    assert not (folder_with_old_default_database / DEFAULT_DATABASE_FILE).exists()  # no new, empty trial
    assert (folder_with_old_default_database / legacy.LEGACY_DATABASE_FILE).read_bytes() == before


def test_once_renamed_the_old_database_is_the_default_one(folder_with_old_default_database: Path) -> None:
    (folder_with_old_default_database / legacy.LEGACY_DATABASE_FILE).rename(
        folder_with_old_default_database / DEFAULT_DATABASE_FILE
    )
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "The audit trail is intact" in result.output


def test_a_database_named_on_the_command_line_is_used_whatever_else_is_in_the_folder(
    folder_with_old_default_database: Path,
) -> None:
    result = runner.invoke(app, ["audit", "verify", "--database", f"sqlite:///{legacy.LEGACY_DATABASE_FILE}"])
    assert result.exit_code == 0, result.output
    assert "The audit trail is intact" in result.output


# --- a database made before the rename ------------------------------------------------------------


def _restore_postgres(schema: str) -> None:
    """Load the 0.1.0 dump into ``schema`` with psql (the dump holds psql meta-commands)."""
    psql = shutil.which("psql")
    if psql is None:
        must_have("psql", "the PostgreSQL client restores the dump made before the rename")
    assert psql is not None
    dump = gzip.decompress(OLD_POSTGRES.read_bytes()).decode("utf-8")
    dump = re.sub(r"\bprerename\b", schema, dump)
    done = subprocess.run(
        [psql, "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", _plain_postgres_dsn(POSTGRES_URL)],
        input=dump,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to the trial database version 0.1.0 made, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / legacy.LEGACY_DATABASE_FILE
        path.write_bytes(gzip.decompress(OLD_SQLITE.read_bytes()))
        yield f"sqlite:///{path}"
        return
    reason = request.getfixturevalue("postgres_available")
    with fresh_database("postgresql", tmp_path, reason) as url:
        schema = re.search(r"search_path%3D(\w+)", url)
        assert schema is not None
        import psycopg

        with psycopg.connect(_plain_postgres_dsn(POSTGRES_URL), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema.group(1)}"')  # the dump creates it
        _restore_postgres(schema.group(1))
        yield url


def _every_row(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted((dict(r._mapping) for r in conn.execute(select(table))), key=repr)
            for name, table in sorted(meta.tables.items())
        }


def _stored_protocol_text(engine: Engine) -> str:
    """The protocol text the old database ran under, read back as the app reads a stored text (``stored=True``:
    the rules added since, such as decimals on a derived screening field, read it as its engine did)."""
    return current_protocol(engine).source_text


def test_a_database_made_before_the_rename_upgrades_with_no_data_change(old_database: str) -> None:
    engine = make_engine(old_database)
    before = _every_row(engine)
    assert before["audit_entries"], "the fixture holds a trial"
    revision = current_revision(engine)
    result = init_trial(engine, load_protocol_text(_stored_protocol_text(engine), stored=True))
    assert result.schema_revision == head_revision()
    after = _every_row(engine)
    if revision == head_revision():
        assert result.status == "unchanged"
        assert after == before
    else:  # a later schema: the upgrade adds its own audit entry (and columns) and keeps every value that was there
        assert result.status == "upgraded"
        for name, rows in before.items():
            if name == "alembic_version":
                continue
            kept = [{k: r[k] for k in rows[0]} for r in after[name]] if rows else []
            assert all(r in kept for r in rows), name
    report = audit.verify(engine)
    assert report.ok, report.message
    assert report.count == len(after["audit_entries"])


def test_the_old_system_actor_is_still_the_system(old_database: str) -> None:
    engine = make_engine(old_database)
    upgrade(engine)  # as `trialwright start` and `trialwright init` do
    monitor = next(u for u in (get_user(engine, name) for name in ("sim-monitor", "monitor")) if u is not None)
    assert monitor.role is Role.MONITOR
    automatic = [q for q in list_queries(engine, monitor, status="open") if q.raised_by == legacy.LEGACY_SYSTEM_ACTOR]
    assert automatic, "the fixture holds automatic queries raised under the old name"
    assert all(q.automatic for q in automatic)
    closed = close_query(engine, monitor, automatic[0].id, "checked at the site")
    assert closed.status == "closed"
    assert audit.verify(engine).ok


@pytest.mark.parametrize("name", sorted(SYSTEM_ACTORS))
def test_no_account_may_take_a_name_the_system_records_its_actions_under(database_url: str, name: str) -> None:
    engine = make_engine(database_url)
    with pytest.raises(UserError, match=r"username: .* is the name the system records its own actions under"):
        create_user(engine, username=name.upper(), password="Correct-horse-7", role=Role.MONITOR, actor="test")


def test_what_the_system_does_now_is_recorded_under_the_new_name() -> None:
    assert SYSTEM_ACTOR == "trialwright"
    assert legacy.LEGACY_SYSTEM_ACTOR in SYSTEM_ACTORS


# --- ODM files written before the rename ------------------------------------------------------------


def _without_pregnancy_for_men(xml: bytes) -> bytes:
    """The file with ``pregnant`` taken out of each man's screening values (the 0.1.0 simulator answered it)."""

    def drop(found: re.Match[bytes]) -> bytes:
        values = json.loads(found.group(2))
        if values.get("sex") == "male":
            values.pop("pregnant", None)
        return found.group(1) + json.dumps(values, sort_keys=True).encode() + found.group(3)

    pattern = rb"(<tk:ScreeningValues[^>]*>)([^<]*)(</tk:ScreeningValues>)"
    edited, count = re.subn(pattern, drop, xml)
    men = [json.loads(m.group(2)) for m in re.finditer(pattern, edited)]
    assert count and not any(v.get("sex") == "male" and "pregnant" in v for v in men)
    return edited


def test_import_odm_reads_a_file_written_before_the_rename(database_url: str, tmp_path: Path) -> None:
    """The old namespace is read. The file's simulator (0.1.0) stamped samples at 09:00 though the consent was
    later that morning: the import refuses that, as every save now does; with each consent moved to the start of
    its day (the enrolment stays after it) the file imports whole. That simulator also answered pregnancy for men,
    which a screening now refuses (``applies_if``), the import too: those answers are taken out of both files."""
    original = _without_pregnancy_for_men(gzip.decompress(OLD_ODM.read_bytes()))
    assert legacy.LEGACY_ODM_NS.encode() in original
    incoherent = tmp_path / "incoherent.odm.xml"
    incoherent.write_bytes(original)
    xml = re.sub(rb'ConsentedAt="(\d{4}-\d{2}-\d{2})T[^"]*"', rb'ConsentedAt="\1T00:00:00+00:00"', original)
    path = tmp_path / "old.odm.xml"
    path.write_bytes(xml)
    old = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    (tmp_path / "old.db").write_bytes(gzip.decompress(OLD_SQLITE.read_bytes()))
    protocol_text = _stored_protocol_text(old)  # the trial's protocol as the file was made under
    old.dispose()
    engine = make_engine(database_url)
    init_trial(engine, load_protocol_text(protocol_text, stored=True))
    manager = create_user(engine, username="dm", password="Correct-horse-7", role=Role.DATA_MANAGER, actor="test")
    from trialwright.services.odm_import import OdmImportError

    with pytest.raises(OdmImportError, match=r"stored values break the protocol's rules; nothing was imported"):
        import_odm(engine, manager, incoherent)
    report = import_odm(engine, manager, path)
    written = {key.decode() for key in re.findall(rb'<SubjectData [^>]*SubjectKey="([^"]+)"', xml)}
    assert written
    assert report.participants == len(written)
    assert report.forms == len(re.findall(rb"<FormData ", xml))
    assert report.values == len(re.findall(rb"<ItemData ", xml))
    with engine.connect() as conn:
        assert set(conn.execute(select(participants.c.participant_id)).scalars()) == written
    assert audit.verify(engine).ok


def test_a_file_declaring_both_extension_namespaces_is_refused(database_url: str, tmp_path: Path) -> None:
    from trialwright.exports.odm import TW_NS
    from trialwright.services.odm_import import OdmImportError

    xml = gzip.decompress(OLD_ODM.read_bytes()).decode("utf-8")
    both = xml.replace("xmlns:tk=", f'xmlns:tw="{TW_NS}" xmlns:tk=', 1)
    path = tmp_path / "both.odm.xml"
    path.write_text(both, encoding="utf-8")
    engine = make_engine(database_url)
    (tmp_path / "old.db").write_bytes(gzip.decompress(OLD_SQLITE.read_bytes()))
    old = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    init_trial(engine, load_protocol_text(_stored_protocol_text(old), stored=True))
    old.dispose()
    manager = create_user(engine, username="dm", password="Correct-horse-7", role=Role.DATA_MANAGER, actor="test")
    with pytest.raises(OdmImportError, match="declares the extension namespace twice"):
        import_odm(engine, manager, path)


# --- the name in the tree ----------------------------------------------------------------------------


def test_the_old_name_is_spelled_only_where_it_is_still_read_and_in_the_readmes_history() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        must_have("a git checkout", "the tree's files are listed by git")
    assert git is not None
    files = subprocess.run(
        [git, "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    spelled: dict[str, list[str]] = {}
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.suffix == ".gz":
            continue
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
        hits = [line for line in lines if legacy.LEGACY_NAME in line.lower()]
        if hits:
            spelled[name] = hits
    assert set(spelled) == {"README.md", "src/trialwright/legacy.py"}, sorted(spelled)
    assert len(spelled["README.md"]) == 1
    assert __version__ in spelled["README.md"][0]


def test_the_version_is_0_2_0() -> None:
    assert __version__ == "0.2.0"


def test_a_new_trial_writes_nothing_under_the_old_name(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    init_trial(engine, load_protocol_text((ROOT / "protocols" / "IRCT20190101042197N2.yaml").read_text("utf-8")))
    rows = _every_row(engine)
    assert legacy.LEGACY_NAME not in repr(rows).lower()


# --- the protocol text a database made before estimands holds -------------------------------------------------


def test_a_format_1_protocol_is_read_as_the_estimands_its_engine_computed(tmp_path: Path) -> None:
    """The 0.1.0 database's protocol (format 1: measure, analysis methods) reads as format-2 estimands that say what
    that engine did: ANCOVA on the log scale with the Wilcoxon/Hodges-Lehmann and per-protocol ANCOVA as
    sensitivity, SAEs to day 7 in the safety set, and the length of stay with death competing."""
    (tmp_path / "old.db").write_bytes(gzip.decompress(OLD_SQLITE.read_bytes()))
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    loaded = current_protocol(engine)
    assert "measure: change_from_baseline" in loaded.source_text  # the stored text is untouched
    by_id = {o.id: o.estimand for o in loaded.protocol.outcomes}
    tnf = by_id["tnf_alpha"]
    assert (tnf.population, tnf.summary, tnf.estimator) == ("itt", "ratio_of_geometric_means", "ancova")
    assert tnf.variable.scale.value == "log" and tnf.variable.baseline == "baseline" and tnf.variable.at == "day7"
    assert [(s.estimator.value, s.population) for s in tnf.sensitivity] == [
        ("wilcoxon_hodges_lehmann", None),
        ("ancova", Population.PER_PROTOCOL),
    ]
    sae = by_id["sae"]
    assert (sae.population.value, sae.variable.adverse_event, sae.variable.up_to_day) == ("safety", "sae", 7)
    stay = by_id["length_of_stay"]
    assert (stay.variable.kind, stay.estimator, stay.strategy("death")) == ("duration", "fine_gray", "competing")


def test_the_analysis_runs_on_a_database_made_before_estimands(old_database: str) -> None:
    from trialwright.services.analysis import run_analysis

    engine = make_engine(old_database)
    upgrade(engine)  # as `trialwright start` and `trialwright init` do
    statistician = next(
        u for u in (get_user(engine, n) for n in ("sim-blinded-statistician", "blinded-statistician")) if u is not None
    )
    report = run_analysis(engine, statistician).report
    assert report.outcome_ids == tuple(o.id for o in current_protocol(engine).protocol.outcomes)
    assert len(report.outcome_ids) == 9
