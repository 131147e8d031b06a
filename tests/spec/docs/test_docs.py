"""Docs that cannot drift: the CLI reference, the settings and the README's promises match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trialwright.cli.main import app
from trialwright.cli.reference import command_paths, render_reference
from trialwright.settings import Settings
from trialwright.web.api_reference import openapi_document, render_api_reference

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"


def test_cli_reference_is_generated_from_the_commands() -> None:
    committed = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert committed == render_reference(app), (
        "docs/cli.md is stale: run `python -m trialwright.cli.reference > docs/cli.md`"
    )


@pytest.mark.parametrize("command", command_paths(app))
def test_every_command_has_help(command: str) -> None:
    reference = render_reference(app)
    section = reference.split(f"## `{command}`\n", 1)[1].split("\n## ", 1)[0]
    usage_and_help = [line for line in section.splitlines() if line and not line.startswith("```")]
    # A usage line and at least one line of explanation besides the options.
    assert len(usage_and_help) >= 3, f"{command} has no help text"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    assert re.search(rf"^### `?{name}`?\s*$", text, re.MULTILINE), f"docs/settings.md lacks ### {name}"
    assert f"TRIALWRIGHT_{name.upper()}" in text


def test_readme_names_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "./dev start" in readme and "./dev test" in readme


def test_every_docs_page_is_linked_from_the_index() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md")
    missing = [p for p in pages if f"({p})" not in index]
    assert not missing, f"docs/index.md does not link {missing}"


def test_api_reference_is_generated_from_the_app(first_protocol_path: Path) -> None:
    committed = (DOCS / "api-reference.md").read_text(encoding="utf-8")
    assert committed == render_api_reference(openapi_document(first_protocol_path)), (
        "docs/api-reference.md is stale: run `python -m trialwright.web.api_reference > docs/api-reference.md`"
    )
def test_demo_help_says_where_the_demo_data_come_from() -> None:
    """``trialwright demo --help`` names the simulation file the demo data are drawn from (the file the
    simulator reads: ``NAME.simulation.yaml`` beside the protocol) and the page that documents its keys."""
    from typer.testing import CliRunner

    shown = " ".join(CliRunner().invoke(app, ["demo", "--help"], terminal_width=200).output.split())
    assert "NAME.simulation.yaml" in shown and "docs/simulation.md" in shown
    from trialwright.services.simulation import simulation_file_for

    assert simulation_file_for(Path("NAME.yaml")).name == "NAME.simulation.yaml"  # what the help says is so
    documented = (DOCS / "simulation.md").read_text(encoding="utf-8")
    assert "`trialwright demo\n--help` says so" in documented
