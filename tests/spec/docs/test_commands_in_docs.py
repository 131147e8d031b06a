"""Every command the README and the docs show is a command, with options it has.

A new user's walk: the README and docs/roles.md showed `trialwright user requests|approve` with the approver's
`--as`, and `user requests` has none. Each `trialwright ...` in a code span or a code block (continued lines
joined, comments cut) is read as typed: its words name a command (`a|b` names each of a and b), and every `--option`
after them is one of that command's. docs/cli.md is generated from the commands themselves and not read here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from trialwright.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md")]


def shown_commands(text: str) -> list[str]:
    """What follows `trialwright ` in each code span and code-block line."""
    found: list[str] = []
    lines, fenced, i = text.splitlines(), False, 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            fenced = not fenced
        elif fenced:
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i]
            found += re.findall(r"(?:^|[\s$(])trialwright\s+([^#]*)", line)
        else:
            found += re.findall(r"`trialwright ([^`]*)`", line)
        i += 1
    return found


def problems(shown: str, root: Any = None) -> list[str]:
    """What in one shown command is not so: an unknown command, an option the command does not have."""
    root = root or typer.main.get_command(app)
    words = shown.split()
    commands, used = [root], 0
    while used < len(words) and all(hasattr(c, "commands") for c in commands):
        named = [c.commands[w] for c in commands for w in words[used].split("|") if w in c.commands]
        if not named:
            break
        commands, used = named, used + 1
    if commands == [root]:
        word = words[0] if words else ""
        return [f"no command {word!r}"] if re.fullmatch(r"[a-z][a-z-]*(\|[a-z-]+)*", word) else []
    options = [w.split("=")[0].rstrip(".,;)") for w in words[used:] if w.startswith("--")]
    out = []
    for command in commands:
        known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        out += [f"{command.name} has no {o}" for o in options if o not in known]
    return out


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_shown_command_exists_with_the_options_shown(page: Path) -> None:
    wrong = {shown: found for shown in shown_commands(page.read_text(encoding="utf-8")) if (found := problems(shown))}
    assert not wrong, f"{page.name}: {wrong}"


def test_the_reading_sees_a_wrong_command() -> None:
    """The walk's line, and the forms the pages use, are read as a person types them."""
    page = (
        "List them with `trialwright user requests --as admin2`.\n\n```sh\n"
        "trialwright user requests|approve 3 --as admin2   # the second person\n"
        "trialwright user approve 3 \\\n    --as admin2 --reason ok\n"
        "trialwright nosuch --x\n```\n"
    )
    shown = shown_commands(page)
    assert [problems(s) for s in shown] == [
        ["requests has no --as"], ["requests has no --as"], [], ["no command 'nosuch'"]
    ]
